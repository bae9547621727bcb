/**
 * The registry's RELAY fast path (`lib/server/relay.ts`): it forwards without decoding the RELAY
 * into a message, so these tests hold it to the codec. Every RELAYED it builds must be the
 * bytes `encodeServerMsg` makes for it; the largest frames peers send must pass; a RELAY larger
 * than MAX_DATAGRAM must be refused visibly; and what it sends must never share bytes with the
 * receive buffer or with other datagrams (the driver reuses one receive buffer).
 *
 * @module
 */

import { Identity } from "../../lib/crypto/identity.ts";
import { systemRandom } from "../../lib/io/random.ts";
import { handshakeSessions } from "../support/sessions.ts";
import assert from "node:assert/strict";
import { noiseFactory } from "../../lib/peer/handshake/handshake.ts";
import { Registry } from "../../lib/server/registry.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MAX_DATAGRAM, MsgType } from "../../lib/wire/header.ts";
import {
  encodeHandshake,
  encodeInner,
  encodeSealedHeader,
  InnerKind,
  MAX_FRAGMENT,
  MAX_NAME,
} from "../../lib/wire/peer_frame.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  MAX_RELAY_PAYLOAD,
  RefuseCode,
  RELAY_HEADER_LEN,
} from "../../lib/wire/server_msg.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import { drainEvents, drainTransmits } from "../support/registry_out.ts";
import { signedHello, testPeerId, testRoom } from "../support/hello.ts";
import { seededRandom } from "../support/prng.ts";

const A_ADDR: Endpoint = { hostname: "198.51.100.1", port: 40000 };
const B_ADDR: Endpoint = { hostname: "203.0.113.2", port: 50000 };
const C_ADDR: Endpoint = { hostname: "192.0.2.3", port: 6000 };

interface Peer {
  id: Uint8Array;
  addr: Endpoint;
  token: Uint8Array;
}

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);
}

const drain = drainTransmits;
const events = drainEvents;

/** A registry with a and b in one room and c in another, relay budgets out of the way. */
function setup() {
  const r = new Registry(
    { relayRate: 1e9, relayBurst: 1e9, pairRate: 1e9 },
    seededRandom(1),
    new Uint8Array(32).fill(1),
  );
  const join = (seed: number, addr: Endpoint, room: number): Peer => {
    const id = testPeerId(`relay ${seed}`);
    r.handleDatagram(
      0,
      addr,
      encodeServerMsg(
        signedHello(`room ${room}`, { id, cookie: r.cookieFor(id, addr, 0), nameTag: id }),
      ),
    );
    const w = decodeServerMsg(drain(r)[0]!.data);
    assert.ok(w.ok && w.value.type === MsgType.Welcome);
    return { id, addr, token: w.value.token };
  };
  const a = join(1, A_ADDR, 1), b = join(2, B_ADDR, 1), c = join(3, C_ADDR, 2);
  events(r);
  return { r, a, b, c };
}

function relayBytes(from: Peer, to: Peer, payload: Uint8Array, token = from.token): Uint8Array {
  return encodeServerMsg({ type: MsgType.Relay, from: from.id, token, to: to.id, payload });
}

Deno.test("relay fast path: RELAYED is byte for byte what the codec makes, at every size", () => {
  const { r, a, b } = setup();
  const sizes = [0, 1, 2, 63, 64, 65, 100, 1000, MAX_RELAY_PAYLOAD - 1, MAX_RELAY_PAYLOAD];
  let total = 0;
  sizes.forEach((n, i) => {
    const payload = bytes(n, i + 10);
    const [from, to] = i % 2 ? [b, a] : [a, b];
    r.handleDatagram(1, from.addr, relayBytes(from, to, payload));
    const out = drain(r);
    assert.equal(out.length, 1, `${n} bytes: one datagram`);
    assert.deepEqual(out[0]!.to, to.addr);
    assert.deepEqual(
      out[0]!.data,
      encodeServerMsg({ type: MsgType.Relayed, token: to.token, from: from.id, payload }),
      `${n} bytes`,
    );
    total += n;
  });
  assert.equal(r.stats.relayedPackets, sizes.length);
  assert.equal(r.stats.relayedBytes, total);
  assert.deepEqual(r.stats.drops, {});
  assert.deepEqual(events(r).map((e) => e.type), ["relaying", "relaying"], "one per direction");
});

