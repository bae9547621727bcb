/**
 * Unit tests of the wire codecs (`lib/wire/`: address, codec, header, server_msg, peer_frame),
 * protocol version 8.
 *
 * Covers round trips and exact bytes of every message, IPv4/IPv6 endpoints, SEALED and
 * HANDSHAKE peer frames and inner frames (DATA with stream and base, ACK with stream); the
 * registration token, the INTRO/LEFT/ROSTER sequence number and the INTRO epoch; rejection (never a throw) of every kind of malformed
 * datagram, every truncation and older protocol versions; refusal to encode out-of-range
 * fields; a deterministic fuzz; and the per-id and roster digests. The chat-line fragmenter is
 * tested in `fragment_test.ts`.
 *
 * @module
 */

import { concat } from "../support/bytes.ts";
import assert from "node:assert/strict";
import {
  type Endpoint,
  formatIPv6,
  isUsableCandidate,
  parseIPv4,
  parseIPv6,
} from "../../lib/wire/address.ts";
import type { Decoded } from "../../lib/wire/codec.ts";
import {
  hasHeader,
  ID_LEN,
  MAX_DATAGRAM,
  MAX_PRIVATE_ENDPOINTS,
  MsgType,
  peekType,
  PROTOCOL_VERSION,
} from "../../lib/wire/header.ts";
import {
  BATCH_PART_OVERHEAD,
  DATA_BATCH_KIND,
  decodeHandshake,
  decodeInner,
  decodeSealed,
  encodeHandshake,
  encodeInner,
  encodeSealedHeader,
  HANDSHAKE_HEADER_LEN,
  type HandshakeFrame,
  type InnerFrame,
  InnerKind,
  MAX_BATCH,
  MAX_FRAGMENT,
  peerFrameIds,
  SEALED_HEADER_LEN,
  type SealedFrame,
} from "../../lib/wire/peer_frame.ts";
import { FILE_DATA_HEADER } from "../../lib/wire/file_frame.ts";
import {
  BOOT_LEN,
  COOKIE_LEN,
  decodeServerMsg,
  encodeServerMsg,
  EPOCH_LEN,
  FLAG_RELAY_ONLY,
  ID_KEY_LEN,
  idDigest,
  LeftReason,
  MAX_ROOM_SIZE,
  type MsgOf,
  NAME_TAG_LEN,
  NONCE_LEN,
  OWNER_TAG_LEN,
  RefuseCode,
  ROOM_ID_LEN,
  rosterDigest,
  type ServerMsg,
  SIGNATURE_LEN,
  TOKEN_LEN,
} from "../../lib/wire/server_msg.ts";
import { prng } from "../support/prng.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

const utf8 = new TextEncoder();

function bytesOf(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 37 + i * 11 + 1) & 0xff);
}

const idA = bytesOf(ID_LEN, 1);
const idB = bytesOf(ID_LEN, 2);
const idC = bytesOf(ID_LEN, 3);
const cookieA = bytesOf(COOKIE_LEN, 6);
const epoch1 = bytesOf(EPOCH_LEN, 7);
const epoch2 = bytesOf(EPOCH_LEN, 8);
const tokenA = bytesOf(TOKEN_LEN, 11);
const tokenB = bytesOf(TOKEN_LEN, 12);
const room1 = bytesOf(ROOM_ID_LEN, 13);
const room2 = bytesOf(ROOM_ID_LEN, 14);
const tag1 = bytesOf(NAME_TAG_LEN, 15);
const tag2 = bytesOf(NAME_TAG_LEN, 16);
const nonceA = bytesOf(NONCE_LEN, 17);
const sigA = bytesOf(SIGNATURE_LEN, 18);
const ownerA = bytesOf(OWNER_TAG_LEN, 19);
const idKeyA = bytesOf(ID_KEY_LEN, 20);
const sigB = bytesOf(SIGNATURE_LEN, 21);
const bootA = bytesOf(BOOT_LEN, 20);

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
    nonce: nonceA,
    flags: 0,
    room: room1,
    nameTag: tag1,
    owner: ownerA,
    idKey: idKeyA,
    signature: sigA,
    idSignature: sigB,
    pow: new Uint8Array(8),
    privateEndpoints: [epV4b, epV6],
  },
  {
    type: MsgType.Hello,
    id: idB,
    cookie: new Uint8Array(COOKIE_LEN),
    nonce: nonceA,
    flags: FLAG_RELAY_ONLY,
    room: room2,
    nameTag: tag2,
    owner: new Uint8Array(OWNER_TAG_LEN),
    idKey: idKeyA,
    signature: sigA,
    idSignature: sigB,
    pow: new Uint8Array(8),
    privateEndpoints: [],
  },
  { type: MsgType.Welcome, id: idA, nonce: nonceA, token: tokenA, boot: bootA, observed: epV4 },
  { type: MsgType.Welcome, id: idB, nonce: nonceA, token: tokenB, boot: tokenA, observed: epV6 },
  {
    type: MsgType.Refused,
    echo: tokenA,
    code: RefuseCode.Unknown,
    message: "Unknown peer; register again",
  },
  { type: MsgType.Refused, echo: cookieA, code: RefuseCode.Invalid, message: "" },
  { type: MsgType.Refused, echo: cookieA, code: RefuseCode.RoomFull, message: "Room is full 🚪" },
  { type: MsgType.Refused, echo: cookieA, code: RefuseCode.NameTaken, message: "Name taken" },
  { type: MsgType.Refused, echo: cookieA, code: RefuseCode.Limit, message: "x".repeat(255) },
  {
    type: MsgType.Intro,
    token: tokenA,
    seq: 1,
    id: idB,
    epoch: epoch1,
    flags: 0,
    publicEndpoint: epV4,
    privateEndpoints: [epV4b, epV6b],
  },
  {
    type: MsgType.Intro,
    token: tokenB,
    seq: 0xffffffff,
    id: idC,
    epoch: epoch2,
    flags: FLAG_RELAY_ONLY,
    publicEndpoint: null,
    privateEndpoints: [],
  },
  {
    type: MsgType.Intro,
    token: tokenA,
    seq: 0,
    id: idA,
    epoch: new Uint8Array(EPOCH_LEN),
    flags: 0,
    publicEndpoint: epV6,
    privateEndpoints: [],
  },
  { type: MsgType.Left, token: tokenA, seq: 2, id: idA, reason: LeftReason.Bye },
  { type: MsgType.Left, token: tokenB, seq: 0x01020304, id: idB, reason: LeftReason.Expired },
  { type: MsgType.Ping, id: idA, token: tokenA, cookie: cookieA, digest: 0 },
  { type: MsgType.Ping, id: idB, token: tokenB, cookie: cookieA, digest: 0xffffffff },
  { type: MsgType.Cookie, echo: tokenA, cookie: cookieA, difficulty: 0 },
  { type: MsgType.Reach, nonce: cookieA, mac: bytesOf(16, 3) },
  { type: MsgType.Reached, id: idA, token: tokenA, nonce: cookieA },
  { type: MsgType.Check, token: tokenA, seq: 7, target: epV4, nonce: cookieA, mac: bytesOf(16, 4) },
  { type: MsgType.Check, token: tokenB, seq: 1, target: epV6, nonce: cookieA, mac: bytesOf(16, 5) },
  { type: MsgType.Servers, token: tokenA, seq: 3, keepalive: 4, servers: [epV4, epV6b] },
  { type: MsgType.Servers, token: tokenB, seq: 1, keepalive: 0, servers: [] },
  { type: MsgType.Pong, token: tokenA, observed: epV4, digest: 0x12345678 },
  { type: MsgType.Pong, token: tokenB, observed: epV6b, digest: 0 },
  { type: MsgType.Roster, token: tokenA, seq: 1, ids: [] },
  { type: MsgType.Roster, token: tokenB, seq: 0x80000000, ids: [idA, idB, idC] },
  { type: MsgType.Bye, id: idC, token: tokenA },
  { type: MsgType.Relay, from: idA, token: tokenA, to: idB, payload: bytesOf(100, 9) },
  { type: MsgType.Relay, from: idA, token: tokenA, to: idB, payload: new Uint8Array(0) },
  { type: MsgType.Relayed, token: tokenB, from: idB, payload: bytesOf(57, 10) },
  { type: MsgType.Relayed, token: tokenB, from: idB, payload: new Uint8Array(0) },
  { type: MsgType.Repunch, id: idA, token: tokenA, target: idB },
];

