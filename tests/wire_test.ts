/**
 * Unit tests of the wire codec (`lib/wire.ts`).
 *
 * Covers round trips of every message, IPv4/IPv6 endpoints, SEALED headers and inner frames
 * (DATA with stream and base, ACK with stream); the INTRO epoch; rejection (never a throw) of
 * every kind of malformed datagram; refusal to encode out-of-range u32 fields; a deterministic
 * fuzz; and the per-id and roster digests. The chat-line fragmenter is tested in
 * `fragment_test.ts`.
 *
 * @module
 */

import { concat } from "./support/bytes.ts";
import assert from "node:assert/strict";
import {
  COOKIE_LEN,
  type Decoded,
  decodeInner,
  decodeSealed,
  decodeServerMsg,
  encodeInner,
  encodeSealedHeader,
  encodeServerMsg,
  type Endpoint,
  EPOCH_LEN,
  FLAG_RELAY_ONLY,
  ID_LEN,
  idDigest,
  type InnerFrame,
  InnerKind,
  isUsableCandidate,
  KEY_LEN,
  LeftReason,
  MAX_DATAGRAM,
  MAX_FRAGMENT,
  MAX_NAME,
  type MsgOf,
  MsgType,
  parseIPv6,
  peekType,
  PROTOCOL_VERSION,
  RefuseCode,
  rosterDigest,
  SEALED_HEADER_LEN,
  type ServerMsg,
} from "../lib/wire.ts";
import { prng } from "./support/prng.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

const utf8 = new TextEncoder();

function bytesOf(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 37 + i * 11 + 1) & 0xff);
}

const idA = bytesOf(ID_LEN, 1);
const idB = bytesOf(ID_LEN, 2);
const idC = bytesOf(ID_LEN, 3);
const keyA = bytesOf(KEY_LEN, 4);
const keyB = bytesOf(KEY_LEN, 5);
const cookieA = bytesOf(COOKIE_LEN, 6);
const epoch1 = bytesOf(EPOCH_LEN, 7);
const epoch2 = bytesOf(EPOCH_LEN, 8);

/** A header per the protocol table: magic `p2`, version, type. */
function hdr(type: number, version = PROTOCOL_VERSION): number[] {
  return [0x70, 0x32, version, type];
}

/** A `str8` built from raw bytes (which may be invalid UTF-8). */
function rawStr8(b: Uint8Array | number[]): Uint8Array {
  return concat([b.length], b);
}

function str8(s: string): Uint8Array {
  return rawStr8(utf8.encode(s));
}

function v4(a: number, b: number, c: number, d: number, port: number): number[] {
  return [4, a, b, c, d, port >> 8, port & 0xff];
}

function assertRejected<T>(d: Decoded<T>, what: string): void {
  assert.equal(d.ok, false, `${what}: expected rejection, got ${JSON.stringify(d)}`);
  if (!d.ok) assert.equal(typeof d.reason, "string");
}

function assertOk<T>(d: Decoded<T>, what = "decode"): T {
  if (!d.ok) assert.fail(`${what}: expected success, got rejection "${d.reason}"`);
  return d.value;
}

/** Copies `b` into a larger buffer at a non-zero offset and returns the view. */
function atOffset(b: Uint8Array, offset = 5): Uint8Array {
  const big = new Uint8Array(b.length + offset + 7).fill(0xee);
  big.set(b, offset);
  return big.subarray(offset, offset + b.length);
}

const epV4: Endpoint = { hostname: "198.51.100.7", port: 40000 };
const epV4b: Endpoint = { hostname: "10.0.0.5", port: 1 };
const epV6: Endpoint = { hostname: "2001:db8::1", port: 65535 };
const epV6b: Endpoint = { hostname: "fe80::1", port: 0 };

/** One or more valid samples of every server message type. */
const SERVER_SAMPLES: ServerMsg[] = [
  {
    type: MsgType.Hello,
    id: idA,
    cookie: cookieA,
    pubkey: keyA,
    flags: 0,
    room: "lobby",
    name: "alice",
    privateEndpoints: [epV4b, epV6],
  },
  {
    type: MsgType.Hello,
    id: idB,
    cookie: cookieA,
    pubkey: keyB,
    flags: FLAG_RELAY_ONLY,
    room: "café ☕",
    name: "ボブ",
    privateEndpoints: [],
  },
  { type: MsgType.Welcome, id: idA, name: "alice-2", observed: epV4 },
  { type: MsgType.Welcome, id: idB, name: "b", observed: epV6 },
  { type: MsgType.Refused, code: RefuseCode.Unknown, message: "Unknown peer; register again" },
  { type: MsgType.Refused, code: RefuseCode.Invalid, message: "" },
  { type: MsgType.Refused, code: RefuseCode.RoomFull, message: "Room is full 🚪" },
  {
    type: MsgType.Intro,
    id: idB,
    pubkey: keyB,
    epoch: epoch1,
    flags: 0,
    name: "bob",
    publicEndpoint: epV4,
    privateEndpoints: [epV4b, epV6b],
  },
  {
    type: MsgType.Intro,
    id: idC,
    pubkey: keyA,
    epoch: epoch2,
    flags: FLAG_RELAY_ONLY,
    name: "carol",
    publicEndpoint: null,
    privateEndpoints: [],
  },
  {
    type: MsgType.Intro,
    id: idA,
    pubkey: keyA,
    epoch: new Uint8Array(EPOCH_LEN),
    flags: 0,
    name: "x",
    publicEndpoint: epV6,
    privateEndpoints: [],
  },
  { type: MsgType.Left, id: idA, reason: LeftReason.Bye },
  { type: MsgType.Left, id: idB, reason: LeftReason.Expired },
  { type: MsgType.Ping, id: idA, cookie: cookieA, digest: 0 },
  { type: MsgType.Ping, id: idB, cookie: cookieA, digest: 0xffffffff },
  { type: MsgType.Cookie, cookie: cookieA },
  { type: MsgType.Pong, observed: epV4, digest: 0x12345678 },
  { type: MsgType.Pong, observed: epV6b, digest: 0 },
  { type: MsgType.Roster, ids: [] },
  { type: MsgType.Roster, ids: [idA, idB, idC] },
  { type: MsgType.Bye, id: idC },
  { type: MsgType.Relay, from: idA, to: idB, payload: bytesOf(100, 9) },
  { type: MsgType.Relay, from: idA, to: idB, payload: new Uint8Array(0) },
  { type: MsgType.Relayed, from: idB, payload: bytesOf(57, 10) },
  { type: MsgType.Relayed, from: idB, payload: new Uint8Array(0) },
  { type: MsgType.Repunch, id: idA, target: idB },
];