Deno.test("relay fast path: reads a RELAY anywhere in a reused buffer; sends share no bytes", () => {
  const { r, a, b } = setup();
  const buf = new Uint8Array(4096);
  const sent: Uint8Array[] = [];
  const payloads: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const payload = bytes(i * 37 % (MAX_RELAY_PAYLOAD + 1), i);
    const d = relayBytes(a, b, payload);
    const at = i % 13; // like a receive buffer, but not always at offset 0
    buf.fill(0xee);
    buf.set(d, at);
    r.handleDatagram(2, a.addr, buf.subarray(at, at + d.length));
    buf.fill(0x55); // the driver's next receive overwrites the buffer
    const out = drain(r);
    assert.equal(out.length, 1);
    sent.push(out[0]!.data);
    payloads.push(payload);
  }
  sent.forEach((d, i) => {
    const m = decodeServerMsg(d);
    assert.ok(m.ok && m.value.type === MsgType.Relayed, `datagram ${i}`);
    assert.deepEqual(m.value.payload, payloads[i], `datagram ${i} intact after the others`);
    assert.deepEqual(m.value.token, b.token);
    assert.deepEqual(m.value.from, a.id);
  });
});

Deno.test("relay fast path: the largest SEALED and HANDSHAKE frames a peer sends are relayed", () => {
  const { r, a, b } = setup();
  // A SEALED DATA frame carrying MAX_FRAGMENT bytes of text, sealed for real.
  const session = handshakeSessions().ab;
  const counter = session.nextCounter();
  const header = encodeSealedHeader(a.id, b.id, counter);
  const inner = encodeInner({
    kind: InnerKind.Data,
    seq: 0xffff_ffff,
    stream: 0xffff_ffff,
    base: 0xffff_ffff,
    first: true,
    more: true,
    text: bytes(MAX_FRAGMENT, 9),
  });
  const sealed = new Uint8Array([...header, ...session.seal(counter, header, inner)]);
  // The longest HANDSHAKE: message 2 (e, s, and the responder's longest name) of a real Noise run.
  const psk = new Uint8Array(32).fill(3), prologue = new Uint8Array(8);
  const init = noiseFactory({
    staticKey: Identity.generate(systemRandom).privateKey,
    psk,
    random: systemRandom,
  })(true, prologue);
  const resp = noiseFactory({
    staticKey: Identity.generate(systemRandom).privateKey,
    psk,
    random: systemRandom,
  })(false, prologue);
  const name = new Uint8Array(MAX_NAME).fill(0x61);
  assert.ok(resp.readMessage(init.writeMessage(new Uint8Array(4))));
  const msg2 = resp.writeMessage(new Uint8Array([0xff, 0xff, 0xff, 0xff, ...name]));
  const hs = encodeHandshake({
    from: b.id,
    to: a.id,
    stage: 2,
    attempt: 0xffff_ffff,
    message: msg2,
  });
  assert.equal(
    sealed.length,
    1058,
    "the size lib/wire/header.ts gives (update its relay size note)",
  );
  assert.ok(sealed.length <= MAX_RELAY_PAYLOAD, `SEALED ${sealed.length} bytes`);
  assert.ok(hs.length < 200, `HANDSHAKE ${hs.length} bytes`);
  for (const [from, to, frame] of [[a, b, sealed], [b, a, hs]] as const) {
    r.handleDatagram(3, from.addr, relayBytes(from, to, frame));
    const out = drain(r);
    assert.equal(out.length, 1);
    assert.ok(out[0]!.data.length <= MAX_DATAGRAM);
    const m = decodeServerMsg(out[0]!.data);
    assert.ok(m.ok && m.value.type === MsgType.Relayed);
    assert.deepEqual(m.value.payload, frame);
  }
  assert.deepEqual(r.stats.drops, {});
});

