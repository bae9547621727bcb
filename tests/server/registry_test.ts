/**
 * Unit tests of the rendezvous server's sans-IO state machine (`lib/server/registry.ts` and the
 * modules it coordinates), protocol version 6: feed it datagrams and clock ticks, decode what it
 * wants sent. Peers register with a room id (the room's Ed25519 public key), a HELLO signed by
 * the room key, an opaque name tag and their identity's owner tag (the same identity takes its
 * name back), learn their registration token and the server's boot id from WELCOME and put the
 * token in
 * every later message; the server puts the recipient's token in everything it sends, and in
 * INTRO, LEFT and ROSTER the next number of that registration's sequence (1, 2, 3 …).
 *
 * @module
 */

import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { addressCookie } from "../../lib/crypto/cookie.ts";
import {
  COOKIE_ROTATION,
  DEFAULT_REGISTRY,
  Registry,
  type RegistryEvent,
  type RegistryOptions,
  REPLACED_KEEP,
} from "../../lib/server/registry.ts";
import { prng, randomBytesFrom, seededRandom } from "../support/prng.ts";
import { signedHello, testPeerId, testRoom } from "../support/hello.ts";
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";
import { ID_LEN, idHex, MAX_DATAGRAM, MsgType, PROTOCOL_VERSION } from "../../lib/wire/header.ts";
import { encodeHandshake, encodeSealedHeader } from "../../lib/wire/peer_frame.ts";
import type { SigningKey } from "../../lib/crypto/ed25519.ts";
import {
  BOOT_LEN,
  COOKIE_LEN,
  decodeServerMsg,
  encodeServerMsg,
  EPOCH_LEN,
  FLAG_RELAY_ONLY,
  LeftReason,
  MAX_ROOM_SIZE,
  NAME_TAG_LEN,
  OWNER_TAG_LEN,
  RefuseCode,
  ROOM_ID_LEN,
  rosterDigest,
  type ServerMsg,
  TOKEN_LEN,
} from "../../lib/wire/server_msg.ts";

// ---------------------------------------------------------------------------------------------
// Harness

type Msg<T extends ServerMsg["type"]> = Extract<ServerMsg, { type: T }>;

interface Sent {
  to: Endpoint;
  msg: ServerMsg;
}

interface PeerSpec {
  /** For the test's messages only: the server never learns names. */
  label: string;
  id: Uint8Array;
  addr: Endpoint;
  /** Room id: the room key's public key (peers derive it from the room name and passphrase). */
  room: Uint8Array;
  /** This registration attempt's nonce (WELCOME and HELLO refusals echo it). */
  nonce: Uint8Array;
  /** Opaque name tag (peers derive it from the name). */
  nameTag: Uint8Array;
  flags: number;
  privateEndpoints: Endpoint[];
  /** The registration token, learned from the last WELCOME (zeros until then). */
  token: Uint8Array;
  /** The owner tag (the identity's, in this room); by default one of its own per peer id. */
  owner?: Uint8Array;
}

/** Overrides of a peer's spec; `room` and `name` are turned into an opaque id and tag. */
interface PeerOptions {
  room?: string;
  name?: string;
  flags?: number;
  privateEndpoints?: Endpoint[];
  /** The owner tag: give two peers the same one to make them one identity. */
  owner?: Uint8Array;
}

let nextSeed = 1;
const labels = new Map<string, string>();

function fill(len: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: len }, (_, i) => (seed * 53 + i * 29 + 7) & 0xff);
}

/** `s` as UTF-8 in `len` bytes, zero-padded: a readable stand-in for a derived id. */
function padded(s: string, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(new TextEncoder().encode(s).subarray(0, len));
  return out;
}

/** The room keys of the rooms made by {@link roomId}, by hex of their id. */
const roomKeys = new Map<string, SigningKey>();

/** The room id (public key) the test uses for a room called `name`. */
function roomId(name: string): Uint8Array {
  const k = testRoom(name);
  roomKeys.set(idHex(k.publicKey), k);
  return k.publicKey.slice();
}

/** The key of a room nobody in these tests has (signs HELLOs the registry must refuse). */
const OUTSIDER = testRoom("an outsider's room");

/** The opaque name tag the test uses for a peer called `name`. */
function tagOf(name: string): Uint8Array {
  return padded(name, NAME_TAG_LEN);
}

function peer(label: string, addr: Endpoint, o: PeerOptions = {}): PeerSpec {
  const seed = nextSeed++;
  const p: PeerSpec = {
    label,
    id: testPeerId(seed),
    addr,
    room: roomId(o.room ?? "lobby"),
    nonce: fill(8, seed + 100),
    nameTag: tagOf(o.name ?? label),
    flags: o.flags ?? 0,
    privateEndpoints: o.privateEndpoints ??
      [{ hostname: "10.0.0." + (seed % 250 + 1), port: addr.port }],
    token: new Uint8Array(TOKEN_LEN),
    ...(o.owner ? { owner: o.owner } : {}),
  };
  labels.set(idHex(p.id), label);
  return p;
}

/** The label of the peer with `id` (to tell INTROs apart). */
function labelOf(id: Uint8Array): string {
  return labels.get(idHex(id)) ?? idHex(id);
}

/** How the registry's events name a peer and its room: short hex, never a name. */
function shortName(p: PeerSpec): string {
  return idHex(p.nameTag).slice(0, 8);
}

function shortRoom(p: PeerSpec): string {
  return idHex(p.room).slice(0, 8);
}

const ALICE_ADDR: Endpoint = { hostname: "198.51.100.1", port: 40000 };
const BOB_ADDR: Endpoint = { hostname: "203.0.113.2", port: 50000 };
const CAROL_ADDR: Endpoint = { hostname: "192.0.2.3", port: 6000 };
const MALLORY_ADDR: Endpoint = { hostname: "192.0.2.66", port: 6666 };

/** The registries under test use this secret, so tests can make valid cookies. */
const SECRET = new Uint8Array(32).fill(7);

/**
 * The cookie the server wants from `p` at `from` (what its COOKIE would carry): at `now`, or
 * in the period of the last datagram it handled.
 */
function cookie(r: Registry, p: PeerSpec, from = p.addr, now?: number): Uint8Array {
  return r.cookieFor(p.id, from, now);
}

/** The cookie secret of one rotation period: HMAC-SHA256 of the period number under `master`. */
function periodSecret(master: Uint8Array, period: number): Uint8Array {
  return new Uint8Array(createHmac("sha256", master).update(String(period)).digest());
}

/**
 * A HELLO as a client sends it once it holds the cookie for `from` (`valid: false`: none yet),
 * signed by the key of `p.room` (or, for a room id no test room has, by an outsider's key).
 */
/** The nonce of an encoded HELLO (what the COOKIE answering it echoes). */
function nonceOf(hello: Uint8Array): Uint8Array {
  const d = decodeServerMsg(hello);
  if (!d.ok || d.value.type !== MsgType.Hello) throw new Error("not a HELLO");
  return d.value.nonce;
}

function helloBytes(
  r: Registry,
  p: PeerSpec,
  from = p.addr,
  valid = true,
  now?: number,
): Uint8Array {
  return encodeServerMsg(helloMsg(p, valid ? cookie(r, p, from, now) : new Uint8Array(COOKIE_LEN)));
}

/** `p`'s HELLO with `cookie`, signed by `key` (by default its room's). */
function helloMsg(
  p: PeerSpec,
  cookie: Uint8Array,
  key = roomKeys.get(idHex(p.room)) ?? OUTSIDER,
): Msg<typeof MsgType.Hello> {
  const m = signedHello(key, { ...p, cookie });
  return { ...m, room: p.room };
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

/** Drains every transmit as raw bytes. */
function drainRaw(r: Registry): { to: Endpoint; data: Uint8Array }[] {
  const out: { to: Endpoint; data: Uint8Array }[] = [];
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) out.push(t);
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

/** Learns `p`'s token from a WELCOME for it in `sent` (what the client does). */
function learn(p: PeerSpec, sent: Sent[]): void {
  for (const w of ofType(sent, MsgType.Welcome)) if (idHex(w.id) === idHex(p.id)) p.token = w.token;
}

/** `p` with the fresh nonce of a new registration attempt (after a BYE, say). */
function fresh(p: PeerSpec): PeerSpec {
  p.nonce = p.nonce.map((b, i) => i === 0 ? (b + 0x80) & 0xff : b);
  return p;
}

/**
 * Sends `p`'s HELLO and returns what the server sent, less the ROSTER that ends every accepted
 * registration (checked here: last, addressed to `p`, with `p`'s token). `p` learns its token.
 */
function join(r: Registry, p: PeerSpec, now = 0): Sent[] {
  r.handleDatagram(now, p.addr, helloBytes(r, p));
  const sent = drain(r);
  learn(p, sent);
  const last = sent.at(-1);
  if (last?.msg.type !== MsgType.Roster) return sent;
  // Registered: like a client, the next registration attempt draws a fresh nonce (a HELLO
  // registers once, see lib/server/spent_nonces.ts).
  p.nonce = p.nonce.slice();
  p.nonce[7] = (p.nonce[7]! + 1) & 0xff;
  assert.deepEqual(last.to, p.addr, "ROSTER goes to the registering peer");
  assert.deepEqual(last.msg.token, p.token, "ROSTER carries the recipient's token");
  return sent.slice(0, -1);
}

function pingBytes(
  r: Registry,
  p: PeerSpec,
  digest: number,
  from = p.addr,
  o: { cookie?: Uint8Array; token?: Uint8Array } = {},
): Uint8Array {
  return encodeServerMsg({
    type: MsgType.Ping,
    id: p.id,
    token: o.token ?? p.token,
    cookie: o.cookie ?? cookie(r, p, from),
    digest,
  });
}

function ping(
  r: Registry,
  p: PeerSpec,
  now: number,
  digest: number,
  from = p.addr,
  o: { cookie?: Uint8Array; token?: Uint8Array } = {},
): Sent[] {
  r.handleDatagram(now, from, pingBytes(r, p, digest, from, o));
  return drain(r);
}

function relay(
  r: Registry,
  src: PeerSpec,
  dst: PeerSpec,
  payload: Uint8Array,
  from = src.addr,
  token = src.token,
  now = 0,
): Sent[] {
  r.handleDatagram(
    now,
    from,
    encodeServerMsg({ type: MsgType.Relay, from: src.id, token, to: dst.id, payload }),
  );
  return drain(r);
}

function repunch(
  r: Registry,
  src: PeerSpec,
  dst: PeerSpec,
  now: number,
  from = src.addr,
  token = src.token,
): Sent[] {
  r.handleDatagram(
    now,
    from,
    encodeServerMsg({ type: MsgType.Repunch, id: src.id, token, target: dst.id }),
  );
  return drain(r);
}

function byeBytes(p: PeerSpec, token = p.token): Uint8Array {
  return encodeServerMsg({ type: MsgType.Bye, id: p.id, token });
}

function bye(r: Registry, p: PeerSpec, now: number, from = p.addr, token = p.token): Sent[] {
  r.handleDatagram(now, from, byeBytes(p, token));
  return drain(r);
}

/** Registries made so far: each draws from its own seed (a restarted server's tokens differ). */
let registries = 0;

function registry(o: Partial<RegistryOptions> = {}): Registry {
  return new Registry(o, seededRandom(++registries), SECRET);
}

/** Options of {@link threePeers}. */
interface ThreePeersOptions {
  /** Options of the registry. */
  registry?: Partial<RegistryOptions>;
  /** How many of alice, bob and carol, in that order, register at time 0 (default: all three). */
  joined?: 0 | 1 | 2 | 3;
  /** Overrides of alice's spec. */
  alice?: PeerOptions;
  /** Overrides of bob's spec. */
  bob?: PeerOptions;
  /** Overrides of carol's spec. */
  carol?: PeerOptions;
}

/**
 * The common set-up: a registry and alice, bob and carol in room "lobby" at `ALICE_ADDR`,
 * `BOB_ADDR` and `CAROL_ADDR`, the first `joined` of them registered (they know their tokens;
 * what the server sent them is drained; its events are kept). Carol is only created when the
 * test reads her (or joins her), so a test without her gives later peers the same seeds.
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

/** Asserts `intro` describes `about` (id, flags) and carries `recipient`'s token. */
function assertIntroOf(intro: Msg<typeof MsgType.Intro>, about: PeerSpec, recipient: PeerSpec) {
  assert.equal(labelOf(intro.id), about.label);
  assert.deepEqual(intro.id, about.id);
  assert.equal(intro.flags, about.flags);
  assert.deepEqual(intro.token, recipient.token, `INTRO of ${about.label} to ${recipient.label}`);
  assert.equal(intro.epoch.length, EPOCH_LEN);
}

/** Labels of the peers the INTROs in `list` describe, sorted. */
function introduced(list: (ServerMsg | Sent)[]): string[] {
  return ofType(list, MsgType.Intro).map((m) => labelOf(m.id)).sort();
}

// ---------------------------------------------------------------------------------------------
// Registration

Deno.test("registry: HELLO is answered with WELCOME echoing the nonce, with a token and the observed endpoint", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR);
  const hello = helloBytes(r, alice);
  r.handleDatagram(5, ALICE_ADDR, hello);
  const sent = drain(r);
  assert.equal(sent.length, 2, "WELCOME and ROSTER");
  assert.deepEqual(sent[0]!.to, ALICE_ADDR);
  const welcome = only([sent[0]!], MsgType.Welcome);
  assert.deepEqual(welcome.id, alice.id);
  assert.deepEqual(welcome.nonce, alice.nonce, "the HELLO's nonce, echoed");
  assert.deepEqual(welcome.observed, ALICE_ADDR);
  assert.equal(welcome.token.length, TOKEN_LEN);
  assert.notDeepEqual(welcome.token, new Uint8Array(TOKEN_LEN), "a random token");
  assert.deepEqual(sent[1], {
    to: ALICE_ADDR,
    msg: { type: MsgType.Roster, token: welcome.token, seq: 1, ids: [] },
  });
  assert.equal(r.peerCount, 1);
  assert.equal(r.roomCount, 1);
  assert.deepEqual(events(r), [{
    type: "registered",
    room: shortRoom(alice),
    name: shortName(alice),
    addr: ALICE_ADDR,
    relayOnly: false,
  }]);
  assert.equal(r.nextTimeout(), 5 + 75_000, "default expiry is 75 s after last contact");
});