/** The first sample of `type` in {@link SERVER_SAMPLES}. */
function sample<T extends ServerMsg["type"]>(type: T): MsgOf<T> {
  return SERVER_SAMPLES.find((m): m is MsgOf<T> => m.type === type)!;
}

/** Message types whose last field is "rest of datagram" (so prefixes may still be valid). */
const REST_TYPES = new Set<number>([MsgType.Relay, MsgType.Relayed]);

/** Length of the fixed part before the payload of RELAY / RELAYED. */
function fixedLen(type: number): number {
  return type === MsgType.Relay ? 4 + ID_LEN + TOKEN_LEN + ID_LEN : 4 + TOKEN_LEN + ID_LEN;
}

/** The peer frame types (not server messages). */
const PEER_TYPES = new Set<number>([MsgType.Sealed, MsgType.Handshake]);

/** Valid HANDSHAKE frames: every stage, edge attempts, empty and large messages. */
const HANDSHAKE_SAMPLES: HandshakeFrame[] = [
  { from: idA, to: idB, stage: 0, attempt: 0, cookie: 0, message: new Uint8Array(0) },
  { from: idA, to: idB, stage: 1, attempt: 1, cookie: 1, message: bytesOf(48, 20) },
  {
    from: idB,
    to: idA,
    stage: 2,
    attempt: 0x7fffffff,
    cookie: 0xffffffff,
    message: bytesOf(96, 21),
  },
  { from: idA, to: idB, stage: 3, attempt: 0xffffffff, cookie: 0, message: bytesOf(64, 22) },
  {
    from: idC,
    to: idA,
    stage: 1,
    attempt: 9,
    cookie: 0x01020304,
    message: bytesOf(MAX_DATAGRAM - HANDSHAKE_HEADER_LEN, 23),
  },
];

const INNER_SAMPLES: InnerFrame[] = [
  { kind: InnerKind.Candidates, endpoints: [] },
  { kind: InnerKind.Candidates, endpoints: [epV4, epV6] },
  { kind: InnerKind.Nat, mapping: 0, ports: [] },
  { kind: InnerKind.Nat, mapping: 2, ports: [40000, 40001, 65535] },
  { kind: InnerKind.Birthday, stage: 1, round: 1, sockets: 256 },
  { kind: InnerKind.Birthday, stage: 3, round: 0xffffffff, sockets: 0 },
  { kind: InnerKind.Relays, serverRtt: 20, supernode: idA, supernodeRtt: 0xffff },
  { kind: InnerKind.Relays, serverRtt: 0, supernode: new Uint8Array(ID_LEN), supernodeRtt: 3 },
  { kind: InnerKind.ServerHint, boot: new Uint8Array(8) },
  { kind: InnerKind.ServerHint, boot: idC },
  { kind: InnerKind.Goodbye },
  { kind: InnerKind.GoodbyeAck },
  {
    kind: InnerKind.FileOffer,
    id: idA,
    name: "a.txt",
    size: 5,
    chunkShift: 14,
    sha256: new Uint8Array(32).fill(1),
    root: new Uint8Array(32).fill(2),
  },
  { kind: InnerKind.FileReply, id: idA, status: 2 },
  { kind: InnerKind.FileRequest, id: idA, chunks: [3] },
  { kind: InnerKind.FileData, id: idA, pn: 1, chunk: 0, offset: 0, data: new Uint8Array(3) },
  { kind: InnerKind.FileAck, delay: 0, ranges: [[5, 5]] },
  { kind: InnerKind.FileSwarm, id: idA, index: 0, peers: [idA, idC] },
  { kind: InnerKind.Probe, txid: 0 },
  { kind: InnerKind.Announce, attempt: 0 },
  { kind: InnerKind.Announce, attempt: 0xffffffff },
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

/** DATA frames carrying several payloads (encoded as DATA_BATCH). */
const BATCH_SAMPLES: InnerFrame[] = [
  {
    kind: InnerKind.Data,
    seq: 9,
    stream: 0x01020304,
    base: 7,
    first: true,
    more: false,
    text: utf8.encode("one"),
    packed: [{ first: true, more: true, text: utf8.encode("two") }, {
      first: false,
      more: false,
      text: new Uint8Array(0),
    }],
  },
  {
    kind: InnerKind.Data,
    seq: 0xffffffff,
    stream: 0,
    base: 0xffffffff,
    first: false,
    more: false,
    text: bytesOf(MAX_BATCH - 2 * BATCH_PART_OVERHEAD - 1, 4),
    packed: [{ first: true, more: false, text: bytesOf(1, 5) }],
  },
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
  const serverTypes = Object.values(MsgType).filter((t) => !PEER_TYPES.has(t));
  assert.deepEqual([...seen].sort(), [...serverTypes].sort(), "a sample of every type");
  // Every refusal code has a sample, including NameTaken and Limit (new in version 3).
  const codes = new Set(SERVER_SAMPLES.flatMap((m) => m.type === MsgType.Refused ? [m.code] : []));
  assert.deepEqual([...codes].sort(), Object.values(RefuseCode).sort());
  assert.equal(RefuseCode.NameTaken, 4);
  assert.equal(RefuseCode.Limit, 5);
});

Deno.test("wire: header is magic 'p2', version 8, type; version 1 to 7 datagrams are refused", () => {
  assert.equal(PROTOCOL_VERSION, 8);
  const all = [
    ...SERVER_SAMPLES.map(encodeServerMsg),
    ...HANDSHAKE_SAMPLES.map(encodeHandshake),
    concat(encodeSealedHeader(idA, idB, 1n), bytesOf(16, 1)),
  ];
  for (const b of all) {
    const type = b[3]!;
    assert.deepEqual([...b.subarray(0, 4)], [0x70, 0x32, 8, type]);
    assert.deepEqual(peekType(b), { ok: true, value: type });
    // Version 4 had one initiator per pair, no cookie in HANDSHAKE and no supernodes; version 5
    // no owner tag in HELLO and no boot id in WELCOME; version 6 no chat message envelope and no
    // id key in HELLO; version 7 no cluster fields in WELCOME.
    for (const old of [1, 2, 3, 4, 5, 6, 7]) {
      const o = b.slice();
      o[2] = old;
      const what = `${typeName(type)} as version ${old}`;
      assert.deepEqual(peekType(o), { ok: false, reason: "bad-version" }, what);
      assert.deepEqual(decodeServerMsg(o), { ok: false, reason: "bad-version" }, what);
      assertRejected(decodeSealed(o), what);
      assertRejected(decodeHandshake(o), what);
      assertRejected(peerFrameIds(o), what);
    }
  }
  // Genuine version-2 datagrams (HELLO with a public key and names, PING without a token) are
  // refused by their version byte, not misread as version 8; so are version-3 HELLOs (an
  // unsigned 16-byte room id) and WELCOMEs (echoing the cookie).
  const v2Hello = concat(
    hdr(MsgType.Hello, 2),
    idA,
    cookieA,
    bytesOf(32, 4),
    [0],
    str8("lobby"),
    str8("alice"),
    [0],
  );
  const v2Ping = concat(hdr(MsgType.Ping, 2), idA, cookieA, [0, 0, 0, 1]);
  const v3Hello = concat(hdr(MsgType.Hello, 3), idA, cookieA, [0], bytesOf(16, 5), tag1, [0]);
  const v3Welcome = concat(hdr(MsgType.Welcome, 3), idA, cookieA, tokenA, v4(192, 0, 2, 1, 9));
  for (const b of [v2Hello, v2Ping, v3Hello, v3Welcome]) {
    assert.deepEqual(decodeServerMsg(b), { ok: false, reason: "bad-version" });
  }
});

