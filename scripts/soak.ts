/**
 * `deno task soak`: a seeded, bounded churn run on loopback (see `tests/support/soak.ts`): one
 * `p2p serve`, N `p2p join` peers typing lines all the while, peers leaving and rejoining,
 * peers and the server suspended, the server killed and restarted. Prints a human summary, then
 * one JSON line with the figures; exits 1 if an invariant failed (see
 * `tests/support/soak_check.ts`).
 *
 * `--herd N` instead starts N peers within 2 s and reports how fast they all register, see each
 * other, and go direct (see `tests/support/soak_herd.ts`).
 *
 * Options: `--seed S` (default: from the clock, printed), `--peers N` (default 8),
 * `--minutes M` (default 4), `--herd N`, `--verbose` (debug logs on every process's stderr),
 * `--logs DIR` (write every process's events and stderr and the record there), `--examples N`
 * (how many examples of each failure to print, default 12).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { runSoak, summarize } from "../tests/support/soak.ts";
import { runHerd, summarizeHerd } from "../tests/support/soak_herd.ts";

// `deno task soak -- --seed 1` passes the `--` on.
const argv = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
let args;
try {
  ({ values: args } = parseArgs({
    args: argv,
    options: {
      seed: { type: "string" },
      peers: { type: "string", default: "8" },
      minutes: { type: "string", default: "4" },
      herd: { type: "string" },
      verbose: { type: "boolean", default: false },
      logs: { type: "string" },
      examples: { type: "string", default: "12" },
    },
  }));
} catch (e) {
  console.error(
    `soak: ${(e as Error).message}; options: --seed S --peers N --minutes M --herd N ` +
      `--verbose --logs DIR --examples N`,
  );
  Deno.exit(2);
}

function int(v: string | undefined, flag: string, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    console.error(`soak: --${flag} wants a whole number from ${min} to ${max}, not "${v}"`);
    Deno.exit(2);
  }
  return n;
}

const seed = args.seed === undefined
  ? Date.now() % 2 ** 31
  : int(args.seed, "seed", 0, 2 ** 32 - 1);
const progress = (line: string) => console.error(line);
const common = {
  seed,
  verbose: args.verbose,
  progress,
  ...(args.logs !== undefined ? { logDir: args.logs } : {}),
};
console.error(`soak: seed ${seed} (repeat with --seed ${seed})`);

if (args.herd !== undefined) {
  const result = await runHerd({ ...common, peers: int(args.herd, "herd", 2, 200) });
  for (const line of summarizeHerd(result)) console.log(line);
  console.log(JSON.stringify({ herd: result }));
  Deno.exit(result.failures.length ? 1 : 0);
}

const peers = int(args.peers, "peers", 2, 60);
const minutes = Number(args.minutes);
if (!(minutes > 0 && minutes <= 120)) {
  console.error(`soak: --minutes wants a number above 0, at most 120, not "${args.minutes}"`);
  Deno.exit(2);
}
const result = await runSoak({
  ...common,
  peers,
  durationMs: Math.round(minutes * 60_000),
  check: { examples: int(args.examples, "examples", 0, 100_000) },
});
for (const line of summarize(result, peers)) console.log(line);
const { examples: _m, ...delivery } = result.report.delivery;
const { examples: _l, ...left } = result.report.left;
const { examples: _u, ...undelivered } = result.report.undelivered;
const { longest: _w, ...whole } = result.report.whole;
console.log(JSON.stringify({
  soak: {
    seed,
    peers,
    minutes,
    wallS: Math.round(result.wallMs / 1000),
    actions: result.report.actions,
    delivery,
    left,
    undelivered,
    whole,
    resources: result.report.resources,
    names: result.report.names,
    ok: result.report.failures.length === 0,
    failures: result.report.failures,
  },
}));
Deno.exit(result.report.failures.length ? 1 : 0);
