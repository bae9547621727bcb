/**
 * Unit tests of the peer core ({@link Client}) against a scripted server: what goes on the
 * wire when peers are introduced, how much work a timer costs in a large room, and how much
 * is kept of departed peers. Virtual time, no sockets.
 */
import { ChatKind, encodeChat } from "../../lib/wire/chat_message.ts";
import assert from "node:assert/strict";
import { Client, type ClientOptions, DEPARTED_KEEP, MAX_DEPARTED } from "../../lib/peer/client.ts";
import { looksLikeStun, StunResponder } from "../../lib/nat/stun.ts";
import { PortMapper } from "../../lib/nat/portmap/mapper.ts";
import { FakeGateway } from "../support/portmap_gateway.ts";
import { MAX_ROOM_SIZE } from "../../lib/wire/server_msg.ts";
import { Identity } from "../../lib/crypto/identity.ts";
import { SEAL_OVERHEAD, type TransportCipher } from "../../lib/crypto/session.ts";
import { bytesEqual } from "../../lib/core/bytes.ts";
import { systemRandom } from "../../lib/io/random.ts";
import { MAX_ANSWERS, noiseFactory } from "../../lib/peer/handshake/handshake.ts";
import { pairPrologue } from "../../lib/peer/handshake/secure_link.ts";
import { type Endpoint, sameEndpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import {
  decodeHandshake,
  decodeInner,
  decodeSealed,
  encodeHandshake,
  encodeInner,
  encodeSealedHeader,
  type HandshakeFrame,
  type InnerFrame,
  InnerKind,
} from "../../lib/wire/peer_frame.ts";
import {
  COOKIE_LEN,
  decodeServerMsg,
  encodeServerMsg,
  EPOCH_LEN,
  LeftReason,
  type MsgOf,
  RefuseCode,
  type ServerMsg,
  TOKEN_LEN,
} from "../../lib/wire/server_msg.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import { simRoom } from "../support/sim.ts";
import { seededRandom } from "../support/prng.ts";

const SERVER: Endpoint = { hostname: "198.51.100.1", port: 7777 };

/** A sequenced server message without its sequence number (the harness numbers them). */
type Unsequenced =
  | Omit<MsgOf<typeof MsgType.Intro>, "seq">
  | Omit<MsgOf<typeof MsgType.Left>, "seq">
  | Omit<MsgOf<typeof MsgType.Roster>, "seq">;

interface Harness {
  c: Client;
  now: number;
  bytes(n: number): Uint8Array;
  /** Feeds a server message to the client (INTRO, LEFT and ROSTER get the next sequence number). */
  fromServer(m: ServerMsg | Unsequenced): void;
  /** The registration token the scripted server handed out. */
  token: Uint8Array;
  /** Feeds a peer frame relayed by the server from `from`. */
  relayed(from: Uint8Array, payload: Uint8Array): void;
  /** Introduces a peer (with an id below or above ours if asked); returns its id and epoch. */
  intro(o: {
    id?: Uint8Array;
    epoch?: Uint8Array;
    name: string;
    below?: boolean;
    above?: boolean;
  }): {
    id: Uint8Array;
    epoch: Uint8Array;
  };
  /** Takes everything the client wants sent. */
  drain(): Transmit[];
  /** Advances virtual time to `until`, firing timers on the way (what is sent is kept for drain). */
  runUntil(until: number): number;
}

/** The options of the client under test: id key `idSeed`, identity and randomness from `bytes`. */
function clientOptions(idSeed: Uint8Array, bytes: (n: number) => Uint8Array): ClientOptions {
  return {
    server: SERVER,
    room: simRoom(),
    name: "me",
    relayOnly: false,
    privateEndpoints: [],
    keepalive: 25_000,
    registerTimeout: 10_000,
    idSeed,
    identity: Identity.fromPrivate(bytes(32)),
    random: bytes,
  };
}

function harness(seed = 1, extra: Partial<ClientOptions> = {}): Harness {
  const bytes = seededRandom(seed);
  const c = new Client({ ...clientOptions(bytes(32), bytes), ...extra });
  const id = c.id;
  const token = bytes(TOKEN_LEN);
  const held: Transmit[] = [];
  let seq = 0;
  const h: Harness = {
    c,
    now: 0,
    token,
    bytes,
    relayed(from, payload) {
      h.fromServer({ type: MsgType.Relayed, token, from, payload });
    },
    fromServer(m) {
      const full = ("seq" in m ? m : { ...m, seq: ++seq }) as ServerMsg;
      c.handleDatagram(h.now, SERVER, encodeServerMsg(full));
    },
    intro(o) {
      const pid = o.id ?? bytes(8), epoch = o.epoch ?? bytes(EPOCH_LEN);
      if (o.below) pid[0] = Math.min(pid[0]!, id[0]! - 1);
      if (o.above) pid[0] = Math.max(pid[0]!, id[0]! + 1);
      h.fromServer({
        type: MsgType.Intro,
        token,
        id: pid,
        epoch,
        flags: 0,
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
  h.fromServer({
    type: MsgType.Welcome,
    id,
    nonce: helloOf(h.drain()).nonce,
    token,
    boot: new Uint8Array(8),
    observed: SERVER,
  });
  h.drain();
  return h;
}

/** The last HELLO among `sent`. */
function helloOf(sent: Transmit[]): MsgOf<typeof MsgType.Hello> {
  const hellos = sent.map((t) => decodeServerMsg(t.data)).flatMap((d) =>
    d.ok && d.value.type === MsgType.Hello ? [d.value] : []
  );
  assert.ok(hellos.length > 0, "a HELLO was sent");
  return hellos.at(-1)!;
}

/** A peer frame the client relayed via the server. */
interface Relayed {
  kind: "handshake" | "sealed";
  stage: number;
  attempt: number;
}

/** The peer frames the client relayed via the server to `to`, in order. */
function relayedTo(out: Transmit[], to: Uint8Array): Relayed[] {
  return out.flatMap((t): Relayed[] => {
    const m = decodeServerMsg(t.data);
    if (!m.ok || m.value.type !== MsgType.Relay || !bytesEqual(m.value.to, to)) return [];
    const hs = decodeHandshake(m.value.payload);
    if (hs.ok) return [{ kind: "handshake", stage: hs.value.stage, attempt: hs.value.attempt }];
    return decodeSealed(m.value.payload).ok ? [{ kind: "sealed", stage: 0, attempt: 0 }] : [];
  });
}

Deno.test("client: only a handshake made with the room secret is answered", () => {
  for (const psk of [simRoom().psk, simRoom("room", "wrong guess").psk]) {
    const h = harness(1);
    const x = h.intro({ name: "x", below: true }); // x has the lower id: it initiates
    h.drain();
    const noise = noiseFactory({ staticKey: h.bytes(32), psk, random: systemRandom });
    const hs = noise(true, pairPrologue(simRoom().id, x.id, h.c.id));
    const msg1 = hs.writeMessage(new Uint8Array([0, 0, 0, 1])); // payload: the attempt
    h.relayed(
      x.id,
      encodeHandshake({ from: x.id, to: h.c.id, stage: 1, attempt: 1, cookie: 0, message: msg1 }),
    );
    const answers = relayedTo(h.drain(), x.id).filter((f) => f.kind === "handshake");
    if (psk === simRoom().psk) {
      assert.deepEqual(answers.map((f) => f.stage), [2], "a member gets message 2");
    } else {
      assert.deepEqual(answers, [], "a non-member gets nothing, not even our identity");
      assert.equal(h.c.drops["handshake-failed"], 1);
    }
  }
});

Deno.test("client: a spoofed COOKIE then REFUSED or WELCOME neither ends nor hijacks registration", () => {
  const bytes = seededRandom(9);
  const c = new Client(clientOptions(bytes(32), bytes));
  const id = c.id;
  const sent = () => {
    const out: Transmit[] = [];
    for (let t = c.pollTransmit(); t; t = c.pollTransmit()) out.push(t);
    return out;
  };
  const events = () => {
    const out: string[] = [];
    for (let e = c.pollEvent(); e; e = c.pollEvent()) out.push(e.type);
    return out;
  };
  c.start(0);
  const nonce = helloOf(sent()).nonce;
  // An on-path attacker (it read our HELLO's nonce) picks the cookie our next HELLO carries …
  const chosen = new Uint8Array(COOKIE_LEN).fill(0xa5);
  c.handleDatagram(
    300,
    SERVER,
    encodeServerMsg({ type: MsgType.Cookie, echo: nonce, cookie: chosen, difficulty: 0 }),
  );
  assert.deepEqual(helloOf(sent()).cookie, chosen, "a COOKIE only sets the next HELLO's cookie");
  // … and echoes it in a REFUSED and a WELCOME: neither is believed.
  const refused = {
    type: MsgType.Refused,
    echo: chosen,
    code: RefuseCode.RoomFull,
    message: "go away",
  } as const;
  c.handleDatagram(301, SERVER, encodeServerMsg(refused));
  const planted = new Uint8Array(TOKEN_LEN).fill(0x5a);
  c.handleDatagram(
    302,
    SERVER,
    encodeServerMsg({
      type: MsgType.Welcome,
      id,
      nonce: chosen,
      token: planted,
      boot: new Uint8Array(8),
      observed: SERVER,
    }),
  );
  assert.deepEqual(events(), [], "no fatal, no ready");
  assert.equal(c.registered, false);
  // The real server's WELCOME echoes the HELLO's nonce.
  const token = bytes(TOKEN_LEN);
  c.handleDatagram(
    303,
    SERVER,
    encodeServerMsg({
      type: MsgType.Welcome,
      id,
      nonce,
      token,
      boot: new Uint8Array(8),
      observed: SERVER,
    }),
  );
  assert.equal(c.registered, true);
  assert.deepEqual(events(), ["ready"]);
});

Deno.test("client: server messages without the registration token are ignored", () => {
  const h = harness(2);
  const x = h.intro({ name: "x" });
  const forged = new Uint8Array(TOKEN_LEN).fill(0xee);
  h.fromServer({ type: MsgType.Left, token: forged, id: x.id, reason: LeftReason.Bye });
  h.fromServer({ type: MsgType.Roster, token: forged, ids: [] });
  h.fromServer({
    type: MsgType.Intro,
    token: forged,
    id: h.bytes(8),
    epoch: h.bytes(EPOCH_LEN),
    flags: 0,
    publicEndpoint: null,
    privateEndpoints: [],
  });
  assert.equal(h.c.drops["server-bad-token"], 3);
  assert.equal(h.c.departedKept, 0, "a forged LEFT or ROSTER removes nobody");
  h.fromServer({ type: MsgType.Left, token: h.token, id: x.id, reason: LeftReason.Bye });
  assert.equal(h.c.departedKept, 1, "the real LEFT does");
});

Deno.test("client: a new introduction epoch starts a new handshake; the same epoch does not", () => {
  const h = harness(3);
  const x = h.intro({ name: "x", above: true }); // we have the lower id: we initiate
  const first = relayedTo(h.drain(), x.id).filter((f) => f.kind === "handshake");
  assert.deepEqual(first.map((f) => [f.stage, f.attempt]), [[1, 1]]);
  h.intro({ id: x.id, epoch: x.epoch, name: "x" }); // a repeated INTRO
  assert.deepEqual(relayedTo(h.drain(), x.id), [], "no new handshake for the same epoch");
  h.intro({ id: x.id, name: "x" }); // x registered anew
  const again = relayedTo(h.drain(), x.id).filter((f) => f.kind === "handshake");
  assert.deepEqual(again.map((f) => [f.stage, f.attempt]), [[1, 2]]);
});

Deno.test("client: a timer wakes only the peers that are due, not the whole room", () => {
  const h = harness(3);
  const n = 100;
  for (let i = 0; i < n; i++) {
    h.runUntil(i * 37); // Introduced at different moments, so their timers differ.
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
  for (const id of ids) {
    h.fromServer({ type: MsgType.Left, token: h.token, id, reason: LeftReason.Bye });
  }
  assert.equal(h.c.peers().length, 0);
  assert.equal(h.c.departedKept, MAX_DEPARTED, "never more than MAX_DEPARTED kept");
  h.runUntil(DEPARTED_KEEP - 1);
  assert.equal(h.c.departedKept, MAX_DEPARTED);
  h.runUntil(DEPARTED_KEEP + 1);
  assert.equal(h.c.departedKept, 0, "none kept longer than DEPARTED_KEEP");
});

Deno.test("client: a forgotten peer is never keyed again under its old epoch", () => {
  const h = harness(5);
  const x = h.intro({ name: "x" });
  h.fromServer({ type: MsgType.Left, token: h.token, id: x.id, reason: LeftReason.Expired });
  h.runUntil(DEPARTED_KEEP + 1);
  assert.equal(h.c.departedKept, 0);
  h.intro({ id: x.id, epoch: x.epoch, name: "x" });
  assert.equal(h.c.drops["intro-retired-epoch"], 1);
  assert.equal(h.c.departedKept, 0);
  h.intro({ id: x.id, name: "x" }); // registered anew: a fresh epoch
  h.fromServer({ type: MsgType.Left, token: h.token, id: x.id, reason: LeftReason.Bye });
  assert.equal(h.c.departedKept, 1, "introduced again under the new epoch");
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
    if (e.type === "notice") notices.push(e.kind);
  }
  assert.ok(notices.includes("queue-full"), notices.join("\n"));
});

Deno.test("client: a forged attempt number cannot pin a pair (it is authenticated)", () => {
  const h = harness(7);
  const x = h.intro({ name: "x", below: true }); // x initiates
  h.drain();
  const noise = noiseFactory({ staticKey: h.bytes(32), psk: simRoom().psk, random: systemRandom });
  const msg1 = (attempt: number) =>
    noise(true, pairPrologue(simRoom().id, x.id, h.c.id)).writeMessage(
      new Uint8Array([0, 0, 0, attempt]),
    );
  // An on-path attacker rewrites the clear attempt number of a genuine message 1.
  h.relayed(
    x.id,
    encodeHandshake({
      from: x.id,
      to: h.c.id,
      stage: 1,
      attempt: 0xffffffff,
      cookie: 0,
      message: msg1(1),
    }),
  );
  assert.deepEqual(relayedTo(h.drain(), x.id).filter((f) => f.kind === "handshake"), []);
  assert.equal(h.c.drops["handshake-failed"], 1);
  // The genuine attempt still gets its answer.
  h.runUntil(h.now + 300);
  h.relayed(
    x.id,
    encodeHandshake({ from: x.id, to: h.c.id, stage: 1, attempt: 2, cookie: 0, message: msg1(2) }),
  );
  const answers = relayedTo(h.drain(), x.id).filter((f) => f.kind === "handshake" && f.stage > 0);
  assert.deepEqual(answers.map((f) => [f.stage, f.attempt]), [[2, 2]]);
});

Deno.test("client: a flood of INTROs from a hostile server is capped at the largest room", () => {
  const h = harness(8);
  for (let i = 0; i < MAX_ROOM_SIZE + 50; i++) h.intro({ name: `p${i}` });
  h.drain();
  assert.equal(h.c.drops["intro-room-too-large"], 50);
});

/** The first HANDSHAKE frame of `stage` the client sent through the relay. */
function relayedHandshake(out: Transmit[], stage: number): HandshakeFrame {
  return out.flatMap((t) => {
    const m = decodeServerMsg(t.data);
    if (!m.ok || m.value.type !== MsgType.Relay) return [];
    const f = decodeHandshake(m.value.payload);
    return f.ok && f.value.stage === stage ? [f.value] : [];
  })[0]!;
}

/**
 * Completes both handshakes with a member `x` whose name is `name`: x's own (x initiates, the
 * client answers) and the client's (the client initiated it at the introduction; x answers).
 * Returns the key the client seals with.
 */
function member(h: Harness, name: string) {
  const x = h.intro({ name, below: true });
  const sent = h.drain();
  const staticKey = h.bytes(32);
  const noise = noiseFactory({ staticKey, psk: simRoom().psk, random: systemRandom });
  const payload = (attempt: number, text = "") => {
    const t = new TextEncoder().encode(text);
    const out = new Uint8Array(4 + t.length);
    new DataView(out.buffer).setUint32(0, attempt);
    out.set(t, 4);
    return out;
  };
  const relay = (stage: number, attempt: number, message: Uint8Array) =>
    h.relayed(
      x.id,
      encodeHandshake({ from: x.id, to: h.c.id, stage, attempt, cookie: 0, message }),
    );
  // x's handshake: 1 ->, <- 2, 3 ->.
  const mine = noise(true, pairPrologue(simRoom().id, x.id, h.c.id));
  relay(1, 1, mine.writeMessage(payload(1)));
  assert.ok(mine.readMessage(relayedHandshake(h.drain(), 2).message), "message 2 opens");
  relay(3, 1, mine.writeMessage(payload(1, name)));
  // The client's handshake: its message 1 went out at the introduction.
  const first = relayedHandshake(sent, 1);
  const theirs = noise(false, pairPrologue(simRoom().id, h.c.id, x.id));
  assert.ok(theirs.readMessage(first.message), "message 1 opens");
  relay(2, first.attempt, theirs.writeMessage(payload(first.attempt, name)));
  const last = h.drain();
  assert.ok(theirs.readMessage(relayedHandshake(last, 3).message), "message 3 opens");
  // What the client sent with its message 3 (its first sealed frames) is kept for the caller.
  return { x, keys: theirs.split(), own: mine.split().initiatorToResponder, sent: last };
}

/** A SEALED frame from `from` to `to` carrying `inner`, sealed with `key` under `counter`. */
function sealedFrom(
  from: Uint8Array,
  to: Uint8Array,
  key: TransportCipher,
  counter: bigint,
  inner: InnerFrame,
): Uint8Array {
  const header = encodeSealedHeader(from, to, counter);
  const plain = encodeInner(inner);
  const out = new Uint8Array(header.length + plain.length + SEAL_OVERHEAD);
  out.set(header);
  key.sealInto(counter, header, plain, out, header.length);
  return out;
}

Deno.test("client: two members claiming one name are both shown with fingerprints", () => {
  const h = harness(9);
  member(h, "alice");
  h.drain();
  h.runUntil(h.now + 300);
  member(h, "alice");
  h.drain();
  const warnings: string[] = [];
  for (let e = h.c.pollEvent(); e; e = h.c.pollEvent()) {
    if (e.type === "warning" && e.kind === "name-clash") warnings.push(e.message);
  }
  assert.equal(warnings.length, 1, "the second alice is flagged");
  assert.match(warnings[0]!, /Two peers call themselves alice: fingerprints \S+ and \S+/);
});

Deno.test("client: a peer introduced again but not shown again leaves without a second left", () => {
  const h = harness(12);
  const { x, own } = member(h, "xena");
  h.runUntil(h.now + 4_000); // punching gives up: xena is shown on the relay
  const events = () => {
    const out: string[] = [];
    for (let e = h.c.pollEvent(); e; e = h.c.pollEvent()) {
      if (e.type === "peer" || e.type === "left") out.push(`${e.type} ${e.name}`);
    }
    return out;
  };
  assert.deepEqual(events(), ["peer xena"]);
  const left = () =>
    h.fromServer({ type: MsgType.Left, token: h.token, id: x.id, reason: LeftReason.Bye });
  left();
  assert.deepEqual(events(), ["left xena"]);
  h.intro({ id: x.id, epoch: x.epoch, name: "xena" }); // back, but gone again before shown
  left();
  assert.deepEqual(events(), [], "no second left for a peer the user no longer sees");
  h.intro({ id: x.id, epoch: x.epoch, name: "xena" });
  h.runUntil(h.now + 4_000);
  assert.deepEqual(events(), [], "not shown on the relay before it is heard from");
  h.relayed(
    x.id,
    sealedFrom(x.id, h.c.id, own, 1n, {
      kind: InnerKind.Ack,
      stream: 0,
      cumulative: 0,
      selective: 0,
    }),
  );
  left();
  assert.deepEqual(events(), ["peer xena", "left xena"], "shown again, it leaves visibly again");
});

Deno.test("client: lines a peer gave up are told as missed, the others shown in order", () => {
  const h = harness(13);
  const { x, own } = member(h, "xena");
  h.runUntil(h.now + 4_000);
  let counter = 0n;
  const line = (seq: number, base: number, text: string) =>
    h.relayed(
      x.id,
      sealedFrom(x.id, h.c.id, own, ++counter, {
        kind: InnerKind.Data,
        stream: 9,
        base,
        seq,
        first: true,
        more: false,
        text: encodeChat({ kind: ChatKind.Line, id: new Uint8Array(8).fill(seq), text }),
      }),
    );
  line(1, 1, "one");
  line(4, 4, "four"); // xena gave 2 and 3 up
  const shown: string[] = [];
  for (let e = h.c.pollEvent(); e; e = h.c.pollEvent()) {
    if (e.type === "message") shown.push(e.text);
    if (e.type === "notice" && e.kind === "missed") shown.push(e.message);
  }
  assert.deepEqual(shown, [
    "one",
    "Missed lines from xena: 2 frames of theirs never arrived (they gave them up)",
    "four",
  ]);
});

/** The inner frames the client sealed to `to` (direct or relayed), opened with `key`. */
function framesTo(
  out: Transmit[],
  to: Uint8Array,
  key: TransportCipher,
): InnerFrame[] {
  return out.flatMap((t) => {
    const m = decodeServerMsg(t.data);
    const payload = m.ok && m.value.type === MsgType.Relay ? m.value.payload : t.data;
    const s = decodeSealed(payload);
    if (!s.ok || !bytesEqual(s.value.to, to)) return [];
    const plain = key.open(s.value.counter, s.value.header, s.value.body);
    const inner = plain && decodeInner(plain);
    return inner && inner.ok ? [inner.value] : [];
  });
}

Deno.test("client: with --stun, addresses STUN servers see are told to peers, sealed", () => {
  const stun = { hostname: "192.0.2.201", port: 3478 };
  const h = harness(10, { stun: [stun] });
  const { x, keys } = member(h, "xena");
  // The p2p server and the STUN server both see us at an address the server's view lacks
  // (a different route): it becomes a candidate the peer learns about.
  const seen = { hostname: "203.0.113.99", port: 5555 };
  const answered = new Set<string>();
  for (let round = 0; round < 5 && answered.size < 2; round++) {
    h.runUntil(h.now + 500);
    for (const t of h.drain()) {
      if (!looksLikeStun(t.data)) continue;
      const r = new StunResponder({ sockets: [t.to] }).handle(h.now, 0, seen, t.data);
      if (r) {
        h.c.handleDatagram(h.now, t.to, r.data);
        answered.add(`${t.to.hostname}:${t.to.port}`);
      }
    }
  }
  assert.equal(answered.size, 2, "both servers were asked");
  const frames = framesTo(h.drain(), x.id, keys.initiatorToResponder);
  const offered = frames.find((f) => f.kind === InnerKind.Candidates);
  assert.ok(offered && offered.kind === InnerKind.Candidates, JSON.stringify(frames));
  assert.deepEqual(offered.endpoints, [seen]);
});

Deno.test("client: a router port mapping is told to the user and to peers, sealed; no router says nothing; one on another public IP is not told", () => {
  // The harness's server sees us at its own address: a mapping there is our NAT's; one on
  // another address (a forged NAT-PMP answer from the LAN, or a router behind another NAT)
  // would make every peer probe an address nobody proved.
  const cases: [boolean, boolean, string][] = [
    [true, true, SERVER.hostname],
    [true, false, SERVER.hostname],
    [false, true, SERVER.hostname],
    [true, true, "203.0.113.11"],
  ];
  for (const [router, peerFirst, external] of cases) {
    const portmap = new PortMapper({
      gateway: "192.168.1.1",
      localAddress: "192.168.1.10",
      localPort: 40000,
      random: seededRandom(77),
      protocols: ["pcp", "natpmp"],
    });
    const h = harness(11, { portmap });
    const gw = new FakeGateway();
    gw.external = external;
    const out: ReturnType<typeof h.drain> = [];
    const answer = () => {
      for (let round = 0; round < 10; round++) {
        h.runUntil(h.now + 250);
        for (const t of h.drain()) {
          if (router && t.to.hostname === gw.lan && t.to.port === 5351) {
            for (const r of gw.answer(h.now, t.data)) h.c.handleDatagram(h.now, t.to, r);
          } else out.push(t);
        }
      }
    };
    // The mapping comes after the peer was established, or before it arrives.
    if (!peerFirst) answer();
    const { x, keys, sent } = member(h, "xena");
    out.push(...sent);
    answer();
    out.push(...h.drain());
    const notices: string[] = [];
    for (let e = h.c.pollEvent(); e; e = h.c.pollEvent()) {
      if (e.type === "notice") notices.push(e.kind);
    }
    const frames = framesTo(out, x.id, keys.initiatorToResponder);
    const offered = frames.filter((f) => f.kind === InnerKind.Candidates);
    if (!router) {
      assert.deepEqual(notices, [], "no router: nothing to say");
      assert.deepEqual(offered, []);
      continue;
    }
    assert.deepEqual(notices, ["portmap"], "the user is told once");
    if (external !== SERVER.hostname) {
      assert.deepEqual(offered, [], "a mapping on another public IP is not told to peers");
      continue;
    }
    assert.ok(offered.length >= 1, JSON.stringify(frames));
    const last = offered.at(-1)!;
    assert.ok(last.kind === InnerKind.Candidates);
    assert.deepEqual(last.endpoints, [{ hostname: SERVER.hostname, port: 41001 }]);
    // Leaving deletes the mapping.
    h.c.leave(h.now);
    for (const t of h.drain()) {
      if (t.to.port === 5351) {
        for (const r of gw.answer(h.now, t.data)) h.c.handleDatagram(h.now, t.to, r);
      }
    }
    assert.equal(gw.mappings.size, 0);
    assert.equal(h.c.portmapIdle, true);
  }
});

/** The client's handshake frames sent directly (not through the server), with where they went. */
function directHandshakes(
  out: Transmit[],
): (HandshakeFrame & { cookie: number; dest: Endpoint })[] {
  return out.flatMap((t) => {
    if (sameEndpoint(t.to, SERVER)) return [];
    const f = decodeHandshake(t.data);
    return f.ok ? [{ ...f.value, dest: t.to }] : [];
  });
}

/** The handshake payload: attempt u32, then a name. */
function hsPayload(attempt: number, text = ""): Uint8Array {
  const t = new TextEncoder().encode(text);
  const out = new Uint8Array(4 + t.length);
  new DataView(out.buffer).setUint32(0, attempt);
  out.set(t, 4);
  return out;
}

for (const variant of ["its cookie", "a wrong cookie", "another address"] as const) {
  Deno.test(`client: a message 2 that comes back directly with ${variant} ${variant === "its cookie" ? "selects the direct path at once" : "proves no path"}`, () => {
    const h = harness(11);
    const x = h.intro({ name: "x" });
    const copies = directHandshakes(h.drain()).filter((f) => f.stage === 1);
    assert.equal(copies.length, 1, "message 1 went directly to the candidate");
    const copy = copies[0]!;
    assert.notEqual(copy.cookie, 0);
    // x answers that copy: its message 2, directly, echoing the cookie.
    const noise = noiseFactory({
      staticKey: h.bytes(32),
      psk: simRoom().psk,
      random: systemRandom,
    });
    const theirs = noise(false, pairPrologue(simRoom().id, h.c.id, x.id));
    assert.ok(theirs.readMessage(copy.message));
    const msg2 = theirs.writeMessage(hsPayload(copy.attempt, "x"));
    h.runUntil(h.now + 50);
    const from = variant === "another address"
      ? { hostname: "203.0.113.77", port: copy.dest.port }
      : copy.dest;
    const cookie = variant === "a wrong cookie" ? (copy.cookie ^ 1) >>> 0 : copy.cookie;
    h.c.handleDatagram(
      h.now,
      from,
      encodeHandshake({
        from: x.id,
        to: h.c.id,
        stage: 2,
        attempt: copy.attempt,
        cookie,
        message: msg2,
      }),
    );
    const events = [];
    for (let e = h.c.pollEvent(); e; e = h.c.pollEvent()) events.push(e);
    const peer = events.find((e) => e.type === "peer");
    if (variant === "its cookie") {
      assert.ok(peer && peer.type === "peer", JSON.stringify(events));
      assert.equal(peer.path, "direct");
      assert.deepEqual(peer.addr, copy.dest);
      assert.equal(peer.rtt, 50, "the time since that copy went");
      // Message 3 goes along the proven path (and relayed).
      const m3 = directHandshakes(h.drain()).filter((f) => f.stage === 3);
      assert.deepEqual(m3.map((f) => f.dest), [copy.dest]);
    } else {
      // The handshake completed (message 2 is authentic), but the path is still to be found.
      assert.equal(peer, undefined, JSON.stringify(events));
      assert.equal(h.c.peers()[0]?.path, "pending");
    }
  });
}

Deno.test("client: a direct message 1 from a non-member gets nothing back", () => {
  const h = harness(12);
  const x = h.intro({ name: "x" });
  h.drain();
  const from = { hostname: "203.0.113.9", port: 4444 };
  const wrong = noiseFactory({
    staticKey: h.bytes(32),
    psk: simRoom("room", "wrong").psk,
    random: systemRandom,
  });
  const msg1 = wrong(true, pairPrologue(simRoom().id, x.id, h.c.id)).writeMessage(hsPayload(1));
  h.c.handleDatagram(
    h.now,
    from,
    encodeHandshake({ from: x.id, to: h.c.id, stage: 1, attempt: 1, cookie: 7, message: msg1 }),
  );
  assert.deepEqual(h.drain(), [], "not a datagram, not even our identity");
  assert.equal(h.c.drops["handshake-failed"], 1);
});

Deno.test("client: a replayed message 1 from many spoofed sources gets a bounded number of answers", () => {
  const h = harness(13);
  const x = h.intro({ name: "x" });
  h.drain();
  const noise = noiseFactory({ staticKey: h.bytes(32), psk: simRoom().psk, random: systemRandom });
  const msg1 = noise(true, pairPrologue(simRoom().id, x.id, h.c.id)).writeMessage(hsPayload(1));
  const frame = encodeHandshake({
    from: x.id,
    to: h.c.id,
    stage: 1,
    attempt: 1,
    cookie: 9,
    message: msg1,
  });
  // An attacker who captured it replays it 1,000 times from addresses of its choosing.
  let answers = 0;
  const perVictim = new Map<string, number>();
  for (let i = 0; i < 1000; i++) {
    const victim = { hostname: `192.0.2.${1 + (i % 3)}`, port: 9000 };
    h.c.handleDatagram(h.now + i, victim, frame);
    for (const f of directHandshakes(h.drain())) {
      if (f.stage !== 2) continue;
      answers++;
      const k = `${f.dest.hostname}`;
      perVictim.set(k, (perVictim.get(k) ?? 0) + 1);
    }
  }
  // One datagram answers one, and only a few times an attempt in all: no reflector.
  assert.ok(answers > 0 && answers <= MAX_ANSWERS, `${answers} answers`);
  for (const [v, n] of perVictim) assert.ok(n <= 24, `${n} answers to ${v}`);
});

Deno.test("client: direct copies of message 1 to a silent candidate stay within the budget", () => {
  const h = harness(14);
  h.intro({ name: "x" });
  h.runUntil(60_000);
  const copies = directHandshakes(h.drain()).filter((f) => f.stage === 1);
  assert.ok(copies.length >= 8, `${copies.length} copies`);
  assert.ok(copies.length <= 24, `${copies.length} copies in a minute to one address`);
  assert.equal(new Set(copies.map((f) => f.cookie)).size, copies.length, "a fresh cookie each");
});

Deno.test("client: a peer whose two handshakes show different identities is refused visibly", () => {
  const h = harness(15);
  const x = h.intro({ name: "x" });
  const sent = h.drain();
  // An insider with the room secret: one identity answers our handshake, another runs x's.
  const k1 = noiseFactory({ staticKey: h.bytes(32), psk: simRoom().psk, random: systemRandom });
  const k2 = noiseFactory({ staticKey: h.bytes(32), psk: simRoom().psk, random: systemRandom });
  const relay = (stage: number, attempt: number, message: Uint8Array) =>
    h.relayed(x.id, encodeHandshake({ from: x.id, to: h.c.id, stage, attempt, message }));
  const first = relayedHandshake(sent, 1);
  const answering = k1(false, pairPrologue(simRoom().id, h.c.id, x.id));
  answering.readMessage(first.message);
  relay(2, first.attempt, answering.writeMessage(hsPayload(first.attempt, "x")));
  h.drain();
  const events = () => {
    const out = [];
    for (let e = h.c.pollEvent(); e; e = h.c.pollEvent()) out.push(e);
    return out;
  };
  events();
  assert.equal(h.c.peers().length, 1, "our handshake completed: x is known");
  h.runUntil(h.now + 300);
  const own = k2(true, pairPrologue(simRoom().id, x.id, h.c.id));
  relay(1, 9, own.writeMessage(hsPayload(9)));
  assert.ok(own.readMessage(relayedHandshake(h.drain(), 2).message));
  relay(3, 9, own.writeMessage(hsPayload(9, "x")));
  const after = events();
  const w = after.find((e) => e.type === "warning" && e.kind === "auth-failed");
  assert.ok(w && w.type === "warning", JSON.stringify(after));
  assert.match(w.message, /two handshakes showed different identities/);
  assert.deepEqual(h.c.peers(), [], "refused for good");
});

Deno.test("client: forged direct message 2s cost a bounded number of Diffie-Hellmans; the real one still completes", () => {
  const h = harness(16);
  const x = h.intro({ name: "x" });
  const copy = directHandshakes(h.drain()).find((f) => f.stage === 1)!;
  // Ids and the attempt travel in clear: an off-path forger has all but the cookie. Reading
  // each forgery costs an X25519 before it fails.
  for (let i = 0; i < 1000; i++) {
    const message = h.bytes(copy.message.length + 64);
    h.c.handleDatagram(
      h.now,
      { hostname: "203.0.113.66", port: 1000 + i },
      encodeHandshake({
        from: x.id,
        to: h.c.id,
        stage: 2,
        attempt: copy.attempt,
        cookie: i,
        message,
      }),
    );
  }
  const tried = h.c.drops["handshake-failed"] ?? 0;
  assert.ok(tried <= 32, `${tried} forged message 2s were read`);
  // The real message 2, relayed, completes the handshake as before.
  const theirs = noiseFactory({ staticKey: h.bytes(32), psk: simRoom().psk, random: systemRandom })(
    false,
    pairPrologue(simRoom().id, h.c.id, x.id),
  );
  assert.ok(theirs.readMessage(copy.message));
  const msg2 = theirs.writeMessage(hsPayload(copy.attempt, "x"));
  h.relayed(
    x.id,
    encodeHandshake({ from: x.id, to: h.c.id, stage: 2, attempt: copy.attempt, message: msg2 }),
  );
  assert.equal(h.c.peers()[0]?.name, "x");
});
