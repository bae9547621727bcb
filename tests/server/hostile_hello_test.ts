/**
 * The rendezvous server against replayed and squatting registrations (issue 17 #7 and #2), from
 * the attacker's side: what it sends (a captured HELLO, replayed from the old address; a HELLO
 * with a known id), what it gets back, and what the members of the room see.
 */
import assert from "node:assert/strict";
import { Registry } from "../../lib/server/registry.ts";
import { signedHello, testPeerId } from "../support/hello.ts";
import { peerIdKey } from "../../lib/crypto/peer_id.ts";
import { drainEvents, drainTransmits } from "../support/registry_out.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  NAME_TAG_LEN,
  type ServerMsg,
} from "../../lib/wire/server_msg.ts";
import { seededRandom } from "../support/prng.ts";

const SECRET = new Uint8Array(32).fill(7);
const ALICE: Endpoint = { hostname: "198.51.100.1", port: 40000 };
const BOB: Endpoint = { hostname: "203.0.113.2", port: 50000 };

function tag(s: string): Uint8Array {
  const t = new Uint8Array(NAME_TAG_LEN);
  t.set(new TextEncoder().encode(s).subarray(0, NAME_TAG_LEN));
  return t;
}

/** What the registry sent, decoded, with its destination. */
function sent(r: Registry): { to: Endpoint; msg: ServerMsg }[] {
  return drainTransmits(r).flatMap((t) => {
    const d = decodeServerMsg(t.data);
    return d.ok ? [{ to: t.to, msg: d.value }] : [];
  });
}

/** Registers `id` from `from` (fetching the cookie first); returns the HELLO bytes and token. */
function register(
  r: Registry,
  now: number,
  from: Endpoint,
  id: Uint8Array,
  name: string,
  nonce: Uint8Array,
): { hello: Uint8Array; token: Uint8Array } {
  const hello = encodeServerMsg(signedHello("lobby", {
    id,
    nonce,
    cookie: r.cookieFor(id, from, now),
    nameTag: tag(name),
  }));
  r.handleDatagram(now, from, hello);
  const w = sent(r).find((s) => s.msg.type === MsgType.Welcome);
  assert.ok(w && w.msg.type === MsgType.Welcome, `${name} registered`);
  return { hello, token: w.msg.token };
}

Deno.test("hostile hello: a HELLO replayed after its sender's BYE registers no ghost", () => {
  const r = new Registry({}, seededRandom(1), SECRET);
  const alice = testPeerId("alice"), bob = testPeerId("bob");
  register(r, 1_000, BOB, bob, "bob", new Uint8Array(8).fill(2));
  const a = register(r, 2_000, ALICE, alice, "alice", new Uint8Array(8).fill(1));
  r.handleDatagram(3_000, ALICE, encodeServerMsg({ type: MsgType.Bye, id: alice, token: a.token }));
  sent(r);
  drainEvents(r);
  assert.equal(r.peerCount, 1, "alice left");
  // An on-path attacker replays the HELLO it captured, from alice's old address (spoofed),
  // within the cookie's lifetime.
  for (const at of [3_500, 30_000, 90_000]) r.handleDatagram(at, ALICE, a.hello);
  const out = sent(r);
  assert.deepEqual(out.map((s) => s.msg.type), [], "no WELCOME, no INTRO to bob");
  assert.equal(r.peerCount, 1, "no ghost alice in the room");
  assert.deepEqual(drainEvents(r).filter((e) => e.type === "registered"), []);
  assert.ok((r.stats.drops["hello-replayed"] ?? 0) >= 1);
});

Deno.test("hostile hello: a HELLO whose nonce was used once registers nobody again, even after expiry", () => {
  const r = new Registry({ expireAfter: 10_000 }, seededRandom(2), SECRET);
  const alice = testPeerId("alice");
  const a = register(r, 1_000, ALICE, alice, "alice", new Uint8Array(8).fill(1));
  // Alice's process died; her registration expires.
  r.handleTimeout(12_000);
  sent(r);
  assert.equal(r.peerCount, 0);
  r.handleDatagram(20_000, ALICE, a.hello);
  assert.deepEqual(sent(r).map((s) => s.msg.type), []);
  assert.equal(r.peerCount, 0);
  // Alice herself, registering again, draws a fresh nonce and gets in.
  register(r, 21_000, ALICE, alice, "alice", new Uint8Array(8).fill(3));
  assert.equal(r.peerCount, 1);
});

