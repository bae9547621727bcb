/**
 * The registry with members over TCP or TLS (an endpoint with `stream`, `docs/protocol.md` 22):
 * a connection is an address of its own (its cookie is not the UDP endpoint's with the same IP
 * and port, and a RELAY or PING from that UDP endpoint is not the member's); INTROs about a
 * member over a stream, or to one, carry no public endpoint; a PING with a cookie moves the
 * member from the stream to UDP (introductions again, with its address now) and back; the
 * relay's budgets, cookies, tokens and the HELLO rate hold over a stream as over UDP.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Registry, type RegistryOptions } from "../../lib/server/registry.ts";
import { type Endpoint, sameEndpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { encodeSealedHeader } from "../../lib/wire/peer_frame.ts";
import { decodeServerMsg, encodeServerMsg, type ServerMsg } from "../../lib/wire/server_msg.ts";
import { seededRandom } from "../support/prng.ts";
import { signedHello, testPeerId } from "../support/hello.ts";

const ROOM = "streams";
const UDP_A: Endpoint = { hostname: "198.51.100.10", port: 40000 };
/** ann's TCP connection: the same IP and port number as UDP_A, another address. */
const TCP_A: Endpoint = { hostname: "198.51.100.10", port: 40000, stream: 7 };
const UDP_B: Endpoint = { hostname: "203.0.113.20", port: 50000 };

function harness(o: Partial<RegistryOptions> = {}) {
  const r = new Registry(o, seededRandom(11));
  const out: { to: Endpoint; m: ServerMsg }[] = [];
  const drain = () => {
    for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
      const d = decodeServerMsg(t.data);
      assert.ok(d.ok);
      out.push({ to: t.to, m: d.value });
    }
    while (r.pollEvent()) { /* events are not under test here */ }
  };
  const send = (from: Endpoint, m: ServerMsg) => {
    r.handleDatagram(0, from, encodeServerMsg(m));
    drain();
  };
  /** Registers `id` from `from` (cookie first); returns its token. */
  const register = (from: Endpoint, idByte: number): Uint8Array => {
    const id = testPeerId(`stream-${idByte}`);
    const nameTag = new Uint8Array(8).fill(idByte);
    const nonce = new Uint8Array(8).fill(0x40 + idByte);
    send(from, signedHello(ROOM, { id, nameTag, nonce }));
    const c = out.findLast((o) => o.m.type === MsgType.Cookie)!;
    assert.ok(sameEndpoint(c.to, from), "the COOKIE goes back on the same transport");
    assert.equal(c.m.type, MsgType.Cookie);
    send(from, signedHello(ROOM, { id, nameTag, nonce, cookie: c.m.cookie }));
    const w = out.findLast((o) => o.m.type === MsgType.Welcome)!;
    assert.ok(sameEndpoint(w.to, from));
    assert.equal(w.m.type, MsgType.Welcome);
    return w.m.token;
  };
  return { r, out, send, register, drain };
}

function intros(out: { to: Endpoint; m: ServerMsg }[], to: Endpoint) {
  return out.filter((o) => sameEndpoint(o.to, to) && o.m.type === MsgType.Intro)
    .map((o) => o.m as Extract<ServerMsg, { type: typeof MsgType.Intro }>);
}

Deno.test("stream member: registers over its connection; INTROs carry no public endpoint either way", () => {
  const h = harness();
  const tokA = h.register(TCP_A, 1);
  h.register(UDP_B, 2);
  assert.ok(tokA.length === 8);
  const toA = intros(h.out, TCP_A), toB = intros(h.out, UDP_B);
  assert.equal(toA.length, 1);
  assert.equal(toB.length, 1);
  assert.equal(toA[0]!.publicEndpoint, null, "to a member over TCP: no address to punch");
  assert.equal(toB[0]!.publicEndpoint, null, "about a member over TCP: it has none");
  // Nothing went to the UDP endpoint with the connection's IP and port.
  assert.equal(h.out.some((o) => sameEndpoint(o.to, UDP_A)), false);
});

Deno.test("stream member: the UDP endpoint with the connection's IP and port is someone else", () => {
  const h = harness();
  const tokA = h.register(TCP_A, 1);
  const tokB = h.register(UDP_B, 2);
  const idA = testPeerId("stream-1"), idB = testPeerId("stream-2");
  const sealed = encodeSealedHeader(idA, idB, 1n);
  const frame = new Uint8Array(sealed.length + 16);
  frame.set(sealed);
  const relay = { type: MsgType.Relay, from: idA, token: tokA, to: idB, payload: frame } as const;
  const before = h.out.length;
  h.send(UDP_A, relay);
  assert.equal(h.out.length, before, "a RELAY from the UDP twin is not the member's");
  assert.ok((h.r.stats.drops["relay-unknown-sender"] ?? 0) >= 1);
  h.send(TCP_A, relay);
  const relayed = h.out.slice(before).find((o) => o.m.type === MsgType.Relayed);
  assert.ok(relayed && sameEndpoint(relayed.to, UDP_B));
  void tokB;
});

