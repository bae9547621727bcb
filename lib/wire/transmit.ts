/**
 * What a sans-IO state machine hands its driver: a datagram, its destination and the local
 * socket to send it from. Pure (a type and a bound).
 *
 * @module
 */
import type { Endpoint } from "./address.ts";

/** A datagram a state machine wants sent. */
export interface Transmit {
  /** Destination endpoint (a literal IP). */
  to: Endpoint;
  /** The encoded datagram. */
  data: Uint8Array;
  /**
   * Which local socket sends it: undefined or 0 = the main socket of `to`'s address family;
   * 1..{@link MAX_AUX_SOCKETS} = auxiliary IPv4 socket n (opened by the driver on first use).
   */
  via?: number;
}

/** Most auxiliary sockets a machine may use at once (birthday probing needs ~256). */
export const MAX_AUX_SOCKETS = 512;
