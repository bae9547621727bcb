/**
 * The schedule of a churn run (`tests/support/soak.ts`): which peer leaves or sleeps when and
 * for how long, when the server sleeps or is killed. A plan is plain data; {@link randomPlan}
 * draws one from a seeded PRNG, and tests write theirs by hand.
 *
 * @module
 */

/** One disruption of a schedule; `at` is ms from the start of the disrupted phase. */
export type Disruption =
  /** The peer leaves (`/quit` or end of input) and rejoins `awayMs` later, same identity. */
  | { kind: "leave"; at: number; slot: number; awayMs: number; how: "quit" | "eof" }
  /** The peer is stopped (SIGSTOP) for `forMs`, then continued. */
  | { kind: "suspend"; at: number; slot: number; forMs: number }
  /** The server is stopped for `forMs`, then continued. */
  | { kind: "server-suspend"; at: number; forMs: number }
  /** The server is killed (SIGKILL) and started again on its port `downMs` later. */
  | { kind: "server-kill"; at: number; downMs: number };

/** Options of {@link randomPlan}. */
export interface PlanOptions {
  /** Peer slots; slot 0 (the anchor, sampled for resources) is never disrupted. */
  peers: number;
  /** Length of the disrupted phase, ms: every disruption ends before it. */
  durationMs: number;
}

/** Uniform in [a, b) from `rng`. */
export function between(rng: () => number, a: number, b: number): number {
  return a + (b - a) * rng();
}

/**
 * A random schedule: each peer but the anchor alternates quiet spells of 10–40 s with a
 * leave (away 2–20 s, by `/quit` or end of input) or a suspension (5–90 s); the server
 * alternates quiet spells of 30–70 s with a suspension (20–30 s) or a kill and restart (down
 * 1–4 s). Sorted by time.
 */
export function randomPlan(rng: () => number, o: PlanOptions): Disruption[] {
  const plan: Disruption[] = [];
  const end = o.durationMs - 5_000;
  for (let slot = 1; slot < o.peers; slot++) {
    for (let t = between(rng, 5_000, 30_000), n = 0; n < 100; n++) {
      let d: Disruption, lasts: number;
      if (rng() < 0.55) {
        const awayMs = Math.round(between(rng, 2_000, 20_000));
        const how = rng() < 0.5 ? "quit" : "eof";
        d = { kind: "leave", at: Math.round(t), slot, awayMs, how };
        lasts = awayMs + 8_000; // leaving, starting again and registering
      } else {
        const forMs = Math.round(between(rng, 5_000, 90_000));
        d = { kind: "suspend", at: Math.round(t), slot, forMs };
        lasts = forMs;
      }
      if (t + lasts > end) break;
      plan.push(d);
      t += lasts + between(rng, 10_000, 40_000);
    }
  }
  for (let t = between(rng, 20_000, 40_000), n = 0; n < 100; n++) {
    const at = Math.round(t);
    let d: Disruption, lasts: number;
    if (rng() < 0.45) {
      const downMs = Math.round(between(rng, 1_000, 4_000));
      d = { kind: "server-kill", at, downMs };
      lasts = downMs + 5_000; // starting again
    } else {
      const forMs = Math.round(between(rng, 20_000, 30_000));
      d = { kind: "server-suspend", at, forMs };
      lasts = forMs;
    }
    if (t + lasts > end) break;
    plan.push(d);
    t += lasts + between(rng, 30_000, 70_000);
  }
  return plan.sort((a, b) => a.at - b.at);
}

/** Throws if a schedule names a slot that does not exist or disrupts the anchor. */
export function checkPlan(plan: readonly Disruption[], peers: number): void {
  for (const d of plan) {
    if ("slot" in d && (d.slot < 1 || d.slot >= peers)) {
      throw new Error(
        `Disruption ${JSON.stringify(d)}: slots 1..${peers - 1} can be disrupted (0 is the anchor)`,
      );
    }
  }
}