Deno.test("relay fast path: MAX_RELAY_PAYLOAD is relayed, one byte more is refused visibly", () => {
  const { r, a, b } = setup();
  assert.equal(MAX_RELAY_PAYLOAD, MAX_DATAGRAM - RELAY_HEADER_LEN);
  r.handleDatagram(0, a.addr, relayBytes(a, b, bytes(MAX_RELAY_PAYLOAD, 1)));
  assert.equal(drain(r).length, 1);
  assert.equal(r.stats.relayedPackets, 1);
  events(r);

  const refusals = (out: Transmit[]) =>
    out.map((t) => {
      assert.deepEqual(t.to, a.addr, "only the sender hears about it");
      const m = decodeServerMsg(t.data);
      assert.ok(m.ok && m.value.type === MsgType.Refused);
      assert.equal(m.value.code, RefuseCode.Limit);
      assert.deepEqual(m.value.echo, a.token, "echoes the sender's token");
      assert.match(m.value.message, new RegExp(`${MAX_RELAY_PAYLOAD} bytes`));
      return m.value;
    });
  // One byte over, and the 1180-byte payload once dropped silently at the header check.
  r.handleDatagram(1_000, a.addr, relayBytes(a, b, bytes(MAX_RELAY_PAYLOAD + 1, 2)));
  assert.equal(refusals(drain(r)).length, 1);
  assert.deepEqual(events(r), [{
    type: "limited",
    room: Array.from(
      testRoom("room 1").publicKey.subarray(0, 4),
      (x) => x.toString(16).padStart(2, "0"),
    )
      .join(""),
    name: Array.from(a.id.subarray(0, 4), (x) => x.toString(16).padStart(2, "0")).join(""),
    what: "relay-size",
  }]);
  r.handleDatagram(3_000, a.addr, relayBytes(a, b, bytes(1180, 3)));
  assert.deepEqual(drain(r), [], "at most one REFUSED every 5 s");
  r.handleDatagram(6_000, a.addr, relayBytes(a, b, bytes(60_000, 4)));
  assert.equal(refusals(drain(r)).length, 1, "5 s later, another");
  assert.equal(r.stats.drops["relay-oversize"], 3);
  assert.equal(r.stats.relayedPackets, 1, "nothing oversize reaches b");
  r.handleDatagram(6_001, a.addr, relayBytes(a, b, bytes(100, 5)));
  assert.equal(drain(r).length, 1, "the sender may go on relaying what fits");
});

Deno.test("relay fast path: an oversize RELAY nobody can vouch for is counted, never answered", () => {
  const { r, a, b, c } = setup();
  const big = bytes(MAX_RELAY_PAYLOAD + 8, 1);
  const mallory: Endpoint = { hostname: "192.0.2.66", port: 6666 };
  r.handleDatagram(0, mallory, relayBytes(a, b, big)); // spoofed source
  r.handleDatagram(0, a.addr, relayBytes(a, b, big, new Uint8Array(8))); // no token
  r.handleDatagram(0, a.addr, relayBytes(a, b, big, b.token)); // someone else's token
  r.handleDatagram(0, c.addr, relayBytes({ ...c, id: bytes(8, 99) }, b, big)); // unknown id
  assert.deepEqual(drain(r), []);
  assert.deepEqual(events(r), []);
  assert.deepEqual(r.stats.drops, { "relay-oversize": 4 });
});

Deno.test("relay fast path: drop reasons are those of the decoding path", () => {
  const { r, a, b, c } = setup();
  const ok = relayBytes(a, b, bytes(20, 1));
  const cases: [string, Endpoint, Uint8Array][] = [
    ["malformed", a.addr, ok.subarray(0, RELAY_HEADER_LEN - 1)],
    ["relay-unknown-sender", { ...a.addr, port: 1 }, ok],
    ["relay-bad-token", a.addr, relayBytes(a, b, bytes(20, 1), c.token)],
    ["relay-unknown-target", a.addr, relayBytes(a, c, bytes(20, 1))],
    ["relay-unknown-target", a.addr, relayBytes(a, a, bytes(20, 1))],
    ["bad-version", a.addr, Uint8Array.from(ok, (x, i) => i === 2 ? x + 1 : x)],
  ];
  for (const [reason, from, d] of cases) {
    const before = r.stats.drops[reason] ?? 0;
    r.handleDatagram(0, from, d);
    assert.deepEqual(drain(r), [], reason);
    assert.equal(r.stats.drops[reason], before + 1, reason);
  }
  // A RELAY with exactly the header relays an empty payload, as the codec always allowed.
  r.handleDatagram(0, a.addr, ok.subarray(0, RELAY_HEADER_LEN));
  assert.equal(drain(r)[0]?.data.length, RELAY_HEADER_LEN - 8);
});