Deno.test("wire: every message after WELCOME carries a TOKEN_LEN-byte token", () => {
  assert.equal(TOKEN_LEN, 8);
  assert.equal(ROOM_ID_LEN, 32);
  assert.equal(NAME_TAG_LEN, 8);
  // Where the token sits in each message, after the 4-byte header.
  const at: Record<number, number> = {
    [MsgType.Welcome]: 4 + ID_LEN + NONCE_LEN,
    [MsgType.Intro]: 4,
    [MsgType.Left]: 4,
    [MsgType.Ping]: 4 + ID_LEN,
    [MsgType.Pong]: 4,
    [MsgType.Roster]: 4,
    [MsgType.Bye]: 4 + ID_LEN,
    [MsgType.Relay]: 4 + ID_LEN,
    [MsgType.Relayed]: 4,
    [MsgType.Repunch]: 4 + ID_LEN,
    [MsgType.Reached]: 4 + ID_LEN,
    [MsgType.Check]: 4,
    [MsgType.Servers]: 4,
  };
  const fresh = bytesOf(TOKEN_LEN, 99);
  let checked = 0;
  for (const m of SERVER_SAMPLES) {
    if (!("token" in m)) continue;
    const b1 = encodeServerMsg(m);
    const b2 = encodeServerMsg({ ...m, token: fresh } as ServerMsg);
    const o = at[m.type]!;
    assert.deepEqual(b1.subarray(o, o + TOKEN_LEN), m.token, typeName(m.type));
    assert.deepEqual(b2.subarray(o, o + TOKEN_LEN), fresh, typeName(m.type));
    assert.deepEqual(b1.subarray(0, o), b2.subarray(0, o), `${typeName(m.type)}: before`);
    assert.deepEqual(b1.subarray(o + 8), b2.subarray(o + 8), `${typeName(m.type)}: after`);
    const d = assertOk(decodeServerMsg(b2));
    assert.ok("token" in d);
    assert.deepEqual(d.token, fresh);
    // A token of the wrong length cannot be encoded.
    for (const len of [0, TOKEN_LEN - 1, TOKEN_LEN + 1]) {
      assert.throws(
        () => encodeServerMsg({ ...m, token: new Uint8Array(len) } as ServerMsg),
        RangeError,
        `${typeName(m.type)} token of ${len}`,
      );
    }
    checked++;
  }
  assert.equal(new Set(SERVER_SAMPLES.filter((m) => "token" in m).map((m) => m.type)).size, 13);
  assert.ok(checked >= 10);
  // HELLO and COOKIE have none (the server hands the token out in WELCOME); REFUSED echoes it.
  for (const m of SERVER_SAMPLES) {
    if (
      m.type === MsgType.Hello || m.type === MsgType.Cookie || m.type === MsgType.Refused ||
      m.type === MsgType.Reach
    ) {
      assert.ok(!("token" in m), typeName(m.type));
    }
  }
});

Deno.test("wire: INTRO, LEFT, ROSTER, CHECK and SERVERS carry a seq u32 right after the token", () => {
  const at = 4 + TOKEN_LEN;
  const types = new Set<number>();
  for (const m of SERVER_SAMPLES) {
    if (!("seq" in m)) continue;
    const what = typeName(m.type);
    const b = encodeServerMsg(m);
    assert.equal(new DataView(b.buffer, b.byteOffset).getUint32(at), m.seq, what);
    for (const seq of [0, 1, 0x01020304, 0xffffffff]) {
      const b2 = encodeServerMsg({ ...m, seq } as ServerMsg);
      const be = [seq >>> 24, (seq >>> 16) & 0xff, (seq >>> 8) & 0xff, seq & 0xff];
      assert.deepEqual([...b2.subarray(at, at + 4)], be, `${what} seq ${seq}, big-endian`);
      assert.deepEqual(b2.subarray(0, at), b.subarray(0, at), `${what}: before`);
      assert.deepEqual(b2.subarray(at + 4), b.subarray(at + 4), `${what}: after`);
      const d = assertOk(decodeServerMsg(b2), what);
      assert.ok("seq" in d);
      assert.equal(d.seq, seq, what);
    }
    // A seq outside u32 is refused, never wrapped.
    for (const seq of [-1, 2 ** 32, 1.5, NaN]) {
      assert.throws(
        () => encodeServerMsg({ ...m, seq } as ServerMsg),
        RangeError,
        `${what} ${seq}`,
      );
    }
    types.add(m.type);
  }
  assert.deepEqual(
    [...types].sort(),
    [MsgType.Intro, MsgType.Left, MsgType.Roster, MsgType.Check, MsgType.Servers].sort(),
  );
  // No other message has one.
  for (const m of SERVER_SAMPLES) {
    if (!types.has(m.type)) assert.ok(!("seq" in m), typeName(m.type));
  }
});

Deno.test("wire: a ROSTER of everyone else in a full room (token and seq included) fits MAX_DATAGRAM", () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => bytesOf(ID_LEN, 50 + i));
  const full: ServerMsg = {
    type: MsgType.Roster,
    token: tokenA,
    seq: 0xffffffff,
    ids: ids(MAX_ROOM_SIZE - 1),
  };
  const b = encodeServerMsg(full);
  assert.equal(b.length, 4 + TOKEN_LEN + 4 + 2 + (MAX_ROOM_SIZE - 1) * ID_LEN);
  assert.ok(b.length <= MAX_DATAGRAM, `${b.length} bytes`);
  assert.deepEqual(assertOk(decodeServerMsg(b)), full);
  // MAX_ROOM_SIZE is the largest such size: one more member and the ROSTER is dropped.
  const over = encodeServerMsg({ ...full, ids: ids(MAX_ROOM_SIZE) });
  assert.deepEqual(decodeServerMsg(over), { ok: false, reason: "oversize" });
});

Deno.test("wire: fixed-size fields of the wrong length are refused by the encoder", () => {
  const hello = sample(MsgType.Hello), welcome = sample(MsgType.Welcome);
  const refused = sample(MsgType.Refused), intro = sample(MsgType.Intro);
  const ping = sample(MsgType.Ping);
  const cases: [string, ServerMsg][] = [];
  for (const d of [-1, 1]) {
    cases.push(
      ["HELLO id", { ...hello, id: new Uint8Array(ID_LEN + d) }],
      ["HELLO cookie", { ...hello, cookie: new Uint8Array(COOKIE_LEN + d) }],
      ["HELLO nonce", { ...hello, nonce: new Uint8Array(NONCE_LEN + d) }],
      ["HELLO room", { ...hello, room: new Uint8Array(ROOM_ID_LEN + d) }],
      ["HELLO name tag", { ...hello, nameTag: new Uint8Array(NAME_TAG_LEN + d) }],
      ["HELLO signature", { ...hello, signature: new Uint8Array(SIGNATURE_LEN + d) }],
      ["WELCOME nonce", { ...welcome, nonce: new Uint8Array(NONCE_LEN + d) }],
      ["REFUSED echo", { ...refused, echo: new Uint8Array(TOKEN_LEN + d) }],
      ["INTRO epoch", { ...intro, epoch: new Uint8Array(EPOCH_LEN + d) }],
      ["PING cookie", { ...ping, cookie: new Uint8Array(COOKIE_LEN + d) }],
      ["COOKIE", {
        type: MsgType.Cookie,
        echo: tokenA,
        cookie: new Uint8Array(COOKIE_LEN + d),
        difficulty: 0,
      }],
      ["COOKIE echo", {
        type: MsgType.Cookie,
        echo: new Uint8Array(TOKEN_LEN + d),
        cookie: cookieA,
        difficulty: 0,
      }],
    );
  }
  cases.push(["REFUSED message of 256 bytes", { ...refused, message: "x".repeat(256) }]);
  for (const [what, m] of cases) assert.throws(() => encodeServerMsg(m), RangeError, what);
});

Deno.test("wire: MsgOf<T> is the server message of type T", () => {
  const ping: MsgOf<typeof MsgType.Ping> = {
    type: MsgType.Ping,
    id: idA,
    token: tokenA,
    cookie: cookieA,
    digest: 1,
  };
  const asServerMsg: ServerMsg = ping;
  assert.deepEqual(assertOk(decodeServerMsg(encodeServerMsg(asServerMsg))), ping);
  const pong = { type: MsgType.Pong, token: tokenA, observed: epV4, digest: 1 } as const;
  // @ts-expect-error: a PONG is not a PING.
  const wrong: MsgOf<typeof MsgType.Ping> = pong;
  assert.equal(wrong.type, MsgType.Pong);
  // @ts-expect-error: an INTRO without its token is incomplete.
  const noToken: MsgOf<typeof MsgType.Intro> = {
    type: MsgType.Intro,
    seq: 1,
    id: idA,
    epoch: epoch1,
    flags: 0,
    publicEndpoint: null,
    privateEndpoints: [],
  };
  assert.throws(() => encodeServerMsg(noToken), "an INTRO without a token cannot be encoded");
  // @ts-expect-error: a ROSTER without its seq is incomplete.
  const noSeq: MsgOf<typeof MsgType.Roster> = { type: MsgType.Roster, token: tokenA, ids: [] };
  assert.throws(() => encodeServerMsg(noSeq), RangeError, "a ROSTER without a seq");
});

