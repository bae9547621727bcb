/**
 * Telling a process that was not running (SIGSTOP, a suspended laptop, a debugger, a stalled
 * event loop) from peers that went silent. A sans-IO machine asks its driver to be woken at
 * `nextTimeout()`; when it is next called much later than that, the process was not running, and
 * what peers sent meanwhile is still waiting in its socket. Deciding "silent for too long" at that
 * moment would blame the peers for our own absence. A {@link StallGuard} notices the late call and
 * holds such decisions back for a short grace, so the queued datagrams are read first.
 *
 * Pure: time comes from the caller. Call order: every `handle*` entry calls {@link holding}
 * first with the machine's own earliest deadline (one comparison); `nextTimeout()` passes its
 * answer through {@link wake}.
 *
 * @module
 */

/** How late a call must be, after a deadline that was due, to count as a stall, in ms. */
export const STALL_LATE_BY = 2_000;
/** How long decisions that assume we were listening wait after a stall, in ms. */
export const STALL_GRACE = 1_500;

/** Notices calls that come long after a deadline was due, and holds decisions after them. */
export class StallGuard {
  #holdUntil = -Infinity;
  #lastCall = -Infinity;
  /** Stalls noticed so far. */
  stalls = 0;

  /**
   * True while decisions that assume the process was listening must wait: `now` is within
   * {@link STALL_GRACE} of a call that came more than {@link STALL_LATE_BY} after `due`, the
   * machine's earliest deadline (a timer that should have fired long ago), with no call for as
   * long before it (so a deadline that is simply overdue after a hold does not start another).
   */
  holding(now: number, due: number | undefined): boolean {
    const idle = now - this.#lastCall;
    this.#lastCall = now;
    if (due !== undefined && now > due + STALL_LATE_BY && idle > STALL_LATE_BY) {
      this.#holdUntil = now + STALL_GRACE;
      this.stalls++;
    }
    return now < this.#holdUntil;
  }

  /** The wake-up to ask the driver for, given the machine's own (`t`): a hold's end may be first. */
  wake(t: number | undefined): number | undefined {
    if (this.#holdUntil === -Infinity) return t;
    return t === undefined ? this.#holdUntil : Math.min(t, this.#holdUntil);
  }

  /**
   * The wake-up to ask for when every timer of the machine waits out a hold (not only some of
   * its decisions): a deadline due during the hold moves to the hold's end, so a driver does not
   * spin on a timer the machine will not act on yet.
   */
  defer(t: number | undefined): number | undefined {
    return t === undefined ? undefined : Math.max(t, this.#holdUntil);
  }
}
