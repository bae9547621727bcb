/**
 * Pieces shared by the port-mapping clients: the retransmission schedule, the gateway-epoch
 * check that detects a rebooted router, and the interface through which each protocol's
 * machine reports to {@link PortMapper} (`lib/nat/portmap/mapper.ts`).
 *
 * @module
 */

import type { Endpoint } from "../../wire/address.ts";

/** The port-mapping protocols, in order of preference. */
export type PortMapProtocol = "pcp" | "natpmp" | "upnp";

/** First retransmission interval (RFC 6886 §3.1), ms; it doubles after each send. */
export const FIRST_RETRY = 250;
/** Longest retransmission interval (renewals retry until the mapping expires), ms. */
export const MAX_RETRY = 60_000;

/**
 * When to (re)send a request: at the start, then 250 ms later, doubling (RFC 6886), until
 * `giveUpAt`. With a 2000 ms limit that is 4 sends (0, 250, 750, 1750 ms).
 */
export class Backoff {
  /** When the next send is due. */
  at: number;
  /** When to give up (no answer by then). */
  readonly giveUpAt: number;
  #interval = FIRST_RETRY;

  /** A schedule whose first send is due at `now`. */
  constructor(now: number, giveUpAt: number) {
    this.at = now;
    this.giveUpAt = giveUpAt;
  }

  /** True (and the next send scheduled) when a send is due at `now` before giving up. */
  due(now: number): boolean {
    if (now < this.at || now >= this.giveUpAt) return false;
    this.at = now + this.#interval;
    this.#interval = Math.min(this.#interval * 2, MAX_RETRY);
    return true;
  }

  /** Whether the time to give up has come. */
  expired(now: number): boolean {
    return now >= this.giveUpAt;
  }

  /** The next time something is due (a send or giving up). */
  next(): number {
    return Math.min(this.at, this.giveUpAt);
  }
}

/**
 * Detects a gateway that lost its mappings (a reboot) from the epoch (seconds since its
 * mapping table started) in each response, as RFC 6887 §8.5 and RFC 6886 §3.6 describe: the
 * epoch must not go backwards, and it must advance about as fast as our own clock.
 */
export class EpochCheck {
  #server: number | undefined;
  #client = 0;

  /** Records a response's `epoch` at `now` (ms); false when the gateway lost its state. */
  accept(now: number, epoch: number): boolean {
    const prev = this.#server;
    const clientDelta = (now - this.#client) / 1000;
    this.#server = epoch;
    this.#client = now;
    if (prev === undefined) return true;
    if (epoch + 1 < prev) return false;
    const serverDelta = epoch - prev;
    if (clientDelta + 2 < serverDelta - serverDelta / 16) return false;
    if (serverDelta + 2 < clientDelta - clientDelta / 16) return false;
    return true;
  }
}

/** What a protocol machine tells the mapper. */
export interface ProtocolSink {
  /** A mapping was granted (or renewed with another external endpoint). */
  granted(p: PortMapProtocol, now: number, external: Endpoint, lifetime: number): void;
  /** The first attempt failed (no answer or an error): this protocol gives nothing. */
  failed(p: PortMapProtocol, now: number, reason: string): void;
  /** A granted mapping was lost (renewal failed, or the gateway forgot it and would not redo). */
  lost(p: PortMapProtocol, now: number, reason: string): void;
}

/** The state of one protocol's machine, as the mapper sees it. */
export type ProtocolState = "idle" | "working" | "granted" | "failed" | "done";
