/**
 * Unit tests of the rendezvous server's sans-IO state machine (`lib/registry.ts`): feed it
 * datagrams and clock ticks, decode what it wants sent.
 *
 * @module
 */

import assert from "node:assert/strict";
import { addressCookie } from "../lib/crypto.ts";
import { Registry, type RegistryEvent, type RegistryOptions } from "../lib/registry.ts";
import { prng } from "./support/prng.ts";
import {
  COOKIE_LEN,
  decodeServerMsg,
  encodeSealedHeader,
  encodeServerMsg,
  type Endpoint,
  EPOCH_LEN,
  FLAG_RELAY_ONLY,
  ID_LEN,
  idHex,
  KEY_LEN,
  LeftReason,
  MAX_DATAGRAM,
  MAX_NAME,
  MAX_ROOM_SIZE,
  MsgType,
  RefuseCode,
  rosterDigest,
  type ServerMsg,
} from "../lib/wire.ts";

// ---------------------------------------------------------------------------------------------
// Harness

type Msg<T extends ServerMsg["type"]> = Extract<ServerMsg, { type: T }>;

interface Sent {
  to: Endpoint;
  msg: ServerMsg;
}

interface PeerSpec {
  id: Uint8Array;
  pubkey: Uint8Array;
  addr: Endpoint;
  room: string;
  name: string;
  flags: number;
  privateEndpoints: Endpoint[];
}

let nextSeed = 1;

function fill(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (seed * 53 + i * 29 + 7) & 0xff);
}

function peer(name: string, addr: Endpoint, extra: Partial<PeerSpec> = {}): PeerSpec {
  const seed = nextSeed++;
  return {
    id: fill(ID_LEN, seed),
    pubkey: fill(KEY_LEN, seed + 1000),
    addr,
    room: "lobby",
    name,
    flags: 0,
    privateEndpoints: [{ hostname: "10.0.0." + (seed % 250 + 1), port: addr.port }],
    ...extra,
  };
}

const ALICE_ADDR: Endpoint = { hostname: "198.51.100.1", port: 40000 };
const BOB_ADDR: Endpoint = { hostname: "203.0.113.2", port: 50000 };
const CAROL_ADDR: Endpoint = { hostname: "192.0.2.3", port: 6000 };
const MALLORY_ADDR: Endpoint = { hostname: "192.0.2.66", port: 6666 };

/** The registries under test use this secret, so tests can make valid cookies. */
const SECRET = new Uint8Array(32).fill(7);

/** The cookie a peer at `from` echoes after the server's COOKIE (the return-routability check). */
function cookie(p: PeerSpec, from = p.addr): Uint8Array {
  return addressCookie(SECRET, p.id, from);
}

/** A HELLO as a client sends it once it holds the cookie for `from` (`valid: false`: none yet). */
function helloBytes(p: PeerSpec, from = p.addr, valid = true): Uint8Array {
  return encodeServerMsg({
    type: MsgType.Hello,
    id: p.id,
    cookie: valid ? cookie(p, from) : new Uint8Array(COOKIE_LEN),
    pubkey: p.pubkey,
    flags: p.flags,
    room: p.room,
    name: p.name,
    privateEndpoints: p.privateEndpoints,
  });
}

/** Drains every transmit, decoding each; a transmit the codec rejects fails the test. */
function drain(r: Registry): Sent[] {
  const out: Sent[] = [];
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
    const d = decodeServerMsg(t.data);
    if (!d.ok) assert.fail(`registry sent an undecodable datagram (${d.reason})`);
    out.push({ to: t.to, msg: d.value });
  }
  return out;
}

function events(r: Registry): RegistryEvent[] {
  const out: RegistryEvent[] = [];
  for (let e = r.pollEvent(); e; e = r.pollEvent()) out.push(e);
  return out;
}

function to(sent: Sent[], addr: Endpoint): ServerMsg[] {
  return sent.filter((s) => s.to.hostname === addr.hostname && s.to.port === addr.port).map((
    s,
  ) => s.msg);
}

function messages(list: (ServerMsg | Sent)[]): ServerMsg[] {
  return list.map((x) => "msg" in x ? x.msg : x);
}

function ofType<T extends ServerMsg["type"]>(list: (ServerMsg | Sent)[], type: T): Msg<T>[] {
  return messages(list).filter((m): m is Msg<T> => m.type === type);
}

/** The single message in `list`, which must be of `type`. */
function only<T extends ServerMsg["type"]>(list: (ServerMsg | Sent)[], type: T): Msg<T> {
  const msgs = messages(list);
  assert.equal(msgs.length, 1, `expected exactly one message, got ${describe(msgs)}`);
  assert.equal(msgs[0]!.type, type, `expected type ${type}, got ${describe(msgs)}`);
  return msgs[0] as Msg<T>;
}

function describe(msgs: ServerMsg[]): string {
  return JSON.stringify(msgs.map((m) => m.type));
}

function totalDrops(r: Registry): number {
  return Object.values(r.stats.drops).reduce((a, b) => a + b, 0);
}

/**
 * Sends `p`'s HELLO and returns what the server sent, less the ROSTER that ends every accepted
 * registration (checked here: last, addressed to `p`).
 */
function join(r: Registry, p: PeerSpec, now = 0): Sent[] {
  r.handleDatagram(now, p.addr, helloBytes(p));
  const sent = drain(r);
  const last = sent.at(-1);
  if (last?.msg.type !== MsgType.Roster) return sent;
  assert.deepEqual(last.to, p.addr, "ROSTER goes to the registering peer");
  return sent.slice(0, -1);
}

function ping(
  r: Registry,
  p: PeerSpec,
  now: number,
  digest: number,
  from = p.addr,
  withCookie = cookie(p, from),
): Sent[] {
  r.handleDatagram(
    now,
    from,
    encodeServerMsg({ type: MsgType.Ping, id: p.id, cookie: withCookie, digest }),
  );
  return drain(r);
}

function relay(r: Registry, src: PeerSpec, dst: PeerSpec, payload: Uint8Array, from = src.addr) {
  r.handleDatagram(
    0,
    from,
    encodeServerMsg({ type: MsgType.Relay, from: src.id, to: dst.id, payload }),
  );
  return drain(r);
}

