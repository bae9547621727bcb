/**
 * Summarises a V8 CPU profile (`deno run --cpu-prof`): self and total time per function, the
 * largest first. `deno run --allow-read bench/profile_summary.ts FILE.cpuprofile [TOP]`.
 *
 * `bench/relay_load.ts --relay p2p --profile DIR` writes the relay server's profile into DIR.
 *
 * @module
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of a profile. */
export interface FunctionTime {
  /** `name url:line`. */
  name: string;
  /** Time spent in the function itself, in ms. */
  selfMs: number;
  /** Time spent in it and what it called (each sample counted once per function), in ms. */
  totalMs: number;
}

/** Self and total time per function of a CPU profile, largest self time first. */
export function summarise(p: Profile): { totalMs: number; functions: FunctionTime[] } {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = (n: ProfileNode) => {
    const f = n.callFrame;
    const file = f.url.replace(/^.*\//, "");
    return `${f.functionName || "(anonymous)"} ${file}${file ? `:${f.lineNumber + 1}` : ""}`;
  };
  const self = new Map<string, number>(), total = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    all += dt;
    let n = byId.get(p.samples[i]!);
    if (!n) continue;
    self.set(label(n), (self.get(label(n)) ?? 0) + dt);
    const seen = new Set<string>();
    for (; n; n = byId.get(parent.get(n.id) ?? -1)) {
      const l = label(n);
      if (seen.has(l)) continue;
      seen.add(l);
      total.set(l, (total.get(l) ?? 0) + dt);
    }
  }
  const functions = [...total.entries()].map(([name, totalMs]) => ({
    name,
    selfMs: self.get(name) ?? 0,
    totalMs,
  }));
  functions.sort((a, b) => b.selfMs - a.selfMs);
  return { totalMs: all, functions };
}

if (import.meta.main) {
  const [file, top = "30"] = Deno.args;
  if (!file) {
    console.error("usage: profile_summary.ts FILE.cpuprofile [TOP]");
    Deno.exit(2);
  }
  const { totalMs, functions } = summarise(JSON.parse(Deno.readTextFileSync(file)));
  const pct = (ms: number) => `${(100 * ms / totalMs).toFixed(1).padStart(5)} %`;
  console.log(`total ${totalMs.toFixed(0)} ms\n   self    total  function`);
  for (const f of functions.slice(0, Number(top))) {
    console.log(`${pct(f.selfMs)} ${pct(f.totalMs)}  ${f.name}`);
  }
  console.log("\nlargest total:");
  for (const f of [...functions].sort((a, b) => b.totalMs - a.totalMs).slice(0, Number(top))) {
    console.log(`${pct(f.selfMs)} ${pct(f.totalMs)}  ${f.name}`);
  }
}