Deno.test("registry: registrations get distinct tokens; events show short hex, never names", () => {
  const { r, alice, bob, carol } = threePeers({ joined: 0 });
  join(r, alice);
  join(r, bob);
  join(r, carol);
  const tokens = new Set([alice, bob, carol].map((p) => idHex(p.token)));
  assert.equal(tokens.size, 3);
  const ev = events(r);
  assert.ok(ev.length > 0);
  for (const e of ev) {
    const text = JSON.stringify(e);
    for (const word of ["alice", "bob", "carol", "lobby"]) assert.ok(!text.includes(word), text);
    if ("room" in e) assert.match(e.room, /^[0-9a-f]{8}$/);
    if ("name" in e) assert.match(e.name, /^[0-9a-f]{8}$/);
  }
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
  assertIntroOf(introOfAlice, alice, bob);
  assert.deepEqual(introOfAlice.publicEndpoint, ALICE_ADDR, "public = observed address");
  assert.deepEqual(introOfAlice.privateEndpoints, alice.privateEndpoints);

  const introOfBob = only(to(sent, ALICE_ADDR), MsgType.Intro);
  assertIntroOf(introOfBob, bob, alice);
  assert.deepEqual(introOfBob.publicEndpoint, BOB_ADDR);
  assert.deepEqual(introOfBob.privateEndpoints, bob.privateEndpoints);

  assert.equal(sent.length, 3, "nothing else is sent");
  assert.equal(r.peerCount, 2);
  assert.equal(r.roomCount, 1);
  const names = [shortName(alice), shortName(bob)].sort().join();
  assert.ok(
    events(r).some((e) => e.type === "introduced" && [e.a, e.b].sort().join() === names),
  );
});

Deno.test("registry: third peer is introduced to both earlier peers and vice versa", () => {
  const { r, alice, bob, carol } = threePeers({ joined: 2 });
  const sent = join(r, carol);
  const toCarol = to(sent, CAROL_ADDR);
  assert.equal(toCarol[0]!.type, MsgType.Welcome);
  assert.deepEqual(introduced(toCarol), ["alice", "bob"]);
  assertIntroOf(only(to(sent, ALICE_ADDR), MsgType.Intro), carol, alice);
  assertIntroOf(only(to(sent, BOB_ADDR), MsgType.Intro), carol, bob);
});

Deno.test("registry: a name tag already used in the room is refused with NameTaken, never suffixed", () => {
  const r = registry();
  const a1 = peer("alice", ALICE_ADDR);
  const a2 = peer("alice2", BOB_ADDR, { name: "alice" });
  join(r, a1);
  events(r);
  r.handleDatagram(1, BOB_ADDR, helloBytes(r, a2));
  const sent = drain(r);
  assert.equal(sent.length, 1, "only the refusal: no INTROs, no ROSTER, nothing to the room");
  assert.deepEqual(sent[0]!.to, BOB_ADDR);
  const refused = only([sent[0]!], MsgType.Refused);
  assert.equal(refused.code, RefuseCode.NameTaken);
  assert.deepEqual(refused.echo, a2.nonce, "echoes the HELLO's nonce");
  assert.ok(refused.message.length > 0);
  assert.equal(r.peerCount, 1);
  assert.ok(events(r).some((e) => e.type === "refused"));
  // With another tag, the same peer is welcome.
  assert.equal(ofType(join(r, { ...a2, nameTag: tagOf("alice-2") }), MsgType.Welcome).length, 1);
  // The tag is only unique per room.
  const other = peer("alice3", MALLORY_ADDR, { name: "alice", room: "elsewhere" });
  assert.equal(only(join(r, other), MsgType.Welcome).observed.port, MALLORY_ADDR.port);
  assert.equal(r.peerCount, 3);
});

Deno.test("registry: a name tag is free again once its holder has left", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  const again = peer("bob-again", MALLORY_ADDR, { name: "bob" });
  assert.equal(only(join(r, again, 1), MsgType.Refused).code, RefuseCode.NameTaken);
  bye(r, bob, 2);
  const sent = join(r, again, 3);
  assert.equal(ofType(to(sent, MALLORY_ADDR), MsgType.Welcome).length, 1);
  assertIntroOf(only(to(sent, ALICE_ADDR), MsgType.Intro), again, alice);
});

// ---------------------------------------------------------------------------------------------
// Names bind to identities (owner tags), boot ids

/** An owner tag: the same `n` is the same identity. */
function owner(n: number): Uint8Array {
  return fill(OWNER_TAG_LEN, 200 + n);
}

Deno.test("registry: the same identity coming back takes its own name; the ghost is LEFT Replaced", () => {
  const { r, alice, bob } = threePeers({ alice: { owner: owner(1) }, joined: 2 });
  events(r);
  // Alice's process died without a BYE (or the BYE was lost); she starts again: a new peer id,
  // from a new address, the same identity and name.
  const back = peer("alice-back", MALLORY_ADDR, { name: "alice", owner: owner(1) });
  const sent = join(r, back, 5_000);
  const welcome = only(to(sent, MALLORY_ADDR).slice(0, 1), MsgType.Welcome);
  assert.deepEqual(welcome.id, back.id, "the name itself, no NameTaken, no -2");
  assertIntroOf(only(to(sent, MALLORY_ADDR).slice(1), MsgType.Intro), bob, back);
  const toBob = to(sent, BOB_ADDR);
  assert.deepEqual(
    toBob.map((m) => m.type),
    [MsgType.Left, MsgType.Intro],
    "the ghost leaves first",
  );
  assert.deepEqual(toBob[0], {
    type: MsgType.Left,
    token: bob.token,
    seq: 3, // after bob's ROSTER and the INTRO of alice
    id: alice.id,
    reason: LeftReason.Replaced,
  });
  assertIntroOf(toBob[1] as Msg<typeof MsgType.Intro>, back, bob);
  assert.deepEqual(events(r).map((e) => e.type === "left" ? `left ${e.reason}` : e.type), [
    "left replaced",
    "registered",
    "introduced",
  ]);
  assert.equal(r.peerCount, 2);
  // The ghost's registration is gone: its token no longer counts.
  assert.equal(only(ping(r, alice, 5_001, 0), MsgType.Refused).code, RefuseCode.Unknown);
  assert.deepEqual(bye(r, alice, 5_002), [], "its BYE is dropped");
  assert.equal(r.peerCount, 2);
  // Bob's view: the room without the ghost, with the newcomer.
  assert.equal(
    only(ping(r, bob, 5_003, rosterDigest([back.id])), MsgType.Pong).digest,
    rosterDigest([back.id]),
  );
});

Deno.test("registry: a ghost alone in its room is replaced too; the room lives on", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR, { owner: owner(2) });
  join(r, alice);
  const back = peer("alice-back", ALICE_ADDR, { name: "alice", owner: owner(2) });
  const sent = join(r, back, 1);
  assert.deepEqual(sent.map((s) => s.msg.type), [MsgType.Welcome], "nobody else to tell");
  assert.equal(r.peerCount, 1);
  assert.equal(r.roomCount, 1);
  assert.equal(r.nextTimeout(), 1 + DEFAULT_REGISTRY.expireAfter, "only the newcomer is kept");
});

Deno.test("registry: another identity asking for a held name still gets NameTaken; a forged owner tag evicts nobody", () => {
  const { r, alice, bob } = threePeers({ alice: { owner: owner(3) }, joined: 2 });
  events(r);
  const near = owner(3);
  near[OWNER_TAG_LEN - 1]! ^= 1;
  for (const tag of [owner(4), near, new Uint8Array(OWNER_TAG_LEN)]) {
    const mallory = peer("mallory", MALLORY_ADDR, { name: "alice", owner: tag });
    const sent = join(r, mallory, 10);
    assert.equal(only(sent, MsgType.Refused).code, RefuseCode.NameTaken);
    assert.deepEqual(sent[0]!.to, MALLORY_ADDR, "nothing to the room");
  }
  assert.equal(r.peerCount, 2);
  assert.ok(!events(r).some((e) => e.type === "left"), "alice stays");
  assert.equal(
    only(ping(r, alice, 11, rosterDigest([bob.id])), MsgType.Pong).token.join(),
    alice.token.join(),
  );
});

Deno.test("registry: a replayed HELLO changes nothing, before or after a replacement", () => {
  const { r, alice, bob } = threePeers({ alice: { owner: owner(5) }, joined: 2 });
  // The HELLO that registered alice (join gave her the next nonce since).
  const ghostHello = helloBytes(
    r,
    { ...alice, nonce: alice.nonce.map((b, i) => i === 7 ? b - 1 : b) },
    ALICE_ADDR,
    true,
    0,
  );
  const back = peer("alice-back", MALLORY_ADDR, { name: "alice", owner: owner(5) });
  const backHello = helloBytes(r, back, MALLORY_ADDR, true, 0);
  r.handleDatagram(1, MALLORY_ADDR, backHello);
  learn(back, drain(r));
  events(r);
  // The ghost's own HELLO, replayed from its address within its cookie's life: it registered
  // once, so it is dropped unanswered (and the ghost may not take the name back anyway).
  r.handleDatagram(2, ALICE_ADDR, ghostHello);
  assert.deepEqual(drain(r), []);
  assert.equal(r.stats.drops["hello-replayed"], 1);
  // The newcomer's HELLO replayed: the same WELCOME (same token), nothing else.
  r.handleDatagram(3, MALLORY_ADDR, backHello);
  const again = only(drain(r), MsgType.Welcome);
  assert.deepEqual(again.token, back.token);
  // Replayed from elsewhere: a COOKIE only.
  r.handleDatagram(4, CAROL_ADDR, backHello);
  only(drain(r), MsgType.Cookie);
  // The newcomer's id with another owner tag (not what was signed: a re-signed HELLO by a room
  // member who copied the id): refused, the registration kept.
  const forged = helloMsg({ ...back, owner: owner(6) }, cookie(r, back, MALLORY_ADDR));
  r.handleDatagram(5, MALLORY_ADDR, encodeServerMsg(forged));
  assert.equal(only(drain(r), MsgType.Refused).code, RefuseCode.Invalid);
  assert.deepEqual(events(r).filter((e) => e.type === "left" || e.type === "registered"), []);
  assert.equal(r.peerCount, 2);
  assert.deepEqual(
    only(ping(r, back, 6, rosterDigest([bob.id])), MsgType.Pong).token,
    back.token,
    "the newcomer is still registered",
  );
});