Deno.test("wire: every message type has exactly the bytes of the protocol table", () => {
  const table: [ServerMsg, Uint8Array][] = [
    [
      {
        type: MsgType.Hello,
        id: idA,
        cookie: cookieA,
        nonce: nonceA,
        flags: FLAG_RELAY_ONLY,
        room: room1,
        nameTag: tag1,
        owner: ownerA,
        idKey: idKeyA,
        signature: sigA,
        idSignature: sigB,
        pow: new Uint8Array(8),
        privateEndpoints: [{ hostname: "10.1.2.3", port: 5 }],
      },
      // id, cookie[8], nonce[8], flags u8, room id[32], name tag[8], owner[16], id key[32],
      // signature[64], id signature[64], pow[8], private endpoints.
      concat(
        hdr(MsgType.Hello),
        idA,
        cookieA,
        nonceA,
        [1],
        room1,
        tag1,
        ownerA,
        idKeyA,
        sigA,
        sigB,
        new Uint8Array(8),
        [1],
        v4(10, 1, 2, 3, 5),
      ),
    ],
    [
      {
        type: MsgType.Welcome,
        id: idA,
        nonce: nonceA,
        token: tokenA,
        boot: bootA,
        observed: { hostname: "192.0.2.33", port: 0x1f90 },
      },
      // id, nonce[8] (echoed), token[8], boot[8], observed endpoint, flags u8 (nothing follows).
      concat(hdr(MsgType.Welcome), idA, nonceA, tokenA, bootA, v4(192, 0, 2, 33, 0x1f90), [0]),
    ],
    [
      {
        type: MsgType.Welcome,
        id: idA,
        nonce: nonceA,
        token: tokenA,
        boot: bootA,
        observed: { hostname: "192.0.2.33", port: 0x1f90 },
        sharedCookie: cookieA,
        cluster: { keepalive: 4, servers: [epV4] },
      },
      // A cluster server's: flags 3, the shared cookie[8], keepalive u16, the other servers.
      concat(
        hdr(MsgType.Welcome),
        idA,
        nonceA,
        tokenA,
        bootA,
        v4(192, 0, 2, 33, 0x1f90),
        [3],
        cookieA,
        [0, 4],
        [1],
        v4(198, 51, 100, 7, 40000),
      ),
    ],
    [
      { type: MsgType.Refused, echo: tokenB, code: RefuseCode.NameTaken, message: "é" },
      // echo[8], code u8, message str8.
      concat(hdr(MsgType.Refused), tokenB, [4], [2, 0xc3, 0xa9]),
    ],
    [
      {
        type: MsgType.Intro,
        token: tokenA,
        seq: 0x01020304,
        id: idB,
        epoch: epoch1,
        flags: 0,
        publicEndpoint: epV4,
        privateEndpoints: [],
      },
      // token[8], seq u32 big-endian, id, epoch[8], flags u8, public list (0 or 1), private list.
      concat(
        hdr(MsgType.Intro),
        tokenA,
        [1, 2, 3, 4],
        idB,
        epoch1,
        [0],
        [1],
        v4(198, 51, 100, 7, 40000),
        [0],
      ),
    ],
    [
      { type: MsgType.Left, token: tokenA, seq: 0xfffffffe, id: idC, reason: LeftReason.Expired },
      // token[8], seq u32, id, reason u8.
      concat(hdr(MsgType.Left), tokenA, [0xff, 0xff, 0xff, 0xfe], idC, [2]),
    ],
    [
      { type: MsgType.Ping, id: idA, token: tokenA, cookie: cookieA, digest: 0x01020304 },
      // id, token[8], cookie[8], digest u32 big-endian.
      concat(hdr(MsgType.Ping), idA, tokenA, cookieA, [1, 2, 3, 4]),
    ],
    [
      {
        type: MsgType.Pong,
        token: tokenB,
        observed: { hostname: "::1", port: 0x0102 },
        digest: 9,
      },
      // token[8], observed endpoint (family 6, 16 bytes, port), digest.
      concat(
        hdr(MsgType.Pong),
        tokenB,
        [6, ...new Uint8Array(15), 1, 0x01, 0x02],
        [0, 0, 0, 9],
      ),
    ],
    [
      { type: MsgType.Roster, token: tokenA, seq: 7, ids: [idB, idC] },
      // token[8], seq u32, count u16, ids.
      concat(hdr(MsgType.Roster), tokenA, [0, 0, 0, 7], [0, 2], idB, idC),
    ],
    [
      { type: MsgType.Bye, id: idA, token: tokenA },
      concat(hdr(MsgType.Bye), idA, tokenA),
    ],
    [
      { type: MsgType.Relay, from: idA, token: tokenA, to: idB, payload: bytesOf(3, 1) },
      // from id, token[8], to id, payload.
      concat(hdr(MsgType.Relay), idA, tokenA, idB, bytesOf(3, 1)),
    ],
    [
      { type: MsgType.Relayed, token: tokenB, from: idA, payload: bytesOf(2, 2) },
      // token[8], from id, payload.
      concat(hdr(MsgType.Relayed), tokenB, idA, bytesOf(2, 2)),
    ],
    [
      { type: MsgType.Repunch, id: idA, token: tokenA, target: idC },
      // id, token[8], target id.
      concat(hdr(MsgType.Repunch), idA, tokenA, idC),
    ],
    [
      { type: MsgType.Cookie, echo: tokenA, cookie: cookieA, difficulty: 0 },
      // echo (the request's nonce or token)[8], cookie[8], difficulty u8.
      concat(hdr(MsgType.Cookie), tokenA, cookieA, [0]),
    ],
    [
      { type: MsgType.Reach, nonce: cookieA, mac: bytesOf(16, 3) },
      // nonce[8], mac[16].
      concat(hdr(MsgType.Reach), cookieA, bytesOf(16, 3)),
    ],
    [
      { type: MsgType.Reached, id: idA, token: tokenA, nonce: cookieA },
      // id, token[8], nonce[8].
      concat(hdr(MsgType.Reached), idA, tokenA, cookieA),
    ],
    [
      {
        type: MsgType.Check,
        token: tokenA,
        seq: 3,
        target: epV4,
        nonce: cookieA,
        mac: bytesOf(16, 3),
      },
      // token[8], seq u32, target endpoint, nonce[8], mac[16].
      concat(
        hdr(MsgType.Check),
        tokenA,
        [0, 0, 0, 3],
        v4(198, 51, 100, 7, 40000),
        cookieA,
        bytesOf(16, 3),
      ),
    ],
    [
      {
        type: MsgType.Servers,
        token: tokenA,
        seq: 7,
        keepalive: 4,
        servers: [{ hostname: "192.0.2.33", port: 0x1f90 }],
      },
      // token[8], seq u32, keepalive u16, servers list.
      concat(hdr(MsgType.Servers), tokenA, [0, 0, 0, 7], [0, 4], [1], v4(192, 0, 2, 33, 0x1f90)),
    ],
  ];
  const types = new Set<number>();
  for (const [m, bytes] of table) {
    const what = typeName(m.type);
    assert.deepEqual(encodeServerMsg(m), bytes, `${what}: the encoder produces these bytes`);
    assert.deepEqual(assertOk(decodeServerMsg(bytes), what), m, `${what}: decodes as documented`);
    types.add(m.type);
  }
  assert.equal(types.size, Object.values(MsgType).length - PEER_TYPES.size, "every type");
  // HANDSHAKE: from id, to id, stage u8, attempt u32, cookie u32, message.
  const hs = concat(
    hdr(MsgType.Handshake),
    idA,
    idB,
    [2],
    [0xde, 0xad, 0xbe, 0xef],
    [0x0b, 0xad, 0xf0, 0x0d],
    [7, 8, 9],
  );
  const frame = {
    from: idA,
    to: idB,
    stage: 2,
    attempt: 0xdeadbeef,
    cookie: 0x0badf00d,
    message: Uint8Array.of(7, 8, 9),
  };
  assert.deepEqual(encodeHandshake(frame), hs);
  assert.deepEqual(assertOk(decodeHandshake(hs)), frame);
  assert.equal(MsgType.Handshake, 0x21);
  assert.equal(HANDSHAKE_HEADER_LEN, 29);
});

