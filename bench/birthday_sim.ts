/**
 * Birthday probing in virtual time: how often the search finds a hard NAT's port, against the
 * analytic bound, and how long a whole room takes to go direct.
 *
 * 1. The search alone, 1,000 seeded runs per setting: the real {@link BirthdaySearch} machines
 *    of both sides and the simulator's random-port symmetric NAT ({@link SimNat}); the hard
 *    side's sockets open mappings towards the easy side, every easy-side probe is checked
 *    against the NAT's mappings and filters. Printed: the success rate beside
 *    1 − {@link missProbability}, and the mean number of probes to the first hit.
 * 2. Whole rooms, 50 seeded runs: server, two STUN servers, a port-restricted and a
 *    random-port symmetric peer ({@link Client}s in the simulator, 25 ms one-way latency): the
 *    success rate and the time from the peers' registration to a direct path on both sides.
 *
 * Run: `deno task bench:birthday` (`--runs N` changes the count of part 1).
 *
 * @module
 */
import { parseArgs } from "node:util";
import {
  BirthdayPool,
  BirthdaySearch,
  type BirthdayView,
  DEFAULT_BIRTHDAY,
  missProbability,
} from "../lib/peer/path/birthday.ts";
import { NatMapping } from "../lib/wire/peer_frame.ts";
import { seededRandom } from "../tests/support/prng.ts";
import { natPair, SimNat } from "../tests/support/sim.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { runs: { type: "string", default: "1000" }, rooms: { type: "string", default: "50" } },
});
const RUNS = Number(values.runs);
const ROOMS = Number(values.rooms);
const RANGE = DEFAULT_BIRTHDAY.portMax - DEFAULT_BIRTHDAY.portMin + 1;

/** One search between the machines, through a random-port NAT; probes to the first hit or 0. */
function searchOnce(seed: number, probes: number): number {
  const random = seededRandom(seed ^ 0x5eed_b1d);
  const o = { probes };
  const hard = new BirthdaySearch(new BirthdayPool(), random, o);
  const easy = new BirthdaySearch(new BirthdayPool(), random, o);
  const nat = new SimNat("203.0.113.2", "symmetric-random", 300_000, seed);
  const easyPublic = { hostname: "203.0.113.1", port: 41000 };
  const hardPublic = { hostname: "203.0.113.2", port: nat.outbound(0, LOCAL(0), SERVER).port };
  const hv: BirthdayView = {
    self: { mapping: NatMapping.AddressDependent, ports: [] },
    peer: { mapping: NatMapping.EndpointIndependent, ports: [] },
    peerPublic: easyPublic,
    direct: false,
    via: 0,
    pathStart: 0,
  };
  const ev: BirthdayView = { ...hv, self: hv.peer!, peer: hv.self, peerPublic: hardPublic };
  let now = DEFAULT_BIRTHDAY.startAfter;
  hard.tick(now, hv);
  easy.onFrame(now, hard.pollFrame()!, ev);
  hard.onFrame(now, easy.pollFrame()!, hv);
  while (hard.state === "opening") {
    for (let p = hard.pollProbe(); p; p = hard.pollProbe()) nat.outbound(now, LOCAL(p.via), p.to);
    now = hard.nextTimeout(hv)!;
    hard.tick(now, hv);
  }
  for (let p = hard.pollProbe(); p; p = hard.pollProbe()) nat.outbound(now, LOCAL(p.via), p.to);
  easy.onFrame(now, hard.pollFrame()!, ev);
  let sent = 0;
  while (easy.state === "scanning") {
    for (let p = easy.pollProbe(); p; p = easy.pollProbe()) {
      sent++;
      if (nat.inbound(now, easyPublic, p.to.port)) return sent;
    }
    now = easy.nextTimeout(ev)!;
    easy.tick(now, ev);
  }
  return 0;
}

const SERVER = { hostname: "198.51.100.1", port: 7777 };
const LOCAL = (via: number) => ({ hostname: "10.2.0.2", port: via ? 20_000 + via : 5000 });

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}

console.log(
  `Birthday search, ${RUNS} seeded runs each (${DEFAULT_BIRTHDAY.sockets} sockets, ports ${RANGE}):`,
);
for (const probes of [256, 1024, 2048]) {
  const hits: number[] = [];
  for (let seed = 1; seed <= RUNS; seed++) {
    const n = searchOnce(seed * 7919 + probes, probes);
    if (n) hits.push(n);
  }
  const rate = hits.length / RUNS;
  const bound = 1 - missProbability(DEFAULT_BIRTHDAY.sockets, probes, RANGE);
  console.log(
    JSON.stringify({
      name: `birthday search, ${probes} probes`,
      success: Number(rate.toFixed(4)),
      analytic: Number(bound.toFixed(4)),
      meanProbesToHit: Math.round(hits.reduce((a, b) => a + b, 0) / hits.length),
      // Mean of the first hit among distinct uniform draws (for searches long enough to hit).
      analyticMeanProbesToHit: Math.round((RANGE + 1) / (DEFAULT_BIRTHDAY.sockets + 1)),
    }),
  );
}

const times: number[] = [];
for (let seed = 1; seed <= ROOMS; seed++) {
  const { net, a, b } = natPair(seed, "port-restricted", "symmetric-random");
  net.runUntilTrue(() => a.client.registered && b.client.registered, 5_000);
  const direct = () =>
    a.client.peers().some((p) => p.path === "direct") &&
    b.client.peers().some((p) => p.path === "direct");
  try {
    times.push(net.runUntilTrue(direct, 20_000));
  } catch {
    // Not direct within 20 s: counted as a failure.
  }
}
console.log(
  JSON.stringify({
    name: "birthday rooms, port-restricted ↔ random symmetric (sim, 25 ms one way)",
    runs: ROOMS,
    success: times.length / ROOMS,
    medianMsToDirect: median(times),
    worstMsToDirect: Math.max(...times),
  }),
);
