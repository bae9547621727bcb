/**
 * The registry's PING fast path (`lib/server/keepalive.ts`) reads ids and the token in place and
 * answers without decoding; these tests hold it to the decoding path (`slowPing`): on valid,
 * forged, moved, truncated and garbage PINGs, two registries with the same secret and the same
 * random draws, one with the fast path and one without, must send the same bytes to the same
 * addresses, log the same events and count the same drops.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Registry } from "../../lib/server/registry.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { ID_LEN, MsgType } from "../../lib/wire/header.ts";
import {
  COOKIE_LEN,
  decodeServerMsg,
  encodeServerMsg,
  TOKEN_LEN,
} from "../../lib/wire/server_msg.ts";
import { drainEvents, drainTransmits } from "../support/registry_out.ts";
import { seededRandom } from "../support/prng.ts";
import { signedHello, testPeerId } from "../support/hello.ts";

const A: Endpoint = { hostname: "198.51.100.1", port: 40000 };
const B: Endpoint = { hostname: "203.0.113.2", port: 50000 };
const C: Endpoint = { hostname: "192.0.2.3", port: 6000 };
const A2: Endpoint = { hostname: "198.51.100.9", port: 41000 };
const A6: Endpoint = { hostname: "2001:db8::1", port: 40000 };

interface Peer {
  id: Uint8Array;
  addr: Endpoint;
  token: Uint8Array;
}

/** A deterministic byte source. */

const drain = drainTransmits;
const events = drainEvents;

/** A registry (fast or slow PINGs) with a and b in one room, c in another. */
function setup(slowPing: boolean) {
  const r = new Registry({ slowPing }, seededRandom(99), new Uint8Array(32).fill(7));
  const join = (seed: number, addr: Endpoint, room: number): Peer => {
    const id = testPeerId(`ping ${seed}`);
    const hello = signedHello(`room ${room}`, {
      id,
      cookie: r.cookieFor(id, addr, 0),
      nameTag: id,
    });
    r.handleDatagram(0, addr, encodeServerMsg(hello));
    const w = decodeServerMsg(drain(r)[0]!.data);
    assert.ok(w.ok && w.value.type === MsgType.Welcome);
    return { id, addr, token: w.value.token };
  };
  const a = join(1, A, 1), b = join(2, B, 1), c = join(3, C, 2);
  events(r);
  return { r, a, b, c };
}

function ping(p: Peer, o: { token?: Uint8Array; cookie?: Uint8Array; digest?: number } = {}) {
  return encodeServerMsg({
    type: MsgType.Ping,
    id: p.id,
    token: o.token ?? p.token,
    cookie: o.cookie ?? new Uint8Array(COOKIE_LEN),
    digest: o.digest ?? 0,
  });
}

/** What a registry did with one datagram: its sends, events and drop counters. */
function outcome(r: Registry, now: number, from: Endpoint, d: Uint8Array) {
  // A copy in a larger buffer, at an offset: the driver's receive buffer is reused.
  const buf = new Uint8Array(d.length + 64).fill(0xee);
  buf.set(d, 13);
  r.handleDatagram(now, from, buf.subarray(13, 13 + d.length));
  buf.fill(0xaa);
  const sent = drain(r).map((t) => ({ to: t.to, via: t.via, data: Array.from(t.data) }));
  return { sent, events: events(r), drops: { ...r.stats.drops }, peers: r.peerCount };
}

Deno.test("ping fast path: the same answers as the decoding path on valid and forged PINGs", () => {
  const fast = setup(false), slow = setup(true);
  assert.deepEqual(fast.a, slow.a, "same registrations");
  const { a, b, c } = fast;
  const cookieA2 = fast.r.cookieFor(a.id, A2, 10);
  assert.deepEqual(cookieA2, slow.r.cookieFor(a.id, A2, 10));
  const cases: [string, Endpoint, Uint8Array][] = [
    ["valid, stale digest (resync)", A, ping(a)],
    ["valid again within the resync interval", A, ping(a)],
    ["valid from b", B, ping(b, { digest: 12345 })],
    ["bad token", A, ping(a, { token: c.token })],
    ["zero token", A, ping(a, { token: new Uint8Array(TOKEN_LEN) })],
    ["b's PING from a's address", A, ping(b)],
    ["c's PING from another port", { ...C, port: 6001 }, ping(c)],
    ["unknown id", A, ping({ ...a, id: new Uint8Array(ID_LEN).fill(9) })],
    ["moved without a cookie", A2, ping(a)],
    ["moved over IPv6 without a cookie", A6, ping(a)],
    ["truncated", A, ping(a).subarray(0, 20)],
    ["one byte more", A, Uint8Array.from([...ping(a), 0])],
    ["bad version", A, Uint8Array.from(ping(a), (x, i) => i === 2 ? x + 1 : x)],
    ["bad magic", A, Uint8Array.from(ping(a), (x, i) => i === 0 ? x ^ 1 : x)],
    ["moved with its cookie", A2, ping(a, { cookie: cookieA2 })],
    ["from its new address", A2, ping(a)],
    ["from its old address", A, ping(a)],
  ];
  let now = 10;
  for (const [what, from, d] of cases) {
    now += 400;
    assert.deepEqual(outcome(fast.r, now, from, d), outcome(slow.r, now, from, d), what);
  }
  // The cases did reach both paths: answers, drops and a move (the first wrong token from a's
  // address is told to register again, the second, within the second, dropped).
  assert.ok((fast.r.stats.drops["ping-bad-token"] ?? 0) >= 1);
  assert.ok(fast.r.stats.cookies >= 2);
});

Deno.test("ping fast path: the same answers on 3000 mutated PINGs", () => {
  const fast = setup(false), slow = setup(true);
  const { a, b, c } = fast;
  const rnd = seededRandom(2024);
  const valid = [ping(a), ping(b, { digest: 77 }), ping(c)];
  const from = [A, B, C, A2];
  let now = 10;
  for (let i = 0; i < 3000; i++) {
    const d = valid[i % 3]!.slice();
    const [k, v, f] = rnd(3);
    // Mostly one byte changed anywhere; sometimes none (a valid PING from some address).
    if (k! % 8 !== 0) d[k! % d.length] = v!;
    const src = from[f! % from.length]!;
    now += 7;
    assert.deepEqual(outcome(fast.r, now, src, d), outcome(slow.r, now, src, d), `case ${i}`);
  }
  assert.equal(fast.r.peerCount, 3);
});
