/**
 * Codec for every datagram p2p sends. Pure: bytes in, values out, never throws on input.
 *
 * ## Framing
 *
 * Every datagram starts with a 4-byte header:
 *
 * | offset | size | field                                 |
 * | ------ | ---- | ------------------------------------- |
 * | 0      | 2    | magic `0x70 0x32` (ASCII `p2`)        |
 * | 2      | 1    | protocol version ({@link PROTOCOL_VERSION}) |
 * | 3      | 1    | message type ({@link MsgType})        |
 *
 * All integers are big-endian. `id` fields are 8-byte random peer identifiers. Strings are
 * UTF-8 with a one-byte length prefix (`str8`). An endpoint is `family u8` (4 or 6), the
 * address (4 or 16 bytes) and `port u16`. A list of endpoints is `count u8` then the
 * endpoints.
 *
 * ## Peer ↔ server (plain text on the wire; the server must read them)
 *
 * | type | name     | body                                                              |
 * | ---- | -------- | ----------------------------------------------------------------- |
 * | 0x01 | HELLO    | id, cookie[8], pubkey[32], flags u8, room str8, name str8, private endpoints |
 * | 0x02 | WELCOME  | id, name str8 (as assigned), observed endpoint                    |
 * | 0x03 | REFUSED  | code u8 ({@link RefuseCode}), message str8                        |
 * | 0x04 | INTRO    | id, pubkey[32], epoch[8], flags u8, name str8, public list (0 or 1), private list |
 * | 0x05 | LEFT     | id, reason u8 ({@link LeftReason})                                |
 * | 0x06 | PING     | id, cookie[8], digest u32 (of the peer ids it knows in its room)  |
 * | 0x07 | PONG     | observed endpoint, digest u32 (of the room as the server sees it) |
 * | 0x08 | ROSTER   | count u16, ids                                                    |
 * | 0x09 | BYE      | id                                                                |
 * | 0x0a | RELAY    | from id, to id, payload (rest of datagram: a sealed peer frame)   |
 * | 0x0b | RELAYED  | from id, payload (rest)                                           |
 * | 0x0c | REPUNCH  | id, target id                                                     |
 * | 0x0d | COOKIE   | cookie[8]                                                         |
 *
 * Return routability: the server acts on a HELLO, or on a PING from an address other than the
 * one the peer registered from, only when it carries the cookie the server issues for that
 * peer id and source address (an HMAC under a secret of the server process). Otherwise it
 * answers with a COOKIE, no larger than the request, and the peer repeats the request with
 * it. A spoofed source address therefore gets nothing moved and nothing amplified.
 *
 * HELLO flag bit 0 is "relay only": the server then never reveals this peer's endpoints and
 * never gives it anybody else's. INTRO carries the same flag.
 *
 * ## Peer ↔ peer (end-to-end sealed; the server relays them without being able to read them)
 *
 * | type | name   | body                                                                |
 * | ---- | ------ | ------------------------------------------------------------------- |
 * | 0x20 | SEALED | from id, to id, counter u64, AEAD ciphertext of an inner frame + tag |
 *
 * The 28 bytes before the ciphertext are the AEAD's associated data. Inner frames:
 *
 * | kind | name      | body                                                  |
 * | ---- | --------- | ----------------------------------------------------- |
 * | 1    | PROBE     | txid u32                                              |
 * | 2    | PROBE_ACK | txid u32, observed endpoint (where the probe came from) |
 * | 3    | DATA      | seq u32, stream u32, base u32, flags u8 (bit 0: more fragments follow; bit 1: first fragment), text |
 * | 4    | ACK       | stream u32, cumulative seq u32, selective bitmap u32 (bit i: cum+2+i) |
 * | 5    | ANNOUNCE  | (empty) "I know you": a receiver that does not know the sender asks the server to resync |
 *
 * @module
 */

/** Protocol version carried in byte 2 of every datagram (not the program's version). */
export const PROTOCOL_VERSION = 2;

