/**
 * Birthday searches as a weapon (issue 17 #6), from the attacker's side: a member that leaves
 * and re-joins under fresh ids (each a new remote peer, with its own search) makes a victim
 * behind a symmetric NAT open 256 sockets per search (its router's conntrack grows), or makes an
 * "easy" victim probe 2,048 random ports of an address the member claims. Searches are budgeted
 * per client and per peer address, not per id: what the victim does in the 26 s of the attack
 * stays one search's worth.
 */
import assert from "node:assert/strict";
import {
  BirthdayPool,
  BirthdaySearch,
  type BirthdayView,
  DEFAULT_BIRTHDAY,
  type NatInfo,
} from "../../lib/peer/path/birthday.ts";
import { BirthdayStage, NatMapping } from "../../lib/wire/peer_frame.ts";
import { CLIENT_SEARCHES } from "../../lib/peer/path/search_budget.ts";
import { seededRandom } from "../support/prng.ts";

const EASY: NatInfo = { mapping: NatMapping.EndpointIndependent, ports: [41000, 41000] };
const HARD: NatInfo = { mapping: NatMapping.AddressDependent, ports: [52001, 8113] };

function view(self: NatInfo, peer: NatInfo, host: string, pathStart: number): BirthdayView {
  return {
    self,
    peer,
    peerPublic: { hostname: host, port: 41000 },
    direct: false,
    via: 0,
    pathStart,
  };
}

function drain<T>(poll: () => T | undefined): T[] {
  const out: T[] = [];
  for (let x = poll(); x !== undefined; x = poll()) out.push(x);
  return out;
}

/** Runs `search` until `until` (its own deadlines); returns the probes it sent. */
function run(search: BirthdaySearch, v: BirthdayView, from: number, until: number): number {
  let probes = 0;
  for (let t = from; t <= until;) {
    search.tick(t, v);
    probes += drain(() => search.pollProbe()).length;
    const next = search.nextTimeout(v);
    if (next === undefined || next > until) break;
    t = Math.max(t + 1, next);
  }
  return probes;
}

for (const hosts of [["198.51.100.7"], ["198.51.100.7", "198.51.100.8", "203.0.113.5"]]) {
  Deno.test(`birthday budget: a hard victim re-joined under fresh ids ${hosts.length > 1 ? "from several addresses opens the client's burst" : "opens one search's sockets"} in 26 s`, () => {
    const pool = new BirthdayPool();
    const random = seededRandom(1);
    let opened = 0;
    // Every 2.6 s the attacker re-joins with a fresh id (a new remote, a new search) and accepts
    // whatever is proposed at once.
    for (let i = 0; i < 10; i++) {
      const at = i * 2_600;
      const victim = new BirthdaySearch(pool, random);
      const v = view(HARD, EASY, hosts[i % hosts.length]!, at);
      victim.tick(at + DEFAULT_BIRTHDAY.startAfter, v);
      const propose = drain(() => victim.pollFrame()).find((f) =>
        f.stage === BirthdayStage.Propose
      );
      if (propose) {
        victim.onFrame(at + 1_050, { ...propose, stage: BirthdayStage.Accept }, v);
        opened += drain(() => victim.pollProbe()).length;
        opened += run(victim, v, at + 1_050, at + 2_590);
      }
      victim.close(); // the attacker leaves: the remote goes, and its search with it
      drain(() => pool.pollRelease());
    }
    // One address: one search. Several: the client-wide burst.
    const most = (hosts.length > 1 ? CLIENT_SEARCHES.burst : 1) * DEFAULT_BIRTHDAY.sockets;
    assert.ok(opened <= most, `${opened} sockets opened in 26 s (at most ${most})`);
  });
}

Deno.test("birthday budget: an easy victim proposed to by fresh ids scans one search's probes in 26 s", () => {
  const pool = new BirthdayPool();
  const random = seededRandom(2);
  let probes = 0;
  for (let i = 0; i < 10; i++) {
    const at = i * 2_600;
    const victim = new BirthdaySearch(pool, random);
    const v = view(EASY, HARD, "198.51.100.7", at);
    victim.onFrame(at + 1_000, { stage: BirthdayStage.Propose, round: 1, sockets: 256 }, v);
    if (drain(() => victim.pollFrame()).some((f) => f.stage === BirthdayStage.Accept)) {
      victim.onFrame(at + 1_100, { stage: BirthdayStage.Go, round: 1, sockets: 256 }, v);
      probes += drain(() => victim.pollProbe()).length;
      probes += run(victim, v, at + 1_100, at + 2_590);
    }
    victim.close();
  }
  // One search's scan would send ~375 probes in the 1.5 s each re-join lasts; ten, ~3,750.
  assert.ok(probes <= 400, `${probes} probes to the claimed address in 26 s`);
});

Deno.test("birthday budget: a legitimate second peer still gets its search", () => {
  const pool = new BirthdayPool();
  const random = seededRandom(3);
  const a = new BirthdaySearch(pool, random), b = new BirthdaySearch(pool, random);
  const va = view(HARD, EASY, "198.51.100.7", 0), vb = view(HARD, EASY, "203.0.113.20", 0);
  a.tick(1_000, va);
  assert.ok(drain(() => a.pollFrame()).length === 1, "the first search proposes");
  a.close();
  b.tick(1_001, vb);
  assert.ok(drain(() => b.pollFrame()).length === 1, "another address's search proposes too");
});