/** Message types whose last field is "rest of datagram" (so prefixes may still be valid). */
const REST_TYPES = new Set<number>([MsgType.Relay, MsgType.Relayed]);

/** Length of the fixed part before the payload of RELAY / RELAYED. */
function fixedLen(type: number): number {
  return type === MsgType.Relay ? 4 + 2 * ID_LEN : 4 + ID_LEN;
}

const INNER_SAMPLES: InnerFrame[] = [
  { kind: InnerKind.Probe, txid: 0 },
  { kind: InnerKind.Announce },
  { kind: InnerKind.Probe, txid: 0xffffffff },
  { kind: InnerKind.ProbeAck, txid: 7, observed: epV4 },
  { kind: InnerKind.ProbeAck, txid: 0xdeadbeef, observed: epV6 },
  {
    kind: InnerKind.Data,
    seq: 0,
    stream: 0,
    base: 0,
    first: true,
    more: false,
    text: utf8.encode("hello"),
  },
  {
    kind: InnerKind.Data,
    seq: 0xffffffff,
    stream: 0xffffffff,
    base: 0xfffffff0,
    first: false,
    more: true,
    text: utf8.encode("中文 😀"),
  },
  {
    kind: InnerKind.Data,
    seq: 3,
    stream: 0x01020304,
    base: 1,
    first: true,
    more: false,
    text: new Uint8Array(0),
  },
  {
    kind: InnerKind.Data,
    seq: 4,
    stream: 7,
    base: 2,
    first: true,
    more: true,
    text: bytesOf(MAX_FRAGMENT, 3),
  },
  { kind: InnerKind.Ack, stream: 0, cumulative: 0, selective: 0 },
  { kind: InnerKind.Ack, stream: 0xffffffff, cumulative: 0xfffffffe, selective: 0x80000001 },
  { kind: InnerKind.Ack, stream: 0x0a0b0c0d, cumulative: 5, selective: 0xffffffff },
];

function typeName(type: number): string {
  return Object.entries(MsgType).find(([, v]) => v === type)?.[0] ?? `0x${type.toString(16)}`;
}

// ---------------------------------------------------------------------------------------------
// Round trips

Deno.test("wire: every server message type round-trips through encode/decode", () => {
  const seen = new Set<number>();
  for (const m of SERVER_SAMPLES) {
    const bytes = encodeServerMsg(m);
    assert.ok(bytes.length <= MAX_DATAGRAM);
    assert.deepEqual(assertOk(decodeServerMsg(bytes), typeName(m.type)), m);
    // Decoding must not depend on the view's offset into its buffer.
    assert.deepEqual(assertOk(decodeServerMsg(atOffset(bytes)), typeName(m.type)), m);
    seen.add(m.type);
  }
  const serverTypes = Object.values(MsgType).filter((t) => t !== MsgType.Sealed);
  assert.deepEqual([...seen].sort(), [...serverTypes].sort(), "a sample of every type");
});

Deno.test("wire: header is magic 'p2', version, type; peekType reads it", () => {
  assert.equal(PROTOCOL_VERSION, 2);
  for (const m of SERVER_SAMPLES) {
    const b = encodeServerMsg(m);
    assert.deepEqual([...b.subarray(0, 4)], [0x70, 0x32, 2, m.type]);
    assert.deepEqual(peekType(b), { ok: true, value: m.type });
    // A datagram of protocol version 1 (no epoch, no streams) is refused as such.
    const v1 = b.slice();
    v1[2] = 1;
    assert.deepEqual(peekType(v1), { ok: false, reason: "bad-version" });
    assertRejected(decodeServerMsg(v1), `${typeName(m.type)} as version 1`);
  }
});

Deno.test("wire: INTRO carries an EPOCH_LEN-byte epoch after the public key", () => {
  assert.equal(EPOCH_LEN, 8);
  const base: MsgOf<typeof MsgType.Intro> = {
    type: MsgType.Intro,
    id: idA,
    pubkey: keyA,
    epoch: epoch1,
    flags: 0,
    name: "a",
    publicEndpoint: null,
    privateEndpoints: [],
  };
  const b1 = encodeServerMsg(base);
  const b2 = encodeServerMsg({ ...base, epoch: epoch2 });
  const at = 4 + ID_LEN + KEY_LEN;
  assert.deepEqual(b1.subarray(at, at + EPOCH_LEN), epoch1);
  assert.deepEqual(b2.subarray(at, at + EPOCH_LEN), epoch2);
  assert.deepEqual(b1.subarray(at + EPOCH_LEN), b2.subarray(at + EPOCH_LEN), "the rest is equal");
  const d = assertOk(decodeServerMsg(b2));
  assert.ok(d.type === MsgType.Intro);
  assert.deepEqual(d.epoch, epoch2);
  // An epoch of the wrong length cannot be encoded.
  for (const len of [0, EPOCH_LEN - 1, EPOCH_LEN + 1]) {
    assert.throws(() => encodeServerMsg({ ...base, epoch: new Uint8Array(len) }), RangeError);
  }
});