Deno.test("registry: two processes of one identity do not evict each other in turn", () => {
  const r = registry({ expireAfter: 1e9 });
  const first = peer("alice", ALICE_ADDR, { owner: owner(7) });
  const second = peer("alice-twin", BOB_ADDR, { name: "alice", owner: owner(7) });
  join(r, first);
  join(r, second, 1_000);
  // The first one is still running: its next PING is refused, it registers again with its id.
  assert.equal(only(ping(r, first, 20_000, 0), MsgType.Refused).code, RefuseCode.Unknown);
  const sent = join(r, { ...first, nonce: fill(8, 77) }, 20_001);
  assert.equal(only(sent, MsgType.Refused).code, RefuseCode.NameTaken, "it takes the next suffix");
  const suffixed = join(r, { ...first, nonce: fill(8, 78), nameTag: tagOf("alice-2") }, 20_002);
  assert.equal(ofType(suffixed, MsgType.Welcome).length, 1);
  assert.equal(r.peerCount, 2);
  // The memory of replaced ids is bounded in time: long after (its cookies long expired), the
  // first id is as any other registration of the identity.
  const later = 20_003 + REPLACED_KEEP;
  r.handleTimeout(later);
  const third = peer("alice-third", CAROL_ADDR, { name: "alice-2", owner: owner(7) });
  r.handleDatagram(later, CAROL_ADDR, helloBytes(r, third, CAROL_ADDR, true, later));
  const taken = drain(r);
  assert.equal(ofType(taken, MsgType.Welcome).length, 1, "alice-2 taken over by the identity");
  assert.equal(ofType(to(taken, BOB_ADDR), MsgType.Left)[0]!.reason, LeftReason.Replaced);
  assert.equal(r.peerCount, 2);
});

Deno.test("registry: WELCOME carries the registry's boot id: the same for every member, another after a restart", () => {
  const r = registry();
  assert.equal(r.bootId.length, BOOT_LEN);
  const { alice, bob } = { alice: peer("alice", ALICE_ADDR), bob: peer("bob", BOB_ADDR) };
  const a = only(to(join(r, alice), ALICE_ADDR), MsgType.Welcome);
  const b = only(to(join(r, bob), BOB_ADDR).slice(0, 1), MsgType.Welcome);
  assert.deepEqual(a.boot, r.bootId);
  assert.deepEqual(b.boot, r.bootId);
  // A repeated WELCOME (the first was lost) carries it too.
  r.handleDatagram(1, ALICE_ADDR, helloBytes(r, alice));
  assert.deepEqual(only(drain(r), MsgType.Welcome).boot, r.bootId);
  // The server restarted (same cookie secret from its configuration, a new registry).
  const restarted = registry();
  const again = only(join(restarted, alice, 2), MsgType.Welcome);
  assert.notDeepEqual(again.boot, a.boot);
  assert.deepEqual(again.boot, restarted.bootId);
  // Drawn from the injected random source, after the cookie secret.
  const random = seededRandom(4242);
  const expected = (() => {
    const s = seededRandom(4242);
    s(32);
    return s(BOOT_LEN);
  })();
  assert.deepEqual(new Registry({}, random).bootId, expected);
});

Deno.test("registry: a BYE sent three times removes the member once; the repeats are only bye-unknown drops", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  events(r);
  const first = bye(r, bob, 10);
  assert.deepEqual(first.map((s) => [s.to, s.msg.type]), [[ALICE_ADDR, MsgType.Left]]);
  const drops = { ...r.stats.drops };
  assert.deepEqual(bye(r, bob, 11), []);
  assert.deepEqual(bye(r, bob, 12), []);
  assert.deepEqual(r.stats.drops, { ...drops, "bye-unknown": (drops["bye-unknown"] ?? 0) + 2 });
  assert.deepEqual(events(r).map((e) => e.type), ["left"], "one log line");
  assert.equal(r.peerCount, 1);
  assert.equal(only(ping(r, alice, 13, 0), MsgType.Pong).digest, rosterDigest([]));
});

Deno.test("registry: after a server restart a peer registers again with the same id, room and tag", () => {
  // The client keeps its id, room id and name tag; once the server restarted, its PING is
  // refused as Unknown (echoing its token, so it believes it) and it says HELLO again.
  const first = registry();
  const bob = peer("bob", BOB_ADDR);
  join(first, bob);
  const oldToken = bob.token;

  const restarted = registry();
  const refused = only(ping(restarted, bob, 1, 0), MsgType.Refused);
  assert.equal(refused.code, RefuseCode.Unknown);
  assert.deepEqual(refused.echo, oldToken, "echoes the PING's token");
  const sent = join(restarted, bob, 2);
  assert.equal(
    sent.length,
    1,
    `re-registration HELLO got no answer (drops ${JSON.stringify(restarted.stats.drops)})`,
  );
  assert.deepEqual(only(sent, MsgType.Welcome).id, bob.id);
  assert.notDeepEqual(bob.token, oldToken, "a new registration, a new token");
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

Deno.test("registry: rooms are keyed by all 32 bytes of the room id (a key one bit off is another room)", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR);
  join(r, alice);
  // Bob's room id is lobby's with one bit flipped, signed with lobby's key: another key, so
  // the signature does not verify, and he is not let into either room.
  const near = roomId("lobby");
  near[ROOM_ID_LEN - 1]! ^= 1;
  const bob = { ...peer("bob", BOB_ADDR), room: near };
  r.handleDatagram(0, BOB_ADDR, encodeServerMsg(helloMsg(bob, cookie(r, bob), testRoom("lobby"))));
  assert.equal(only(drain(r), MsgType.Refused).code, RefuseCode.Invalid);
  // Carol, in a room of her own, is in another room: no INTROs.
  const carol = peer("carol", CAROL_ADDR, { room: "lobby 2" });
  assert.deepEqual(join(r, carol).map((s) => s.msg.type), [MsgType.Welcome], "no INTROs");
  assert.equal(r.roomCount, 2);
});

Deno.test("registry: a HELLO signed by another room's key is refused Invalid and registers nothing", () => {
  // Mallory saw a cleartext HELLO of lobby (room id and name tag) and proves her own address
  // with its cookie, but she does not know the passphrase: she cannot sign for the room.
  const { r, alice } = threePeers({ joined: 1 });
  events(r);
  const mallory = { ...peer("mallory", MALLORY_ADDR), room: alice.room };
  for (const key of [OUTSIDER, testRoom("other")]) {
    r.handleDatagram(1, MALLORY_ADDR, encodeServerMsg(helloMsg(mallory, cookie(r, mallory), key)));
    const sent = drain(r);
    assert.deepEqual(sent.map((s) => s.to), [MALLORY_ADDR], "one answer, to mallory only");
    const refused = only(sent, MsgType.Refused);
    assert.equal(refused.code, RefuseCode.Invalid);
    assert.deepEqual(refused.echo, mallory.nonce, "echoes her nonce");
  }
  assert.equal(r.stats.drops["hello-bad-signature"], 2);
  assert.equal(r.peerCount, 1, "nobody registered");
  assert.deepEqual(events(r).map((e) => e.type), ["refused", "refused"]);
  // Garbage as a signature, or a room id that is no valid key, is refused the same way.
  const junk = { ...helloMsg(mallory, cookie(r, mallory)), signature: fill(64, 3) };
  r.handleDatagram(2, MALLORY_ADDR, encodeServerMsg(junk));
  r.handleDatagram(
    3,
    MALLORY_ADDR,
    encodeServerMsg({ ...junk, room: new Uint8Array(ROOM_ID_LEN).fill(0xff) }),
  );
  assert.deepEqual(drain(r).map((s) => s.msg.type), [MsgType.Refused, MsgType.Refused]);
  assert.equal(r.stats.drops["hello-bad-signature"], 4);
  assert.equal(r.peerCount, 1);
});

Deno.test("registry: a member's captured HELLO signature is useless with another cookie or id", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR);
  const captured = helloMsg(alice, cookie(r, alice));
  // From mallory's address, with mallory's cookie (the signature covers alice's cookie).
  const mallory = { ...alice, addr: MALLORY_ADDR };
  r.handleDatagram(0, MALLORY_ADDR, encodeServerMsg({ ...captured, cookie: cookie(r, mallory) }));
  assert.equal(only(drain(r), MsgType.Refused).code, RefuseCode.Invalid);
  // With another id and that id's cookie (the signature covers alice's id).
  const other = peer("other", MALLORY_ADDR);
  r.handleDatagram(
    1,
    MALLORY_ADDR,
    encodeServerMsg({ ...captured, id: other.id, cookie: cookie(r, other) }),
  );
  assert.equal(only(drain(r), MsgType.Refused).code, RefuseCode.Invalid);
  // With alice's cookie from mallory's address: only a COOKIE (the cookie binds the address).
  r.handleDatagram(2, MALLORY_ADDR, encodeServerMsg(captured));
  assert.deepEqual(drain(r).map((s) => s.msg.type), [MsgType.Cookie]);
  // Another flag or name tag under the same signature: refused too.
  r.handleDatagram(3, ALICE_ADDR, encodeServerMsg({ ...captured, flags: FLAG_RELAY_ONLY }));
  r.handleDatagram(4, ALICE_ADDR, encodeServerMsg({ ...captured, nameTag: tagOf("eve") }));
  assert.deepEqual(drain(r).map((s) => s.msg.type), [MsgType.Refused, MsgType.Refused]);
  assert.equal(r.stats.drops["hello-bad-signature"], 4);
  assert.equal(r.peerCount, 0, "nobody registered");
  // The genuine HELLO still registers alice.
  r.handleDatagram(5, ALICE_ADDR, encodeServerMsg(captured));
  assert.equal(ofType(drain(r), MsgType.Welcome).length, 1);
  assert.equal(r.peerCount, 1);
});

Deno.test("registry: a repeated HELLO gets only its WELCOME, with the same token", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  events(r);
  const token = bob.token;
  // Bob's WELCOME was lost: he says HELLO again from the same address.
  r.handleDatagram(100, BOB_ADDR, helloBytes(r, bob));
  const sent = drain(r);
  assert.equal(sent.length, 1, `never more than asked: got ${describe(messages(sent))}`);
  assert.deepEqual(sent[0], {
    to: BOB_ADDR,
    msg: {
      type: MsgType.Welcome,
      id: bob.id,
      nonce: bob.nonce,
      token,
      boot: r.bootId,
      observed: BOB_ADDR,
    },
  });
  assert.equal(r.peerCount, 2);
  assert.ok(!events(r).some((e) => e.type === "registered"), "not registered twice");
  assert.equal(r.nextTimeout(), 0 + 75_000, "alice (silent since 0) expires first");
  // His next PING (with a digest of nobody) resyncs what else he missed.
  const resync = ping(r, bob, 1_100, 0);
  assert.deepEqual(introduced(resync), ["alice"]);
  assert.equal(ofType(resync, MsgType.Roster).length, 1);
  assertIntroOf(ofType(resync, MsgType.Intro)[0]!, alice, bob);
});