function repunch(r: Registry, src: PeerSpec, dst: PeerSpec, now: number, from = src.addr) {
  r.handleDatagram(
    now,
    from,
    encodeServerMsg({ type: MsgType.Repunch, id: src.id, target: dst.id }),
  );
  return drain(r);
}

function registry(o: Partial<RegistryOptions> = {}): Registry {
  return new Registry(o, SECRET);
}

/** Options of {@link threePeers}. */
interface ThreePeersOptions {
  /** Options of the registry. */
  registry?: Partial<RegistryOptions>;
  /** How many of alice, bob and carol, in that order, register at time 0 (default: all three). */
  joined?: 0 | 1 | 2 | 3;
  /** Overrides of alice's spec. */
  alice?: Partial<PeerSpec>;
  /** Overrides of bob's spec. */
  bob?: Partial<PeerSpec>;
  /** Overrides of carol's spec. */
  carol?: Partial<PeerSpec>;
}

/**
 * The common set-up: a registry and alice, bob and carol in room "lobby" at `ALICE_ADDR`,
 * `BOB_ADDR` and `CAROL_ADDR`, the first `joined` of them registered (what the server sent them
 * is drained; its events are kept). Carol is only created when the test reads her (or joins
 * her), so a test without her gives later peers the same seeds.
 */
function threePeers(o: ThreePeersOptions = {}) {
  const r = registry(o.registry);
  const alice = peer("alice", ALICE_ADDR, o.alice);
  const bob = peer("bob", BOB_ADDR, o.bob);
  let carol: PeerSpec | undefined;
  const fixture = {
    r,
    alice,
    bob,
    get carol(): PeerSpec {
      return carol ??= peer("carol", CAROL_ADDR, o.carol);
    },
  };
  const joined = o.joined ?? 3;
  if (joined >= 1) join(r, alice);
  if (joined >= 2) join(r, bob);
  if (joined >= 3) join(r, fixture.carol);
  return fixture;
}

/** Asserts `intro` describes `about` (id, key, name, flags). */
function assertIntroOf(intro: Msg<typeof MsgType.Intro>, about: PeerSpec, name = about.name) {
  assert.deepEqual(intro.id, about.id);
  assert.deepEqual(intro.pubkey, about.pubkey);
  assert.equal(intro.name, name);
  assert.equal(intro.flags, about.flags);
}

// ---------------------------------------------------------------------------------------------
// Registration

Deno.test("registry: HELLO is answered with WELCOME carrying the observed endpoint", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR);
  const sent = join(r, alice, 5);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.to, ALICE_ADDR);
  assert.deepEqual(sent[0]!.msg, {
    type: MsgType.Welcome,
    id: alice.id,
    name: "alice",
    observed: ALICE_ADDR,
  });
  assert.equal(r.peerCount, 1);
  assert.equal(r.roomCount, 1);
  const ev = events(r);
  assert.deepEqual(ev, [{
    type: "registered",
    room: "lobby",
    name: "alice",
    addr: ALICE_ADDR,
    relayOnly: false,
  }]);
  assert.equal(r.nextTimeout(), 5 + 75_000, "default expiry is 75 s after last contact");
});

Deno.test("registry: second peer in a room: both get an INTRO of the other", () => {
  const { r, alice, bob } = threePeers({
    alice: {
      privateEndpoints: [{ hostname: "10.0.0.5", port: 40000 }, {
        hostname: "fd00::5",
        port: 40001,
      }],
    },
    bob: { privateEndpoints: [{ hostname: "192.168.1.7", port: 50000 }] },
    joined: 1,
  });
  const sent = join(r, bob, 10);

  const toBob = to(sent, BOB_ADDR);
  assert.deepEqual(toBob.map((m) => m.type), [MsgType.Welcome, MsgType.Intro], "WELCOME first");
  const introOfAlice = ofType(toBob, MsgType.Intro)[0]!;
  assertIntroOf(introOfAlice, alice);
  assert.deepEqual(introOfAlice.publicEndpoint, ALICE_ADDR, "public = observed address");
  assert.deepEqual(introOfAlice.privateEndpoints, alice.privateEndpoints);

  const introOfBob = only(to(sent, ALICE_ADDR), MsgType.Intro);
  assertIntroOf(introOfBob, bob);
  assert.deepEqual(introOfBob.publicEndpoint, BOB_ADDR);
  assert.deepEqual(introOfBob.privateEndpoints, bob.privateEndpoints);

  assert.equal(sent.length, 3, "nothing else is sent");
  assert.equal(r.peerCount, 2);
  assert.equal(r.roomCount, 1);
  assert.ok(
    events(r).some((e) => e.type === "introduced" && [e.a, e.b].sort().join() === "alice,bob"),
  );
});

Deno.test("registry: third peer is introduced to both earlier peers and vice versa", () => {
  const { r, carol } = threePeers({ joined: 2 });
  const sent = join(r, carol);
  const toCarol = to(sent, CAROL_ADDR);
  assert.equal(toCarol[0]!.type, MsgType.Welcome);
  assert.deepEqual(
    ofType(toCarol, MsgType.Intro).map((m) => m.name).sort(),
    ["alice", "bob"],
  );
  assert.equal(only(to(sent, ALICE_ADDR), MsgType.Intro).name, "carol");
  assert.equal(only(to(sent, BOB_ADDR), MsgType.Intro).name, "carol");
});

Deno.test("registry: a duplicate name in a room is suffixed (alice-2, alice-3)", () => {
  const r = registry();
  const a1 = peer("alice", ALICE_ADDR);
  const a2 = peer("alice", BOB_ADDR);
  const a3 = peer("alice", CAROL_ADDR);
  join(r, a1);
  const sent2 = join(r, a2);
  assert.equal(ofType(to(sent2, BOB_ADDR), MsgType.Welcome)[0]!.name, "alice-2");
  assert.equal(only(to(sent2, ALICE_ADDR), MsgType.Intro).name, "alice-2");
  const sent3 = join(r, a3);
  assert.equal(ofType(to(sent3, CAROL_ADDR), MsgType.Welcome)[0]!.name, "alice-3");
  // The name is only unique per room.
  const other = peer("alice", MALLORY_ADDR, { room: "elsewhere" });
  assert.equal(only(join(r, other), MsgType.Welcome).name, "alice");
});

