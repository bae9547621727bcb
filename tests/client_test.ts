/**
 * Unit tests of the peer core ({@link Client}) against a scripted server: what goes on the
 * wire when peers are introduced, how much work a timer costs in a large room, and how much
 * is kept of departed peers. Virtual time, no sockets.
 */
import assert from "node:assert/strict";
import { Client, DEPARTED_KEEP, MAX_DEPARTED } from "../lib/client.ts";
import { Identity } from "../lib/crypto.ts";
import {
  decodeSealed,
  decodeServerMsg,
  encodeServerMsg,
  type Endpoint,
  EPOCH_LEN,
  LeftReason,
  MsgType,
  type Transmit,
} from "../lib/wire.ts";
import { prng, randomBytesFrom } from "./support/prng.ts";

const SERVER: Endpoint = { hostname: "198.51.100.1", port: 7777 };
const TAG_LEN = 16;

interface Harness {
  c: Client;
  now: number;
  bytes(n: number): Uint8Array;
  /** Feeds a server message to the client. */
  fromServer(m: Parameters<typeof encodeServerMsg>[0]): void;
  /** Introduces a peer; returns its id. */
  intro(o: { id?: Uint8Array; pubkey?: Uint8Array; epoch?: Uint8Array; name: string }): {
    id: Uint8Array;
    epoch: Uint8Array;
  };
  /** Takes everything the client wants sent. */
  drain(): Transmit[];
  /** Advances virtual time to `until`, firing timers on the way (what is sent is kept for drain). */
  runUntil(until: number): number;
}

function harness(seed = 1): Harness {
  const rng = prng(seed);
  const bytes = (n: number) => randomBytesFrom(rng, n);
  const id = bytes(8);
  const c = new Client({
    server: SERVER,
    room: "room",
    name: "me",
    relayOnly: false,
    privateEndpoints: [],
    keepalive: 25_000,
    registerTimeout: 10_000,
    id,
    identity: Identity.fromPrivate(bytes(32)),
  });
  const held: Transmit[] = [];
  const h: Harness = {
    c,
    now: 0,
    bytes,
    fromServer(m) {
      c.handleDatagram(h.now, SERVER, encodeServerMsg(m));
    },
    intro(o) {
      const pid = o.id ?? bytes(8), epoch = o.epoch ?? bytes(EPOCH_LEN);
      h.fromServer({
        type: MsgType.Intro,
        id: pid,
        pubkey: o.pubkey ?? Identity.fromPrivate(bytes(32)).publicKey,
        epoch,
        flags: 0,
        name: o.name,
        publicEndpoint: { hostname: "203.0.113.9", port: 4000 + (pid[0]! << 4) + pid[1]! },
        privateEndpoints: [],
      });
      return { id: pid, epoch };
    },
    drain() {
      const out: Transmit[] = held.splice(0);
      for (let t = c.pollTransmit(); t; t = c.pollTransmit()) out.push(t);
      return out;
    },
    runUntil(until) {
      let calls = 0;
      for (;;) {
        const t = c.nextTimeout();
        if (t === undefined || t > until) break;
        h.now = Math.max(h.now, t);
        c.handleTimeout(h.now);
        held.push(...h.drain());
        calls++;
      }
      h.now = until;
      return calls;
    },
  };
  c.start(0);
  h.fromServer({ type: MsgType.Welcome, id, name: "me", observed: SERVER });
  h.drain();
  return h;
}

/** The sealed frames the client relayed via the server to `to`, in order. */
function relayedTo(out: Transmit[], to: Uint8Array) {
  return out.flatMap((t) => {
    const m = decodeServerMsg(t.data);
    if (!m.ok || m.value.type !== MsgType.Relay) return [];
    const s = decodeSealed(m.value.payload);
    return s.ok && s.value.to.every((b, i) => b === to[i]) ? [s.value] : [];
  });
}

Deno.test("client: one key introduced under two ids never gives the same keystream", () => {
  const h = harness();
  const shared = Identity.fromPrivate(h.bytes(32)).publicKey;
  const epoch = h.bytes(EPOCH_LEN);
  const x = h.intro({ pubkey: shared, epoch, name: "x" });
  const y = h.intro({ pubkey: shared, epoch, name: "y" });
  const out = h.drain();
  // Both first frames are ANNOUNCEs (same plaintext) under nonce counter 1.
  const fx = relayedTo(out, x.id)[0]!, fy = relayedTo(out, y.id)[0]!;
  assert.equal(fx.counter, 1n);
  assert.equal(fy.counter, 1n);
  const ct = (b: Uint8Array) => [...b.subarray(0, b.length - TAG_LEN)];
  assert.notDeepEqual(ct(fx.body), ct(fy.body), "same key and nonce: keystream reused");
});