Deno.test("registry: a repeated HELLO from a new address is refused; only a PING with the token moves the peer", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  events(r);
  const moved: Endpoint = { hostname: "203.0.113.2", port: 50001 };
  // With the cookie of the old address, the new one only gets its own cookie.
  const stale = helloBytes(r, bob, BOB_ADDR);
  r.handleDatagram(1, moved, stale);
  assert.deepEqual(drain(r), [{
    to: moved,
    msg: {
      type: MsgType.Cookie,
      echo: nonceOf(stale),
      cookie: cookie(r, bob, moved),
      difficulty: 0,
    },
  }]);
  // With the new address's cookie it is refused as Invalid, echoing its nonce: the id is
  // registered elsewhere, and a HELLO carries no token.
  r.handleDatagram(2, moved, helloBytes(r, bob, moved));
  const sent = drain(r);
  assert.deepEqual(sent.map((s) => s.to), [moved], "only the refusal, to the new address");
  const refused = only(sent, MsgType.Refused);
  assert.equal(refused.code, RefuseCode.Invalid);
  assert.deepEqual(refused.echo, bob.nonce);
  assert.deepEqual(
    events(r).map((e) => e.type),
    ["refused"],
    "nobody moved, registered or introduced",
  );
  // The registration stays at the old address.
  assert.deepEqual(relay(r, alice, bob, fill(5, 1), ALICE_ADDR, alice.token, 3).map((s) => s.to), [
    BOB_ADDR,
  ]);
  // A PING with the token and the new address's cookie moves him: others learn the address.
  const moving = ping(r, bob, 4, rosterDigest([alice.id]), moved);
  assert.deepEqual(only(ofType(to(moving, moved), MsgType.Pong), MsgType.Pong).observed, moved);
  assert.deepEqual(introduced(to(moving, moved)), ["alice"]);
  const intro = only(to(moving, ALICE_ADDR), MsgType.Intro);
  assertIntroOf(intro, bob, alice);
  assert.deepEqual(intro.publicEndpoint, moved);
  assert.deepEqual(to(moving, BOB_ADDR), [], "nothing goes to the old address");
  assert.ok(events(r).some((e) => e.type === "moved" && e.name === shortName(bob)));
});

Deno.test("registry: HELLO reusing a known id with another room or name tag is refused", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR);
  join(r, alice);
  const impostors = [
    { ...alice, addr: MALLORY_ADDR, nameTag: tagOf("mallory") },
    { ...alice, addr: MALLORY_ADDR, room: roomId("other") },
  ];
  for (const impostor of impostors) {
    r.handleDatagram(1, MALLORY_ADDR, helloBytes(r, impostor));
    const refused = only(to(drain(r), MALLORY_ADDR), MsgType.Refused);
    assert.equal(refused.code, RefuseCode.Invalid);
    assert.deepEqual(refused.echo, impostor.nonce, "echoes the HELLO's nonce");
  }
  // The real alice is untouched: still at her address, with her token.
  assert.equal(only(ping(r, alice, 2, 0), MsgType.Pong).observed.port, ALICE_ADDR.port);
  assert.equal(r.peerCount, 1);
});

// ---------------------------------------------------------------------------------------------
// Relay-only peers

