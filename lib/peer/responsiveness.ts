/**
 * Whether a remote peer answers: when something from it last authenticated, when it last
 * acknowledged our messages, and the "not responding" / "responding" facts told to the user.
 * Nothing is given up for a silent peer (its messages stay queued while it may come back); the
 * user is told, and leaving does not wait for it. Time that we ourselves were not running
 * (see {@link Responsiveness.stalled}) is not held against it.
 *
 * Pure: time comes from the caller, and so does the oldest message in flight (the reliable
 * channel's). Call order: {@link Responsiveness.heard} for every authenticated frame,
 * {@link Responsiveness.acked} for every ACK, {@link Responsiveness.check} at
 * {@link Responsiveness.nextTimeout}.
 *
 * @module
 */

/**
 * A peer that acknowledged nothing for this long (ms) while messages to it wait is told to be
 * "not responding" (nothing is given up: they stay queued while it may come back).
 */
export const NOT_RESPONDING_AFTER = 60_000;

/**
 * A peer that acknowledged nothing for this long (ms) while messages to it wait does not answer:
 * leaving does not wait for it.
 */
export const UNANSWERED_AFTER = 10_000;

/** One remote peer's signs of life. */
export class Responsiveness {
  #heardAt: number;
  #lastAckAt = -Infinity;
  /** It has been silent for {@link NOT_RESPONDING_AFTER} (until its next ACK). */
  #silent = false;
  /** "Not responding" was told, so "responding" is owed. */
  #told = false;

  /** A peer first introduced at `now` (counted as heard from then). */
  constructor(now: number) {
    this.#heardAt = now;
  }

  /** When something from it last authenticated (or when it was first introduced). */
  get heardAt(): number {
    return this.#heardAt;
  }

  /** Something from it authenticated at `now`. */
  heard(now: number): void {
    this.#heardAt = now;
  }

  /** It acknowledged something at `now`; true when "responding" is to be told now. */
  acked(now: number): boolean {
    this.#lastAckAt = now;
    this.#silent = false;
    const owed = this.#told;
    this.#told = false;
    return owed;
  }

  /** We were not running until `now`: its silence meanwhile does not count. */
  stalled(now: number): void {
    this.#lastAckAt = Math.max(this.#lastAckAt, now);
  }

  /**
   * Since when it has acknowledged nothing while messages to it are in flight (`oldest`: when
   * the oldest of them was first sent), if any are.
   */
  silentSince(oldest: number | undefined): number | undefined {
    return oldest === undefined ? undefined : Math.max(oldest, this.#lastAckAt);
  }

  /** True unless messages wait for it and it acknowledged nothing for {@link UNANSWERED_AFTER}. */
  answering(now: number, oldest: number | undefined): boolean {
    const silent = this.silentSince(oldest);
    return silent === undefined || now - silent < UNANSWERED_AFTER;
  }

  /** When {@link check} has something to decide, if ever. */
  nextTimeout(oldest: number | undefined): number | undefined {
    const silent = this.silentSince(oldest);
    return silent === undefined || this.#silent ? undefined : silent + NOT_RESPONDING_AFTER;
  }

  /**
   * True when "not responding" is to be told now (once, until an ACK); with `tell` false (it
   * never proved who it is) it only stops being looked at.
   */
  check(now: number, oldest: number | undefined, tell: boolean): boolean {
    const silent = this.silentSince(oldest);
    if (silent === undefined || this.#silent || now - silent < NOT_RESPONDING_AFTER) return false;
    this.#silent = true;
    this.#told = tell;
    return tell;
  }
}