Deno.test("client: a new introduction epoch re-keys the session; the same epoch does not", () => {
  const h = harness(2);
  const pubkey = Identity.fromPrivate(h.bytes(32)).publicKey;
  const first = h.intro({ pubkey, name: "x" });
  const a = relayedTo(h.drain(), first.id)[0]!;
  h.intro({ id: first.id, pubkey, epoch: first.epoch, name: "x" }); // a repeated INTRO
  h.runUntil(h.now + 500); // the next ANNOUNCE
  const b = relayedTo(h.drain(), first.id)[0]!;
  assert.ok(b.counter > a.counter, "same epoch: the counter goes on");
  h.intro({ id: first.id, pubkey, epoch: h.bytes(EPOCH_LEN), name: "x" });
  const c = relayedTo(h.drain(), first.id)[0]!;
  assert.equal(c.counter, 1n, "new epoch: new keys, counters start again");
  const ct = (f: typeof a) => [...f.body.subarray(0, f.body.length - TAG_LEN)];
  assert.notDeepEqual(
    ct(c),
    ct(a),
    "counter 1 under the new epoch must not reuse the old keystream",
  );
});

Deno.test("client: a timer wakes only the peers that are due, not the whole room", () => {
  const h = harness(3);
  const n = 100;
  for (let i = 0; i < n; i++) {
    h.now = i * 37; // Introduced at different moments, so their timers differ.
    h.intro({ name: `p${i}` });
  }
  h.drain();
  // Let punching give up and the announces back off: the room is idle but for its timers.
  h.runUntil(60_000);
  h.drain();
  const before = h.c.stats.remoteWakeups;
  const calls = h.runUntil(120_000);
  const wakeups = h.c.stats.remoteWakeups - before;
  assert.ok(calls > 0);
  // Every peer has a few timers a minute (announce backoff, upgrade rounds); touching the whole
  // room on every tick would be calls * n.
  assert.ok(wakeups <= 3 * calls, `${wakeups} wake-ups for ${calls} timer calls`);
  assert.ok(wakeups < calls * n / 10, `${wakeups} wake-ups for ${calls} timer calls`);
});

Deno.test("client: departed peers are kept for a while, then forgotten (bounded)", () => {
  const h = harness(4);
  const ids: Uint8Array[] = [];
  for (let i = 0; i < MAX_DEPARTED + 16; i++) ids.push(h.intro({ name: `p${i}` }).id);
  for (const id of ids) h.fromServer({ type: MsgType.Left, id, reason: LeftReason.Bye });
  assert.equal(h.c.peers().length, 0);
  assert.equal(h.c.departedKept, MAX_DEPARTED, "never more than MAX_DEPARTED kept");
  h.runUntil(DEPARTED_KEEP - 1);
  assert.equal(h.c.departedKept, MAX_DEPARTED);
  h.runUntil(DEPARTED_KEEP + 1);
  assert.equal(h.c.departedKept, 0, "none kept longer than DEPARTED_KEEP");
});

Deno.test("client: a forgotten peer is never keyed again under its old epoch", () => {
  const h = harness(5);
  const pubkey = Identity.fromPrivate(h.bytes(32)).publicKey;
  const x = h.intro({ pubkey, name: "x" });
  h.fromServer({ type: MsgType.Left, id: x.id, reason: LeftReason.Expired });
  h.runUntil(DEPARTED_KEEP + 1);
  assert.equal(h.c.departedKept, 0);
  h.intro({ id: x.id, pubkey, epoch: x.epoch, name: "x" });
  assert.equal(h.c.drops["intro-retired-epoch"], 1);
  assert.equal(h.c.peers().length, 0);
  h.intro({ id: x.id, pubkey, name: "x" }); // registered anew: a fresh epoch
  assert.deepEqual(h.c.peers().map((p) => p.name), ["x"]);
});

Deno.test("client: a message for a peer whose queue is full is refused with a notice", () => {
  const h = harness(6);
  h.intro({ name: "slow" });
  h.drain();
  // The peer never acknowledges: 4096 fragments fill its queue behind the window.
  const line = "x".repeat(60_000); // 60 fragments per line
  let sent = 0;
  for (let i = 0; i < 100; i++) sent += h.c.send(h.now, line);
  assert.ok(sent < 100, "some lines must be refused");
  const notices: string[] = [];
  for (let e = h.c.pollEvent(); e; e = h.c.pollEvent()) {
    if (e.type === "notice") notices.push(e.message);
  }
  assert.ok(notices.some((m) => m.includes("slow")), notices.join("\n"));
});