Deno.test("wire: MsgOf<T> is the server message of type T", () => {
  const ping: MsgOf<typeof MsgType.Ping> = {
    type: MsgType.Ping,
    id: idA,
    cookie: cookieA,
    digest: 1,
  };
  const asServerMsg: ServerMsg = ping;
  assert.deepEqual(assertOk(decodeServerMsg(encodeServerMsg(asServerMsg))), ping);
  // @ts-expect-error: a PONG is not a PING.
  const wrong: MsgOf<typeof MsgType.Ping> = { type: MsgType.Pong, observed: epV4, digest: 1 };
  assert.equal(wrong.type, MsgType.Pong);
  // @ts-expect-error: an INTRO without its epoch is incomplete.
  const noEpoch: MsgOf<typeof MsgType.Intro> = {
    type: MsgType.Intro,
    id: idA,
    pubkey: keyA,
    flags: 0,
    name: "a",
    publicEndpoint: null,
    privateEndpoints: [],
  };
  assert.throws(() => encodeServerMsg(noEpoch), "an INTRO without an epoch cannot be encoded");
});

Deno.test("wire: hand-assembled datagrams per the protocol table decode as documented", () => {
  // PING: id, cookie, digest u32 big-endian.
  const ping = concat(hdr(MsgType.Ping), idA, cookieA, [0x01, 0x02, 0x03, 0x04]);
  assert.deepEqual(assertOk(decodeServerMsg(ping)), {
    type: MsgType.Ping,
    id: idA,
    cookie: cookieA,
    digest: 0x01020304,
  });
  // COOKIE: the cookie alone.
  assert.deepEqual(assertOk(decodeServerMsg(concat(hdr(MsgType.Cookie), cookieA))), {
    type: MsgType.Cookie,
    cookie: cookieA,
  });
  // PONG: observed endpoint (family 4, address, port u16) then digest.
  const pong = concat(hdr(MsgType.Pong), v4(192, 0, 2, 33, 0x1f90), [0, 0, 0, 9]);
  assert.deepEqual(assertOk(decodeServerMsg(pong)), {
    type: MsgType.Pong,
    observed: { hostname: "192.0.2.33", port: 8080 },
    digest: 9,
  });
  // HELLO: id, cookie, pubkey, flags, room str8, name str8, private endpoint list.
  const hello = concat(
    hdr(MsgType.Hello),
    idA,
    cookieA,
    keyA,
    [FLAG_RELAY_ONLY],
    str8("r"),
    str8("n"),
    [1],
    v4(10, 1, 2, 3, 5),
  );
  assert.deepEqual(assertOk(decodeServerMsg(hello)), {
    type: MsgType.Hello,
    id: idA,
    cookie: cookieA,
    pubkey: keyA,
    flags: FLAG_RELAY_ONLY,
    room: "r",
    name: "n",
    privateEndpoints: [{ hostname: "10.1.2.3", port: 5 }],
  });
  // INTRO: id, pubkey, epoch[8], flags, name str8, public list (0 or 1), private list.
  const intro = concat(
    hdr(MsgType.Intro),
    idB,
    keyB,
    epoch1,
    [0],
    str8("bob"),
    [1],
    v4(198, 51, 100, 7, 40000),
    [0],
  );
  const introMsg: MsgOf<typeof MsgType.Intro> = {
    type: MsgType.Intro,
    id: idB,
    pubkey: keyB,
    epoch: epoch1,
    flags: 0,
    name: "bob",
    publicEndpoint: epV4,
    privateEndpoints: [],
  };
  assert.deepEqual(assertOk(decodeServerMsg(intro)), introMsg);
  assert.deepEqual(encodeServerMsg(introMsg), intro);
  // ROSTER: count u16 then ids.
  const roster = concat(hdr(MsgType.Roster), [0, 2], idB, idC);
  assert.deepEqual(assertOk(decodeServerMsg(roster)), { type: MsgType.Roster, ids: [idB, idC] });
  // And the encoder produces exactly these bytes.
  assert.deepEqual(
    encodeServerMsg({ type: MsgType.Ping, id: idA, cookie: cookieA, digest: 0x01020304 }),
    ping,
  );
});

Deno.test("wire: decoded byte fields are copies, independent of the receive buffer", () => {
  const m: ServerMsg = { type: MsgType.Relay, from: idA, to: idB, payload: bytesOf(20, 1) };
  const buf = encodeServerMsg(m);
  const d = assertOk(decodeServerMsg(buf));
  buf.fill(0);
  assert.deepEqual(d, m);
});

Deno.test("wire: IPv4 endpoints round-trip, including extreme addresses and ports", () => {
  for (const hostname of ["0.0.0.0", "127.0.0.1", "255.255.255.255", "203.0.113.254"]) {
    for (const port of [0, 1, 7777, 65535]) {
      const observed = { hostname, port };
      const b = encodeServerMsg({ type: MsgType.Pong, observed, digest: 1 });
      assert.equal(b[4], 4, "family byte is 4");
      assert.equal(b.length, 4 + 1 + 4 + 2 + 4);
      assert.deepEqual(assertOk(decodeServerMsg(b)), { type: MsgType.Pong, observed, digest: 1 });
    }
  }
});

Deno.test("wire: IPv6 endpoints round-trip in canonical form (::, ::1, fe80::1, ...)", () => {
  const canonical = [
    "::",
    "::1",
    "fe80::1",
    "1::",
    "2001:db8::8a2e:370:7334",
    "2001:db8:0:1:1:1:1:1", // a single zero group is not compressed
    "1:2:3:4:5:6:7:8",
    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "1:0:0:2::3", // the longest run is compressed
    "2001:db8::1:0:0:1", // on a tie, the first run is compressed
  ];
  for (const hostname of canonical) {
    for (const port of [0, 443, 65535]) {
      const observed = { hostname, port };
      const b = encodeServerMsg({ type: MsgType.Welcome, id: idA, name: "a", observed });
      const famAt = 4 + ID_LEN + 2;
      assert.equal(b[famAt], 6, `${hostname}: family byte is 6`);
      assert.equal(b.length, famAt + 1 + 16 + 2);
      const d = assertOk(decodeServerMsg(b), hostname);
      assert.deepEqual(d, { type: MsgType.Welcome, id: idA, name: "a", observed }, hostname);
    }
  }
});