Deno.test("stream member: a PING with a cookie moves it to UDP (introduced again, with its address) and back", () => {
  const h = harness();
  const id = testPeerId("stream-1");
  const tokA = h.register(TCP_A, 1);
  h.register(UDP_B, 2);
  const ping = (cookie: Uint8Array = new Uint8Array(8)) =>
    ({ type: MsgType.Ping, id, token: tokA, cookie, digest: 0 }) as const;
  // From UDP without a cookie: a COOKIE there (20 bytes, echoing the token), nothing moves.
  let mark = h.out.length;
  h.send(UDP_A, ping());
  const c = h.out.slice(mark).find((o) => o.m.type === MsgType.Cookie);
  assert.ok(c && sameEndpoint(c.to, UDP_A) && c.m.type === MsgType.Cookie);
  assert.deepEqual(c.m.echo, tokA);
  assert.equal(h.out.slice(mark).some((o) => o.m.type === MsgType.Pong), false);
  // The cookie of the connection is not the cookie of the UDP endpoint.
  mark = h.out.length;
  h.send(UDP_A, ping(c.m.cookie));
  const pong = h.out.slice(mark).find((o) => o.m.type === MsgType.Pong);
  assert.ok(pong && sameEndpoint(pong.to, UDP_A), "PONG over UDP: moved");
  const toB = intros(h.out.slice(mark), UDP_B);
  assert.deepEqual(toB[0]?.publicEndpoint, UDP_A, "introduced again, with its UDP address");
  assert.deepEqual(intros(h.out.slice(mark), UDP_A)[0]?.publicEndpoint, UDP_B);
  // And back to a (new) connection the same way.
  const tcp2 = { ...TCP_A, stream: 8 };
  mark = h.out.length;
  h.send(tcp2, ping());
  const c2 = h.out.slice(mark).find((o) => o.m.type === MsgType.Cookie);
  assert.ok(c2 && c2.m.type === MsgType.Cookie && sameEndpoint(c2.to, tcp2));
  assert.notDeepEqual(c2.m.cookie, c.m.cookie);
  mark = h.out.length;
  h.send(tcp2, ping(c2.m.cookie));
  assert.ok(h.out.slice(mark).some((o) => o.m.type === MsgType.Pong && sameEndpoint(o.to, tcp2)));
  assert.equal(intros(h.out.slice(mark), UDP_B)[0]?.publicEndpoint, null);
});

Deno.test("stream member: relay budgets, tokens, cookies and the HELLO rate apply over TCP as over UDP", () => {
  const h = harness({ relayRate: 1_000, pairRate: 1_000, relayBurst: 2_000, helloRate: 1 });
  const tokA = h.register(TCP_A, 1);
  h.register(UDP_B, 2);
  const idA = testPeerId("stream-1"), idB = testPeerId("stream-2");
  const sealed = encodeSealedHeader(idA, idB, 1n);
  const payload = new Uint8Array(500);
  payload.set(sealed);
  const relay = (token: Uint8Array) =>
    ({ type: MsgType.Relay, from: idA, token, to: idB, payload }) as const;
  // A wrong token over the member's own connection: dropped, nothing relayed.
  let mark = h.out.length;
  h.send(TCP_A, relay(new Uint8Array(8)));
  assert.equal(h.out.length, mark);
  assert.equal(h.r.stats.drops["relay-bad-token"], 1);
  // 2,000 bytes of burst at 1,000 B/s: four 500-byte payloads, then relay-limit, and the
  // sender is told (REFUSED Limit) over its connection.
  for (let i = 0; i < 6; i++) h.send(TCP_A, relay(tokA));
  const relayed = h.out.slice(mark).filter((o) => o.m.type === MsgType.Relayed);
  assert.equal(relayed.length, 4);
  assert.ok(relayed.every((o) => sameEndpoint(o.to, UDP_B)));
  assert.equal(h.r.stats.drops["relay-limit"], 2);
  const refused = h.out.slice(mark).filter((o) => o.m.type === MsgType.Refused);
  assert.equal(refused.length, 1);
  assert.ok(sameEndpoint(refused[0]!.to, TCP_A), "told over the connection");
  // HELLOs: one bucket of signature checks per source address, whatever the transport (burst 4
  // at 1 a second; registering over TCP_A spent one). A HELLO without a cookie costs no check: a
  // COOKIE comes back over the connection it came on, and is that connection's only.
  mark = h.out.length;
  const from = [0, 1, 2, 3].map((n) => ({ ...TCP_A, stream: 100 + n }) as Endpoint);
  from.push(UDP_A);
  const hellos = from.map((at, n) => {
    const fields = {
      id: testPeerId(`stream-${10 + n}`),
      nameTag: new Uint8Array(8).fill(10 + n),
      nonce: new Uint8Array(8).fill(0x50 + n),
    };
    h.send(at, signedHello(ROOM, fields));
    const c = h.out.findLast((o) => o.m.type === MsgType.Cookie && sameEndpoint(o.to, at));
    assert.ok(c && c.m.type === MsgType.Cookie, "a COOKIE back where the HELLO came from");
    return { at, fields, cookie: c.m.cookie };
  });
  const welcomed = () =>
    h.out.slice(mark).filter((o) => o.m.type === MsgType.Welcome).map((o) => o.to);
  // Another connection's cookie is not this one's: a COOKIE again, no check, no WELCOME.
  h.send(from[1]!, signedHello(ROOM, { ...hellos[1]!.fields, cookie: hellos[0]!.cookie }));
  assert.equal(welcomed().length, 0);
  for (const x of hellos) h.send(x.at, signedHello(ROOM, { ...x.fields, cookie: x.cookie }));
  assert.deepEqual(welcomed(), from.slice(0, 3), "the three checks left in the burst");
  assert.equal(h.r.stats.drops["hello-rate"], 2, "the fourth connection and UDP: over the rate");
});