/** Largest datagram p2p sends or accepts; stays under common path MTUs. */
export const MAX_DATAGRAM = 1200;

/** Largest chat text carried by one DATA frame; longer lines are split into fragments. */
export const MAX_FRAGMENT = 1000;

/** Longest room or peer name in bytes of UTF-8. */
export const MAX_NAME = 64;

/** Most private endpoints the server passes on for one peer (keeps INTRO under MAX_DATAGRAM). */
export const MAX_PRIVATE_ENDPOINTS = 8;

/** Size of a peer identifier in bytes. */
export const ID_LEN = 8;

/** Most peers in one room: a ROSTER of everyone else must fit in one datagram. */
export const MAX_ROOM_SIZE: number = Math.floor((MAX_DATAGRAM - 6) / ID_LEN) + 1;

/** Size of a return-routability cookie in bytes. */
export const COOKIE_LEN = 8;

/** Size of an X25519 public key in bytes. */
export const KEY_LEN = 32;

/** Size of a pair's introduction epoch in bytes. */
export const EPOCH_LEN = 8;

/** Size of a SEALED frame's header, which is also its associated data. */
export const SEALED_HEADER_LEN: number = 4 + ID_LEN + ID_LEN + 8;

/** Message type codes (byte 3 of the header). */
export const MsgType = {
  Hello: 0x01,
  Welcome: 0x02,
  Refused: 0x03,
  Intro: 0x04,
  Left: 0x05,
  Ping: 0x06,
  Pong: 0x07,
  Roster: 0x08,
  Bye: 0x09,
  Relay: 0x0a,
  Relayed: 0x0b,
  Repunch: 0x0c,
  Cookie: 0x0d,
  Sealed: 0x20,
} as const;

/** Why the server refused a request. */
export const RefuseCode = {
  /** The server does not know this peer id (it restarted or expired us): register again. */
  Unknown: 1,
  /** The request was malformed or not allowed. */
  Invalid: 2,
  /** The room has reached its size limit. */
  RoomFull: 3,
} as const;

/** Why a peer left a room. */
export const LeftReason = {
  /** The peer said goodbye. */
  Bye: 1,
  /** The server heard nothing from the peer for too long. */
  Expired: 2,
} as const;

/** HELLO/INTRO flag: this peer only talks through the relay and hides its addresses. */
export const FLAG_RELAY_ONLY = 1;

/** A UDP endpoint with a literal IP address. */
export interface Endpoint {
  /** Literal IPv4 or IPv6 address. */
  hostname: string;
  /** UDP port, 0 to 65535. */
  port: number;
}

/** Every server-facing message, discriminated by `type`. */
export type ServerMsg =
  | {
    type: typeof MsgType.Hello;
    id: Uint8Array;
    cookie: Uint8Array;
    pubkey: Uint8Array;
    flags: number;
    room: string;
    name: string;
    privateEndpoints: Endpoint[];
  }
  | { type: typeof MsgType.Welcome; id: Uint8Array; name: string; observed: Endpoint }
  | { type: typeof MsgType.Refused; code: number; message: string }
  | {
    type: typeof MsgType.Intro;
    id: Uint8Array;
    pubkey: Uint8Array;
    /** Same value in both INTROs of a pair; changes when either side registers anew. */
    epoch: Uint8Array;
    flags: number;
    name: string;
    publicEndpoint: Endpoint | null;
    privateEndpoints: Endpoint[];
  }
  | { type: typeof MsgType.Left; id: Uint8Array; reason: number }
  | { type: typeof MsgType.Ping; id: Uint8Array; cookie: Uint8Array; digest: number }
  | { type: typeof MsgType.Pong; observed: Endpoint; digest: number }
  | { type: typeof MsgType.Roster; ids: Uint8Array[] }
  | { type: typeof MsgType.Bye; id: Uint8Array }
  | { type: typeof MsgType.Relay; from: Uint8Array; to: Uint8Array; payload: Uint8Array }
  | { type: typeof MsgType.Relayed; from: Uint8Array; payload: Uint8Array }
  | { type: typeof MsgType.Repunch; id: Uint8Array; target: Uint8Array }
  | { type: typeof MsgType.Cookie; cookie: Uint8Array };