Deno.test("registry: a suffixed duplicate name still fits in MAX_NAME bytes", () => {
  const utf8 = new TextEncoder();
  for (const base of ["x".repeat(MAX_NAME), "y".repeat(MAX_NAME - 1), "😀".repeat(MAX_NAME / 4)]) {
    const r = registry();
    const names: string[] = [];
    for (let i = 0; i < 12; i++) {
      const p = peer(base, { hostname: "192.0.2.10", port: 1000 + i });
      names.push(ofType(to(join(r, p), p.addr), MsgType.Welcome)[0]!.name);
    }
    assert.equal(names[0], base);
    assert.equal(new Set(names).size, names.length, "names are unique");
    for (const n of names) {
      const len = utf8.encode(n).length;
      assert.ok(len <= MAX_NAME, `assigned name "${n}" is ${len} bytes > MAX_NAME`);
      assert.ok(!n.includes("\uFFFD"), `assigned name "${n}" has a broken code point`);
    }
  }
});

Deno.test("registry: a peer can register again with the name the server assigned it", () => {
  // The client keeps the assigned name and sends it in its HELLO when it re-registers (after
  // REFUSED Unknown, e.g. once the server restarted). That HELLO must be accepted.
  const base = "n".repeat(MAX_NAME);
  const first = registry();
  join(first, peer(base, ALICE_ADDR));
  const bob = peer(base, BOB_ADDR);
  const assigned = ofType(to(join(first, bob), BOB_ADDR), MsgType.Welcome)[0]!.name;
  assert.notEqual(assigned, base);

  const restarted = registry();
  const sent = join(restarted, { ...bob, name: assigned });
  assert.equal(
    sent.length,
    1,
    `re-registration HELLO got no answer (drops ${JSON.stringify(restarted.stats.drops)})`,
  );
  assert.equal(only(sent, MsgType.Welcome).name, assigned);
  assert.equal(restarted.peerCount, 1);
});

Deno.test("registry: peers in different rooms don't see each other", () => {
  const { r, alice, bob } = threePeers({ alice: { room: "r1" }, bob: { room: "r2" }, joined: 1 });
  const sent = join(r, bob);
  assert.deepEqual(sent.map((s) => [s.to, s.msg.type]), [[BOB_ADDR, MsgType.Welcome]]);
  assert.equal(r.roomCount, 2);
  // A ping shows each an empty room.
  const pong = only(ping(r, alice, 1, 0), MsgType.Pong);
  assert.equal(pong.digest, rosterDigest([]));
});

Deno.test("registry: a repeated HELLO re-sends WELCOME and introductions", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  events(r);
  // Bob's WELCOME and INTRO were lost: he says HELLO again from the same address.
  const sent = join(r, bob, 100);
  const toBob = to(sent, BOB_ADDR);
  assert.deepEqual(toBob.map((m) => m.type), [MsgType.Welcome, MsgType.Intro]);
  assert.equal(ofType(toBob, MsgType.Welcome)[0]!.name, "bob", "same name, not bob-2");
  assertIntroOf(ofType(toBob, MsgType.Intro)[0]!, alice);
  assert.deepEqual(to(sent, ALICE_ADDR), [], "alice already knows bob at this address");
  assert.equal(r.peerCount, 2);
  assert.ok(!events(r).some((e) => e.type === "registered"), "not registered twice");
  assert.equal(r.nextTimeout(), 0 + 75_000, "alice (silent since 0) expires first");
});

Deno.test("registry: a repeated HELLO from a new address re-introduces the peer to others", () => {
  const { r, bob } = threePeers({ joined: 2 });
  const moved: Endpoint = { hostname: "203.0.113.2", port: 50001 };
  // With the cookie of the old address, the new one only gets its own cookie.
  r.handleDatagram(1, moved, helloBytes(bob));
  assert.deepEqual(drain(r), [{
    to: moved,
    msg: { type: MsgType.Cookie, cookie: cookie(bob, moved) },
  }]);
  assert.ok(!events(r).some((e) => e.type === "moved"));
  r.handleDatagram(1, moved, helloBytes(bob, moved));
  const sent = drain(r);
  const toBob = to(sent, moved);
  assert.deepEqual(only(toBob.filter((m) => m.type === MsgType.Welcome), MsgType.Welcome), {
    type: MsgType.Welcome,
    id: bob.id,
    name: "bob",
    observed: moved,
  });
  assert.equal(ofType(toBob, MsgType.Intro).length, 1);
  assert.deepEqual(only(to(sent, ALICE_ADDR), MsgType.Intro).publicEndpoint, moved);
  assert.deepEqual(to(sent, BOB_ADDR), [], "nothing goes to the old address");
  assert.ok(events(r).some((e) => e.type === "moved" && e.name === "bob"));
});

Deno.test("registry: HELLO reusing a known id with another key or room is refused", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR);
  join(r, alice);
  for (const impostor of [{ ...alice, pubkey: fill(KEY_LEN, 999) }, { ...alice, room: "other" }]) {
    r.handleDatagram(1, MALLORY_ADDR, helloBytes({ ...impostor, addr: MALLORY_ADDR }));
    const refused = only(to(drain(r), MALLORY_ADDR), MsgType.Refused);
    assert.equal(refused.code, RefuseCode.Invalid);
  }
  // The real alice is untouched: still at her address.
  assert.equal(only(ping(r, alice, 2, 0), MsgType.Pong).observed.port, ALICE_ADDR.port);
  assert.equal(r.peerCount, 1);
});

Deno.test("registry: empty room or peer name is refused as invalid", () => {
  const r = registry();
  for (const p of [peer("", ALICE_ADDR), peer("bob", BOB_ADDR, { room: "" })]) {
    const refused = only(join(r, p), MsgType.Refused);
    assert.equal(refused.code, RefuseCode.Invalid);
    assert.ok(refused.message.length > 0);
  }
  assert.equal(r.peerCount, 0);
  assert.equal(r.roomCount, 0);
});

// ---------------------------------------------------------------------------------------------
// Relay-only peers