Deno.test("wire: decoded byte fields are copies, independent of the receive buffer", () => {
  const samples: ServerMsg[] = [
    { type: MsgType.Relay, from: idA, token: tokenA, to: idB, payload: bytesOf(20, 1) },
    sample(MsgType.Hello),
    sample(MsgType.Welcome),
  ];
  for (const m of samples) {
    const buf = encodeServerMsg(m);
    const d = assertOk(decodeServerMsg(buf));
    buf.fill(0);
    assert.deepEqual(d, m);
  }
  const hs = encodeHandshake(HANDSHAKE_SAMPLES[1]!);
  const f = assertOk(decodeHandshake(hs));
  const ids = assertOk(peerFrameIds(hs));
  hs.fill(0);
  assert.deepEqual(f, HANDSHAKE_SAMPLES[1]);
  assert.deepEqual(ids, { from: idA, to: idB });
});

Deno.test("wire: IPv4 endpoints round-trip, including extreme addresses and ports", () => {
  for (const hostname of ["0.0.0.0", "127.0.0.1", "255.255.255.255", "203.0.113.254"]) {
    for (const port of [0, 1, 7777, 65535]) {
      const observed = { hostname, port };
      const b = encodeServerMsg({ type: MsgType.Pong, token: tokenA, observed, digest: 1 });
      assert.equal(b[4 + TOKEN_LEN], 4, "family byte is 4");
      assert.equal(b.length, 4 + TOKEN_LEN + 1 + 4 + 2 + 4);
      assert.deepEqual(assertOk(decodeServerMsg(b)), {
        type: MsgType.Pong,
        token: tokenA,
        observed,
        digest: 1,
      });
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
      const m: ServerMsg = {
        type: MsgType.Welcome,
        id: idA,
        nonce: nonceA,
        token: tokenA,
        boot: bootA,
        observed: { hostname, port },
      };
      const b = encodeServerMsg(m);
      const famAt = 4 + ID_LEN + NONCE_LEN + TOKEN_LEN + BOOT_LEN;
      assert.equal(b[famAt], 6, `${hostname}: family byte is 6`);
      assert.equal(b.length, famAt + 1 + 16 + 2 + 1);
      assert.deepEqual(assertOk(decodeServerMsg(b), hostname), m, hostname);
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
      token: tokenA,
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
    token: tokenA,
    observed: { hostname: mapped, port: 5000 },
    digest: 0,
  });
  const fam = 4 + TOKEN_LEN;
  assert.equal(b[fam], 6, "encoded as an IPv6 endpoint");
  assert.deepEqual(
    [...b.subarray(fam + 1, fam + 17)],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1],
  );
  const d = assertOk(decodeServerMsg(b));
  assert.ok(d.type === MsgType.Pong);
  assert.equal(d.observed.port, 5000);
  // The decoder reports it in the dotted form sockets report, the same 16-byte address ...
  assert.equal(d.observed.hostname, mapped);
  assert.deepEqual(parseIPv6(d.observed.hostname), parseIPv6(mapped));
  // ... and it re-encodes to identical bytes.
  assert.deepEqual(encodeServerMsg(d), b);
});

// ---------------------------------------------------------------------------------------------
// Peer frames: SEALED and HANDSHAKE

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
        assert.deepEqual(assertOk(peerFrameIds(view)), { from: idA, to: idB });
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
  for (const f of HANDSHAKE_SAMPLES) {
    assertRejected(decodeSealed(encodeHandshake(f)), `HANDSHAKE stage ${f.stage} as SEALED`);
  }
  // And a SEALED datagram is neither a server message nor a HANDSHAKE.
  assertRejected(decodeServerMsg(full), "SEALED as server message");
  assertRejected(decodeHandshake(full), "SEALED as HANDSHAKE");
  const badMagic = full.slice();
  badMagic[1] = 0x33;
  assertRejected(decodeSealed(badMagic), "bad magic");
  const badVersion = full.slice();
  badVersion[2] = PROTOCOL_VERSION + 1;
  assertRejected(decodeSealed(badVersion), "bad version");
});

Deno.test("wire: HANDSHAKE frames round-trip at every stage; peerFrameIds reads their ids", () => {
  const stages = new Set<number>();
  for (const f of HANDSHAKE_SAMPLES) {
    const b = encodeHandshake(f);
    assert.equal(b.length, HANDSHAKE_HEADER_LEN + f.message.length);
    assert.ok(b.length <= MAX_DATAGRAM);
    assert.deepEqual([...b.subarray(0, 4)], hdr(MsgType.Handshake));
    for (const view of [b, atOffset(b)]) {
      assert.deepEqual(assertOk(decodeHandshake(view), `stage ${f.stage}`), f);
      assert.deepEqual(assertOk(peerFrameIds(view)), { from: f.from, to: f.to });
    }
    // A HANDSHAKE is not a server message (the server only relays it inside RELAY).
    assertRejected(decodeServerMsg(b), `HANDSHAKE stage ${f.stage} as server message`);
    stages.add(f.stage);
  }
  assert.deepEqual([...stages].sort(), [0, 1, 2, 3]);
  // peerFrameIds refuses server messages and reads nothing past the two ids.
  for (const m of SERVER_SAMPLES) {
    assertRejected(peerFrameIds(encodeServerMsg(m)), `${typeName(m.type)} as a peer frame`);
  }
  const idsOnly = concat(hdr(MsgType.Handshake), idB, idC);
  assert.deepEqual(assertOk(peerFrameIds(idsOnly)), { from: idB, to: idC });
  for (let len = 0; len < idsOnly.length; len++) {
    assertRejected(peerFrameIds(idsOnly.subarray(0, len)), `peer frame ids truncated to ${len}`);
  }
});

Deno.test("wire: HANDSHAKE with a stage above 3 is rejected as bad-stage, never thrown", () => {
  const good = encodeHandshake(HANDSHAKE_SAMPLES[1]!);
  const at = 4 + 2 * ID_LEN;
  assert.equal(good[at], 1);
  for (let stage = 0; stage < 256; stage++) {
    const b = good.slice();
    b[at] = stage;
    const d = decodeHandshake(b);
    if (stage <= 3) assert.equal(assertOk(d, `stage ${stage}`).stage, stage);
    else assert.deepEqual(d, { ok: false, reason: "bad-stage" }, `stage ${stage}`);
  }
  // Also with an empty message and the largest attempt.
  const bare = concat(hdr(MsgType.Handshake), idA, idB, [4], [0xff, 0xff, 0xff, 0xff], [
    0,
    0,
    0,
    0,
  ]);
  assert.deepEqual(decodeHandshake(bare), { ok: false, reason: "bad-stage" });
});

Deno.test("wire: every truncation of a HANDSHAKE header is rejected; the message is the rest", () => {
  for (const f of HANDSHAKE_SAMPLES) {
    const b = encodeHandshake(f);
    for (let len = 0; len < b.length; len++) {
      const d = decodeHandshake(b.subarray(0, len));
      if (len < HANDSHAKE_HEADER_LEN) {
        assertRejected(d, `HANDSHAKE truncated to ${len}`);
      } else {
        const v = assertOk(d, `HANDSHAKE truncated to ${len}`);
        assert.deepEqual(v, { ...f, message: f.message.subarray(0, len - HANDSHAKE_HEADER_LEN) });
      }
    }
  }
  const over = concat(
    encodeHandshake(HANDSHAKE_SAMPLES[0]!),
    bytesOf(MAX_DATAGRAM - HANDSHAKE_HEADER_LEN + 1, 3),
  );
  assert.deepEqual(decodeHandshake(over), { ok: false, reason: "oversize" });
  assert.deepEqual(peerFrameIds(over), { ok: false, reason: "oversize" });
  const relabelled = encodeHandshake(HANDSHAKE_SAMPLES[1]!);
  relabelled[3] = MsgType.Sealed;
  assertRejected(decodeHandshake(relabelled), "SEALED type byte");
  relabelled[0] = 0x71;
  assertRejected(decodeHandshake(relabelled), "bad magic");
});