Deno.test("registry: relay-only peer: intros in both directions carry no endpoints", () => {
  const { r, alice, bob, carol } = threePeers({ bob: { flags: FLAG_RELAY_ONLY }, joined: 1 });
  const sent = join(r, bob);
  assert.ok(
    events(r).some((e) => e.type === "registered" && e.name === shortName(bob) && e.relayOnly),
  );

  const toBob = to(sent, BOB_ADDR);
  assert.deepEqual(ofType(toBob, MsgType.Welcome)[0]!.observed, BOB_ADDR, "still told its own");
  const introOfAlice = ofType(toBob, MsgType.Intro)[0]!;
  assertIntroOf(introOfAlice, alice, bob);
  assert.equal(introOfAlice.publicEndpoint, null);
  assert.deepEqual(introOfAlice.privateEndpoints, []);

  const introOfBob = only(to(sent, ALICE_ADDR), MsgType.Intro);
  assertIntroOf(introOfBob, bob, alice);
  assert.equal(introOfBob.flags & FLAG_RELAY_ONLY, FLAG_RELAY_ONLY);
  assert.equal(introOfBob.publicEndpoint, null);
  assert.deepEqual(introOfBob.privateEndpoints, []);

  // A normal third peer still learns alice's endpoints, but not bob's.
  const sent3 = join(r, carol);
  const intros = ofType(to(sent3, CAROL_ADDR), MsgType.Intro);
  const ofA = intros.find((m) => labelOf(m.id) === "alice")!;
  const ofB = intros.find((m) => labelOf(m.id) === "bob")!;
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
    ...ping(r, alice, 1_003, 0), // a stale digest: resync
  ];
  const intros = ofType(sent.map((s) => s.msg), MsgType.Intro);
  assert.ok(intros.length >= 5, `got ${intros.length} intros`);
  for (const m of intros) {
    assert.equal(m.publicEndpoint, null, `intro of ${labelOf(m.id)}`);
    assert.deepEqual(m.privateEndpoints, [], `intro of ${labelOf(m.id)}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Relay

Deno.test("registry: RELAY from a registered sender is forwarded as RELAYED, payload intact", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  const sealed = new Uint8Array([...encodeSealedHeader(alice.id, bob.id, 7n), ...fill(60, 3)]);
  const sent = relay(r, alice, bob, sealed);
  assert.deepEqual(sent, [{
    to: BOB_ADDR,
    msg: { type: MsgType.Relayed, token: bob.token, from: alice.id, payload: sealed },
  }], "RELAYED carries the recipient's token");
  // And back the other way, a HANDSHAKE frame this time.
  const hs = encodeHandshake({
    from: bob.id,
    to: alice.id,
    stage: 1,
    attempt: 3,
    message: fill(48, 4),
  });
  const back = relay(r, bob, alice, hs);
  assert.deepEqual(back, [{
    to: ALICE_ADDR,
    msg: { type: MsgType.Relayed, token: alice.token, from: bob.id, payload: hs },
  }]);
  assert.equal(r.stats.relayedPackets, 2);
  assert.equal(r.stats.relayedBytes, sealed.length + hs.length);
  assert.equal(totalDrops(r), 0);
});

Deno.test("registry: RELAY of the largest payload fits in the RELAYED datagram", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  const payload = fill(MAX_DATAGRAM - 4 - 2 * ID_LEN - TOKEN_LEN, 5); // a full-size RELAY
  r.handleDatagram(
    0,
    ALICE_ADDR,
    encodeServerMsg({
      type: MsgType.Relay,
      from: alice.id,
      token: alice.token,
      to: bob.id,
      payload,
    }),
  );
  const out = drainRaw(r);
  assert.equal(out.length, 1);
  assert.ok(out[0]!.data.length <= MAX_DATAGRAM);
  const d = decodeServerMsg(out[0]!.data);
  assert.ok(d.ok && d.value.type === MsgType.Relayed);
  assert.deepEqual(d.value.payload, payload);
});

/** Alice and bob in one room, carol in another, ghost never registered. */
function dropScenario() {
  const { r, alice, bob, carol } = threePeers({ carol: { room: "elsewhere" } });
  return { r, alice, bob, carol, ghost: peer("ghost", MALLORY_ADDR) };
}

Deno.test("registry: RELAY from a wrong address, with a wrong token, unknown sender or bad target is dropped", () => {
  const { r, alice, bob, carol, ghost } = dropScenario();
  const cases: [string, string, () => Sent[]][] = [
    [
      "spoofed sender address",
      "relay-unknown-sender",
      () => relay(r, alice, bob, fill(20, 1), MALLORY_ADDR),
    ],
    [
      "right host, wrong port",
      "relay-unknown-sender",
      () => relay(r, alice, bob, fill(20, 1), { ...ALICE_ADDR, port: ALICE_ADDR.port + 1 }),
    ],
    [
      "no token",
      "relay-bad-token",
      () => relay(r, alice, bob, fill(20, 1), ALICE_ADDR, new Uint8Array(TOKEN_LEN)),
    ],
    [
      "the recipient's token",
      "relay-bad-token",
      () => relay(r, alice, bob, fill(20, 1), ALICE_ADDR, bob.token),
    ],
    ["unregistered sender", "relay-unknown-sender", () => relay(r, ghost, bob, fill(20, 1))],
    ["unknown target", "relay-unknown-target", () => relay(r, alice, ghost, fill(20, 1))],
    ["target in another room", "relay-unknown-target", () => relay(r, alice, carol, fill(20, 1))],
    ["sender in another room", "relay-unknown-target", () => relay(r, carol, alice, fill(20, 1))],
    ["target is the sender", "relay-unknown-target", () => relay(r, alice, alice, fill(20, 1))],
  ];
  for (const [what, reason, act] of cases) {
    const before = r.stats.drops[reason] ?? 0;
    assert.deepEqual(act(), [], `${what}: nothing sent`);
    assert.equal(r.stats.drops[reason], before + 1, `${what}: counted as ${reason}`);
  }
  assert.equal(r.stats.relayedPackets, 0);
  assert.equal(r.stats.relayedBytes, 0);
});

// ---------------------------------------------------------------------------------------------
// PING, roster sync and NAT rebinding

Deno.test("registry: PING from an unknown id is REFUSED Unknown, echoing the PING's token", () => {
  const r = registry();
  const ghost = peer("ghost", MALLORY_ADDR);
  const token = fill(TOKEN_LEN, 42);
  const ping = pingBytes(r, ghost, 0, MALLORY_ADDR, { token });
  r.handleDatagram(0, MALLORY_ADDR, ping);
  const out = drainRaw(r);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]!.to, MALLORY_ADDR);
  assert.ok(out[0]!.data.length <= ping.length, "no larger than the PING");
  const d = decodeServerMsg(out[0]!.data);
  assert.ok(d.ok && d.value.type === MsgType.Refused);
  assert.equal(d.value.code, RefuseCode.Unknown);
  assert.deepEqual(d.value.echo, token);
  assert.equal(r.peerCount, 0, "a PING does not register");
});

Deno.test("registry: PING with the current digest gets only a PONG with the token", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  const sent = ping(r, alice, 1000, rosterDigest([bob.id]));
  assert.deepEqual(sent, [{
    to: ALICE_ADDR,
    msg: {
      type: MsgType.Pong,
      token: alice.token,
      observed: ALICE_ADDR,
      digest: rosterDigest([bob.id]),
    },
  }]);
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
  assert.deepEqual(roster[0]!.token, alice.token);
  assert.deepEqual(roster[0]!.ids.map(idHex).sort(), [bob.id, carol.id].map(idHex).sort());
  assert.deepEqual(introduced(toAlice), ["bob", "carol"]);
  const ofCarol = ofType(toAlice, MsgType.Intro).find((m) => labelOf(m.id) === "carol")!;
  assertIntroOf(ofCarol, carol, alice);
  assert.deepEqual(ofCarol.publicEndpoint, CAROL_ADDR);
  assert.equal(sent.length, toAlice.length, "the others are not bothered");
});

Deno.test("registry: PING with a stale digest after a departure sends the smaller ROSTER", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  bye(r, bob, 1); // alice's LEFT was lost
  const sent = ping(r, alice, 2_002, rosterDigest([bob.id]));
  assert.equal(only(ofType(sent, MsgType.Pong), MsgType.Pong).digest, rosterDigest([]));
  assert.deepEqual(ofType(sent, MsgType.Roster), [
    // ROSTER (1) and INTRO of bob (2) at registration, the lost LEFT (3), then this one.
    { type: MsgType.Roster, token: alice.token, seq: 4, ids: [] },
  ]);
});

Deno.test("registry: PING from a new address (NAT rebinding) re-introduces with the new address", () => {
  const { r, alice, bob, carol } = threePeers();
  events(r);
  const rebound: Endpoint = { hostname: "198.51.100.1", port: 40999 };
  const sent = ping(r, alice, 500, rosterDigest([bob.id, carol.id]), rebound);

  const toAlice = to(sent, rebound);
  const pong = only(ofType(toAlice, MsgType.Pong), MsgType.Pong);
  assert.deepEqual(pong.observed, rebound);
  assert.deepEqual(pong.token, alice.token);
  assert.deepEqual(introduced(toAlice), ["bob", "carol"]);
  for (const [addr, recipient] of [[BOB_ADDR, bob], [CAROL_ADDR, carol]] as const) {
    const intro = only(to(sent, addr), MsgType.Intro);
    assertIntroOf(intro, alice, recipient);
    assert.deepEqual(intro.publicEndpoint, rebound, "others learn the new address");
  }
  assert.deepEqual(to(sent, ALICE_ADDR), [], "nothing to the stale address");
  assert.ok(events(r).some((e) => e.type === "moved" && e.name === shortName(alice)));

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

Deno.test("registry: a PING from a new address moves the peer only with its token and that address's cookie", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  events(r);
  const spoofed: Endpoint = { hostname: "192.0.2.99", port: 9999 };
  // Someone who knows bob's id, his token and even his old cookie pings from elsewhere.
  const sent = ping(r, bob, 10, 0, spoofed, { cookie: cookie(r, bob) });
  assert.deepEqual(sent, [{
    to: spoofed,
    msg: { type: MsgType.Cookie, echo: bob.token!, cookie: cookie(r, bob, spoofed), difficulty: 0 },
  }]);
  // With that address's cookie but without the token: nothing at all.
  assert.deepEqual(ping(r, bob, 11, 0, spoofed, { token: new Uint8Array(TOKEN_LEN) }), []);
  assert.equal(r.stats.drops["ping-bad-token"], 1);
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

// ---------------------------------------------------------------------------------------------
// BYE and expiry

Deno.test("registry: BYE removes the peer and sends LEFT(bye) with each recipient's token", () => {
  const { r, alice, bob, carol } = threePeers();
  events(r);
  const sent = bye(r, bob, 10);
  assert.equal(sent.length, 2);
  for (const other of [alice, carol]) {
    assert.deepEqual(only(to(sent, other.addr), MsgType.Left), {
      type: MsgType.Left,
      token: other.token,
      seq: 4, // after a ROSTER and two INTROs
      id: bob.id,
      reason: LeftReason.Bye,
    });
  }
  assert.equal(r.peerCount, 2);
  assert.deepEqual(events(r), [{
    type: "left",
    room: shortRoom(bob),
    name: shortName(bob),
    reason: "bye",
  }]);
  // Bob is forgotten: his PING is refused.
  assert.equal(only(ping(r, bob, 11, 0), MsgType.Refused).code, RefuseCode.Unknown);
});

Deno.test("registry: BYE from a wrong address, with a wrong token or an unknown id is dropped", () => {
  const { r, alice, bob } = threePeers({ joined: 2 });
  const cases: [string, string, () => Sent[]][] = [
    ["wrong address", "bye-unknown", () => bye(r, bob, 1, MALLORY_ADDR)],
    ["unknown id", "bye-unknown", () => bye(r, peer("ghost", MALLORY_ADDR), 1)],
    ["no token", "bye-bad-token", () => bye(r, bob, 1, BOB_ADDR, new Uint8Array(TOKEN_LEN))],
    ["someone else's token", "bye-bad-token", () => bye(r, bob, 1, BOB_ADDR, alice.token)],
  ];
  for (const [what, reason, act] of cases) {
    const before = r.stats.drops[reason] ?? 0;
    assert.deepEqual(act(), [], what);
    assert.equal(r.stats.drops[reason], before + 1, `${what}: counted as ${reason}`);
  }
  assert.equal(r.peerCount, 2);
});

Deno.test("registry: the last peer leaving removes the room", () => {
  const r = registry();
  const alice = peer("alice", ALICE_ADDR);
  join(r, alice);
  assert.deepEqual(bye(r, alice, 1), []);
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
    msg: {
      type: MsgType.Left,
      token: alice.token,
      seq: 3, // after her ROSTER and the INTRO of bob
      id: bob.id,
      reason: LeftReason.Expired,
    },
  }]);
  assert.equal(r.peerCount, 1);
  assert.deepEqual(events(r), [{
    type: "left",
    room: shortRoom(bob),
    name: shortName(bob),
    reason: "expired",
  }]);
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

Deno.test("registry: RELAY and REPUNCH also count as signs of life; forged ones do not", () => {
  const { r, alice, bob } = threePeers({
    registry: { expireAfter: 10_000, repunchInterval: 0 },
    joined: 2,
  });
  // Without the tokens, neither keeps anybody alive.
  relay(r, alice, bob, fill(4, 1), ALICE_ADDR, new Uint8Array(TOKEN_LEN), 7_000);
  repunch(r, bob, alice, 7_000, BOB_ADDR, new Uint8Array(TOKEN_LEN));
  ping(r, alice, 7_000, 0, ALICE_ADDR, { token: new Uint8Array(TOKEN_LEN) });
  assert.equal(r.nextTimeout(), 10_000);
  relay(r, alice, bob, fill(4, 1), ALICE_ADDR, alice.token, 8_000);
  repunch(r, bob, alice, 9_000);
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
  assertIntroOf(ofBob, bob, alice);
  assert.deepEqual(ofBob.publicEndpoint, BOB_ADDR);
  const ofAlice = only(to(sent, BOB_ADDR), MsgType.Intro);
  assertIntroOf(ofAlice, alice, bob);
  assert.deepEqual(ofAlice.publicEndpoint, ALICE_ADDR);

  const before = totalDrops(r);
  assert.deepEqual(repunch(r, alice, bob, 600), [], "same pair too soon");
  assert.deepEqual(repunch(r, bob, alice, 700), [], "same pair, other direction, too soon");
  assert.equal(totalDrops(r), before + 2);
  assert.equal(r.stats.drops["repunch-rate"], 2);
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

Deno.test("registry: REPUNCH from a wrong address, with a wrong token or to a bad target is dropped", () => {
  const { r, alice, bob, carol, ghost } = dropScenario();
  const cases: [string, string, () => Sent[]][] = [
    ["spoofed address", "repunch-unknown-sender", () => repunch(r, alice, bob, 1, MALLORY_ADDR)],
    [
      "no token",
      "repunch-bad-token",
      () => repunch(r, alice, bob, 1, ALICE_ADDR, new Uint8Array(TOKEN_LEN)),
    ],
    [
      "the target's token",
      "repunch-bad-token",
      () => repunch(r, alice, bob, 1, ALICE_ADDR, bob.token),
    ],
    ["unknown sender", "repunch-unknown-sender", () => repunch(r, ghost, bob, 2)],
    ["unknown target", "repunch-unknown-target", () => repunch(r, alice, ghost, 3)],
    ["target in another room", "repunch-unknown-target", () => repunch(r, alice, carol, 4)],
    ["self", "repunch-unknown-target", () => repunch(r, alice, alice, 5)],
  ];
  for (const [what, reason, act] of cases) {
    const before = r.stats.drops[reason] ?? 0;
    assert.deepEqual(act(), [], what);
    assert.equal(r.stats.drops[reason], before + 1, `${what}: counted as ${reason}`);
  }
  // A forged REPUNCH must not consume the pair's rate limit.
  assert.equal(repunch(r, alice, bob, 6).length, 2);
});

// ---------------------------------------------------------------------------------------------
// Malformed input and limits

Deno.test("registry: malformed and unexpected datagrams are counted, never thrown", () => {
  const { r, alice, bob } = threePeers({ joined: 1 });
  const hello = helloBytes(r, bob);
  const v2 = hello.slice();
  v2[2] = 2;
  const tk = alice.token;
  const junk: Uint8Array[] = [
    new Uint8Array(0),
    new Uint8Array([0x70]),
    new Uint8Array([0x70, 0x32, 3]),
    new Uint8Array([0x00, 0x00, 3, 1, 0, 0, 0, 0]), // bad magic
    new Uint8Array([0x70, 0x32, 9, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), // bad version
    v2, // a version-2 HELLO
    new Uint8Array([0x70, 0x32, PROTOCOL_VERSION, 0x7f]), // unknown type
    hello.subarray(0, hello.length - 3), // truncated HELLO
    new Uint8Array([...hello, 0]), // trailing byte
    new Uint8Array(1500).fill(0x70), // oversize
    // Peer frames are never for the server.
    new Uint8Array([...encodeSealedHeader(alice.id, alice.id, 1n), ...new Uint8Array(16)]),
    encodeHandshake({ from: alice.id, to: bob.id, stage: 1, attempt: 1, message: fill(32, 1) }),
    // Server-to-peer messages are not accepted from peers.
    encodeServerMsg({
      type: MsgType.Welcome,
      id: alice.id,
      nonce: alice.nonce,
      token: tk,
      boot: fill(BOOT_LEN, 1),
      observed: ALICE_ADDR,
    }),
    encodeServerMsg({ type: MsgType.Refused, echo: tk, code: 1, message: "x" }),
    encodeServerMsg({
      type: MsgType.Intro,
      token: tk,
      seq: 1,
      id: alice.id,
      epoch: fill(EPOCH_LEN, 1),
      flags: 0,
      publicEndpoint: null,
      privateEndpoints: [],
    }),
    encodeServerMsg({ type: MsgType.Left, token: tk, seq: 2, id: alice.id, reason: 1 }),
    encodeServerMsg({ type: MsgType.Pong, token: tk, observed: ALICE_ADDR, digest: 0 }),
    encodeServerMsg({ type: MsgType.Roster, token: tk, seq: 3, ids: [alice.id] }),
    encodeServerMsg({ type: MsgType.Relayed, token: tk, from: alice.id, payload: fill(3, 1) }),
    encodeServerMsg({ type: MsgType.Cookie, echo: tk, cookie: cookie(r, alice), difficulty: 0 }),
  ];
  const before = totalDrops(r);
  for (const [i, b] of junk.entries()) {
    assert.doesNotThrow(() => r.handleDatagram(i, ALICE_ADDR, b), `junk ${i}`);
  }
  assert.deepEqual(drain(r), []);
  assert.equal(totalDrops(r), before + junk.length);
  assert.equal(r.peerCount, 1);
  assert.equal(r.stats.drops["oversize"], 1);
  assert.equal(r.stats.drops["bad-version"], 2);
});

Deno.test("registry: seeded mutated datagrams: dropped once with a reason, or answered within bounds", () => {
  const { r, alice, bob, carol } = threePeers({ joined: 2 });
  const rand = prng(12345);
  const seeds = [
    helloBytes(r, carol),
    pingBytes(r, alice, 0),
    encodeServerMsg({
      type: MsgType.Relay,
      from: alice.id,
      token: alice.token,
      to: bob.id,
      payload: fill(30, 1),
    }),
    encodeServerMsg({ type: MsgType.Repunch, id: alice.id, token: alice.token, target: bob.id }),
    byeBytes(bob),
  ];
  let handled = 0;
  for (let i = 0; i < 2000; i++) {
    const b = seeds[Math.floor(rand() * seeds.length)]!.slice();
    const flips = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const cut = rand() < 0.3 ? b.subarray(0, Math.floor(rand() * b.length)) : b;
    const from = rand() < 0.5 ? ALICE_ADDR : MALLORY_ADDR;
    const before = totalDrops(r);
    r.handleDatagram(i, from, cut);
    const sent = drainRaw(r);
    const dropped = totalDrops(r) - before;
    const where = `case ${i}: ${sent.length} sent, ${dropped} dropped`;
    // At most one drop per datagram, and a dropped datagram is not answered.
    assert.ok(dropped === 0 || (dropped === 1 && sent.length === 0), where);
    // What does not decode is dropped.
    if (!decodeServerMsg(cut).ok) assert.equal(dropped, 1, where);
    for (const t of sent) {
      // Everything sent decodes; mallory never proved an address, so gets no more than it sent.
      assert.ok(decodeServerMsg(t.data).ok, where);
      if (formatEndpoint(t.to) === formatEndpoint(MALLORY_ADDR)) {
        assert.ok(t.data.length <= cut.length, where);
      }
    }
    if (decodeServerMsg(cut).ok && dropped === 0) handled++;
    if (i % 100 === 0) r.handleTimeout(i);
    drainRaw(r);
  }
  assert.ok(handled > 100, `mutated datagrams that still decode and are handled: ${handled}`);
});

Deno.test("registry: never sends a datagram larger than MAX_DATAGRAM, even for a maximal HELLO", () => {
  // The largest HELLO the codec accepts: as many private IPv4 endpoints as fit.
  const r = registry();
  const observed: Endpoint = { hostname: "2001:db8::1234", port: 40000 };
  const base = peer("a", observed, { room: "r", privateEndpoints: [] });
  const overhead = helloBytes(r, base).length;
  const n = Math.min(255, Math.floor((MAX_DATAGRAM - overhead) / 7));
  const big = {
    ...base,
    privateEndpoints: Array.from({ length: n }, (_, i) => ({
      hostname: `10.${i >> 8}.${i & 0xff}.1`,
      port: 9000,
    })),
  };
  assert.ok(helloBytes(r, big).length <= MAX_DATAGRAM);
  assert.ok(decodeServerMsg(helloBytes(r, big)).ok, "the HELLO itself is valid");
  join(r, big);
  const other = peer("b", BOB_ADDR, { room: "r" });
  join(r, other);
  // A stale digest (after the resync interval): another INTRO of the big peer.
  r.handleDatagram(2_001, other.addr, pingBytes(r, other, 0));
  const sizes: string[] = [];
  let intros = 0;
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
    const d = decodeServerMsg(t.data);
    if (t.data.length > MAX_DATAGRAM || !d.ok) {
      sizes.push(`type ${t.data[3]} of ${t.data.length} bytes to ${t.to.hostname}`);
    } else if (d.value.type === MsgType.Intro) intros++;
  }
  assert.deepEqual(sizes, [], "datagrams peers would drop");
  assert.equal(intros, 1);
});

Deno.test("registry: a full room refuses newcomers with RoomFull; other rooms are unaffected", () => {
  const { r, alice, bob, carol } = threePeers({ registry: { maxRoomSize: 2 }, joined: 2 });
  events(r);
  const sent = join(r, carol);
  assert.equal(sent.length, 1, "only the refusal; no intros");
  assert.deepEqual(sent[0]!.to, CAROL_ADDR);
  const refused = only([sent[0]!.msg], MsgType.Refused);
  assert.equal(refused.code, RefuseCode.RoomFull);
  assert.deepEqual(refused.echo, carol.nonce);
  assert.ok(refused.message.length > 0);
  assert.ok(events(r).some((e) => e.type === "refused"));
  assert.equal(r.peerCount, 2);
  // Members of the full room may still repeat HELLO.
  assert.equal(ofType(to(join(r, alice, 1), ALICE_ADDR), MsgType.Welcome).length, 1);
  // Another room is fine.
  assert.equal(
    only(join(r, { ...carol, room: roomId("other") }), MsgType.Welcome).observed.port,
    CAROL_ADDR.port,
  );
  // After someone leaves, there is room again.
  bye(r, bob, 2);
  const dave = peer("dave", MALLORY_ADDR);
  assert.equal(ofType(to(join(r, dave, 3), MALLORY_ADDR), MsgType.Welcome).length, 1);
});

Deno.test("registry: the server-wide peer limit refuses newcomers with Limit when no lonely registration can give way", () => {
  // alice and bob share a room (rooms with members never give way); no puzzle in this test.
  const { r, carol } = threePeers({
    registry: { maxPeers: 2, pressureAt: Infinity },
    carol: { room: "r3" },
    joined: 2,
  });
  const refused = only(join(r, carol), MsgType.Refused);
  assert.equal(refused.code, RefuseCode.Limit);
  assert.deepEqual(refused.echo, carol.nonce);
  assert.equal(r.peerCount, 2);
  assert.equal(r.roomCount, 1);
});

Deno.test("registry: an accepted HELLO ends with a ROSTER of the others in the room", () => {
  const { r, alice, bob, carol } = threePeers({ carol: { room: "other" }, joined: 0 });
  r.handleDatagram(0, alice.addr, helloBytes(r, alice));
  let sent = drain(r);
  learn(alice, sent);
  assert.deepEqual(sent.at(-1)?.msg, {
    type: MsgType.Roster,
    token: alice.token,
    seq: 1,
    ids: [],
  });
  r.handleDatagram(0, bob.addr, helloBytes(r, bob));
  sent = drain(r);
  learn(bob, sent);
  assert.deepEqual(sent.at(-1), {
    to: BOB_ADDR,
    msg: { type: MsgType.Roster, token: bob.token, seq: 2, ids: [alice.id] }, // after the INTRO
  });
  // The INTRO of alice comes before it, so bob knows everyone once the ROSTER arrives.
  const types = to(sent, BOB_ADDR).map((m) => m.type);
  assert.ok(types.indexOf(MsgType.Intro) < types.indexOf(MsgType.Roster));
  r.handleDatagram(0, carol.addr, helloBytes(r, carol));
  sent = drain(r);
  learn(carol, sent);
  assert.deepEqual(sent.at(-1)?.msg, {
    type: MsgType.Roster,
    token: carol.token,
    seq: 1,
    ids: [],
  });
});

Deno.test("registry: a HELLO without the cookie for its address gets only a COOKIE, never larger", () => {
  const { r, bob } = threePeers({ joined: 1 });
  const hello = helloBytes(r, bob, BOB_ADDR, false);
  r.handleDatagram(0, BOB_ADDR, hello);
  const out = drainRaw(r);
  assert.equal(out.length, 1);
  assert.deepEqual(out[0]!.to, BOB_ADDR, "nothing reaches the room");
  assert.ok(out[0]!.data.length <= hello.length, "no amplification");
  assert.deepEqual(decodeServerMsg(out[0]!.data), {
    ok: true,
    value: { type: MsgType.Cookie, echo: nonceOf(hello), cookie: cookie(r, bob), difficulty: 0 },
  });
  assert.equal(r.peerCount, 1);
  assert.equal(r.stats.cookies, 1);
});

Deno.test("registry: cookies are HMACs of the id and address under the secret of the period floor(now / COOKIE_ROTATION)", () => {
  const alice = peer("alice", ALICE_ADDR);
  const times = [0, 1, COOKIE_ROTATION - 1, COOKIE_ROTATION, 2 * COOKIE_ROTATION + 5, 1e12];
  // In any order, without any traffic: the period's secret is HMAC(master, period number).
  for (const order of [times, [...times].reverse()]) {
    const r = registry();
    for (const now of order) {
      const period = Math.floor(now / COOKIE_ROTATION);
      assert.deepEqual(
        r.cookieFor(alice.id, ALICE_ADDR, now),
        addressCookie(periodSecret(SECRET, period), alice.id, formatEndpoint(ALICE_ADDR)),
        `at ${now} (period ${period})`,
      );
    }
  }
  const r = registry();
  const c0 = r.cookieFor(alice.id, ALICE_ADDR, 0);
  assert.notDeepEqual(
    c0,
    addressCookie(SECRET, alice.id, formatEndpoint(ALICE_ADDR)),
    "never the master itself",
  );
  assert.notDeepEqual(c0, r.cookieFor(alice.id, BOB_ADDR, 0));
  assert.notDeepEqual(c0, r.cookieFor(alice.id.map((b) => b ^ 1), ALICE_ADDR, 0));
  assert.notDeepEqual(
    c0,
    new Registry({}, seededRandom(8), new Uint8Array(32).fill(8)).cookieFor(
      alice.id,
      ALICE_ADDR,
      0,
    ),
    "another master secret, other cookies",
  );
  // Without a time: the period of the last datagram handled.
  join(r, alice, 0);
  assert.deepEqual(r.cookieFor(alice.id, ALICE_ADDR), c0, "same period: same cookie");
  ping(r, alice, COOKIE_ROTATION, 0);
  assert.notDeepEqual(r.cookieFor(alice.id, ALICE_ADDR), c0, "next period: a new secret");
  assert.deepEqual(
    r.cookieFor(alice.id, ALICE_ADDR),
    addressCookie(periodSecret(SECRET, 1), alice.id, formatEndpoint(ALICE_ADDR)),
  );
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
  const intro = only(ofType(to(join(r, bob), BOB_ADDR), MsgType.Intro), MsgType.Intro);
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
  assert.ok(now > 2 * COOKIE_ROTATION, "the cookie secret rotated along the way");
});

Deno.test({
  name: "registry: rooms are capped at MAX_ROOM_SIZE so every ROSTER fits one datagram",
  // A ROSTER of everyone else: header, token, seq u32, count u16 and MAX_ROOM_SIZE - 1 ids.
  fn: () => {
    assert.ok(4 + TOKEN_LEN + 4 + 2 + (MAX_ROOM_SIZE - 1) * ID_LEN <= MAX_DATAGRAM);
    const r = registry({ maxRoomSize: 10_000 });
    for (let i = 0; i < MAX_ROOM_SIZE; i++) {
      const p = peer(`p${i}`, { hostname: `198.51.${i >> 8}.${i & 255}`, port: 5000 });
      r.handleDatagram(0, p.addr, helloBytes(r, p));
      for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
        assert.ok(t.data.length <= MAX_DATAGRAM, `datagram of ${t.data.length} bytes`);
      }
    }
    assert.equal(r.peerCount, MAX_ROOM_SIZE);
    const late = peer("late", MALLORY_ADDR);
    r.handleDatagram(0, late.addr, helloBytes(r, late));
    assert.equal(only(drain(r), MsgType.Refused).code, RefuseCode.RoomFull);
  },
});

// ---------------------------------------------------------------------------------------------
// Adversarial review: forged and replayed datagrams

Deno.test("registry: a forged PING with a victim's id and address but no token gets only a REFUSED echoing it", () => {
  // It used to answer with a PONG, a ROSTER and an INTRO of every member (969x amplification
  // in a full room), and to keep the victim's registration alive. Now: one REFUSED Unknown a
  // second, smaller than the PING, echoing the forged token (so the victim ignores it; its own
  // lost token would make it register again, see hostile_hello_test.ts).
  const { r, alice, bob, carol } = threePeers({ registry: { expireAfter: 10_000 } });
  const stale = 0xdeadbeef; // a digest that matches nobody's room: would trigger a resync
  const wrong = [new Uint8Array(TOKEN_LEN), fill(TOKEN_LEN, 77), alice.token];
  for (const [i, token] of wrong.entries()) {
    const forged = pingBytes(r, bob, stale, BOB_ADDR, { token });
    r.handleDatagram(2_000 + 1_000 * i, BOB_ADDR, forged);
    const back = drainRaw(r);
    assert.equal(back.length, 1, `forged PING ${i}: one answer`);
    assert.deepEqual(back[0]!.to, BOB_ADDR);
    assert.ok(back[0]!.data.length <= forged.length, "no larger than the PING");
    const m = decodeServerMsg(back[0]!.data);
    assert.ok(m.ok && m.value.type === MsgType.Refused && m.value.code === RefuseCode.Unknown);
    assert.deepEqual(m.value.echo, token, "echoing the forged token");
    r.handleDatagram(2_001 + 1_000 * i, BOB_ADDR, forged);
    assert.deepEqual(drainRaw(r), [], `forged PING ${i} again: nothing within the second`);
  }
  assert.equal(r.stats.drops["ping-bad-token"], wrong.length);
  assert.equal(r.stats.cookies, 0, "not even a COOKIE");

  // With the token, the same PING works: PONG, ROSTER and the INTROs.
  const real = ping(r, bob, 5_000, stale);
  assert.deepEqual(real.map((s) => s.to.port), real.map(() => BOB_ADDR.port));
  assert.equal(ofType(real, MsgType.Pong).length, 1);
  assert.equal(ofType(real, MsgType.Roster).length, 1);
  assert.deepEqual(introduced(real), ["alice", "carol"]);

  // Forged PINGs do not keep the victim alive: he expires 10 s after his last real contact.
  for (let t = 6_000; t < 15_000; t += 1_000) {
    r.handleDatagram(t, BOB_ADDR, pingBytes(r, bob, stale, BOB_ADDR, { token: wrong[0] }));
  }
  ping(r, alice, 9_000, rosterDigest([bob.id, carol.id]));
  ping(r, carol, 9_000, rosterDigest([alice.id, bob.id]));
  drain(r);
  r.handleTimeout(15_000);
  assert.deepEqual(
    ofType(drain(r), MsgType.Left).map((m) => [labelOf(m.id), m.reason]),
    [["bob", LeftReason.Expired], ["bob", LeftReason.Expired]],
  );
  assert.equal(r.peerCount, 2);
  assert.equal(only(ping(r, bob, 15_001, 0), MsgType.Refused).code, RefuseCode.Unknown);
});

Deno.test("registry: a replayed HELLO gets a WELCOME no larger than itself, never INTROs or a ROSTER", () => {
  const { r, alice, bob, carol } = threePeers({ bob: { privateEndpoints: [] }, joined: 0 });
  join(r, alice);
  join(r, carol);
  // Someone captured bob's HELLO (the smallest kind: no private endpoints) and replays it from
  // bob's address while bob is registered.
  const hello = helloBytes(r, bob);
  join(r, bob);
  events(r);
  for (const t of [1, 1_000, 30_000, COOKIE_ROTATION - 1]) {
    r.handleDatagram(t, BOB_ADDR, hello);
    const out = drainRaw(r);
    assert.equal(out.length, 1, `replay at ${t}: one datagram`);
    assert.deepEqual(out[0]!.to, BOB_ADDR, `replay at ${t}: to bob only`);
    assert.ok(
      out[0]!.data.length <= hello.length,
      `replay at ${t}: ${out[0]!.data.length} bytes for a HELLO of ${hello.length}`,
    );
    const d = decodeServerMsg(out[0]!.data);
    assert.ok(d.ok && d.value.type === MsgType.Welcome, `replay at ${t}: a WELCOME`);
  }
  assert.deepEqual(events(r), [], "nothing registered, introduced or moved");
  assert.equal(r.peerCount, 3);
});

Deno.test("registry: a replayed HELLO only gets a COOKIE after two cookie rotations", () => {
  const { r, bob } = threePeers({ joined: 1 });
  const hello = helloBytes(r, bob);
  join(r, bob, 0);
  // One rotation later, the previous period's cookie is still good.
  r.handleDatagram(COOKIE_ROTATION, BOB_ADDR, hello);
  assert.deepEqual(drain(r).map((s) => s.msg.type), [MsgType.Welcome]);
  // After the second rotation it is not: only a COOKIE (with the current cookie), no larger.
  const t = 2 * COOKIE_ROTATION + 1;
  r.handleDatagram(t, BOB_ADDR, hello);
  const out = drainRaw(r);
  assert.equal(out.length, 1);
  assert.ok(out[0]!.data.length <= hello.length);
  assert.deepEqual(decodeServerMsg(out[0]!.data), {
    ok: true,
    value: { type: MsgType.Cookie, echo: nonceOf(hello), cookie: cookie(r, bob), difficulty: 0 },
  });
  // Bob himself answers the COOKIE and is welcome, still with his token.
  const token = bob.token;
  assert.deepEqual(only(join(r, bob, t + 1), MsgType.Welcome).token, token);
});

Deno.test("registry: a captured HELLO stops working 2 × COOKIE_ROTATION after it was made, however quiet the server", () => {
  // A cookie is valid in its period, floor(now / COOKIE_ROTATION), and the next, whatever
  // traffic there was in between (none, or keepalives every 25 s).
  const R = COOKIE_ROTATION;
  for (const keepalives of [false, true]) {
    for (const made of [0, 1, R - 1, R, 5 * R + 7]) {
      const what = `made at ${made}, keepalives: ${keepalives}`;
      const { r, alice, bob } = threePeers({ registry: { expireAfter: 100 * R }, joined: 1 });
      join(r, bob, 0);
      const hello = helloBytes(r, bob, BOB_ADDR, true, made);
      let last = 0;
      const until = (end: number) => {
        for (let t = last + 25_000; keepalives && t < end; t += 25_000) {
          ping(r, alice, t, rosterDigest([bob.id]));
          ping(r, bob, t, rosterDigest([alice.id]));
          last = t;
        }
      };
      // Still good at the very end of the next period: a repeated HELLO, only a WELCOME.
      const lastGood = (Math.floor(made / R) + 2) * R - 1;
      until(lastGood);
      r.handleDatagram(lastGood, BOB_ADDR, hello);
      assert.deepEqual(
        drain(r).map((s) => s.msg.type),
        [MsgType.Welcome],
        `${what}: at ${lastGood}`,
      );
      // 2 × COOKIE_ROTATION after it was made (or sooner), only a COOKIE.
      until(made + 2 * R);
      r.handleDatagram(made + 2 * R, BOB_ADDR, hello);
      assert.deepEqual(drain(r).map((s) => s.msg.type), [MsgType.Cookie], `${what}: at +2R`);
    }
  }
});

Deno.test({
  name: "registry: a replayed IPv6 HELLO without private endpoints gets a smaller WELCOME",
  // HELLO: 4 + 8 + 8 + 8 + 1 + 32 + 8 + 64 + 1 = 134 bytes; WELCOME to an IPv6 address:
  // 4 + 24 + 19 = 47. (Before HELLOs were signed, the WELCOME was one byte larger.)
  fn() {
    const r = registry();
    const victim = peer("v6", { hostname: "2001:db8::1", port: 1000 }, { privateEndpoints: [] });
    const hello = helloBytes(r, victim);
    join(r, victim);
    r.handleDatagram(1, victim.addr, hello);
    const out = drainRaw(r);
    assert.equal(out.length, 1);
    assert.ok(out[0]!.data.length <= hello.length, `${out[0]!.data.length} > ${hello.length}`);
  },
});

Deno.test("registry: a HELLO with a member's id, room and tag from another address is refused, never a takeover", () => {
  // Room members learn each other's ids from INTROs, and the HELLO is plain text: anybody who
  // knows them can prove *her own* address with its cookie. She gets REFUSED Invalid (echoing
  // her nonce), not bob's registration, token or RELAYED traffic.
  const { r, alice, bob } = threePeers({ joined: 2 });
  events(r);
  const mallory = { ...bob, addr: MALLORY_ADDR };
  r.handleDatagram(1, MALLORY_ADDR, helloBytes(r, mallory));
  const sent = drain(r);
  assert.deepEqual(sent.map((s) => s.to), [MALLORY_ADDR], "one answer, to mallory only");
  const refused = only(sent, MsgType.Refused);
  assert.equal(refused.code, RefuseCode.Invalid);
  assert.deepEqual(refused.echo, mallory.nonce, "echoes her HELLO's nonce");
  assert.ok(!events(r).some((e) => e.type === "moved" || e.type === "registered"));
  assert.equal(r.peerCount, 2);
  assert.deepEqual(relay(r, alice, bob, fill(5, 1)).map((s) => s.to), [BOB_ADDR]);
  assert.equal(only(ping(r, bob, 2, rosterDigest([alice.id])), MsgType.Pong).observed.port, 50000);
});

Deno.test("registry: a forged BYE with the victim's address but no token does not remove it", () => {
  const { r, alice, bob, carol } = threePeers();
  events(r);
  const forged = [new Uint8Array(TOKEN_LEN), fill(TOKEN_LEN, 5), alice.token, carol.token];
  for (const [i, token] of forged.entries()) {
    assert.deepEqual(bye(r, bob, 1 + i, BOB_ADDR, token), [], `forged BYE ${i}: nothing sent`);
  }
  assert.equal(r.stats.drops["bye-bad-token"], forged.length);
  assert.equal(r.peerCount, 3);
  assert.deepEqual(events(r), [], "nobody left");
  assert.equal(
    only(ping(r, bob, 10, rosterDigest([alice.id, carol.id])), MsgType.Pong).digest,
    rosterDigest([alice.id, carol.id]),
  );
  // Bob's own BYE works.
  assert.equal(bye(r, bob, 11).length, 2);
  assert.equal(r.peerCount, 2);
});

/** The kinds of datagram the property test below makes. */
const KINDS = ["hello", "ping", "bye", "relay", "repunch", "server", "peer", "junk"] as const;

Deno.test("registry: seeded property: no answer to an unproven datagram is larger than it", () => {
  // A source has proven its address when its datagram carries a cookie that is valid now for
  // its id and address, or a token the server has sent to that very address (the WELCOME
  // that first carried it only went to a cookie-proven address). Any other datagram, from
  // anybody (registered or not, right or wrong token, spoofed address), may be answered with
  // at most as many bytes as it has, to its source only.
  const r = new Registry(
    { expireAfter: 20_000, maxRoomSize: 5, maxPeers: 7, resyncInterval: 300, repunchInterval: 300 },
    seededRandom(0x5eed),
    SECRET,
  );
  /** Valid at `now`: made under the secret of this period or the one before. */
  const validCookie = (now: number, id: Uint8Array, from: Endpoint, c: Uint8Array) => {
    const period = Math.floor(now / COOKIE_ROTATION);
    return [period, period - 1].some((k) =>
      idHex(addressCookie(periodSecret(SECRET, k), id, formatEndpoint(from))) === idHex(c)
    );
  };

  const rand = prng(4242);
  const int = (n: number) => Math.floor(rand() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => randomBytesFrom(rand, n);
  const peers: PeerSpec[] = [];
  for (let i = 0; i < 9; i++) {
    const addr: Endpoint = i % 3 === 2
      ? { hostname: `2001:db8::${i + 1}`, port: 4000 + i }
      : { hostname: `198.51.100.${i + 1}`, port: 4000 + i };
    peers.push(peer(`q${i}`, addr, {
      room: i < 6 ? "lobby" : "den",
      privateEndpoints: Array.from({ length: int(3) }, (_, k) => ({
        hostname: `10.0.${i}.${k + 1}`,
        port: 4000 + i,
      })),
    }));
  }
  const strangers: Endpoint[] = [MALLORY_ADDR, { hostname: "2001:db8::66", port: 6666 }];
  const key = (ep: Endpoint) => formatEndpoint(ep);
  const delivered = new Set<string>();
  const oldTokens: Uint8Array[] = [new Uint8Array(TOKEN_LEN)];
  const seenCookies: Uint8Array[] = [new Uint8Array(COOKIE_LEN)];

  /** Records what the registry sent: tokens delivered to addresses, tokens peers learn. */
  const observe = (out: { to: Endpoint; data: Uint8Array }[]) => {
    for (const t of out) {
      const d = decodeServerMsg(t.data);
      assert.ok(d.ok, "the registry sends only valid datagrams");
      const m = d.value;
      if ("token" in m) delivered.add(`${idHex(m.token)}@${key(t.to)}`);
      if (m.type === MsgType.Cookie) seenCookies.push(m.cookie);
      if (m.type === MsgType.Welcome) {
        const p = peers.find((q) => idHex(q.id) === idHex(m.id));
        if (p && idHex(p.token) !== idHex(m.token)) {
          oldTokens.push(p.token);
          p.token = m.token;
        }
      }
    }
  };

  const make = (kind: typeof KINDS[number], p: PeerSpec, from: Endpoint): Uint8Array => {
    const other = pick(peers);
    const token = pick([p.token, p.token, other.token, pick(oldTokens), bytes(TOKEN_LEN)]);
    const cookieNow = () =>
      pick([
        r.cookieFor(p.id, from),
        r.cookieFor(p.id, from),
        r.cookieFor(p.id, p.addr),
        pick(seenCookies),
        bytes(COOKIE_LEN),
      ]);
    switch (kind) {
      case "hello":
        return encodeServerMsg(helloMsg({
          ...p,
          flags: int(4) === 0 ? FLAG_RELAY_ONLY : 0,
          room: rand() < 0.9 ? p.room : other.room,
          nameTag: rand() < 0.9 ? p.nameTag : other.nameTag,
          privateEndpoints: rand() < 0.8 ? p.privateEndpoints : [],
        }, cookieNow()));
      case "ping":
        return encodeServerMsg({
          type: MsgType.Ping,
          id: p.id,
          token,
          cookie: cookieNow(),
          digest: rand() < 0.2 ? 0 : int(2 ** 32),
        });
      case "bye":
        return encodeServerMsg({ type: MsgType.Bye, id: p.id, token });
      case "relay":
        return encodeServerMsg({
          type: MsgType.Relay,
          from: p.id,
          token,
          to: other.id,
          payload: bytes(int(200)),
        });
      case "repunch":
        return encodeServerMsg({ type: MsgType.Repunch, id: p.id, token, target: other.id });
      case "server":
        return encodeServerMsg(pick<ServerMsg>([
          { type: MsgType.Cookie, echo: token, cookie: cookieNow(), difficulty: 0 },
          { type: MsgType.Roster, token, seq: 1 + int(9), ids: [other.id] },
          { type: MsgType.Left, token, seq: 1 + int(9), id: other.id, reason: LeftReason.Bye },
          { type: MsgType.Pong, token, observed: from, digest: 0 },
        ]));
      case "peer":
        return encodeHandshake({
          from: p.id,
          to: other.id,
          stage: int(4),
          attempt: int(9),
          message: bytes(int(96)),
        });
      case "junk":
        return bytes(int(80));
    }
  };

  let unprovenAnswered = 0, provenAmplified = 0, forgedFromMembers = 0;
  let now = 0;
  for (let step = 0; step < 6_000; step++) {
    now += rand() < 0.01 ? COOKIE_ROTATION / 2 + int(COOKIE_ROTATION) : int(600);
    if (step % 25 === 0) {
      r.handleTimeout(now);
      observe(drainRaw(r));
    }
    const p = pick(peers);
    const roll = rand();
    const from = roll < 0.6 ? p.addr : roll < 0.85 ? pick(peers).addr : pick(strangers);
    const kind = pick([...KINDS, "hello", "ping", "ping", "relay", "repunch", "bye"] as const);
    let data = make(kind, p, from);
    if (rand() < 0.2) {
      data = data.slice();
      for (let k = 1 + int(3); k > 0 && data.length > 0; k--) data[int(data.length)] = int(256);
      if (rand() < 0.3) data = data.subarray(0, int(data.length + 1));
    }

    const before = new Set(delivered);
    r.handleDatagram(now, from, data);
    const out = drainRaw(r);
    const d = decodeServerMsg(data);
    let proven = false;
    if (d.ok) {
      const m = d.value;
      if (
        (m.type === MsgType.Hello || m.type === MsgType.Ping) &&
        validCookie(now, m.id, from, m.cookie)
      ) {
        proven = true;
      }
      if ("token" in m && before.has(`${idHex(m.token)}@${key(from)}`)) proven = true;
    }
    let back = 0, elsewhere = 0;
    for (const t of out) {
      if (key(t.to) === key(from)) back += t.data.length;
      else elsewhere += t.data.length;
    }
    if (!proven) {
      const what = `step ${step}: ${kind} of ${data.length} bytes from ${key(from)} ` +
        `(id of ${p.label}, at ${key(p.addr)}) got ${back} bytes back, ${elsewhere} elsewhere: ` +
        JSON.stringify(out.map((t) => [key(t.to), t.data[3], t.data.length]));
      assert.ok(back <= data.length, what);
      assert.equal(elsewhere, 0, what);
      if (back > 0) unprovenAnswered++;
      if (key(from) !== key(p.addr) || !d.ok) continue;
      if (peers.some((q) => key(q.addr) === key(from))) forgedFromMembers++;
    } else if (back > data.length) {
      provenAmplified++;
    }
    observe(out);
  }
  // The property was not vacuous: unproven datagrams were answered (COOKIE, REFUSED), proven
  // ones were (legitimately) answered with more (fewer since HELLO carries its id key: 246
  // bytes), and members' addresses were spoofed.
  assert.ok(unprovenAnswered > 300, `unproven datagrams answered: ${unprovenAnswered}`);
  assert.ok(provenAmplified > 50, `proven datagrams answered with more: ${provenAmplified}`);
  assert.ok(
    forgedFromMembers > 300,
    `forged datagrams from members' addresses: ${forgedFromMembers}`,
  );
  const periods = Math.floor(now / COOKIE_ROTATION);
  assert.ok(periods >= 2, `the cookie secret rotated (${periods} times)`);
});