Deno.test("registry: relay-only peer: intros in both directions carry no endpoints", () => {
  const { r, alice, bob, carol } = threePeers({ bob: { flags: FLAG_RELAY_ONLY }, joined: 1 });
  const sent = join(r, bob);
  assert.ok(events(r).some((e) => e.type === "registered" && e.name === "bob" && e.relayOnly));

  const toBob = to(sent, BOB_ADDR);
  assert.deepEqual(ofType(toBob, MsgType.Welcome)[0]!.observed, BOB_ADDR, "still told its own");
  const introOfAlice = ofType(toBob, MsgType.Intro)[0]!;
  assertIntroOf(introOfAlice, alice);
  assert.equal(introOfAlice.publicEndpoint, null);
  assert.deepEqual(introOfAlice.privateEndpoints, []);

  const introOfBob = only(to(sent, ALICE_ADDR), MsgType.Intro);
  assertIntroOf(introOfBob, bob);
  assert.equal(introOfBob.flags & FLAG_RELAY_ONLY, FLAG_RELAY_ONLY);
  assert.equal(introOfBob.publicEndpoint, null);
  assert.deepEqual(introOfBob.privateEndpoints, []);

  // A normal third peer still learns alice's endpoints, but not bob's.
  const sent3 = join(r, carol);
  const intros = ofType(to(sent3, CAROL_ADDR), MsgType.Intro);
  const ofA = intros.find((m) => m.name === "alice")!;
  const ofB = intros.find((m) => m.name === "bob")!;
  assert.deepEqual(ofA.publicEndpoint, ALICE_ADDR);
  assert.deepEqual(ofA.privateEndpoints, alice.privateEndpoints);
  assert.equal(ofB.publicEndpoint, null);
  assert.deepEqual(ofB.privateEndpoints, []);
  // And bob learns nothing of carol's.
  const introOfCarol = only(to(sent3, BOB_ADDR), MsgType.Intro);
  assert.equal(introOfCarol.publicEndpoint, null);
  assert.deepEqual(introOfCarol.privateEndpoints, []);
  assert.deepEqual(only(to(sent3, ALICE_ADDR), MsgType.Intro).publicEndpoint, CAROL_ADDR);
});