/** The server-facing message of type `T`, e.g. `MsgOf<typeof MsgType.Intro>`. */
export type MsgOf<T extends ServerMsg["type"]> = Extract<ServerMsg, { type: T }>;

/** The header of a SEALED peer frame; `body` is ciphertext plus tag. */
export interface SealedFrame {
  /** Sender's peer id. */
  from: Uint8Array;
  /** Recipient's peer id. */
  to: Uint8Array;
  /** Per-direction message counter, also the AEAD nonce. */
  counter: bigint;
  /** The first {@link SEALED_HEADER_LEN} bytes, used as associated data. */
  header: Uint8Array;
  /** Ciphertext with the authentication tag at the end. */
  body: Uint8Array;
}

/** Inner frame kinds carried inside SEALED. */
export const InnerKind = { Probe: 1, ProbeAck: 2, Data: 3, Ack: 4, Announce: 5 } as const;

/** The plaintext inside a SEALED frame. */
export type InnerFrame =
  | { kind: typeof InnerKind.Probe; txid: number }
  | { kind: typeof InnerKind.ProbeAck; txid: number; observed: Endpoint }
  | {
    kind: typeof InnerKind.Data;
    seq: number;
    stream: number;
    base: number;
    first: boolean;
    more: boolean;
    text: Uint8Array;
  }
  | { kind: typeof InnerKind.Ack; stream: number; cumulative: number; selective: number }
  | { kind: typeof InnerKind.Announce };

/** Result of decoding: the value, or a short reason that callers count as a drop. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

const MAGIC0 = 0x70;
const MAGIC1 = 0x32;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** True for a C0 or C1 control character or DEL, given its code point. */
export function isControlChar(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/** True when `s` has C0 or C1 control characters or DEL (not allowed in names). */
export function hasControlChars(s: string): boolean {
  for (const ch of s) if (isControlChar(ch.codePointAt(0)!)) return true;
  return false;
}

/**
 * True when `ep` is worth probing as a peer's candidate: a unicast address with a port.
 * Unspecified, multicast, broadcast and reserved addresses never are; loopback only when
 * `loopback` is set (the server observed a peer on loopback, so both run on one host).
 */
export function isUsableCandidate(ep: Endpoint, loopback = false): boolean {
  if (ep.port === 0) return false;
  const v4 = parseIPv4(ep.hostname);
  if (v4) {
    const a = v4[0]!;
    if (a === 0 || a >= 224) return false; // 0/8, multicast 224/4, reserved 240/4, broadcast
    return loopback || a !== 127;
  }
  const v6 = parseIPv6(ep.hostname);
  if (!v6) return false;
  if (v6[0] === 0xff) return false; // multicast
  const zeroUntil15 = v6.subarray(0, 15).every((b) => b === 0);
  if (zeroUntil15 && v6[15] === 0) return false; // ::
  if (zeroUntil15 && v6[15] === 1) return loopback; // ::1
  return true;
}

/** Formats an endpoint as `IP:PORT` (IPv6 in brackets). */
export function formatEndpoint(ep: Endpoint): string {
  return ep.hostname.includes(":") ? `[${ep.hostname}]:${ep.port}` : `${ep.hostname}:${ep.port}`;
}

/** True when both endpoints name the same address and port. */
export function sameEndpoint(a: Endpoint, b: Endpoint): boolean {
  return a.port === b.port && a.hostname === b.hostname;
}

/** Hex form of a peer id, for map keys and logs. */
export function idHex(id: Uint8Array): string {
  let s = "";
  for (const b of id) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Parses a literal IPv4 address into 4 bytes, or returns null. */
export function parseIPv4(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out[i] = n;
  }
  return out;
}

/** Parses a literal IPv6 address (no zone) into 16 bytes, or returns null. */
export function parseIPv6(s: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length < 2) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const toGroups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return null;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = toGroups(halves[0]!);
  const tail = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [
    ...head,
    ...new Array<number>(halves.length === 2 ? missing : 0).fill(0),
    ...tail,
  ];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}