Deno.test("registry: INTROs and ROSTERs carry the recipient's token; both INTROs of a pair share an epoch", () => {
  const r = registry({ repunchInterval: 0, resyncInterval: 0 });
  const alice = peer("alice", ALICE_ADDR);
  const bob = peer("bob", BOB_ADDR);
  const carol = peer("carol", CAROL_ADDR);
  const everyone = [alice, bob, carol];
  const epochs = new Map<string, string>();
  const pairKey = (x: string, y: string) => [x, y].sort().join("+");
  const key = (ep: Endpoint) => formatEndpoint(ep);
  let intros = 0, rosters = 0;
  /** Sends one datagram; checks every message with a token against its recipient. */
  const send = (now: number, from: Endpoint, data: Uint8Array): Sent[] => {
    r.handleDatagram(now, from, data);
    const sent = drain(r);
    for (const p of everyone) learn(p, sent);
    for (const { to, msg } of sent) {
      if (!("token" in msg)) continue;
      const recipient = everyone.find((p) => key(p.addr) === key(to));
      assert.ok(recipient, `a message to ${key(to)}, where nobody is`);
      assert.deepEqual(msg.token, recipient.token, `type ${msg.type} to ${recipient.label}`);
      if (msg.type === MsgType.Roster) rosters++;
      if (msg.type !== MsgType.Intro) continue;
      intros++;
      const pair = pairKey(labelOf(msg.id), recipient.label);
      const epoch = idHex(msg.epoch);
      const known = epochs.get(pair);
      if (known === undefined) epochs.set(pair, epoch);
      else assert.equal(epoch, known, `epoch of ${pair}, in the INTRO to ${recipient.label}`);
    }
    return sent;
  };

  for (const p of everyone) send(0, p.addr, helloBytes(r, p));
  assert.equal(epochs.size, 3, "three pairs");
  assert.equal(new Set(epochs.values()).size, 3, "each pair has its own epoch");
  // Resync, repunch, a repeated HELLO, NAT rebinding, relay: the epochs stay.
  send(1, ALICE_ADDR, pingBytes(r, alice, 0));
  send(
    2,
    BOB_ADDR,
    encodeServerMsg({ type: MsgType.Repunch, id: bob.id, token: bob.token, target: carol.id }),
  );
  send(3, CAROL_ADDR, helloBytes(r, carol));
  const rebound: Endpoint = { hostname: "192.0.2.3", port: 6001 };
  carol.addr = rebound;
  send(4, rebound, pingBytes(r, carol, 0, rebound));
  send(
    5,
    ALICE_ADDR,
    encodeServerMsg({
      type: MsgType.Relay,
      from: alice.id,
      token: alice.token,
      to: carol.id,
      payload: fill(9, 1),
    }),
  );
  carol.addr = CAROL_ADDR; // and back
  send(6, CAROL_ADDR, pingBytes(r, carol, 0));
  // Bob registers anew: his pairs get new epochs, alice and carol's stays.
  const old = new Map(epochs);
  send(7, BOB_ADDR, byeBytes(bob));
  for (const k of [pairKey("alice", "bob"), pairKey("bob", "carol")]) epochs.delete(k);
  send(8, BOB_ADDR, helloBytes(r, fresh(bob)));
  for (const k of [pairKey("alice", "bob"), pairKey("bob", "carol")]) {
    assert.ok(epochs.has(k), k);
    assert.notEqual(epochs.get(k), old.get(k), `${k}: a new epoch after re-registering`);
  }
  assert.equal(epochs.get(pairKey("alice", "carol")), old.get(pairKey("alice", "carol")));
  send(9, ALICE_ADDR, pingBytes(r, alice, 0));
  assert.ok(intros >= 14, `checked ${intros} INTROs`);
  assert.ok(rosters >= 5, `checked ${rosters} ROSTERs`);
});

