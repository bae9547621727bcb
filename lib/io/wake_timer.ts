/**
 * One timer that makes sure a driver wakes by a machine's deadline: a timer already due at or
 * before the new deadline is kept (it fires early and the driver arms again), so moving a
 * deadline later, as a relay server does with every datagram, costs nothing. The UDP driver
 * (`lib/io/udp.ts`) and the TCP/TLS server (`lib/io/tcp.ts`) each hold one; and the monotonic
 * clock they read. I/O: timers, the clock.
 *
 * @module
 */

/** Milliseconds on a monotonic clock. */
export function monotonicNow(): number {
  return performance.now();
}

/** A single pending wake-up. */
export class WakeTimer {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #at: number | undefined;

  /** Runs `fire` by `at` (monotonic ms); nothing when `at` is undefined or one fires sooner. */
  arm(at: number | undefined, fire: () => void): void {
    if (at === undefined || (this.#at !== undefined && this.#at <= at)) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#at = undefined;
      fire();
    }, Math.max(0, Math.ceil(at - monotonicNow())));
  }

  /** Cancels the pending wake-up. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = undefined;
  }
}
