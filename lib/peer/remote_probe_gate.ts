/**
 * The probe gate of one remote peer: probes go freely while a direct path is selected or the
 * peer takes messages; to a peer that does not, one every {@link QUIET_PROBE_GAP} at most, so a
 * peer that was stopped does not find its socket full of probes when it runs again.
 * {@link RemotePeer} (`lib/peer/remote.ts`) asks it before each probe. Pure.
 *
 * @module
 */

/** Least time between two probes to a peer that does not answer (see `answering`), in ms. */
export const QUIET_PROBE_GAP = 5_000;
/** A peer whose oldest unacknowledged message is older than this (ms) is not taking messages. */
export const STALLED_AFTER = 3_000;

/** When the last probe went to a quiet peer. Ask {@link mayProbe} before each probe. */
export class ProbeGate {
  /** When the last probe went to it while it did not answer. */
  #quietProbeAt = -Infinity;

  /**
   * Whether a probe may go now: always while `routed` (a direct path is selected: its liveness
   * is checked) or what waits for the peer stalled for less than {@link STALLED_AFTER}
   * (`stalledFor`); else one every {@link QUIET_PROBE_GAP} at most (a yes counts as that one).
   */
  mayProbe(now: number, routed: boolean, stalledFor: number): boolean {
    if (routed || stalledFor < STALLED_AFTER) return true;
    if (now - this.#quietProbeAt < QUIET_PROBE_GAP) return false;
    this.#quietProbeAt = now;
    return true;
  }
}