function formatIPv6(b: Uint8Array): string {
  // IPv4-mapped (::ffff:a.b.c.d) in the dotted form sockets report.
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return `::ffff:${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // Compress the longest run of zero groups.
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  const left = groups.slice(0, bestStart).join(":");
  const right = groups.slice(bestStart + bestLen).join(":");
  return `${left}::${right}`;
}

/** Growable big-endian writer. */
class Writer {
  #buf = new Uint8Array(256);
  #view = new DataView(this.#buf.buffer);
  #len = 0;

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  u8(v: number): this {
    checkUint(v, 0xff, "u8");
    this.#ensure(1);
    this.#view.setUint8(this.#len++, v);
    return this;
  }
  u16(v: number): this {
    checkUint(v, 0xffff, "u16");
    this.#ensure(2);
    this.#view.setUint16(this.#len, v);
    this.#len += 2;
    return this;
  }
  u32(v: number): this {
    checkUint(v, 0xffff_ffff, "u32");
    this.#ensure(4);
    this.#view.setUint32(this.#len, v);
    this.#len += 4;
    return this;
  }
  u64(v: bigint): this {
    this.#ensure(8);
    this.#view.setBigUint64(this.#len, v);
    this.#len += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }
  fixed(b: Uint8Array, len: number): this {
    if (b.length !== len) throw new RangeError(`Expected ${len} bytes, got ${b.length}`);
    return this.bytes(b);
  }
  str8(s: string): this {
    const b = encoder.encode(s);
    if (b.length > 255) throw new RangeError("String is longer than 255 bytes of UTF-8");
    return this.u8(b.length).bytes(b);
  }
  endpoint(ep: Endpoint): this {
    const v4 = parseIPv4(ep.hostname);
    if (v4) return this.u8(4).bytes(v4).u16(ep.port);
    const v6 = parseIPv6(ep.hostname);
    if (v6) return this.u8(6).bytes(v6).u16(ep.port);
    throw new RangeError(`Endpoint address is not a literal IP: ${ep.hostname}`);
  }
  endpoints(list: readonly Endpoint[]): this {
    if (list.length > 255) throw new RangeError("Too many endpoints");
    this.u8(list.length);
    for (const ep of list) this.endpoint(ep);
    return this;
  }
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

class ShortRead extends Error {}

/** Bounds-checked big-endian reader; throws ShortRead, which decoders turn into a drop. */
class Reader {
  #b: Uint8Array;
  #v: DataView;
  #o: number;
  constructor(b: Uint8Array, offset: number) {
    this.#b = b;
    this.#v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.#o = offset;
  }
  get remaining(): number {
    return this.#b.length - this.#o;
  }
  #need(n: number): void {
    if (this.#o + n > this.#b.length) throw new ShortRead("Datagram is truncated");
  }
  u8(): number {
    this.#need(1);
    return this.#v.getUint8(this.#o++);
  }
  u16(): number {
    this.#need(2);
    const v = this.#v.getUint16(this.#o);
    this.#o += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.#v.getUint32(this.#o);
    this.#o += 4;
    return v;
  }
  u64(): bigint {
    this.#need(8);
    const v = this.#v.getBigUint64(this.#o);
    this.#o += 8;
    return v;
  }
  /** Copies `n` bytes out, so callers may keep them after the receive buffer is reused. */
  bytes(n: number): Uint8Array {
    this.#need(n);
    const out = this.#b.slice(this.#o, this.#o + n);
    this.#o += n;
    return out;
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  str8(): string {
    const n = this.u8();
    this.#need(n);
    try {
      return decoder.decode(this.#b.subarray(this.#o, this.#o + n));
    } catch {
      throw new ShortRead("String is not valid UTF-8");
    } finally {
      this.#o += n;
    }
  }
  endpoint(): Endpoint {
    const family = this.u8();
    if (family === 4) {
      const a = this.bytes(4);
      return { hostname: `${a[0]}.${a[1]}.${a[2]}.${a[3]}`, port: this.u16() };
    }
    if (family === 6) {
      const a = this.bytes(16);
      return { hostname: formatIPv6(a), port: this.u16() };
    }
    throw new ShortRead(`Unknown address family ${family}`);
  }
  endpoints(): Endpoint[] {
    const n = this.u8();
    const out: Endpoint[] = [];
    for (let i = 0; i < n; i++) out.push(this.endpoint());
    return out;
  }
  end(): void {
    if (this.remaining !== 0) throw new ShortRead("Datagram has trailing bytes");
  }
}

function header(type: number): Writer {
  return new Writer().u8(MAGIC0).u8(MAGIC1).u8(PROTOCOL_VERSION).u8(type);
}

/** Reads the header; returns the message type or a drop reason. */
export function peekType(b: Uint8Array): Decoded<number> {
  if (b.length < 4) return { ok: false, reason: "short" };
  if (b.length > MAX_DATAGRAM) return { ok: false, reason: "oversize" };
  if (b[0] !== MAGIC0 || b[1] !== MAGIC1) return { ok: false, reason: "bad-magic" };
  if (b[2] !== PROTOCOL_VERSION) return { ok: false, reason: "bad-version" };
  return { ok: true, value: b[3]! };
}

/** Throws when `v` is not a whole number from 0 to `max` (a value the caller built wrong). */
function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} out of range: ${v}`);
}

