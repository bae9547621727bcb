/**
 * What one pair sees of the supernode relaying it, from its own traffic: a supernode answers the
 * PINGs that give its RTT, and can still hold back or drop what it relays (broken, overloaded or
 * hostile). The pair watches its relayed DATA while a supernode relays it: the acknowledgement
 * delay (how long the oldest payload in flight waited for the ACK that covered it, first send to
 * acknowledgement, resends included: what the users wait) and the share of DATA frames that timed
 * out. The supernode is worse than the server's relay when, after
 * {@link WATCH_MIN} frames, more than {@link LOSS_LIMIT} of them timed out, or the delay exceeds
 * what the server's relay would cost by the rule that chose the supernode (the RTT sum through
 * the server, times 1.5, plus `RTT_SLACK`) and {@link DELAY_SLACK} more for acknowledgement
 * delays and jitter. The remote then moves the pair to the server's relay (as for a stall).
 *
 * Pure; the remote feeds it (see {@link RelayWatch}).
 *
 * @module
 */
import { RTT_SLACK } from "./supernodes.ts";

/** Relayed DATA frames seen through one supernode before its losses are judged. */
export const WATCH_MIN = 16;
/** Acknowledgements of the oldest payload seen before the delay is judged. */
export const WATCH_ACKS = 4;
/** Share of relayed DATA frames that timed out beyond which the supernode is worse. */
export const LOSS_LIMIT = 0.2;
/** Acknowledgement delay allowed beyond the server relay's RTT sum rule (ms). */
export const DELAY_SLACK = 100;

/**
 * One pair's watch over the supernode relaying it. Call order: {@link through} before each
 * DATA frame's {@link sent}; {@link acked} after each ACK; then {@link worse}.
 */
export class RelayWatch {
  #key: string | null = null;
  #sent = 0;
  #timedOut = 0;
  #acks = 0;
  #delay: number | undefined;

  /** The pair's frames go through supernode `key` now (null: direct or the server): a new count. */
  through(key: string | null): void {
    if (key === this.#key) return;
    this.#key = key;
    this.#sent = this.#timedOut = this.#acks = 0;
    this.#delay = undefined;
  }

  /** The supernode watched now, if any. */
  get key(): string | null {
    return this.#key;
  }

  /** What was seen through it so far (diagnostics). */
  get counts(): { sent: number; timedOut: number; acks: number; delay: number | undefined } {
    return { sent: this.#sent, timedOut: this.#timedOut, acks: this.#acks, delay: this.#delay };
  }

  /** A DATA frame went out through it; `timeout`: a resend after its timer ran out. */
  sent(timeout: boolean): void {
    if (this.#key === null) return;
    this.#sent++;
    if (timeout) this.#timedOut++;
  }

  /** An ACK covered the oldest payload in flight, `delay` ms after it was first sent. */
  acked(delay: number): void {
    if (this.#key === null) return;
    this.#acks++;
    this.#delay = this.#delay === undefined ? delay : 0.75 * this.#delay + 0.25 * delay;
  }

  /**
   * True when the watched supernode relays worse than the server would: too many timeouts, or an
   * acknowledgement delay beyond the server relay's (`serverSum`: both sides' RTTs to the
   * server, null when not known).
   */
  worse(serverSum: number | null): boolean {
    if (this.#key === null) return false;
    if (this.#sent >= WATCH_MIN && this.#timedOut > LOSS_LIMIT * this.#sent) return true;
    if (serverSum === null || this.#acks < WATCH_ACKS || this.#delay === undefined) return false;
    return this.#delay > 1.5 * serverSum + RTT_SLACK + DELAY_SLACK;
  }
}