Deno.test("registry: relay-only peer's endpoints stay hidden on re-introductions", () => {
  const { r, alice, bob } = threePeers({ bob: { flags: FLAG_RELAY_ONLY }, joined: 2 });
  const movedBob: Endpoint = { hostname: "203.0.113.9", port: 1234 };
  const sent = [
    ...ping(r, bob, 1, 0, movedBob), // NAT rebinding
    ...repunch(r, alice, bob, 2),
    ...join(r, alice, 3), // repeated HELLO
  ];
  const intros = ofType(sent.map((s) => s.msg), MsgType.Intro);
  assert.ok(intros.length >= 4, `got ${intros.length} intros`);
  for (const m of intros) {
    assert.equal(m.publicEndpoint, null, `intro of ${m.name}`);
    assert.deepEqual(m.privateEndpoints, [], `intro of ${m.name}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Relay

Deno.test("registry: RELAY from a registered sender is forwarded as RELAYED, payload intact", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  const sealed = new Uint8Array([...encodeSealedHeader(alice.id, bob.id, 7n), ...fill(60, 3)]);
  const sent = relay(r, alice, bob, sealed);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.to, BOB_ADDR);
  assert.deepEqual(sent[0]!.msg, { type: MsgType.Relayed, from: alice.id, payload: sealed });
  // And back the other way.
  const back = relay(r, bob, alice, fill(17, 4));
  assert.deepEqual(back, [{
    to: ALICE_ADDR,
    msg: { type: MsgType.Relayed, from: bob.id, payload: fill(17, 4) },
  }]);
  assert.equal(r.stats.relayedPackets, 2);
  assert.equal(r.stats.relayedBytes, sealed.length + 17);
  assert.equal(totalDrops(r), 0);
});

Deno.test("registry: RELAY of the largest payload fits in the RELAYED datagram", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  const payload = fill(1200 - 4 - 2 * ID_LEN, 5); // a full-size RELAY datagram
  const sent = relay(r, alice, bob, payload);
  assert.deepEqual(only(to(sent, BOB_ADDR), MsgType.Relayed).payload, payload);
});

/** Alice and bob in one room, carol in another, ghost never registered. */
function dropScenario() {
  const { r, alice, bob, carol } = threePeers({ carol: { room: "elsewhere" } });
  return { r, alice, bob, carol, ghost: peer("ghost", MALLORY_ADDR) };
}

Deno.test("registry: RELAY from a wrong address, unknown sender or bad target is dropped", () => {
  const { r, alice, bob, carol, ghost } = dropScenario();
  const cases: [string, () => Sent[]][] = [
    ["spoofed sender address", () => relay(r, alice, bob, fill(20, 1), MALLORY_ADDR)],
    [
      "right host, wrong port",
      () => relay(r, alice, bob, fill(20, 1), { ...ALICE_ADDR, port: ALICE_ADDR.port + 1 }),
    ],
    ["unregistered sender", () => relay(r, ghost, bob, fill(20, 1))],
    ["unknown target", () => relay(r, alice, ghost, fill(20, 1))],
    ["target in another room", () => relay(r, alice, carol, fill(20, 1))],
    ["sender in another room", () => relay(r, carol, alice, fill(20, 1))],
    ["target is the sender", () => relay(r, alice, alice, fill(20, 1))],
  ];
  for (const [what, act] of cases) {
    const before = totalDrops(r);
    assert.deepEqual(act(), [], `${what}: nothing sent`);
    assert.equal(totalDrops(r), before + 1, `${what}: counted as a drop`);
  }
  assert.equal(r.stats.relayedPackets, 0);
  assert.equal(r.stats.relayedBytes, 0);
});

// ---------------------------------------------------------------------------------------------
// PING, roster sync and NAT rebinding

Deno.test("registry: PING from an unknown id is REFUSED with code Unknown", () => {
  const r = registry();
  const ghost = peer("ghost", MALLORY_ADDR);
  const sent = ping(r, ghost, 0, 0);
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.to, MALLORY_ADDR);
  const refused = only([sent[0]!.msg], MsgType.Refused);
  assert.equal(refused.code, RefuseCode.Unknown);
  assert.equal(r.peerCount, 0, "a PING does not register");
});

Deno.test("registry: PING with the current digest gets only a PONG", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  const sent = ping(r, alice, 1000, rosterDigest([bob.id]));
  assert.equal(sent.length, 1);
  assert.deepEqual(sent[0]!.to, ALICE_ADDR);
  assert.deepEqual(sent[0]!.msg, {
    type: MsgType.Pong,
    observed: ALICE_ADDR,
    digest: rosterDigest([bob.id]),
  });
});

Deno.test("registry: PING with a stale digest gets PONG, ROSTER and the missing INTROs", () => {
  const { r, alice, bob, carol } = threePeers();
  // Alice only knows bob: carol's introduction was lost.
  const sent = ping(r, alice, 2_000, rosterDigest([bob.id]));
  const toAlice = to(sent, ALICE_ADDR);
  assert.equal(toAlice[0]!.type, MsgType.Pong, "PONG first");
  const pong = ofType(toAlice, MsgType.Pong)[0]!;
  assert.equal(pong.digest, rosterDigest([bob.id, carol.id]));
  assert.deepEqual(pong.observed, ALICE_ADDR);
  const roster = ofType(toAlice, MsgType.Roster);
  assert.equal(roster.length, 1);
  assert.deepEqual(roster[0]!.ids.map(idHex).sort(), [bob.id, carol.id].map(idHex).sort());
  const intros = ofType(toAlice, MsgType.Intro);
  assert.deepEqual(intros.map((m) => m.name).sort(), ["bob", "carol"]);
  assert.deepEqual(intros.find((m) => m.name === "carol")!.publicEndpoint, CAROL_ADDR);
  assert.equal(sent.length, toAlice.length, "the others are not bothered");
});

Deno.test("registry: PING with a stale digest after a departure sends the smaller ROSTER", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  r.handleDatagram(1, BOB_ADDR, encodeServerMsg({ type: MsgType.Bye, id: bob.id }));
  drain(r); // alice's LEFT was lost
  const sent = ping(r, alice, 2_002, rosterDigest([bob.id]));
  assert.equal(
    only(sent.map((s) => s.msg).filter((m) => m.type === MsgType.Pong), MsgType.Pong)
      .digest,
    rosterDigest([]),
  );
  assert.deepEqual(ofType(sent.map((s) => s.msg), MsgType.Roster)[0]?.ids, []);
});

Deno.test("registry: PING from a new address (NAT rebinding) re-introduces with the new address", () => {
  const { r, alice, bob, carol } = threePeers();
  events(r);
  const rebound: Endpoint = { hostname: "198.51.100.1", port: 40999 };
  const sent = ping(r, alice, 500, rosterDigest([bob.id, carol.id]), rebound);

  const toAlice = to(sent, rebound);
  assert.equal(toAlice[0]!.type, MsgType.Pong);
  assert.deepEqual(ofType(toAlice, MsgType.Pong)[0]!.observed, rebound);
  assert.deepEqual(ofType(toAlice, MsgType.Intro).map((m) => m.name).sort(), ["bob", "carol"]);
  for (const [addr] of [[BOB_ADDR], [CAROL_ADDR]] as const) {
    const intro = only(to(sent, addr), MsgType.Intro);
    assertIntroOf(intro, alice);
    assert.deepEqual(intro.publicEndpoint, rebound, "others learn the new address");
  }
  assert.deepEqual(to(sent, ALICE_ADDR), [], "nothing to the stale address");
  assert.ok(events(r).some((e) => e.type === "moved" && e.name === "alice"));

  // The registration follows the new address: relay from it works, from the old one not.
  assert.deepEqual(relay(r, alice, bob, fill(5, 1), ALICE_ADDR), []);
  assert.equal(
    only(to(relay(r, alice, bob, fill(5, 1), rebound), BOB_ADDR), MsgType.Relayed)
      .payload.length,
    5,
  );
  assert.deepEqual(
    only(to(relay(r, bob, alice, fill(6, 1)), rebound), MsgType.Relayed).from,
    bob.id,
  );
});

// ---------------------------------------------------------------------------------------------
// BYE and expiry

Deno.test("registry: BYE removes the peer and sends LEFT(bye) to the others", () => {
  const { r, bob } = threePeers();
  events(r);
  r.handleDatagram(10, BOB_ADDR, encodeServerMsg({ type: MsgType.Bye, id: bob.id }));
  const sent = drain(r);
  assert.equal(sent.length, 2);
  for (const addr of [ALICE_ADDR, CAROL_ADDR]) {
    assert.deepEqual(only(to(sent, addr), MsgType.Left), {
      type: MsgType.Left,
      id: bob.id,
      reason: LeftReason.Bye,
    });
  }
  assert.equal(r.peerCount, 2);
  assert.deepEqual(events(r), [{ type: "left", room: "lobby", name: "bob", reason: "bye" }]);
  // Bob is forgotten: his PING is refused, and his name is free again.
  assert.equal(only(ping(r, bob, 11, 0), MsgType.Refused).code, RefuseCode.Unknown);
  const bob2 = peer("bob", MALLORY_ADDR);
  assert.equal(ofType(to(join(r, bob2, 12), MALLORY_ADDR), MsgType.Welcome)[0]!.name, "bob");
});

Deno.test("registry: BYE from a wrong address or unknown id is dropped", () => {
  const { r, bob } = threePeers({ joined: 2 });
  const before = totalDrops(r);
  r.handleDatagram(1, MALLORY_ADDR, encodeServerMsg({ type: MsgType.Bye, id: bob.id }));
  r.handleDatagram(1, MALLORY_ADDR, encodeServerMsg({ type: MsgType.Bye, id: fill(8, 77) }));
  assert.deepEqual(drain(r), []);
  assert.equal(totalDrops(r), before + 2);
  assert.equal(r.peerCount, 2);
});

Deno.test("registry: the last peer leaving removes the room", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR);
  join(r, alice);
  r.handleDatagram(1, ALICE_ADDR, encodeServerMsg({ type: MsgType.Bye, id: alice.id }));
  assert.deepEqual(drain(r), []);
  assert.equal(r.peerCount, 0);
  assert.equal(r.roomCount, 0);
  assert.equal(r.nextTimeout(), undefined);
});

Deno.test("registry: a silent peer expires (LEFT expired to others); a pinging peer stays", () => {
  const { r, alice, bob } = threePeers({ registry: { expireAfter: 10_000 }, joined: 2 });
  events(r);
  assert.equal(r.nextTimeout(), 10_000);
  ping(r, alice, 6_000, rosterDigest([bob.id]));

  r.handleTimeout(9_999);
  assert.deepEqual(drain(r), [], "not yet");
  assert.equal(r.peerCount, 2);

  r.handleTimeout(10_000);
  const sent = drain(r);
  assert.deepEqual(sent, [{
    to: ALICE_ADDR,
    msg: { type: MsgType.Left, id: bob.id, reason: LeftReason.Expired },
  }]);
  assert.equal(r.peerCount, 1);
  assert.deepEqual(events(r), [{ type: "left", room: "lobby", name: "bob", reason: "expired" }]);
  assert.equal(only(ping(r, bob, 10_001, 0), MsgType.Refused).code, RefuseCode.Unknown);

  // Alice keeps pinging and is kept well past the first deadline.
  for (let t = 14_000; t <= 40_000; t += 8_000) {
    ping(r, alice, t, rosterDigest([]));
    r.handleTimeout(t + 9_000);
    assert.equal(r.peerCount, 1, `alice still registered at ${t + 9_000}`);
  }
  assert.equal(r.nextTimeout(), 38_000 + 10_000);
  r.handleTimeout(48_000);
  assert.equal(r.peerCount, 0);
  assert.equal(r.roomCount, 0);
  assert.deepEqual(drain(r), [], "nobody left to tell");
});

Deno.test("registry: RELAY and REPUNCH also count as signs of life", () => {
  const { r, alice, bob } = threePeers({
    registry: { expireAfter: 10_000, repunchInterval: 0 },
    joined: 2,
  });
  r.handleDatagram(
    8_000,
    ALICE_ADDR,
    encodeServerMsg({ type: MsgType.Relay, from: alice.id, to: bob.id, payload: fill(4, 1) }),
  );
  repunch(r, bob, alice, 9_000);
  drain(r);
  r.handleTimeout(12_000);
  assert.equal(r.peerCount, 2);
  assert.deepEqual(drain(r), []);
});

// ---------------------------------------------------------------------------------------------
// REPUNCH

Deno.test("registry: REPUNCH sends INTROs to both peers, rate-limited per pair", () => {
  const { r, alice, bob, carol } = threePeers({ registry: { repunchInterval: 1_000 } });

  const sent = repunch(r, alice, bob, 100);
  assert.equal(sent.length, 2);
  const ofBob = only(to(sent, ALICE_ADDR), MsgType.Intro);
  assertIntroOf(ofBob, bob);
  assert.deepEqual(ofBob.publicEndpoint, BOB_ADDR);
  const ofAlice = only(to(sent, BOB_ADDR), MsgType.Intro);
  assertIntroOf(ofAlice, alice);
  assert.deepEqual(ofAlice.publicEndpoint, ALICE_ADDR);

  const before = totalDrops(r);
  assert.deepEqual(repunch(r, alice, bob, 600), [], "same pair too soon");
  assert.deepEqual(repunch(r, bob, alice, 700), [], "same pair, other direction, too soon");
  assert.equal(totalDrops(r), before + 2);
  // Another pair is independent.
  assert.equal(repunch(r, alice, carol, 700).length, 2);
  // After the interval, the pair may repunch again.
  assert.equal(repunch(r, bob, alice, 1_100).length, 2);
});

Deno.test("registry: REPUNCH rate limit survives handleTimeout within the interval", () => {
  const { r, alice, bob } = threePeers({ registry: { repunchInterval: 1_000 }, joined: 2 });
  assert.equal(repunch(r, alice, bob, 100).length, 2);
  r.handleTimeout(500);
  assert.deepEqual(repunch(r, alice, bob, 600), []);
  r.handleTimeout(5_000);
  assert.equal(repunch(r, alice, bob, 5_000).length, 2);
});

Deno.test("registry: REPUNCH from a wrong address or to a bad target is dropped", () => {
  const { r, alice, bob, carol, ghost } = dropScenario();
  const cases: [string, () => Sent[]][] = [
    ["spoofed address", () => repunch(r, alice, bob, 1, MALLORY_ADDR)],
    ["unknown sender", () => repunch(r, ghost, bob, 2)],
    ["unknown target", () => repunch(r, alice, ghost, 3)],
    ["target in another room", () => repunch(r, alice, carol, 4)],
    ["self", () => repunch(r, alice, alice, 5)],
  ];
  for (const [what, act] of cases) {
    const before = totalDrops(r);
    assert.deepEqual(act(), [], what);
    assert.equal(totalDrops(r), before + 1, what);
  }
  // A spoofed REPUNCH must not consume the pair's rate limit.
  assert.equal(repunch(r, alice, bob, 6).length, 2);
});

// ---------------------------------------------------------------------------------------------
// Malformed input and limits

Deno.test("registry: malformed and unexpected datagrams are counted, never thrown", () => {
  const { r, alice, bob } = threePeers({ joined: 1 });
  const hello = helloBytes(bob);
  const junk: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([0x70]),
    new Uint8Array([0x70, 0x32, 1]),
    new Uint8Array([0x00, 0x00, 1, 1, 0, 0, 0, 0]), // bad magic
    new Uint8Array([0x70, 0x32, 9, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // bad version
    new Uint8Array([0x70, 0x32, 1, 0x7f]), // unknown type
    hello.subarray(0, hello.length - 3), // truncated HELLO
    new Uint8Array([...hello, 0]), // trailing byte
    new Uint8Array(1500).fill(0x70), // oversize
    new Uint8Array([...encodeSealedHeader(alice.id, alice.id, 1n), ...new Uint8Array(16)]),
    // Server-to-peer messages are not accepted from peers.
    encodeServerMsg({ type: MsgType.Welcome, id: alice.id, name: "x", observed: ALICE_ADDR }),
    encodeServerMsg({ type: MsgType.Refused, code: 1, message: "x" }),
    encodeServerMsg({
      type: MsgType.Intro,
      id: alice.id,
      pubkey: alice.pubkey,
      epoch: fill(EPOCH_LEN, 1),
      flags: 0,
      name: "x",
      publicEndpoint: null,
      privateEndpoints: [],
    }),
    encodeServerMsg({ type: MsgType.Left, id: alice.id, reason: 1 }),
    encodeServerMsg({ type: MsgType.Pong, observed: ALICE_ADDR, digest: 0 }),
    encodeServerMsg({ type: MsgType.Roster, ids: [alice.id] }),
    encodeServerMsg({ type: MsgType.Relayed, from: alice.id, payload: fill(3, 1) }),
  ];
  const before = totalDrops(r);
  for (const [i, b] of junk.entries()) {
    assert.doesNotThrow(() => r.handleDatagram(i, ALICE_ADDR, b), `junk ${i}`);
  }
  assert.deepEqual(drain(r), []);
  assert.equal(totalDrops(r), before + junk.length);
  assert.equal(r.peerCount, 1);
  assert.equal(r.stats.drops["oversize"], 1);
});

Deno.test("registry: seeded junk and mutated datagrams never throw", () => {
  const { r, alice, bob, carol } = threePeers({ joined: 2 });
  const rand = prng(12345);
  const seeds = [
    helloBytes(carol),
    encodeServerMsg({ type: MsgType.Ping, id: alice.id, cookie: cookie(alice), digest: 0 }),
    encodeServerMsg({ type: MsgType.Relay, from: alice.id, to: bob.id, payload: fill(30, 1) }),
    encodeServerMsg({ type: MsgType.Repunch, id: alice.id, target: bob.id }),
    encodeServerMsg({ type: MsgType.Bye, id: bob.id }),
  ];
  for (let i = 0; i < 2000; i++) {
    const b = seeds[Math.floor(rand() * seeds.length)]!.slice();
    const flips = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
    const from = rand() < 0.5 ? ALICE_ADDR : MALLORY_ADDR;
    assert.doesNotThrow(() => r.handleDatagram(i, from, cut));
    assert.doesNotThrow(() => drain(r));
    if (i % 100 === 0) r.handleTimeout(i);
  }
});

Deno.test("registry: never sends a datagram larger than MAX_DATAGRAM, even for a maximal HELLO", () => {
  // The largest HELLO the codec accepts: as many private IPv4 endpoints as fit.
  const r = registry();
  const observed: Endpoint = { hostname: "2001:db8::1234", port: 40000 };
  const base = peer("a", observed, { room: "r", privateEndpoints: [] });
  const overhead = helloBytes(base).length;
  const n = Math.floor((MAX_DATAGRAM - overhead) / 7);
  const big = {
    ...base,
    privateEndpoints: Array.from({ length: n }, (_, i) => ({
      hostname: `10.${i >> 8}.${i & 0xff}.1`,
      port: 9000,
    })),
  };
  assert.ok(helloBytes(big).length <= MAX_DATAGRAM);
  assert.ok(decodeServerMsg(helloBytes(big)).ok, "the HELLO itself is valid");
  r.handleDatagram(0, observed, helloBytes(big, observed));
  const other = peer("b", BOB_ADDR, { room: "r" });
  r.handleDatagram(0, other.addr, helloBytes(other));
  // A stale digest (after the resync interval): another INTRO of the big peer.
  r.handleDatagram(
    2_001,
    other.addr,
    encodeServerMsg({ type: MsgType.Ping, id: other.id, cookie: cookie(other), digest: 0 }),
  );
  const sizes: string[] = [];
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
    const d = decodeServerMsg(t.data);
    if (t.data.length > MAX_DATAGRAM || !d.ok) {
      sizes.push(`type ${t.data[3]} of ${t.data.length} bytes to ${t.to.hostname}`);
    }
  }
  assert.deepEqual(sizes, [], "datagrams peers would drop");
});

Deno.test("registry: a full room refuses newcomers with RoomFull; other rooms are unaffected", () => {
  const { r, alice, bob, carol } = threePeers({ registry: { maxRoomSize: 2 }, joined: 2 });
  events(r);
  const sent = join(r, carol);
  assert.equal(sent.length, 1, "only the refusal; no intros");
  assert.deepEqual(sent[0]!.to, CAROL_ADDR);
  const refused = only([sent[0]!.msg], MsgType.Refused);
  assert.equal(refused.code, RefuseCode.RoomFull);
  assert.ok(refused.message.length > 0);
  assert.ok(events(r).some((e) => e.type === "refused"));
  assert.equal(r.peerCount, 2);
  // Members of the full room may still repeat HELLO.
  assert.equal(ofType(to(join(r, alice, 1), ALICE_ADDR), MsgType.Welcome).length, 1);
  // Another room is fine.
  assert.equal(only(join(r, { ...carol, room: "other" }), MsgType.Welcome).name, "carol");
  // After someone leaves, there is room again.
  r.handleDatagram(2, BOB_ADDR, encodeServerMsg({ type: MsgType.Bye, id: bob.id }));
  drain(r);
  const dave = peer("dave", MALLORY_ADDR);
  assert.equal(ofType(to(join(r, dave, 3), MALLORY_ADDR), MsgType.Welcome).length, 1);
});

Deno.test("registry: the server-wide peer limit refuses newcomers", () => {
  const { r, carol } = threePeers({
    registry: { maxPeers: 2 },
    bob: { room: "r2" },
    carol: { room: "r3" },
    joined: 2,
  });
  const refused = only(join(r, carol), MsgType.Refused);
  assert.equal(refused.code, RefuseCode.RoomFull);
  assert.equal(r.peerCount, 2);
  assert.equal(r.roomCount, 2);
});

Deno.test("registry: an accepted HELLO ends with a ROSTER of the others in the room", () => {
  const { r, alice, bob, carol } = threePeers({ carol: { room: "other" }, joined: 0 });
  r.handleDatagram(0, alice.addr, helloBytes(alice));
  assert.deepEqual(drain(r).at(-1)?.msg, { type: MsgType.Roster, ids: [] });
  r.handleDatagram(0, bob.addr, helloBytes(bob));
  const sent = drain(r);
  assert.deepEqual(sent.at(-1), { to: BOB_ADDR, msg: { type: MsgType.Roster, ids: [alice.id] } });
  // The INTRO of alice comes before it, so bob knows everyone once the ROSTER arrives.
  const types = sent.filter((x) => x.to === BOB_ADDR || x.to.port === BOB_ADDR.port).map((x) =>
    x.msg.type
  );
  assert.ok(types.indexOf(MsgType.Intro) < types.indexOf(MsgType.Roster));
  r.handleDatagram(0, carol.addr, helloBytes(carol));
  assert.deepEqual(drain(r).at(-1)?.msg, { type: MsgType.Roster, ids: [] });
});

Deno.test("registry: names or rooms with control characters are refused", () => {
  const r = registry();
  for (const spec of [peer("ev\u001bil", ALICE_ADDR), peer("bob", BOB_ADDR, { room: "r\noom" })]) {
    r.handleDatagram(0, spec.addr, helloBytes(spec));
    const refused = only(drain(r), MsgType.Refused);
    assert.equal(refused.code, RefuseCode.Invalid);
  }
  assert.equal(r.peerCount, 0);
});

Deno.test("registry: a HELLO without the cookie for its address gets only a COOKIE, never larger", () => {
  const { r, bob } = threePeers({ joined: 1 });
  const hello = helloBytes(bob, BOB_ADDR, false);
  r.handleDatagram(0, BOB_ADDR, hello);
  const out: Uint8Array[] = [];
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
    assert.deepEqual(t.to, BOB_ADDR, "nothing reaches the room");
    out.push(t.data);
  }
  assert.equal(out.length, 1);
  assert.ok(out[0]!.length <= hello.length, "no amplification");
  assert.deepEqual(decodeServerMsg(out[0]!), {
    ok: true,
    value: { type: MsgType.Cookie, cookie: cookie(bob) },
  });
  assert.equal(r.peerCount, 1);
  assert.equal(r.stats.cookies, 1);
});

Deno.test("registry: a PING from a new address moves the peer only with that address's cookie", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  events(r);
  const spoofed: Endpoint = { hostname: "192.0.2.99", port: 9999 };
  // Someone who knows bob's id (and even his old cookie) pings from elsewhere.
  const sent = ping(r, bob, 10, 0, spoofed, cookie(bob));
  assert.deepEqual(sent, [{
    to: spoofed,
    msg: { type: MsgType.Cookie, cookie: cookie(bob, spoofed) },
  }]);
  assert.ok(!events(r).some((e) => e.type === "moved"));
  // Relayed traffic still goes to bob's real address.
  const relayed = relay(r, alice, bob, fill(5, 3));
  assert.deepEqual(relayed.map((x) => x.to), [BOB_ADDR]);
});

Deno.test("registry: roster resyncs for one peer are rate-limited", () => {
  const r = registry({ resyncInterval: 2_000 });
  const alice = peer("alice", ALICE_ADDR);
  const bob = peer("bob", BOB_ADDR);
  join(r, alice);
  join(r, bob);
  const resyncs = (sent: Sent[]) => ofType(sent.map((x) => x.msg), MsgType.Roster).length;
  assert.equal(resyncs(ping(r, alice, 2_000, 0)), 1);
  assert.equal(resyncs(ping(r, alice, 2_500, 0)), 0, "too soon: PONG only");
  assert.equal(resyncs(ping(r, alice, 4_000, 0)), 1);
});

Deno.test("registry: broadcast, multicast, loopback and port-0 private endpoints are not passed on", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR, {
    privateEndpoints: [
      { hostname: "255.255.255.255", port: 9 },
      { hostname: "224.0.0.251", port: 5353 },
      { hostname: "127.0.0.1", port: 4000 },
      { hostname: "10.9.9.9", port: 0 },
      { hostname: "10.0.0.7", port: 4000 },
    ],
  });
  join(r, alice);
  const bob = peer("bob", BOB_ADDR);
  const intro = only(
    to(join(r, bob), BOB_ADDR).filter((m) => m.type === MsgType.Intro),
    MsgType.Intro,
  );
  assert.deepEqual(intro.privateEndpoints, [{ hostname: "10.0.0.7", port: 4000 }]);
});

Deno.test("registry: nextTimeout always equals the oldest contact plus expireAfter (seeded)", () => {
  const r = registry({ expireAfter: 10_000 });
  const rand = prng(99);
  const peers = Array.from(
    { length: 30 },
    (_, i) => peer(`p${i}`, { hostname: "198.51.100." + (i + 1), port: 7000 + i }),
  );
  const lastSeen = new Map<string, number>();
  let now = 0;
  for (let step = 0; step < 2_000; step++) {
    now += Math.floor(rand() * 200);
    const p = peers[Math.floor(rand() * peers.length)]!;
    r.handleTimeout(now);
    for (const [k, t] of lastSeen) if (now - t >= 10_000) lastSeen.delete(k);
    if (lastSeen.has(idHex(p.id))) ping(r, p, now, 0);
    else join(r, p, now);
    lastSeen.set(idHex(p.id), now);
    drain(r);
    const oldest = Math.min(...lastSeen.values());
    assert.equal(r.nextTimeout(), oldest + 10_000, `step ${step}`);
    assert.equal(r.peerCount, lastSeen.size);
  }
});

Deno.test("registry: rooms are capped at MAX_ROOM_SIZE so every ROSTER fits one datagram", () => {
  const r = registry({ maxRoomSize: 10_000 });
  for (let i = 0; i < MAX_ROOM_SIZE; i++) {
    const p = peer(`p${i}`, { hostname: `198.51.${i >> 8}.${i & 255}`, port: 5000 });
    r.handleDatagram(0, p.addr, helloBytes(p));
    for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
      assert.ok(t.data.length <= MAX_DATAGRAM, `datagram of ${t.data.length} bytes`);
    }
  }
  assert.equal(r.peerCount, MAX_ROOM_SIZE);
  const late = peer("late", MALLORY_ADDR);
  r.handleDatagram(0, late.addr, helloBytes(late));
  assert.equal(only(drain(r), MsgType.Refused).code, RefuseCode.RoomFull);
});