Deno.test("hostile hello: a repeated HELLO of a live registration still gets its WELCOME again", () => {
  const r = new Registry({}, seededRandom(3), SECRET);
  const alice = testPeerId("alice");
  const a = register(r, 1_000, ALICE, alice, "alice", new Uint8Array(8).fill(1));
  r.handleDatagram(1_100, ALICE, a.hello); // the WELCOME was lost
  const again = sent(r).filter((s) => s.msg.type === MsgType.Welcome);
  assert.equal(again.length, 1);
});

Deno.test("hostile hello: a known id cannot be squatted; its owner registers it after a restart", () => {
  // The server restarted (new registry, new cookie secret): alice's id is known to everyone who
  // saw an INTRO of her. Mallory registers it first, from her own address, with her own id key.
  const r = new Registry({}, seededRandom(4), SECRET);
  const alice = testPeerId("alice");
  const mallory: Endpoint = { hostname: "192.0.2.66", port: 6666 };
  const squat = encodeServerMsg(signedHello("lobby", {
    id: alice,
    nonce: new Uint8Array(8).fill(9),
    cookie: r.cookieFor(alice, mallory, 1_000),
    nameTag: tag("mallory"),
    idKey: peerIdKey(new Uint8Array(32).fill(0x66)),
  }));
  r.handleDatagram(1_000, mallory, squat);
  const got = sent(r);
  assert.deepEqual(got.map((s) => s.msg.type), [MsgType.Refused], "mallory is refused");
  assert.equal(r.peerCount, 0);
  assert.equal(r.stats.drops["hello-bad-id"], 1);
  // Alice, registering again after the restart, gets her id.
  register(r, 1_100, ALICE, alice, "alice", new Uint8Array(8).fill(1));
  assert.equal(r.peerCount, 1);
});

Deno.test("hostile hello: a wrong-token PING from the member's address is told to register again (once a second); from elsewhere, nothing", () => {
  const r = new Registry({}, seededRandom(5), SECRET);
  const alice = testPeerId("alice");
  const a = register(r, 1_000, ALICE, alice, "alice", new Uint8Array(8).fill(1));
  const lost = new Uint8Array(8).fill(0x77);
  const ping = (token: Uint8Array) =>
    encodeServerMsg({
      type: MsgType.Ping,
      id: alice,
      token,
      cookie: r.cookieFor(alice, ALICE, 2_000),
      digest: 0,
    });
  // Alice lost her token (or is out of step): she is told, echoing the token she sent.
  const wrong = ping(lost);
  r.handleDatagram(2_000, ALICE, wrong);
  const told = sent(r);
  assert.equal(told.length, 1);
  const m = told[0]!.msg;
  assert.ok(m.type === MsgType.Refused);
  assert.deepEqual(m.echo, lost, "it echoes the PING's token, not the registration's");
  assert.ok(encodeServerMsg(m).length <= wrong.length, "never larger than the PING");
  // A flood of them (an off-path attacker spoofing her address) gets one a second.
  for (let i = 0; i < 100; i++) r.handleDatagram(2_001 + i, ALICE, wrong);
  assert.deepEqual(sent(r), []);
  // From another address: nothing at all.
  r.handleDatagram(5_000, BOB, wrong);
  assert.deepEqual(sent(r), []);
  // She registers again from her address with a fresh nonce: the registration's WELCOME.
  const again = register(r, 5_100, ALICE, alice, "alice", new Uint8Array(8).fill(2));
  assert.deepEqual(again.token, a.token, "the same registration, recovered");
  assert.equal(r.peerCount, 1);
});