/** Encodes a server-facing message. Throws RangeError only on values the caller built wrong. */
export function encodeServerMsg(m: ServerMsg): Uint8Array {
  const w = header(m.type);
  switch (m.type) {
    case MsgType.Hello:
      return w.fixed(m.id, ID_LEN).fixed(m.cookie, COOKIE_LEN).fixed(m.pubkey, KEY_LEN).u8(m.flags)
        .str8(m.room).str8(m.name)
        .endpoints(m.privateEndpoints).finish();
    case MsgType.Welcome:
      return w.fixed(m.id, ID_LEN).str8(m.name).endpoint(m.observed).finish();
    case MsgType.Refused:
      return w.u8(m.code).str8(m.message).finish();
    case MsgType.Intro:
      return w.fixed(m.id, ID_LEN).fixed(m.pubkey, KEY_LEN).fixed(m.epoch, EPOCH_LEN).u8(m.flags)
        .str8(m.name)
        .endpoints(m.publicEndpoint ? [m.publicEndpoint] : []).endpoints(m.privateEndpoints)
        .finish();
    case MsgType.Left:
      return w.fixed(m.id, ID_LEN).u8(m.reason).finish();
    case MsgType.Ping:
      return w.fixed(m.id, ID_LEN).fixed(m.cookie, COOKIE_LEN).u32(m.digest).finish();
    case MsgType.Pong:
      return w.endpoint(m.observed).u32(m.digest).finish();
    case MsgType.Roster: {
      w.u16(m.ids.length);
      for (const id of m.ids) w.fixed(id, ID_LEN);
      return w.finish();
    }
    case MsgType.Bye:
      return w.fixed(m.id, ID_LEN).finish();
    case MsgType.Relay:
      return w.fixed(m.from, ID_LEN).fixed(m.to, ID_LEN).bytes(m.payload).finish();
    case MsgType.Relayed:
      return w.fixed(m.from, ID_LEN).bytes(m.payload).finish();
    case MsgType.Repunch:
      return w.fixed(m.id, ID_LEN).fixed(m.target, ID_LEN).finish();
    case MsgType.Cookie:
      return w.fixed(m.cookie, COOKIE_LEN).finish();
  }
}