Deno.test("wire: encodeHandshake refuses attempts outside u32 and ids of the wrong length", () => {
  const f = HANDSHAKE_SAMPLES[1]!;
  for (const attempt of [-1, 2 ** 32, 1.5, NaN]) {
    assert.throws(() => encodeHandshake({ ...f, attempt }), RangeError, `attempt ${attempt}`);
  }
  for (const stage of [-1, 256, 0.5]) {
    assert.throws(() => encodeHandshake({ ...f, stage }), RangeError, `stage ${stage}`);
  }
  for (const len of [0, ID_LEN - 1, ID_LEN + 1]) {
    assert.throws(() => encodeHandshake({ ...f, from: new Uint8Array(len) }), RangeError);
    assert.throws(() => encodeHandshake({ ...f, to: new Uint8Array(len) }), RangeError);
  }
});

Deno.test("wire: encodeHandshake refuses a stage its decoder rejects (4..255)", () => {
  const f = HANDSHAKE_SAMPLES[1]!;
  for (const stage of [4, 5, 128, 255]) {
    assert.throws(() => encodeHandshake({ ...f, stage }), RangeError, `stage ${stage}`);
  }
});

// ---------------------------------------------------------------------------------------------
// Inner frames

Deno.test("wire: NAT and BIRTHDAY frames refuse values their decoders reject", () => {
  assertRejected(decodeInner(new Uint8Array([InnerKind.Nat, 3, 0])), "mapping 3");
  assertRejected(
    decodeInner(new Uint8Array([InnerKind.Nat, 1, 9, ...new Array(18).fill(1)])),
    "9 ports",
  );
  assertRejected(decodeInner(new Uint8Array([InnerKind.Nat, 1, 2, 0, 1])), "short port list");
  for (const stage of [0, 4, 255]) {
    assertRejected(
      decodeInner(new Uint8Array([InnerKind.Birthday, stage, 0, 0, 0, 1, 1, 0])),
      `stage ${stage}`,
    );
  }
  assert.throws(
    () => encodeInner({ kind: InnerKind.Nat, mapping: 1, ports: new Array(9).fill(1) }),
    RangeError,
  );
  assert.throws(
    () => encodeInner({ kind: InnerKind.Birthday, stage: 1, round: 1, sockets: 70000 }),
    RangeError,
  );
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
  for (const f of BATCH_SAMPLES) {
    const b = encodeInner(f);
    assert.equal(b[0], DATA_BATCH_KIND);
    assert.deepEqual(assertOk(decodeInner(b)), f);
    assert.deepEqual(assertOk(decodeInner(atOffset(b))), f);
  }
});

Deno.test("wire: DATA_BATCH is kind 9, seq, stream, base, then parts (flags, u16 length, text) to the end; never larger than a full DATA", () => {
  const batch = concat(
    [DATA_BATCH_KIND],
    [0x00, 0x00, 0x01, 0x02], // seq
    [0xde, 0xad, 0xbe, 0xef], // stream
    [0x00, 0x00, 0x00, 0xfa], // base
    [2, 0x00, 0x02],
    utf8.encode("hi"),
    [1, 0x00, 0x00],
    [0, 0x00, 0x03],
    utf8.encode("you"),
  );
  const d = assertOk(decodeInner(batch));
  assert.deepEqual(d, {
    kind: InnerKind.Data,
    seq: 0x0102,
    stream: 0xdeadbeef,
    base: 0xfa,
    first: true,
    more: false,
    text: utf8.encode("hi"),
    packed: [
      { first: false, more: true, text: new Uint8Array(0) },
      { first: false, more: false, text: utf8.encode("you") },
    ],
  });
  assert.deepEqual(encodeInner(d), batch, "the encoder produces exactly these bytes");
  // An empty packed list is a plain DATA.
  assert.equal(encodeInner({ ...(d as InnerFrame & { kind: 3 }), packed: [] })[0], InnerKind.Data);
  // Refused: one part only, no parts, a length past the end, trailing bytes, oversize.
  const head = batch.subarray(0, 13);
  for (
    const [bad, why] of [
      [concat(head, [2, 0, 2], utf8.encode("hi")), "one part"],
      [head, "no parts"],
      [concat(head, [2, 0, 2], utf8.encode("hi"), [0, 0, 9], utf8.encode("you")), "length"],
      [concat(batch, [0]), "trailing byte"],
      [concat(batch, [0, 0]), "trailing bytes"],
      [
        concat(head, [0, 0, 0], [0, (MAX_BATCH - 5) >> 8, (MAX_BATCH - 5) & 0xff]),
        "short",
      ],
    ] as const
  ) assertRejected(decodeInner(bad), why);
  const full = (n: number) => concat(head, [0, 0, 0], [0, n >> 8, n & 0xff], bytesOf(n, 9));
  assertOk(decodeInner(full(MAX_BATCH - 2 * BATCH_PART_OVERHEAD)), "exactly MAX_BATCH");
  assertRejected(decodeInner(full(MAX_BATCH - 2 * BATCH_PART_OVERHEAD + 1)), "MAX_BATCH + 1");
  assert.ok(13 + MAX_BATCH <= DATA_FIXED + MAX_FRAGMENT);
  const f = BATCH_SAMPLES[1]! as InnerFrame & { kind: 3 };
  assert.throws(() => encodeInner({ ...f, text: concat(f.text, [1]) }), RangeError);
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
  const ping = { type: MsgType.Ping, id: idA, token: tokenA, cookie: cookieA, digest: 0 } as const;
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
      () => encodeServerMsg({ ...ping, digest: v }),
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
  for (const kind of [0, 6, 0x20, 0xff]) {
    assertRejected(decodeInner(new Uint8Array([kind, 0, 0, 0, 0, 0, 0, 0, 0])), `kind ${kind}`);
  }
  assertRejected(decodeInner(new Uint8Array(0)), "empty");
  for (const f of INNER_SAMPLES) {
    const b = encodeInner(f);
    const fixed = f.kind === InnerKind.Data
      ? DATA_FIXED
      : f.kind === InnerKind.FileData
      ? FILE_DATA_HEADER
      : b.length;
    for (let len = 0; len < b.length; len++) {
      const d = decodeInner(b.subarray(0, len));
      if (len < fixed) {
        assertRejected(d, `kind ${f.kind} truncated to ${len}`);
      } else if (f.kind === InnerKind.FileData) {
        // A block runs to the end too.
        const v = assertOk(d, `FILE_DATA truncated to ${len}`);
        assert.ok(v.kind === InnerKind.FileData);
        assert.deepEqual(v.data, f.data.subarray(0, len - fixed));
      } else {
        // DATA text runs to the end: a shorter frame is a shorter text.
        const v = assertOk(d, `DATA truncated to ${len}`);
        assert.ok(v.kind === InnerKind.Data && f.kind === InnerKind.Data);
        assert.deepEqual(v.text, f.text.subarray(0, len - fixed));
      }
    }
    if (f.kind !== InnerKind.Data && f.kind !== InnerKind.FileData) {
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
  const good = encodeServerMsg(sample(MsgType.Ping));
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
    if (known.has(type) && !PEER_TYPES.has(type)) continue;
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
    token: tokenA,
    to: idB,
    payload: bytesOf(MAX_DATAGRAM - fixed, 1),
  });
  assert.equal(max.length, MAX_DATAGRAM);
  assertOk(decodeServerMsg(max), "exactly MAX_DATAGRAM");
  const over = encodeServerMsg({
    type: MsgType.Relay,
    from: idA,
    token: tokenA,
    to: idB,
    payload: bytesOf(MAX_DATAGRAM - fixed + 1, 1),
  });
  const d = decodeServerMsg(over);
  assertRejected(d, "MAX_DATAGRAM + 1");
  assert.equal(!d.ok && d.reason, "oversize");
  assertRejected(decodeServerMsg(new Uint8Array(65_507)), "max UDP payload");
  assertRejected(peekType(over), "peekType oversize");
});

Deno.test("wire: invalid UTF-8 in a REFUSED message is rejected", () => {
  const invalid: number[][] = [
    [0xff],
    [0xc3], // truncated 2-byte sequence
    [0x61, 0x80], // lone continuation byte
    [0xc0, 0xaf], // overlong "/"
    [0xed, 0xa0, 0x80], // UTF-16 surrogate
    [0xf4, 0x90, 0x80, 0x80], // beyond U+10FFFF
    [0xe4, 0xb8], // truncated CJK
  ];
  const refused = (message: Uint8Array) => concat(hdr(MsgType.Refused), tokenA, [1], message);
  assertOk(decodeServerMsg(refused(str8("Register again"))), "control REFUSED");
  for (const bad of invalid) {
    const what = `bytes ${bad.map((x) => x.toString(16)).join(" ")}`;
    assertRejected(decodeServerMsg(refused(rawStr8(bad))), `REFUSED message ${what}`);
  }
  // A str8 whose length runs past the end of the datagram.
  assertRejected(decodeServerMsg(concat(hdr(MsgType.Refused), tokenA, [1], [5], [0x61])), "short");
});