Deno.test("registry: the seq numbers a member receives are 1, 2, 3 … in send order, per member", () => {
  const { r, alice, bob, carol } = threePeers({
    registry: { repunchInterval: 0, resyncInterval: 0, expireAfter: 10_000 },
    joined: 0,
  });
  const everyone = [alice, bob, carol];
  const key = (ep: Endpoint) => formatEndpoint(ep);
  /** The seqs each registration (by token) received, in send order, and of which types. */
  const seqs = new Map<string, number[]>();
  const types = new Map<string, number[]>();
  /** Records the seqs of what the registry sent (after learning the tokens of any WELCOMEs). */
  const record = (sent: Sent[]): void => {
    for (const p of everyone) learn(p, sent);
    for (const { to, msg } of sent) {
      if (!("seq" in msg)) continue;
      const recipient = everyone.find((p) => key(p.addr) === key(to))!;
      assert.deepEqual(msg.token, recipient.token, `type ${msg.type} to ${recipient.label}`);
      const k = `${recipient.label}/${idHex(msg.token)}`;
      seqs.set(k, [...seqs.get(k) ?? [], msg.seq]);
      types.set(k, [...types.get(k) ?? [], msg.type]);
    }
  };
  const send = (now: number, from: Endpoint, data: Uint8Array): void => {
    r.handleDatagram(now, from, data);
    record(drain(r));
  };
  const history = (p: PeerSpec) => seqs.get(`${p.label}/${idHex(p.token)}`) ?? [];
  const kinds = (p: PeerSpec) => types.get(`${p.label}/${idHex(p.token)}`) ?? [];
  const { Intro: I, Left: L, Roster: R } = MsgType;

  for (const p of everyone) send(0, p.addr, helloBytes(r, p));
  // Each member's own counter: alice's third message and carol's third are both seq 3.
  assert.deepEqual(kinds(alice), [R, I, I]);
  assert.deepEqual(kinds(bob), [I, R, I]);
  assert.deepEqual(kinds(carol), [I, I, R]);
  // A resync (ROSTER and INTROs), a repunch, a repeated HELLO (only a WELCOME: no seq), relayed
  // traffic (no seq), a move (INTROs both ways), a BYE (LEFT) and an expiry (LEFT).
  send(1, ALICE_ADDR, pingBytes(r, alice, 0));
  send(
    2,
    BOB_ADDR,
    encodeServerMsg({ type: MsgType.Repunch, id: bob.id, token: bob.token, target: carol.id }),
  );
  send(3, CAROL_ADDR, helloBytes(r, carol));
  send(
    4,
    ALICE_ADDR,
    encodeServerMsg({
      type: MsgType.Relay,
      from: alice.id,
      token: alice.token,
      to: bob.id,
      payload: fill(9, 1),
    }),
  );
  const rebound: Endpoint = { hostname: "192.0.2.3", port: 6001 };
  carol.addr = rebound;
  send(5, rebound, pingBytes(r, carol, rosterDigest([alice.id, bob.id]), rebound));
  send(6, BOB_ADDR, byeBytes(bob));
  const oldBob = history(bob);
  // Bob registers anew: a new token, and his count starts again at 1.
  send(7, BOB_ADDR, helloBytes(r, fresh(bob)));
  send(9_000, ALICE_ADDR, pingBytes(r, alice, rosterDigest([bob.id, carol.id])));
  send(9_000, BOB_ADDR, pingBytes(r, bob, rosterDigest([alice.id, carol.id])));
  r.handleTimeout(10_005); // carol, silent since 5, expires
  record(drain(r));

  assert.deepEqual(kinds(alice), [R, I, I, R, I, I, I, L, I, L]);
  assert.deepEqual(kinds(carol), [I, I, R, I, I, I, L, I]);
  assert.deepEqual(kinds(bob), [I, I, R, L]);
  assert.equal(oldBob.length, 5, "bob's first registration: INTRO, ROSTER, INTRO, INTRO, INTRO");
  assert.equal(seqs.size, 4, "four registrations");
  for (const [k, list] of seqs) {
    assert.deepEqual(list, list.map((_, i) => i + 1), `${k}: 1, 2, 3 … in send order`);
  }
});

Deno.test("registry: after the server itself was stopped, waiting PINGs are read before anyone expires", () => {
  const { r, alice, bob } = threePeers({ registry: { expireAfter: 10_000 }, joined: 2 });
  events(r);
  ping(r, alice, 6_000, rosterDigest([bob.id]));
  ping(r, bob, 6_000, rosterDigest([alice.id]));
  drain(r);
  // Stopped (SIGSTOP) from 7 s to 40 s: the timer asked for 16 s fires at 40 s, before the
  // socket's waiting PINGs are read. Nobody is expired for the server's own absence.
  r.handleTimeout(40_000);
  assert.equal(r.peerCount, 2, "no expiry on the late wake-up");
  assert.deepEqual(drain(r), []);
  assert.ok(r.nextTimeout()! <= 40_000 + 1_500, "woken again once the grace is over");
  ping(r, alice, 40_001, rosterDigest([bob.id])); // alice's PING waited in the socket
  r.handleTimeout(41_500);
  // Bob sent nothing while we were away: he is expired once the grace is over, alice is kept.
  assert.equal(r.peerCount, 1);
  assert.deepEqual(events(r).map((e) => e.type), ["left"]);
});