function checkName(s: string, what: string): void {
  if (encoder.encode(s).length > MAX_NAME) throw new ShortRead(`${what} is too long`);
}

/** Decodes a server-facing message; malformed input yields `{ ok: false }`, never a throw. */
export function decodeServerMsg(b: Uint8Array): Decoded<ServerMsg> {
  const t = peekType(b);
  if (!t.ok) return t;
  const r = new Reader(b, 4);
  try {
    let m: ServerMsg;
    switch (t.value) {
      case MsgType.Hello: {
        const id = r.bytes(ID_LEN), cookie = r.bytes(COOKIE_LEN), pubkey = r.bytes(KEY_LEN);
        const flags = r.u8(), room = r.str8(), name = r.str8();
        checkName(room, "Room name");
        checkName(name, "Peer name");
        const privateEndpoints = r.endpoints();
        m = { type: MsgType.Hello, id, cookie, pubkey, flags, room, name, privateEndpoints };
        break;
      }
      case MsgType.Welcome:
        m = { type: MsgType.Welcome, id: r.bytes(ID_LEN), name: r.str8(), observed: r.endpoint() };
        break;
      case MsgType.Refused:
        m = { type: MsgType.Refused, code: r.u8(), message: r.str8() };
        break;
      case MsgType.Intro: {
        const id = r.bytes(ID_LEN), pubkey = r.bytes(KEY_LEN), epoch = r.bytes(EPOCH_LEN);
        const flags = r.u8(), name = r.str8();
        const pub = r.endpoints();
        if (pub.length > 1) throw new ShortRead("More than one public endpoint");
        m = {
          type: MsgType.Intro,
          id,
          pubkey,
          epoch,
          flags,
          name,
          publicEndpoint: pub[0] ?? null,
          privateEndpoints: r.endpoints(),
        };
        break;
      }
      case MsgType.Left:
        m = { type: MsgType.Left, id: r.bytes(ID_LEN), reason: r.u8() };
        break;
      case MsgType.Ping:
        m = {
          type: MsgType.Ping,
          id: r.bytes(ID_LEN),
          cookie: r.bytes(COOKIE_LEN),
          digest: r.u32(),
        };
        break;
      case MsgType.Pong:
        m = { type: MsgType.Pong, observed: r.endpoint(), digest: r.u32() };
        break;
      case MsgType.Roster: {
        const n = r.u16();
        const ids: Uint8Array[] = [];
        for (let i = 0; i < n; i++) ids.push(r.bytes(ID_LEN));
        m = { type: MsgType.Roster, ids };
        break;
      }
      case MsgType.Bye:
        m = { type: MsgType.Bye, id: r.bytes(ID_LEN) };
        break;
      case MsgType.Relay:
        m = { type: MsgType.Relay, from: r.bytes(ID_LEN), to: r.bytes(ID_LEN), payload: r.rest() };
        break;
      case MsgType.Relayed:
        m = { type: MsgType.Relayed, from: r.bytes(ID_LEN), payload: r.rest() };
        break;
      case MsgType.Repunch:
        m = { type: MsgType.Repunch, id: r.bytes(ID_LEN), target: r.bytes(ID_LEN) };
        break;
      case MsgType.Cookie:
        m = { type: MsgType.Cookie, cookie: r.bytes(COOKIE_LEN) };
        break;
      default:
        return { ok: false, reason: "unknown-type" };
    }
    r.end();
    return { ok: true, value: m };
  } catch (e) {
    if (e instanceof ShortRead) return { ok: false, reason: "malformed" };
    throw e;
  }
}

/** Encodes the header of a SEALED frame (also its associated data). */
export function encodeSealedHeader(from: Uint8Array, to: Uint8Array, counter: bigint): Uint8Array {
  return header(MsgType.Sealed).fixed(from, ID_LEN).fixed(to, ID_LEN).u64(counter).finish();
}