Deno.test("wire: HELLO room id and name tag are opaque bytes, any value round-trips", () => {
  // The server never learns names: any 32 and 8 bytes are fine, including ones that would be
  // control characters or invalid UTF-8 as text.
  const rooms = [new Uint8Array(ROOM_ID_LEN), new Uint8Array(ROOM_ID_LEN).fill(0xff), room1];
  const tags = [
    new Uint8Array(NAME_TAG_LEN),
    Uint8Array.of(0x1b, 0x0a, 0xc3, 0, 0xed, 0xa0, 0x80, 0x7f),
  ];
  for (const room of rooms) {
    for (const nameTag of tags) {
      const m: ServerMsg = {
        type: MsgType.Hello,
        id: idA,
        cookie: cookieA,
        nonce: nonceA,
        flags: 0,
        room,
        nameTag,
        owner: ownerA,
        idKey: idKeyA,
        signature: sigA,
        idSignature: sigB,
        pow: new Uint8Array(8),
        privateEndpoints: [],
      };
      const b = encodeServerMsg(m);
      const roomAt = 4 + ID_LEN + COOKIE_LEN + NONCE_LEN + 1;
      assert.equal(
        b.length,
        roomAt + ROOM_ID_LEN + NAME_TAG_LEN + OWNER_TAG_LEN + ID_KEY_LEN + 2 * SIGNATURE_LEN + 8 +
          1,
      );
      assert.deepEqual(b.subarray(roomAt, roomAt + ROOM_ID_LEN), room);
      assert.deepEqual(b.subarray(roomAt + ROOM_ID_LEN, roomAt + ROOM_ID_LEN + 8), nameTag);
      assert.deepEqual(assertOk(decodeServerMsg(b)), m);
    }
  }
});

