/**
 * A server filled by an attacker (issue 17 #1), from the attacker's side: registrations into
 * rooms made up on the spot, from many addresses, until the server is full and on. What it costs
 * (a puzzle per HELLO once the server fills up), what it gets (its newest or oldest lonely
 * registrations give way), and what users see: a pair that comes along still registers and
 * chats; a room with members is never evicted.
 */
import assert from "node:assert/strict";
import { Registry } from "../../lib/server/registry.ts";
import { parseServe } from "../../lib/roles/cli.ts";
import { difficultyFor } from "../../lib/server/pressure.ts";
import { solvePuzzle } from "../../lib/crypto/puzzle.ts";
import { signedHello, testPeerId } from "../support/hello.ts";
import { drainEvents, drainTransmits } from "../support/registry_out.ts";
import { addPeer, addServer, SERVER, SimNet, type SimPeer } from "../support/sim.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  NAME_TAG_LEN,
  RefuseCode,
} from "../../lib/wire/server_msg.ts";
import { seededRandom } from "../support/prng.ts";

const SECRET = new Uint8Array(32).fill(7);

function tag(n: number): Uint8Array {
  const t = new Uint8Array(NAME_TAG_LEN);
  new DataView(t.buffer).setUint32(0, n);
  return t;
}

/** An attacker's source address number `i`: a few per /24, many /24s. */
function source(i: number): Endpoint {
  return { hostname: `10.${(i >> 12) & 255}.${(i >> 4) & 255}.${(i & 15) + 1}`, port: 4000 + i };
}

/** The attacker's HELLO number `i` into room `room` (made up unless given), with the cookie. */
function attackHello(r: Registry, now: number, i: number, room = `junk ${i}`, pow?: Uint8Array) {
  const id = testPeerId(`attacker ${i}`);
  const from = source(i);
  const nonce = new Uint8Array(8).fill(i & 255);
  const cookie = r.cookieFor(id, from, now);
  return {
    from,
    id,
    cookie,
    nonce,
    bytes: encodeServerMsg(signedHello(room, { id, nonce, cookie, nameTag: tag(i), pow })),
  };
}

/** What the registry answered, decoded. */
function answers(r: Registry) {
  return drainTransmits(r).flatMap((t) => {
    const d = decodeServerMsg(t.data);
    return d.ok ? [d.value] : [];
  });
}

Deno.test("pressure: from half the cap on, a HELLO without the puzzle's solution gets a COOKIE asking for it and no signature check", () => {
  const r = new Registry({ maxPeers: 4 }, seededRandom(1), SECRET);
  for (let i = 0; i < 2; i++) {
    const h = attackHello(r, 0, i);
    r.handleDatagram(0, h.from, h.bytes);
    assert.ok(answers(r).some((m) => m.type === MsgType.Welcome), "below half: no puzzle");
  }
  const difficulty = difficultyFor(2, 4);
  assert.ok(difficulty >= 14);
  const h = attackHello(r, 0, 2);
  r.handleDatagram(0, h.from, h.bytes);
  const asked = answers(r);
  assert.equal(asked.length, 1);
  const c = asked[0]!;
  assert.ok(c.type === MsgType.Cookie && c.difficulty === difficulty, JSON.stringify(c));
  assert.ok(encodeServerMsg(c).length < h.bytes.length, "smaller than the HELLO");
  assert.equal(r.stats.drops["hello-puzzle"], 1);
  assert.equal(r.stats.drops["hello-bad-signature"] ?? 0, 0);
  assert.equal(r.peerCount, 2);
  // Solved: it registers.
  const pow = solvePuzzle(difficulty, h.cookie, h.id, h.nonce)!;
  const solved = attackHello(r, 0, 2, undefined, pow);
  r.handleDatagram(0, solved.from, solved.bytes);
  assert.ok(answers(r).some((m) => m.type === MsgType.Welcome));
  assert.equal(r.peerCount, 3);
  // A wrong solution is asked again.
  const wrong = attackHello(r, 0, 3, undefined, new Uint8Array(8).fill(1));
  r.handleDatagram(0, wrong.from, wrong.bytes);
  assert.deepEqual(answers(r).map((m) => m.type), [MsgType.Cookie]);
});

