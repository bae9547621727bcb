/**
 * The doctor's search for how long the NAT keeps an idle mapping (`lib/nat/doctor.ts`, test 4):
 * its state, what a probe's outcome teaches (the first probe, with no wait, only checks that
 * the server answers RESPONSE-PORT; later ones bound the lifetime from below when answered and
 * from above when not), and the next idle wait (doubling from the first until a mapping expires,
 * then bisecting to the precision); its options ({@link LifetimeOptions}) and its start
 * ({@link newLifetime}). Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import type { Tx, TxState } from "./doctor_tx.ts";

/** Options of the lifetime measurement. */
export interface LifetimeOptions {
  /** Total time the measurement may take, ms. */
  budget: number;
  /** First idle wait, ms (default 2000); waits double from there until one expires. */
  first?: number;
  /** Stop bisecting when the bounds are this close, ms (default 1000; or a tenth of them). */
  precision?: number;
  /** Most probes (default 24). */
  maxProbes?: number;
}

const DEFAULT_FIRST_WAIT = 2000;
const DEFAULT_PRECISION = 1000;
const DEFAULT_MAX_PROBES = 24;

/** How the lifetime search runs. */
export interface LifetimeSearchOptions {
  /** The first idle wait after calibration, ms. */
  first: number;
  /** Stop when the bounds are this close (or a tenth of the lower one), ms. */
  precision: number;
  /** At most this many probes. */
  maxProbes: number;
  /** Stop when the next probe would end later than this after the start, ms. */
  budget: number;
}

/** The search's state. */
export interface Lifetime {
  /** Its options. */
  opts: LifetimeSearchOptions;
  /** When it started. */
  start: number;
  /** Probes started. */
  probes: number;
  /** Longest wait survived, ms (0 once the calibration probe came back). */
  lo: number;
  /** Shortest wait not survived, ms. */
  hi: number | null;
  /** The server answers RESPONSE-PORT (the calibration probe came back). */
  calibrated: boolean;
  /** Where the current probe stands. */
  step: "refresh" | "idle" | "probe" | "done";
  /** The current probe's idle wait, ms. */
  wait: number;
  /** When the idle wait ends. */
  wakeAt: number | undefined;
  /** Our public endpoint as the refresh saw it. */
  mapped: Endpoint | null;
  /** The request under way. */
  tx: Tx | null;
}

/** A search starting at `now` with options `o` (their defaults filled in), no probe yet. */
export function newLifetime(now: number, o: LifetimeOptions): Lifetime {
  return {
    opts: {
      budget: o.budget,
      first: o.first ?? DEFAULT_FIRST_WAIT,
      precision: o.precision ?? DEFAULT_PRECISION,
      maxProbes: o.maxProbes ?? DEFAULT_MAX_PROBES,
    },
    start: now,
    probes: 0,
    lo: 0,
    hi: null,
    calibrated: false,
    step: "done",
    wait: 0,
    wakeAt: undefined,
    mapped: null,
    tx: null,
  };
}

/**
 * A probe ended in `state`: what it teaches. Returns whether the mapping was still there when
 * it was a real measurement (not the calibration), else null; `done` is set when the search ends.
 */
export function probeOutcome(lt: Lifetime, state: TxState): boolean | null {
  if (state === "error") {
    lt.step = "done"; // The server does not do RESPONSE-PORT: no measurement.
    return null;
  }
  if (!lt.calibrated) {
    lt.calibrated = state === "answered";
    if (!lt.calibrated) lt.step = "done";
    return null;
  }
  const alive = state === "answered";
  if (alive) lt.lo = Math.max(lt.lo, lt.wait);
  else lt.hi = lt.hi === null ? lt.wait : Math.min(lt.hi, lt.wait);
  return alive;
}

/** The next idle wait of the search, or null when the bounds are close enough. */
export function nextWait(lt: Lifetime): number | null {
  if (lt.hi === null) return lt.lo === 0 ? lt.opts.first : lt.lo * 2;
  if (lt.hi - lt.lo <= Math.max(lt.opts.precision, lt.lo / 10)) return null;
  return Math.round((lt.lo + lt.hi) / 200) * 100;
}