/** Splits a SEALED datagram into header fields and ciphertext. */
export function decodeSealed(b: Uint8Array): Decoded<SealedFrame> {
  const t = peekType(b);
  if (!t.ok) return t;
  if (t.value !== MsgType.Sealed) return { ok: false, reason: "unknown-type" };
  if (b.length < SEALED_HEADER_LEN + 16) return { ok: false, reason: "malformed" };
  const r = new Reader(b, 4);
  const from = r.bytes(ID_LEN), to = r.bytes(ID_LEN), counter = r.u64();
  return {
    ok: true,
    value: {
      from,
      to,
      counter,
      header: b.slice(0, SEALED_HEADER_LEN),
      body: b.slice(SEALED_HEADER_LEN),
    },
  };
}

/** Encodes an inner (plaintext) peer frame. */
export function encodeInner(f: InnerFrame): Uint8Array {
  const w = new Writer().u8(f.kind);
  switch (f.kind) {
    case InnerKind.Probe:
      return w.u32(f.txid).finish();
    case InnerKind.ProbeAck:
      return w.u32(f.txid).endpoint(f.observed).finish();
    case InnerKind.Data:
      if (f.text.length > MAX_FRAGMENT) throw new RangeError("Fragment is too large");
      return w.u32(f.seq).u32(f.stream).u32(f.base).u8((f.more ? 1 : 0) | (f.first ? 2 : 0))
        .bytes(f.text).finish();
    case InnerKind.Ack:
      return w.u32(f.stream).u32(f.cumulative).u32(f.selective).finish();
    case InnerKind.Announce:
      return w.finish();
  }
}

/** Decodes an inner peer frame (after the AEAD has authenticated it). */
export function decodeInner(b: Uint8Array): Decoded<InnerFrame> {
  const r = new Reader(b, 0);
  try {
    let f: InnerFrame;
    const kind = r.u8();
    switch (kind) {
      case InnerKind.Probe:
        f = { kind, txid: r.u32() };
        break;
      case InnerKind.ProbeAck:
        f = { kind, txid: r.u32(), observed: r.endpoint() };
        break;
      case InnerKind.Data: {
        const seq = r.u32(), stream = r.u32(), base = r.u32(), flags = r.u8();
        if (r.remaining > MAX_FRAGMENT) return { ok: false, reason: "oversize" };
        f = {
          kind,
          seq,
          stream,
          base,
          first: (flags & 2) !== 0,
          more: (flags & 1) !== 0,
          text: r.rest(),
        };
        break;
      }
      case InnerKind.Ack:
        f = { kind, stream: r.u32(), cumulative: r.u32(), selective: r.u32() };
        break;
      case InnerKind.Announce:
        f = { kind };
        break;
      default:
        return { ok: false, reason: "unknown-inner" };
    }
    r.end();
    return { ok: true, value: f };
  } catch (e) {
    if (e instanceof ShortRead) return { ok: false, reason: "malformed" };
    throw e;
  }
}

/** A datagram a state machine wants sent. */
export interface Transmit {
  /** Destination endpoint (a literal IP). */
  to: Endpoint;
  /** The encoded datagram. */
  data: Uint8Array;
}

/** The 32-bit FNV-1a hash of one peer id; {@link rosterDigest} XORs these. */
export function idDigest(id: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of id) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/**
 * Order-independent 32-bit digest of a set of peer ids (FNV-1a per id, XOR-combined). A peer
 * sends the digest of the peers it knows; the server compares it with its own view of the
 * room and sends a ROSTER plus introductions when they differ. Being an XOR, it can be kept
 * up to date in O(1) per change.
 */
export function rosterDigest(ids: Iterable<Uint8Array>): number {
  let acc = 0;
  for (const id of ids) acc ^= idDigest(id);
  return acc >>> 0;
}