Deno.test("wire: non-canonical IPv6 text decodes to the canonical lower-case form", () => {
  const cases: [string, string][] = [
    ["0:0:0:0:0:0:0:0", "::"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["FE80:0000:0000::0001", "fe80::1"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
  ];
  for (const [input, expected] of cases) {
    const b = encodeServerMsg({
      type: MsgType.Pong,
      observed: { hostname: input, port: 9 },
      digest: 0,
    });
    const d = assertOk(decodeServerMsg(b), input);
    assert.ok(d.type === MsgType.Pong);
    assert.equal(d.observed.hostname, expected, input);
  }
});

Deno.test("wire: IPv4-mapped IPv6 endpoints round-trip to the same address bytes", () => {
  const mapped = "::ffff:192.0.2.1";
  const b = encodeServerMsg({
    type: MsgType.Pong,
    observed: { hostname: mapped, port: 5000 },
    digest: 0,
  });
  assert.equal(b[4], 6, "encoded as an IPv6 endpoint");
  assert.deepEqual(
    [...b.subarray(5, 21)],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1],
  );
  const d = assertOk(decodeServerMsg(b));
  assert.ok(d.type === MsgType.Pong);
  assert.equal(d.observed.port, 5000);
  // Whatever text form the decoder picks, it is the same 16-byte address ...
  assert.deepEqual(parseIPv6(d.observed.hostname), parseIPv6(mapped));
  // ... and re-encodes to identical bytes.
  assert.deepEqual(encodeServerMsg(d), b);
});

Deno.test("wire: SEALED header round-trips; header is the associated data", () => {
  for (const counter of [0n, 1n, 0x0102030405060708n, 0xffffffffffffffffn]) {
    const h = encodeSealedHeader(idA, idB, counter);
    assert.equal(h.length, SEALED_HEADER_LEN);
    assert.equal(SEALED_HEADER_LEN, 28);
    assert.deepEqual([...h.subarray(0, 4)], hdr(MsgType.Sealed));
    for (const bodyLen of [16, 17, 300, MAX_DATAGRAM - SEALED_HEADER_LEN]) {
      const body = bytesOf(bodyLen, Number(counter & 0xffn));
      const dgram = concat(h, body);
      for (const view of [dgram, atOffset(dgram)]) {
        const f = assertOk(decodeSealed(view), `counter ${counter} body ${bodyLen}`);
        assert.deepEqual(f.from, idA);
        assert.deepEqual(f.to, idB);
        assert.equal(f.counter, counter);
        assert.deepEqual(f.header, h);
        assert.deepEqual(f.body, body);
      }
    }
  }
});

Deno.test("wire: decodeSealed rejects short, oversize and non-SEALED datagrams", () => {
  const h = encodeSealedHeader(idA, idB, 5n);
  // Anything shorter than header + 16-byte tag is malformed.
  const full = concat(h, bytesOf(16, 1));
  for (let len = 0; len < full.length; len++) {
    assertRejected(decodeSealed(full.subarray(0, len)), `sealed truncated to ${len}`);
  }
  assertRejected(decodeSealed(concat(h, bytesOf(MAX_DATAGRAM - h.length + 1, 2))), "oversize");
  for (const m of SERVER_SAMPLES) {
    assertRejected(decodeSealed(encodeServerMsg(m)), `${typeName(m.type)} as SEALED`);
  }
  // And a SEALED datagram is not a server message.
  assertRejected(decodeServerMsg(full), "SEALED as server message");
  const badMagic = full.slice();
  badMagic[1] = 0x33;
  assertRejected(decodeSealed(badMagic), "bad magic");
  const badVersion = full.slice();
  badVersion[2] = PROTOCOL_VERSION + 1;
  assertRejected(decodeSealed(badVersion), "bad version");
});

Deno.test("wire: every inner frame kind round-trips", () => {
  const kinds = new Set<number>();
  for (const f of INNER_SAMPLES) {
    const b = encodeInner(f);
    assert.equal(b[0], f.kind);
    assert.deepEqual(assertOk(decodeInner(b), `kind ${f.kind}`), f);
    assert.deepEqual(assertOk(decodeInner(atOffset(b)), `kind ${f.kind}`), f);
    kinds.add(f.kind);
  }
  assert.deepEqual([...kinds].sort(), Object.values(InnerKind).sort());
});

/** Fixed part of a DATA inner frame: kind, seq, stream, base, flags. */
const DATA_FIXED = 1 + 4 + 4 + 4 + 1;

Deno.test("wire: DATA is kind, seq, stream, base (u32 big-endian), flags, text; ACK is kind, stream, cumulative, selective", () => {
  const data = concat(
    [InnerKind.Data],
    [0x00, 0x00, 0x01, 0x02], // seq
    [0xde, 0xad, 0xbe, 0xef], // stream
    [0x00, 0x00, 0x00, 0xfa], // base
    [3], // flags: more, first
    utf8.encode("hi"),
  );
  const d = assertOk(decodeInner(data));
  assert.deepEqual(d, {
    kind: InnerKind.Data,
    seq: 0x0102,
    stream: 0xdeadbeef,
    base: 0xfa,
    first: true,
    more: true,
    text: utf8.encode("hi"),
  });
  assert.deepEqual(encodeInner(d), data, "the encoder produces exactly these bytes");
  const ack = concat(
    [InnerKind.Ack],
    [0x80, 0x00, 0x00, 0x01], // stream
    [0x00, 0x00, 0x00, 0x09], // cumulative
    [0x00, 0x00, 0x00, 0x05], // selective
  );
  const a = assertOk(decodeInner(ack));
  assert.deepEqual(a, { kind: InnerKind.Ack, stream: 0x80000001, cumulative: 9, selective: 5 });
  assert.deepEqual(encodeInner(a), ack);
});

Deno.test("wire: DATA 'more' is bit 0 and 'first' bit 1 of the flags byte", () => {
  const cases = [[0, false, false], [1, true, false], [2, false, true], [3, true, true], [
    0xfc,
    false,
    false,
  ], [0xff, true, true]] as const;
  for (const [flags, more, first] of cases) {
    const b = concat(
      [InnerKind.Data, 0, 0, 0, 9, 0, 0, 0, 3, 0, 0, 0, 8, flags],
      utf8.encode("hi"),
    );
    const f = assertOk(decodeInner(b));
    assert.ok(f.kind === InnerKind.Data);
    assert.equal(f.more, more, `flags 0x${flags.toString(16)}`);
    assert.equal(f.first, first, `flags 0x${flags.toString(16)}`);
    assert.equal(f.seq, 9);
    assert.equal(f.stream, 3);
    assert.equal(f.base, 8);
  }
});

Deno.test("wire: DATA text is limited to MAX_FRAGMENT bytes in both directions", () => {
  const fixed = [InnerKind.Data, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0];
  assert.equal(fixed.length, DATA_FIXED);
  const ok = concat(fixed, bytesOf(MAX_FRAGMENT, 1));
  assertOk(decodeInner(ok), "exactly MAX_FRAGMENT");
  const big = concat(fixed, bytesOf(MAX_FRAGMENT + 1, 1));
  assertRejected(decodeInner(big), "MAX_FRAGMENT + 1");
  assert.throws(
    () =>
      encodeInner({
        kind: InnerKind.Data,
        seq: 1,
        stream: 0,
        base: 1,
        first: true,
        more: false,
        text: bytesOf(MAX_FRAGMENT + 1, 2),
      }),
    RangeError,
  );
});

Deno.test("wire: u32 fields outside 0..2^32-1 or not integers are refused, never wrapped", () => {
  const data = (over: Partial<{ seq: number; stream: number; base: number }>): InnerFrame => ({
    kind: InnerKind.Data,
    seq: 1,
    stream: 0,
    base: 1,
    first: true,
    more: false,
    text: utf8.encode("x"),
    ...over,
  });
  const bad = [2 ** 32, 2 ** 32 + 1, -1, 1.5, NaN, Infinity, -0.5, 2 ** 53];
  for (const v of bad) {
    // DATA seq 2**32 used to be encoded as seq 0 (silently wrapped).
    assert.throws(() => encodeInner(data({ seq: v })), RangeError, `DATA seq ${v}`);
    assert.throws(() => encodeInner(data({ stream: v })), RangeError, `DATA stream ${v}`);
    assert.throws(() => encodeInner(data({ base: v })), RangeError, `DATA base ${v}`);
    const ack = { kind: InnerKind.Ack, stream: 0, cumulative: 0, selective: 0 } as const;
    assert.throws(() => encodeInner({ ...ack, stream: v }), RangeError, `ACK stream ${v}`);
    assert.throws(() => encodeInner({ ...ack, cumulative: v }), RangeError, `ACK cum ${v}`);
    assert.throws(() => encodeInner({ ...ack, selective: v }), RangeError, `ACK sel ${v}`);
    assert.throws(() => encodeInner({ kind: InnerKind.Probe, txid: v }), RangeError);
    assert.throws(
      () => encodeServerMsg({ type: MsgType.Ping, id: idA, cookie: cookieA, digest: v }),
      RangeError,
      `PING digest ${v}`,
    );
  }
  // The edges themselves are fine.
  for (const v of [0, 1, 2 ** 31, 2 ** 32 - 1]) {
    const f = data({ seq: v, stream: v, base: v });
    assert.deepEqual(assertOk(decodeInner(encodeInner(f))), f);
  }
});

Deno.test("wire: inner frames reject unknown kinds, truncation and trailing bytes", () => {
  for (const kind of [0, 5, 0x20, 0xff]) {
    assertRejected(decodeInner(new Uint8Array([kind, 0, 0, 0, 0, 0, 0, 0, 0])), `kind ${kind}`);
  }
  assertRejected(decodeInner(new Uint8Array(0)), "empty");
  for (const f of INNER_SAMPLES) {
    const b = encodeInner(f);
    const fixed = f.kind === InnerKind.Data ? DATA_FIXED : b.length;
    for (let len = 0; len < b.length; len++) {
      const d = decodeInner(b.subarray(0, len));
      if (len < fixed) {
        assertRejected(d, `kind ${f.kind} truncated to ${len}`);
      } else {
        // DATA text runs to the end: a shorter frame is a shorter text.
        const v = assertOk(d, `DATA truncated to ${len}`);
        assert.ok(v.kind === InnerKind.Data && f.kind === InnerKind.Data);
        assert.deepEqual(v.text, f.text.subarray(0, len - fixed));
      }
    }
    if (f.kind !== InnerKind.Data) {
      assertRejected(decodeInner(concat(b, [0])), `kind ${f.kind} + trailing byte`);
      assertRejected(decodeInner(concat(b, [1, 2, 3])), `kind ${f.kind} + trailing bytes`);
    }
  }
  // Unknown address family in PROBE_ACK.
  const ack = encodeInner({ kind: InnerKind.ProbeAck, txid: 1, observed: epV4 });
  for (const fam of [0, 5, 46, 0xff]) {
    const bad = ack.slice();
    bad[5] = fam;
    assertRejected(decodeInner(bad), `PROBE_ACK family ${fam}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Rejection

Deno.test("wire: wrong magic, wrong version and unknown types are rejected", () => {
  const good = encodeServerMsg({ type: MsgType.Ping, id: idA, cookie: cookieA, digest: 1 });
  for (const [i, v] of [[0, 0x71], [0, 0x00], [1, 0x33], [1, 0x70]] as const) {
    const b = good.slice();
    b[i] = v;
    assertRejected(decodeServerMsg(b), `magic byte ${i} = ${v}`);
    assertRejected(peekType(b), `peekType magic byte ${i} = ${v}`);
  }
  for (const version of [0, PROTOCOL_VERSION + 1, 0xff]) {
    const b = good.slice();
    b[2] = version;
    assertRejected(decodeServerMsg(b), `version ${version}`);
    assertRejected(peekType(b), `peekType version ${version}`);
  }
  const known = new Set<number>(Object.values(MsgType));
  for (let type = 0; type < 256; type++) {
    if (known.has(type) && type !== MsgType.Sealed) continue;
    // A body long enough for any message: must still be refused by its type.
    const b = concat(hdr(type), new Uint8Array(60));
    assertRejected(decodeServerMsg(b), `type 0x${type.toString(16)}`);
  }
});

Deno.test("wire: every truncation of every valid server message is rejected", () => {
  let checked = 0;
  for (const m of SERVER_SAMPLES) {
    const b = encodeServerMsg(m);
    for (let len = 0; len < b.length; len++) {
      const d = decodeServerMsg(b.subarray(0, len));
      if (REST_TYPES.has(m.type) && len >= fixedLen(m.type)) {
        // RELAY / RELAYED payload is "rest of datagram": a prefix is a shorter payload.
        const v = assertOk(d, `${typeName(m.type)} truncated to ${len}`);
        assert.ok(v.type === MsgType.Relay || v.type === MsgType.Relayed);
        assert.equal(v.payload.length, len - fixedLen(m.type));
      } else {
        assertRejected(d, `${typeName(m.type)} truncated to ${len} of ${b.length}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 500, `checked ${checked} truncations`);
});

Deno.test("wire: trailing bytes after a complete server message are rejected", () => {
  for (const m of SERVER_SAMPLES) {
    if (REST_TYPES.has(m.type)) continue;
    const b = encodeServerMsg(m);
    assertRejected(decodeServerMsg(concat(b, [0])), `${typeName(m.type)} + 0x00`);
    assertRejected(decodeServerMsg(concat(b, [1, 2, 3, 4])), `${typeName(m.type)} + 4 bytes`);
  }
});

Deno.test("wire: datagrams larger than MAX_DATAGRAM are rejected, MAX_DATAGRAM is accepted", () => {
  const fixed = fixedLen(MsgType.Relay);
  const max = encodeServerMsg({
    type: MsgType.Relay,
    from: idA,
    to: idB,
    payload: bytesOf(MAX_DATAGRAM - fixed, 1),
  });
  assert.equal(max.length, MAX_DATAGRAM);
  assertOk(decodeServerMsg(max), "exactly MAX_DATAGRAM");
  const over = encodeServerMsg({
    type: MsgType.Relay,
    from: idA,
    to: idB,
    payload: bytesOf(MAX_DATAGRAM - fixed + 1, 1),
  });
  const d = decodeServerMsg(over);
  assertRejected(d, "MAX_DATAGRAM + 1");
  assert.equal(!d.ok && d.reason, "oversize");
  assertRejected(decodeServerMsg(new Uint8Array(65_507)), "max UDP payload");
  assertRejected(peekType(over), "peekType oversize");
});

Deno.test("wire: invalid UTF-8 in names and messages is rejected", () => {
  const invalid: number[][] = [
    [0xff],
    [0xc3], // truncated 2-byte sequence
    [0x61, 0x80], // lone continuation byte
    [0xc0, 0xaf], // overlong "/"
    [0xed, 0xa0, 0x80], // UTF-16 surrogate
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0xe4, 0xb8], // truncated CJK
  ];
  for (const bad of invalid) {
    const what = `bytes ${bad.map((x) => x.toString(16)).join(" ")}`;
    const hello = (room: Uint8Array, name: Uint8Array) =>
      concat(hdr(MsgType.Hello), idA, cookieA, keyA, [0], room, name, [0]);
    assertOk(decodeServerMsg(hello(str8("room"), str8("name"))), "control HELLO");
    assertRejected(decodeServerMsg(hello(rawStr8(bad), str8("name"))), `HELLO room ${what}`);
    assertRejected(decodeServerMsg(hello(str8("room"), rawStr8(bad))), `HELLO name ${what}`);
    assertRejected(
      decodeServerMsg(concat(hdr(MsgType.Welcome), idA, rawStr8(bad), v4(1, 2, 3, 4, 5))),
      `WELCOME name ${what}`,
    );
    assertRejected(
      decodeServerMsg(
        concat(hdr(MsgType.Intro), idA, keyA, epoch1, [0], rawStr8(bad), [0, 0]),
      ),
      `INTRO name ${what}`,
    );
    assertRejected(
      decodeServerMsg(concat(hdr(MsgType.Refused), [1], rawStr8(bad))),
      `REFUSED message ${what}`,
    );
  }
});

Deno.test("wire: HELLO room and name are limited to MAX_NAME bytes of UTF-8", () => {
  const hello = (room: string, name: string) =>
    encodeServerMsg({
      type: MsgType.Hello,
      id: idA,
      cookie: cookieA,
      pubkey: keyA,
      flags: 0,
      room,
      name,
      privateEndpoints: [],
    });
  const exact = "x".repeat(MAX_NAME);
  const emoji64 = "😀".repeat(MAX_NAME / 4); // 64 bytes, 16 code points
  assertOk(decodeServerMsg(hello(exact, exact)), "MAX_NAME ASCII");
  assertOk(decodeServerMsg(hello(emoji64, emoji64)), "MAX_NAME emoji");
  const tooLong = ["x".repeat(MAX_NAME + 1), "é".repeat(33), "€".repeat(22), "y".repeat(255)];
  for (const s of tooLong) {
    assert.ok(utf8.encode(s).length > MAX_NAME && s.length <= MAX_NAME * 4);
    assertRejected(decodeServerMsg(hello("room", s)), `name of ${utf8.encode(s).length} bytes`);
    assertRejected(decodeServerMsg(hello(s, "name")), `room of ${utf8.encode(s).length} bytes`);
  }
});

Deno.test("wire: INTRO with more than one public endpoint is rejected", () => {
  const intro = (pub: number[][], priv: number[][]) =>
    concat(
      hdr(MsgType.Intro),
      idA,
      keyA,
      epoch1,
      [0],
      str8("bob"),
      [pub.length],
      ...pub,
      [priv.length],
      ...priv,
    );
  const ep1 = v4(1, 2, 3, 4, 5), ep2 = v4(5, 6, 7, 8, 9);
  assertOk(decodeServerMsg(intro([], [])), "no public endpoint");
  assertOk(decodeServerMsg(intro([ep1], [ep2])), "one public endpoint");
  assertRejected(decodeServerMsg(intro([ep1, ep2], [])), "two public endpoints");
  assertRejected(decodeServerMsg(intro([ep1, ep2, ep1], [ep2])), "three public endpoints");
});

Deno.test("wire: unknown address families are rejected", () => {
  const welcome = encodeServerMsg({ type: MsgType.Welcome, id: idA, name: "a", observed: epV4 });
  const pong = encodeServerMsg({ type: MsgType.Pong, observed: epV6, digest: 0 });
  const hello = encodeServerMsg({
    type: MsgType.Hello,
    id: idA,
    cookie: cookieA,
    pubkey: keyA,
    flags: 0,
    room: "r",
    name: "n",
    privateEndpoints: [epV4],
  });
  const helloFam = hello.length - 7;
  assert.equal(hello[helloFam], 4);
  for (const fam of [0, 1, 5, 41, 46, 0xff]) {
    const cases: [Uint8Array, number, string][] = [
      [welcome, 4 + ID_LEN + 2, "WELCOME"],
      [pong, 4, "PONG"],
      [hello, helloFam, "HELLO private endpoint"],
    ];
    for (const [orig, at, what] of cases) {
      const b = orig.slice();
      b[at] = fam;
      assertRejected(decodeServerMsg(b), `${what} family ${fam}`);
    }
  }
});

Deno.test("wire: relabelled message types are rejected or decode canonically", () => {
  // Re-label each message with every other server type: any success must be consistent.
  for (const m of SERVER_SAMPLES) {
    const b = encodeServerMsg(m);
    for (const t of Object.values(MsgType)) {
      const relabelled = b.slice();
      relabelled[3] = t;
      const d = decodeServerMsg(relabelled);
      if (d.ok) {
        assert.equal(d.value.type, t);
        assert.deepEqual(encodeServerMsg(d.value), relabelled, "canonical re-encoding");
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Fuzz

function mutate(rand: () => number, src: Uint8Array): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  let b: Uint8Array = src.slice();
  const ops = 1 + int(4);
  for (let k = 0; k < ops; k++) {
    switch (int(7)) {
      case 0: // flip a bit
        if (b.length > 0) b[int(b.length)]! ^= 1 << int(8);
        break;
      case 1: // set a byte
        if (b.length > 0) b[int(b.length)] = int(256);
        break;
      case 2: // truncate
        b = b.slice(0, int(b.length + 1));
        break;
      case 3: // insert bytes
        {
          const at = int(b.length + 1);
          b = concat(
            b.subarray(0, at),
            Array.from({ length: 1 + int(8) }, () => int(256)),
            b.subarray(at),
          );
        }
        break;
      case 4: // delete a range
        {
          const at = int(b.length + 1);
          b = concat(b.subarray(0, at), b.subarray(Math.min(b.length, at + 1 + int(8))));
        }
        break;
      case 5: // interesting values in length / count positions
        if (b.length > 4) b[4 + int(b.length - 4)] = [0, 1, 0x7f, 0x80, 0xff][int(5)]!;
        break;
      case 6: // splice in part of another sample
        {
          const other = encodeServerMsg(SERVER_SAMPLES[int(SERVER_SAMPLES.length)]!);
          const at = int(b.length + 1);
          b = concat(b.subarray(0, at), other.subarray(int(other.length)));
        }
        break;
    }
  }
  return b;
}

Deno.test("wire: seeded fuzz: decoders never throw and accepted input re-encodes exactly", () => {
  const rand = prng(0x5eed_2024);
  const int = (n: number) => Math.floor(rand() * n);
  const seeds = [
    ...SERVER_SAMPLES.map(encodeServerMsg),
    concat(encodeSealedHeader(idA, idB, 42n), bytesOf(40, 1)),
  ];
  const innerSeeds = INNER_SAMPLES.map(encodeInner);
  let accepted = 0, rejected = 0, innerAccepted = 0;
  const N = 6000;
  for (let i = 0; i < N; i++) {
    let input: Uint8Array;
    const mode = i % 4;
    if (mode === 0) {
      // Random bytes, sometimes behind a valid header.
      const body = Uint8Array.from({ length: int(120) }, () => int(256));
      input = rand() < 0.5 ? body : concat(hdr([...Object.values(MsgType)][int(13)]!), body);
    } else if (mode === 3) {
      input = mutate(rand, innerSeeds[int(innerSeeds.length)]!);
    } else {
      input = mutate(rand, seeds[int(seeds.length)]!);
    }
    if (rand() < 0.2) input = atOffset(input, 1 + int(9));
    const where = `fuzz case ${i}: [${[...input].join(",")}]`;
    let s: Decoded<ServerMsg>;
    let inner: Decoded<InnerFrame>;
    try {
      s = decodeServerMsg(input);
      peekType(input);
      decodeSealed(input);
      inner = decodeInner(input);
    } catch (e) {
      assert.fail(`decoder threw ${e} on ${where}`);
    }
    if (inner.ok) {
      innerAccepted++;
      // Accepted inner frames re-encode (only DATA's unused flag bits may differ) and decode
      // to the same frame.
      const again = encodeInner(inner.value);
      assert.deepEqual(assertOk(decodeInner(again), where), inner.value, where);
      if (inner.value.kind !== InnerKind.Data) assert.deepEqual(again, input, where);
    }
    assert.equal(typeof s.ok, "boolean");
    if (s.ok) {
      accepted++;
      // Decoding is the inverse of encoding on everything it accepts.
      assert.deepEqual(encodeServerMsg(s.value), input, where);
    } else {
      rejected++;
      assert.equal(typeof s.reason, "string");
    }
  }
  assert.ok(accepted > 50, `fuzz exercised the accept path (${accepted})`);
  assert.ok(rejected > 1000, `fuzz exercised the reject path (${rejected})`);
  assert.ok(innerAccepted > 100, `fuzz accepted inner frames (${innerAccepted})`);
});

// ---------------------------------------------------------------------------------------------
// Roster digest

Deno.test("wire: rosterDigest is order-independent and content-based", () => {
  const ids = [idA, idB, idC, bytesOf(8, 40), bytesOf(8, 41)];
  const d = rosterDigest(ids);
  assert.ok(Number.isInteger(d) && d >= 0 && d <= 0xffffffff, "unsigned 32-bit");
  const rand = prng(7);
  for (let k = 0; k < 20; k++) {
    const shuffled = [...ids].sort(() => rand() - 0.5).map((id) => id.slice());
    assert.equal(rosterDigest(shuffled), d);
  }
  assert.equal(rosterDigest(new Set(ids)), d, "any iterable");
  assert.equal(rosterDigest(ids.map((id) => atOffset(id))), d, "views at offsets");
});

Deno.test("wire: idDigest is 32-bit FNV-1a; rosterDigest is the XOR of the ids' digests", () => {
  // FNV-1a test vectors.
  assert.equal(idDigest(new Uint8Array(0)), 0x811c9dc5);
  assert.equal(idDigest(utf8.encode("a")), 0xe40c292c);
  assert.equal(idDigest(utf8.encode("foobar")), 0xbf9cf968);
  assert.equal(idDigest(atOffset(utf8.encode("foobar"))), 0xbf9cf968, "a view at an offset");
  const ids = [idA, idB, idC, bytesOf(8, 40)];
  let acc = 0;
  for (const id of ids) {
    const h = idDigest(id);
    assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff, "unsigned 32-bit");
    acc = (acc ^ h) >>> 0;
  }
  assert.equal(rosterDigest(ids), acc);
  assert.equal(rosterDigest([]), 0);
  assert.equal(rosterDigest([idA]), idDigest(idA));
  // Kept up to date in O(1): adding or removing one id is one XOR.
  assert.equal(rosterDigest([...ids, bytesOf(8, 41)]), (acc ^ idDigest(bytesOf(8, 41))) >>> 0);
  assert.equal(rosterDigest(ids.slice(1)), (acc ^ idDigest(idA)) >>> 0);
  // Every digest fits a u32 field (a PING carries one).
  const rand = prng(3);
  for (let i = 0; i < 200; i++) {
    const id = Uint8Array.from({ length: ID_LEN }, () => Math.floor(rand() * 256));
    const digest = rosterDigest([id, idA]);
    const ping = encodeServerMsg({ type: MsgType.Ping, id, cookie: cookieA, digest });
    const d = assertOk(decodeServerMsg(ping));
    assert.ok(d.type === MsgType.Ping && d.digest === digest);
  }
});

Deno.test("wire: rosterDigest changes when the set changes", () => {
  const base = [idA, idB, idC];
  const d = rosterDigest(base);
  const variants: Uint8Array[][] = [
    [],
    [idA],
    [idA, idB],
    [idB, idC],
    [idA, idB, idC, bytesOf(8, 99)],
    [idA, idB, bytesOf(8, 100)],
    [idA, idB, Uint8Array.from(idC, (x, i) => i === 7 ? x ^ 1 : x)], // one bit differs
  ];
  for (const v of variants) {
    assert.notEqual(rosterDigest(v), d, `set of ${v.length}`);
  }
  // Distinct singletons have distinct digests (over a sample).
  const seen = new Set<number>();
  for (let i = 0; i < 1000; i++) {
    const id = new Uint8Array(8);
    new DataView(id.buffer).setUint32(4, i);
    seen.add(rosterDigest([id]));
  }
  assert.equal(seen.size, 1000);
});

Deno.test("IPv4-mapped IPv6 endpoints decode in the dotted form sockets report", () => {
  const bytes = encodeServerMsg({
    type: MsgType.Pong,
    observed: { hostname: "::ffff:192.0.2.1", port: 9 },
    digest: 0,
  });
  const d = decodeServerMsg(bytes);
  assert.ok(d.ok && d.value.type === MsgType.Pong);
  assert.equal(d.value.observed.hostname, "::ffff:192.0.2.1");
});

Deno.test("isUsableCandidate: unicast only; loopback only when allowed", () => {
  const ok = (hostname: string, port = 9, loopback = false) =>
    isUsableCandidate({ hostname, port }, loopback);
  for (const h of ["10.0.0.1", "192.168.1.2", "203.0.113.9", "2001:db8::1", "fe80::1"]) {
    assert.ok(ok(h), h);
  }
  for (
    const h of [
      "0.0.0.0",
      "255.255.255.255",
      "224.0.0.1",
      "239.1.2.3",
      "240.0.0.1",
      "::",
      "ff02::1",
      "not-an-ip",
    ]
  ) {
    assert.ok(!ok(h), h);
  }
  assert.ok(!ok("127.0.0.1") && ok("127.0.0.1", 9, true));
  assert.ok(!ok("::1") && ok("::1", 9, true));
  assert.ok(!ok("10.0.0.1", 0), "port 0");
});