Deno.test("wire: INTRO with more than one public endpoint is rejected", () => {
  const intro = (pub: number[][], priv: number[][]) =>
    concat(
      hdr(MsgType.Intro),
      tokenA,
      [0, 0, 0, 1],
      idA,
      epoch1,
      [0],
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
  const welcome = encodeServerMsg(sample(MsgType.Welcome));
  const pong = encodeServerMsg({ type: MsgType.Pong, token: tokenA, observed: epV6, digest: 0 });
  const hello = encodeServerMsg({ ...sample(MsgType.Hello), privateEndpoints: [epV4] });
  const intro = encodeServerMsg({ ...sample(MsgType.Intro), publicEndpoint: epV4 });
  const helloFam = hello.length - 7;
  const introFam = 4 + TOKEN_LEN + 4 + ID_LEN + EPOCH_LEN + 1 + 1;
  const welcomeFam = 4 + ID_LEN + NONCE_LEN + TOKEN_LEN + BOOT_LEN;
  assert.equal(hello[helloFam], 4);
  assert.equal(intro[introFam], 4);
  assert.equal(welcome[welcomeFam], 4);
  assert.equal(pong[4 + TOKEN_LEN], 6);
  for (const fam of [0, 1, 5, 41, 46, 0xff]) {
    const cases: [Uint8Array, number, string][] = [
      [welcome, welcomeFam, "WELCOME"],
      [pong, 4 + TOKEN_LEN, "PONG"],
      [hello, helloFam, "HELLO private endpoint"],
      [intro, introFam, "INTRO public endpoint"],
    ];
    for (const [orig, at, what] of cases) {
      const b = orig.slice();
      b[at] = fam;
      assertRejected(decodeServerMsg(b), `${what} family ${fam}`);
    }
  }
});

Deno.test("wire: relabelled message types are rejected or decode canonically", () => {
  // Re-label each message with every other type: any success must be consistent.
  const all = [...SERVER_SAMPLES.map(encodeServerMsg), ...HANDSHAKE_SAMPLES.map(encodeHandshake)];
  for (const b of all) {
    for (const t of Object.values(MsgType)) {
      const relabelled = b.slice();
      relabelled[3] = t;
      const d = decodeServerMsg(relabelled);
      if (d.ok) {
        assert.equal(d.value.type, t);
        assert.deepEqual(encodeServerMsg(d.value), relabelled, "canonical re-encoding");
      }
      const h = decodeHandshake(relabelled);
      if (h.ok) {
        assert.equal(t, MsgType.Handshake);
        assert.deepEqual(encodeHandshake(h.value), relabelled, "canonical re-encoding");
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

/** A DATA frame's bytes with the flag bits no field uses cleared (what re-encoding gives). */
function canonicalInner(b: Uint8Array): Uint8Array {
  if (b[0] !== InnerKind.Data || b.length < 14) return b;
  const out = b.slice();
  out[13]! &= 0b11;
  return out;
}

/** DATA_BATCH parts' flag bytes with their unused bits cleared. */
function canonicalBatch(b: Uint8Array): Uint8Array {
  const out = b.slice();
  for (let o = 13; o + 3 <= out.length; o += 3 + ((out[o + 1]! << 8) | out[o + 2]!)) {
    out[o]! &= 0b11;
  }
  return out;
}

Deno.test("wire: seeded fuzz: decoders never throw; whatever decodes re-encodes to itself and decodes again to the same value", () => {
  const rand = prng(0x5eed_2024);
  const int = (n: number) => Math.floor(rand() * n);
  const seeds = [
    ...SERVER_SAMPLES.map(encodeServerMsg),
    ...HANDSHAKE_SAMPLES.map(encodeHandshake),
    concat(encodeSealedHeader(idA, idB, 42n), bytesOf(40, 1)),
  ];
  const innerSeeds = [...INNER_SAMPLES, ...BATCH_SAMPLES].map(encodeInner);
  let accepted = 0, rejected = 0, innerAccepted = 0, handshakes = 0, badStages = 0, sealed = 0;
  let headers = 0;
  const N = 100_000; // The issue asks for at least 100k seeded cases per run.
  for (let i = 0; i < N; i++) {
    let input: Uint8Array;
    const mode = i % 4;
    if (mode === 0) {
      // Random bytes, sometimes behind a valid header.
      const body = Uint8Array.from({ length: int(120) }, () => int(256));
      const types = Object.values(MsgType);
      input = rand() < 0.5 ? body : concat(hdr(types[int(types.length)]!), body);
    } else if (mode === 3) {
      input = mutate(rand, innerSeeds[int(innerSeeds.length)]!);
    } else {
      input = mutate(rand, seeds[int(seeds.length)]!);
    }
    if (rand() < 0.2) input = atOffset(input, 1 + int(9));
    const where = () => `fuzz case ${i}: [${[...input].join(",")}]`;
    let s: Decoded<ServerMsg>;
    let inner: Decoded<InnerFrame>;
    let hs: Decoded<HandshakeFrame>;
    let ids: Decoded<{ from: Uint8Array; to: Uint8Array }>;
    let type: Decoded<number>;
    let sf: Decoded<SealedFrame>;
    const copy = input.slice();
    try {
      s = decodeServerMsg(input);
      type = peekType(input);
      sf = decodeSealed(input);
      hs = decodeHandshake(input);
      ids = peerFrameIds(input);
      inner = decodeInner(input);
    } catch (e) {
      assert.fail(`decoder threw ${e} on ${where()}`);
    }
    try {
      assert.deepEqual(input, copy, "decoders leave their input alone");
      if (type.ok) {
        // The header checks agree with each other and with the bytes.
        headers++;
        assert.equal(type.value, input[3]);
        assert.ok(hasHeader(input, type.value));
      }
      if (hs.ok) {
        handshakes++;
        assert.ok(hs.value.stage <= 3);
        const again = encodeHandshake(hs.value);
        assert.deepEqual(again, input);
        assert.deepEqual(assertOk(decodeHandshake(again)), hs.value);
        assert.deepEqual(assertOk(ids), { from: hs.value.from, to: hs.value.to });
      } else if (hs.reason === "bad-stage") {
        badStages++;
      }
      if (sf.ok) {
        // A SEALED frame is its header (the associated data, rebuilt from its fields) and body.
        sealed++;
        const f = sf.value;
        assert.deepEqual(f.header, encodeSealedHeader(f.from, f.to, f.counter));
        assert.deepEqual(concat(f.header, f.body), input);
        assert.ok(f.body.length >= 16, "room for the tag");
        assert.deepEqual(assertOk(ids), { from: f.from, to: f.to });
      }
      if (inner.ok) {
        innerAccepted++;
        // Accepted inner frames re-encode to the input (DATA's unused flag bits cleared) and
        // decode to the same frame.
        const again = encodeInner(inner.value);
        assert.deepEqual(assertOk(decodeInner(again)), inner.value);
        const canonical = input[0] === DATA_BATCH_KIND
          ? canonicalBatch(input)
          : canonicalInner(input);
        assert.deepEqual(again, canonical);
      }
      assert.equal(typeof s.ok, "boolean");
      if (s.ok) {
        accepted++;
        // Decoding is the inverse of encoding on everything it accepts.
        const again = encodeServerMsg(s.value);
        assert.deepEqual(again, input);
        assert.deepEqual(assertOk(decodeServerMsg(again)), s.value);
        assert.equal(s.value.type, assertOk(type));
      } else {
        rejected++;
        assert.equal(typeof s.reason, "string");
      }
    } catch (e) {
      throw new Error(`${where()}: ${(e as Error).message}`);
    }
  }
  assert.ok(accepted > 50, `fuzz exercised the accept path (${accepted})`);
  assert.ok(rejected > 1000, `fuzz exercised the reject path (${rejected})`);
  assert.ok(innerAccepted > 100, `fuzz accepted inner frames (${innerAccepted})`);
  assert.ok(handshakes > 50, `fuzz accepted HANDSHAKE frames (${handshakes})`);
  assert.ok(badStages > 5, `fuzz exercised the bad-stage path (${badStages})`);
  assert.ok(sealed > 50, `fuzz accepted SEALED frames (${sealed})`);
  assert.ok(headers > 1000, `fuzz accepted headers (${headers})`);
});

Deno.test("wire: seeded fuzz of IP literals: parse never throws; what parses formats canonically and parses back to the same bytes", () => {
  const rand = prng(0x1b_2024);
  const int = (n: number) => Math.floor(rand() * n);
  const alphabet = "0123456789abcdefABCDEF:.:::x ";
  let v6 = 0;
  for (let i = 0; i < 20_000; i++) {
    // Random bytes formatted, then parsed: the bytes come back.
    const b16 = Uint8Array.from({ length: 16 }, () => (rand() < 0.4 ? 0 : int(256)));
    if (i % 7 === 0) b16.fill(0, 0, 10), b16[10] = b16[11] = 0xff; // IPv4-mapped
    assert.deepEqual(parseIPv6(formatIPv6(b16)), b16, formatIPv6(b16));
    const b4 = Uint8Array.from({ length: 4 }, () => int(256));
    assert.deepEqual(parseIPv4(b4.join(".")), b4);
    // Random text: never a throw; what parses is canonical after one format.
    const text = Array.from({ length: 1 + int(40) }, () => alphabet[int(alphabet.length)]).join("");
    let p6: Uint8Array | null, p4: Uint8Array | null;
    try {
      p6 = parseIPv6(text);
      p4 = parseIPv4(text);
    } catch (e) {
      assert.fail(`parse threw ${e} on ${JSON.stringify(text)}`);
    }
    if (p6) {
      v6++;
      const canonical = formatIPv6(p6);
      assert.deepEqual(parseIPv6(canonical), p6, text);
      assert.equal(formatIPv6(parseIPv6(canonical)!), canonical);
    }
    if (p4) assert.deepEqual(parseIPv4(p4.join(".")), p4);
  }
  assert.ok(v6 > 20, `random text parsed as IPv6 sometimes (${v6})`);
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
    const ping = encodeServerMsg({
      type: MsgType.Ping,
      id,
      token: tokenA,
      cookie: cookieA,
      digest,
    });
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
  // IPv4-mapped IPv6: a dual-stack socket sends these to the IPv4 address (loopback included),
  // and replies come from the plain IPv4 form, so an honest peer never offers one.
  for (const h of ["::ffff:127.0.0.1", "::ffff:224.0.0.1", "::ffff:0.0.0.0", "::ffff:10.0.0.1"]) {
    assert.ok(!ok(h), h);
    assert.ok(!ok(h, 9, true), h);
  }
});

Deno.test("wire: CANDIDATES carries at most MAX_PRIVATE_ENDPOINTS endpoints both ways", () => {
  const many = Array.from({ length: MAX_PRIVATE_ENDPOINTS + 1 }, () => epV4);
  assert.throws(
    () => encodeInner({ kind: InnerKind.Candidates, endpoints: many }),
    RangeError,
  );
  const ok = encodeInner({
    kind: InnerKind.Candidates,
    endpoints: many.slice(0, MAX_PRIVATE_ENDPOINTS),
  });
  assertOk(decodeInner(ok));
  const tooMany = concat([InnerKind.Candidates, many.length], ok.subarray(2), ok.subarray(2, 9));
  assertRejected(decodeInner(tooMany), "one endpoint too many");
});

// ---------------------------------------------------------------------------------------------
// Encoding helpers

Deno.test("wire: parseIPv4 takes four dotted groups of 1-3 ASCII digits up to 255, nothing else", () => {
  const ok: [string, number[]][] = [
    ["0.0.0.0", [0, 0, 0, 0]],
    ["127.0.0.1", [127, 0, 0, 1]],
    ["255.255.255.255", [255, 255, 255, 255]],
    ["010.001.1.00", [10, 1, 1, 0]],
    ["198.51.100.7", [198, 51, 100, 7]],
  ];
  for (const [s, bytes] of ok) assert.deepEqual(parseIPv4(s), Uint8Array.from(bytes), s);
  const bad = [
    "",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.4.",
    ".1.2.3.4",
    "1..2.3",
    "256.1.1.1",
    "1.2.3.999",
    "1.2.3.0004",
    "1.2.3.-4",
    "1.2.3.4 ",
    " 1.2.3.4",
    "1.2.3.a",
    "１.2.3.4", // A fullwidth digit is not ASCII.
    "::1",
    "1.2.3.4:80",
  ];
  for (const s of bad) assert.equal(parseIPv4(s), null, JSON.stringify(s));
});

Deno.test("wire: encodings never share bytes, and an encoder that threw leaves later ones intact", () => {
  const pong = (digest: number): ServerMsg => ({
    type: MsgType.Pong,
    token: idA,
    observed: epV4,
    digest,
  });
  const a = encodeServerMsg(pong(1));
  const b = encodeServerMsg(pong(2));
  assert.notEqual(a.buffer, b.buffer);
  assert.equal(assertOk(decodeServerMsg(a)).type, MsgType.Pong);
  assert.deepEqual(assertOk(decodeServerMsg(a)), pong(1), "the first result kept its bytes");
  // A RangeError half-way through one encoding (a programming error) ...
  assert.throws(
    () =>
      encodeServerMsg({
        type: MsgType.Pong,
        token: idA,
        observed: { hostname: "x", port: 1 },
        digest: 3,
      }),
    RangeError,
  );
  // ... and the next encodings, small and large, are still exact.
  assert.deepEqual(assertOk(decodeServerMsg(encodeServerMsg(pong(4)))), pong(4));
  for (const f of SERVER_SAMPLES) {
    assert.deepEqual(assertOk(decodeServerMsg(encodeServerMsg(f))), f);
  }
  // One larger than the scratch buffer (it grows) and a datagram-sized one.
  const hs = { ...HANDSHAKE_SAMPLES[1]!, message: bytesOf(5000, 7) };
  const long = encodeHandshake(hs); // Too long for a datagram, but encodable.
  assert.deepEqual(long.subarray(HANDSHAKE_HEADER_LEN), hs.message);
  assert.deepEqual(
    long.subarray(0, HANDSHAKE_HEADER_LEN),
    encodeHandshake({ ...hs, message: new Uint8Array(0) }),
  );
  const relay: ServerMsg = {
    type: MsgType.Relay,
    from: idA,
    token: idB,
    to: idC,
    payload: bytesOf(1100, 8),
  };
  assert.deepEqual(assertOk(decodeServerMsg(encodeServerMsg(relay))), relay);
  assert.deepEqual(assertOk(decodeServerMsg(encodeServerMsg(pong(5)))), pong(5));
});