Deno.test("pressure: a full server gives way with its lonely registrations only: newest for a room with members, oldest for a new room", () => {
  const r = new Registry({ maxPeers: 6, pressureAt: Infinity }, seededRandom(2), SECRET);
  /** Registers attacker `i` (into `room`); returns whether it got in and who was evicted. */
  const join = (i: number, room?: string) => {
    const h = attackHello(r, i, i, room);
    r.handleDatagram(i, h.from, h.bytes);
    const welcomed = answers(r).some((m) => m.type === MsgType.Welcome);
    const evicted = drainEvents(r).flatMap((e) =>
      e.type === "left" && e.reason === "evicted" ? [parseInt(e.name, 16)] : []
    );
    return { welcomed, evicted };
  };
  // Two members in "pair" (a room with members), four lonely ones: 2, 3, 4, 5 (oldest first).
  join(0, "pair");
  join(1, "pair");
  for (let i = 2; i < 6; i++) join(i);
  assert.equal(r.peerCount, 6);
  // A third member of "pair": the newest lonely registration (5) gives way.
  assert.deepEqual(join(6, "pair"), { welcomed: true, evicted: [5] });
  // A new room: the oldest lonely one (2) gives way.
  assert.deepEqual(join(7), { welcomed: true, evicted: [2] });
  // More new rooms: 3, 4, then 7 (oldest first); "pair" never.
  assert.deepEqual([8, 9, 10].map((i) => join(i).evicted), [[3], [4], [7]]);
  assert.deepEqual(join(11).evicted, [8]);
  assert.equal(r.peerCount, 6);
  // With only "pair" left besides lonely ones that keep giving way, "pair" is never touched.
  for (let i = 12; i < 20; i++) join(i);
  assert.equal(r.roomCount, 4, "pair and three lonely rooms");
  // A server full of rooms with members refuses: nothing gives way.
  const full = new Registry({ maxPeers: 4, pressureAt: Infinity }, seededRandom(3), SECRET);
  for (let i = 0; i < 4; i++) {
    const h = attackHello(full, 0, i, i < 2 ? "a" : "b");
    full.handleDatagram(0, h.from, h.bytes);
  }
  answers(full);
  const late = attackHello(full, 0, 9);
  full.handleDatagram(0, late.from, late.bytes);
  const refused = answers(full).find((m) => m.type === MsgType.Refused);
  assert.ok(refused && refused.type === MsgType.Refused && refused.code === RefuseCode.Limit);
});

/** True once `p` shows `name` as reachable (relayed or direct). */
function connected(p: SimPeer, name: string): boolean {
  return p.lastPath(name) !== undefined;
}

Deno.test("pressure: with an attack filling the server with one-member rooms and going on, a pair still registers and chats", () => {
  const net = new SimNet(77);
  const server = addServer(net, { maxPeers: 60, pressureAt: Infinity });
  let n = 0;
  const flood = (count: number) => {
    for (let k = 0; k < count; k++, n++) {
      const h = attackHello(server, net.now, n);
      net.inject(h.from, SERVER, h.bytes);
    }
  };
  flood(80);
  net.run(100);
  assert.equal(server.peerCount, 60, "the attack filled the server");
  const alice = addPeer(net, "alice", { hostname: "192.0.2.1", port: 5000 });
  // The flood goes on: 10 new rooms every 100 ms while the pair comes along.
  for (let t = 0; t < 10; t++) {
    flood(10);
    net.run(100);
  }
  const bob = addPeer(net, "bob", { hostname: "192.0.2.2", port: 5000 });
  for (let t = 0; t < 30; t++) {
    flood(10);
    net.run(100);
  }
  net.runUntilTrue(() => connected(alice, "bob") && connected(bob, "alice"), 10_000);
  alice.client.send(net.now, "hello bob");
  net.runUntilTrue(() => bob.messages().length === 1, 5_000);
  assert.deepEqual(bob.messages(), ["alice: hello bob"]);
  assert.ok(server.peerCount <= 60);
});

Deno.test("pressure: `p2p serve --puzzle-from` moves the threshold, `--no-puzzle` removes it, what attackers get follows", () => {
  /** How many of `n` plain HELLOs into new rooms (no solution) a server made from `args` welcomes before asking a puzzle. */
  const welcomed = (args: string[], maxPeers: number) => {
    const cmd = parseServe([`--max-peers=${maxPeers}`, ...args]);
    assert.ok(cmd.kind === "serve");
    const r = new Registry(cmd.options.limits!, seededRandom(9), SECRET);
    for (let i = 0; i < maxPeers; i++) {
      const h = attackHello(r, 0, i);
      r.handleDatagram(0, h.from, h.bytes);
      const kinds = answers(r).map((m) => m.type);
      if (!kinds.includes(MsgType.Welcome)) {
        assert.deepEqual(kinds, [MsgType.Cookie], "asked for the puzzle");
        return i;
      }
    }
    return maxPeers;
  };
  assert.equal(welcomed([], 8), 4, "the default: from half the cap");
  assert.equal(welcomed(["--puzzle-from=75"], 8), 6);
  assert.equal(welcomed(["--puzzle-from=100"], 8), 8, "only when full");
  assert.equal(welcomed(["--puzzle-from=0"], 8), 0, "always");
  assert.equal(welcomed(["--no-puzzle"], 8), 8, "never");
});
