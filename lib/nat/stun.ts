/**
 * STUN on the rendezvous port: a pure codec for STUN messages (RFC 8489, and the RFC 3489
 * "classic" form without the magic cookie) and {@link StunResponder}, the logic that answers
 * Binding requests, including RFC 5780 NAT behaviour discovery. No I/O: `server.ts` owns the
 * sockets and hands datagrams in.
 *
 * ## Telling STUN from p2p datagrams
 *
 * Every p2p datagram starts with `0x70 0x32` (`lib/wire/header.ts`), whose first two bits are `01`;
 * every STUN message starts with two zero bits ({@link looksLikeStun}). Bytes 4..7 of an RFC
 * 8489 message are the magic cookie `0x2112A442`; an RFC 3489 message has no cookie there (its
 * 16-byte transaction id starts at byte 4) and is answered the classic way.
 *
 * ## What the responder answers
 *
 * Only Binding requests (method 1, class request). Responses, indications, other methods and
 * anything malformed (bad length, bad attribute framing, FINGERPRINT wrong or not last) are
 * dropped silently and counted by reason in {@link StunStats.drops}. A request with the magic
 * cookie gets XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, optionally SOFTWARE, and FINGERPRINT; when
 * the server has its full set of alternate sockets (`--alt-host` and `--alt-port`) also
 * RESPONSE-ORIGIN and OTHER-ADDRESS (RFC 5780); with a second port but no second address, p2p's
 * own ALT-PORT ({@link Attr.AltPort}, comprehension-optional: other clients skip it), naming the
 * other port, so that a peer asking both ports learns whether its NAT maps per port. A classic request gets MAPPED-ADDRESS and, with
 * the alternate sockets, SOURCE-ADDRESS and CHANGED-ADDRESS (RFC 3489); its 16-byte transaction
 * id is echoed. CHANGE-REQUEST picks the socket the answer leaves from (change IP flips the
 * address, change port the port); RESPONSE-PORT (RFC 5780) sends it to another port of the
 * requesting address (never another address: RFC 3489's RESPONSE-ADDRESS is refused).
 * Unknown comprehension-required attributes, a change the server cannot make and
 * RESPONSE-ADDRESS get a 420 error listing them; a malformed CHANGE-REQUEST or RESPONSE-PORT a
 * 400.
 *
 * ## Amplification
 *
 * STUN over UDP answers unverified source addresses, so a spoofed request makes the server send
 * to a victim. Responses are kept small and fixed: against the smallest possible request (a
 * 20-byte header), an IPv4 answer is 52 bytes without alternate sockets (2.6×), 60 with a
 * second port only (3×) and 76 bytes with all of them (3.8×; classic requests 32 and 56 bytes); IPv6 addresses make it at most 124 bytes
 * (6.2×). SOFTWARE is off unless configured. PADDING (RFC 5780) is honoured only as far as the
 * response stays no larger than the request. Every source IP address (IPv6: every /64, see
 * `sourceKey` in `lib/core/limits.ts`) has a token bucket ({@link StunLimits}, default 10 answers a
 * second, burst 20) and all answers together another (default 2000 a second), so a reflection
 * attack gets at most a few hundred KB/s out of the server, whatever it spoofs.
 * p2p's own clients pad their requests ({@link BindingRequestOptions.padded}) to
 * {@link PADDED_REQUEST_LEN} bytes, more than any answer, so replaying them amplifies nothing.
 *
 * @module
 */

import { sourceKey, TokenBucket } from "../core/limits.ts";
import { type Endpoint, parseIPv4, parseIPv6 } from "../wire/address.ts";
import type { Decoded } from "../wire/codec.ts";

/** The magic cookie of RFC 5389/8489 messages (bytes 4..7). */
export const MAGIC_COOKIE = 0x2112a442;

/** FINGERPRINT is the CRC-32 of the message XORed with this ("STUN"). */
export const FINGERPRINT_XOR = 0x5354554e;

/** Size of a STUN header. */
export const STUN_HEADER_LEN = 20;

/** The Binding method. */
export const BINDING = 0x001;

/** Message classes (the two class bits of the message type). */
export const StunClass = { Request: 0, Indication: 1, Success: 2, Error: 3 } as const;

/** A message class. */
export type StunClassValue = (typeof StunClass)[keyof typeof StunClass];

/** Attribute types this module reads or writes. */
export const Attr = {
  MappedAddress: 0x0001,
  /** RFC 3489; never honoured (it would send the answer to any address). */
  ResponseAddress: 0x0002,
  ChangeRequest: 0x0003,
  /** RFC 3489 (classic responses). */
  SourceAddress: 0x0004,
  /** RFC 3489 (classic responses). */
  ChangedAddress: 0x0005,
  Username: 0x0006,
  MessageIntegrity: 0x0008,
  ErrorCode: 0x0009,
  UnknownAttributes: 0x000a,
  Realm: 0x0014,
  Nonce: 0x0015,
  MessageIntegritySha256: 0x001c,
  Userhash: 0x001e,
  XorMappedAddress: 0x0020,
  Priority: 0x0024,
  UseCandidate: 0x0025,
  Padding: 0x0026,
  ResponsePort: 0x0027,
  Software: 0x8022,
  Fingerprint: 0x8028,
  ResponseOrigin: 0x802b,
  OtherAddress: 0x802c,
  /**
   * p2p's own (comprehension-optional, designated-expert range): the other port of the address
   * the request was sent to, on a server with a second port but no second address
   * (`docs/protocol.md` 17). Value: the port (u16) and two zero bytes.
   */
  AltPort: 0xc070,
} as const;

/** CHANGE-REQUEST flag: answer from the other IP address. */
export const CHANGE_IP = 0x04;
/** CHANGE-REQUEST flag: answer from the other port. */
export const CHANGE_PORT = 0x02;

/** One attribute as it appears on the wire (the value without padding, copied). */
export interface StunAttribute {
  /** Attribute type. */
  type: number;
  /** Value bytes (a copy). */
  value: Uint8Array;
}

/** A decoded STUN message. */
export interface StunMessage {
  /** The 12-bit method ({@link BINDING}). */
  method: number;
  /** The class. */
  cls: StunClassValue;
  /** True for RFC 5389/8489 messages (magic cookie present), false for RFC 3489 ones. */
  cookie: boolean;
  /** 12 bytes (with cookie) or 16 bytes (classic, bytes 4..19 of the header). */
  transactionId: Uint8Array;
  /** Attributes in wire order (FINGERPRINT included). */
  attributes: StunAttribute[];
  /** True when a FINGERPRINT was present (it was checked: a wrong one fails decoding). */
  fingerprint: boolean;
}

/** Most attributes the decoder accepts in one message (bounds the work per datagram). */
export const MAX_ATTRIBUTES = 64;

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, as in FINGERPRINT)

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (the ISO-HDLC / zlib one) of `b`, as an unsigned 32-bit number. */
export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// Header and message codec

function u16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function u32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

function put16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** The 14-bit message type of `method` and `cls` (RFC 8489 §5: class bits interleaved). */
export function messageType(method: number, cls: StunClassValue): number {
  return (method & 0x000f) | ((method & 0x0070) << 1) | ((method & 0x0f80) << 2) |
    ((cls & 1) << 4) | ((cls & 2) << 7);
}

/**
 * Whether a datagram is to be treated as STUN rather than p2p: at least a header long and the
 * first two bits zero. p2p datagrams (`0x70 0x32 ...`) never are. Cheap; decoding decides the
 * rest.
 */
export function looksLikeStun(data: Uint8Array): boolean {
  return data.length >= STUN_HEADER_LEN && (data[0]! & 0xc0) === 0;
}

/**
 * Decodes a STUN message. Never throws: malformed input gives `{ ok: false, reason }`. Checks
 * the two zero bits, that the length field is a multiple of 4 and matches the datagram, the
 * attribute framing (4-byte padding), at most {@link MAX_ATTRIBUTES} attributes, and that a
 * FINGERPRINT (with the magic cookie) is the last attribute and correct.
 */
export function decodeStun(data: Uint8Array): Decoded<StunMessage> {
  if (data.length < STUN_HEADER_LEN) return { ok: false, reason: "stun-short" };
  if ((data[0]! & 0xc0) !== 0) return { ok: false, reason: "stun-not-stun" };
  const length = u16(data, 2);
  if (length % 4 !== 0) return { ok: false, reason: "stun-bad-length" };
  if (STUN_HEADER_LEN + length !== data.length) {
    return { ok: false, reason: "stun-length-mismatch" };
  }
  const type = u16(data, 0);
  const cls = (((type >>> 4) & 1) | ((type >>> 7) & 2)) as StunClassValue;
  const method = (type & 0x000f) | ((type >>> 1) & 0x0070) | ((type >>> 2) & 0x0f80);
  const cookie = u32(data, 4) === MAGIC_COOKIE;
  const transactionId = data.slice(cookie ? 8 : 4, STUN_HEADER_LEN);
  const attributes: StunAttribute[] = [];
  let fingerprint = false;
  let o = STUN_HEADER_LEN;
  while (o < data.length) {
    if (fingerprint) return { ok: false, reason: "stun-fingerprint-not-last" };
    if (attributes.length >= MAX_ATTRIBUTES) {
      return { ok: false, reason: "stun-too-many-attributes" };
    }
    if (o + 4 > data.length) return { ok: false, reason: "stun-truncated-attribute" };
    const at = u16(data, o);
    const len = u16(data, o + 2);
    const end = o + 4 + len;
    if (end > data.length) return { ok: false, reason: "stun-truncated-attribute" };
    if (cookie && at === Attr.Fingerprint) {
      if (len !== 4) return { ok: false, reason: "stun-bad-fingerprint" };
      // The CRC covers everything before the attribute, the length field already counting it.
      if ((crc32(data.subarray(0, o)) ^ FINGERPRINT_XOR) >>> 0 !== u32(data, o + 4)) {
        return { ok: false, reason: "stun-bad-fingerprint" };
      }
      fingerprint = true;
    }
    attributes.push({ type: at, value: data.slice(o + 4, end) });
    o = end + ((4 - (len % 4)) % 4);
  }
  if (o !== data.length) return { ok: false, reason: "stun-truncated-attribute" };
  return { ok: true, value: { method, cls, cookie, transactionId, attributes, fingerprint } };
}

/** What {@link encodeStun} needs. */
export interface StunMessageInit {
  /** Method (default {@link BINDING}). */
  method?: number;
  /** Class. */
  cls: StunClassValue;
  /** 12 bytes with the magic cookie, 16 bytes for a classic (RFC 3489) message. */
  transactionId: Uint8Array;
  /** Attributes in order (without FINGERPRINT; see `fingerprint`). */
  attributes: readonly StunAttribute[];
  /** Append a FINGERPRINT (only for messages with the magic cookie). */
  fingerprint?: boolean;
}

/**
 * Encodes a message: header (with the magic cookie when the transaction id has 12 bytes),
 * attributes padded with zeros to 4 bytes, and FINGERPRINT last if asked. Throws only on
 * programming errors (a transaction id of another size, an attribute over 65535 bytes).
 */
export function encodeStun(m: StunMessageInit): Uint8Array {
  const tid = m.transactionId;
  if (tid.length !== 12 && tid.length !== 16) throw new Error("stun: transaction id of 12 or 16");
  const cookie = tid.length === 12;
  const withFp = cookie && m.fingerprint === true;
  let body = 0;
  for (const a of m.attributes) {
    if (a.value.length > 0xffff) throw new Error("stun: attribute too long");
    body += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
  }
  if (withFp) body += 8;
  const out = new Uint8Array(STUN_HEADER_LEN + body);
  put16(out, 0, messageType(m.method ?? BINDING, m.cls));
  put16(out, 2, body);
  if (cookie) {
    put32(out, 4, MAGIC_COOKIE);
    out.set(tid, 8);
  } else {
    out.set(tid, 4);
  }
  let o = STUN_HEADER_LEN;
  for (const a of m.attributes) {
    put16(out, o, a.type);
    put16(out, o + 2, a.value.length);
    out.set(a.value, o + 4);
    o += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
  }
  if (withFp) {
    put16(out, o, Attr.Fingerprint);
    put16(out, o + 2, 4);
    put32(out, o + 4, (crc32(out.subarray(0, o)) ^ FINGERPRINT_XOR) >>> 0);
  }
  return out;
}

/** The first attribute of `type`, if any. */
export function findAttribute(m: StunMessage, type: number): StunAttribute | undefined {
  return m.attributes.find((a) => a.type === type);
}

// ---------------------------------------------------------------------------------------------
// Address attributes

function formatIPv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  // Longest run (≥ 2) of zero groups becomes "::".
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (xs: number[]) => xs.map((x) => x.toString(16)).join(":");
  if (best < 0) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

/** The XOR pad of an address attribute: the cookie, then (IPv6) the transaction id. */
function xorPad(transactionId: Uint8Array): Uint8Array {
  const pad = new Uint8Array(16);
  put32(pad, 0, MAGIC_COOKIE);
  pad.set(transactionId.subarray(0, 12), 4);
  return pad;
}

/**
 * Encodes an address attribute value (MAPPED-ADDRESS layout: reserved, family, port, address);
 * with `xorTransactionId`, XOR-MAPPED-ADDRESS's obfuscation under the cookie and that
 * transaction id. Returns null for an endpoint that is no literal IP.
 */
export function encodeAddress(ep: Endpoint, xorTransactionId?: Uint8Array): Uint8Array | null {
  const ip = parseIPv4(ep.hostname) ?? parseIPv6(ep.hostname);
  if (!ip || !Number.isInteger(ep.port) || ep.port < 0 || ep.port > 0xffff) return null;
  const v = new Uint8Array(4 + ip.length);
  v[1] = ip.length === 4 ? 1 : 2;
  put16(v, 2, ep.port);
  v.set(ip, 4);
  if (xorTransactionId) {
    const pad = xorPad(xorTransactionId);
    v[2]! ^= pad[0]!;
    v[3]! ^= pad[1]!;
    for (let i = 0; i < ip.length; i++) v[4 + i]! ^= pad[i]!;
  }
  return v;
}

/**
 * Decodes an address attribute value; with `xorTransactionId`, undoes XOR-MAPPED-ADDRESS's
 * obfuscation. Null when malformed (wrong length for the family, unknown family).
 */
export function decodeAddress(value: Uint8Array, xorTransactionId?: Uint8Array): Endpoint | null {
  if (value.length < 4) return null;
  const family = value[1];
  const n = family === 1 ? 4 : family === 2 ? 16 : 0;
  if (n === 0 || value.length !== 4 + n) return null;
  const ip = value.slice(4);
  let port = u16(value, 2);
  if (xorTransactionId) {
    const pad = xorPad(xorTransactionId);
    port ^= u16(pad, 0);
    for (let i = 0; i < n; i++) ip[i]! ^= pad[i]!;
  }
  const hostname = n === 4 ? `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}` : formatIPv6(ip);
  return { hostname, port };
}

/**
 * The reflexive address a Binding success response reports: XOR-MAPPED-ADDRESS (with the
 * cookie), else MAPPED-ADDRESS. Null if neither is present and well formed.
 */
export function mappedAddress(m: StunMessage): Endpoint | null {
  if (m.cookie) {
    const x = findAttribute(m, Attr.XorMappedAddress);
    const ep = x && decodeAddress(x.value, m.transactionId);
    if (ep) return ep;
  }
  const a = findAttribute(m, Attr.MappedAddress);
  return (a && decodeAddress(a.value)) ?? null;
}

/** Options of {@link bindingRequest}. */
export interface BindingRequestOptions {
  /** CHANGE-REQUEST flags ({@link CHANGE_IP}, {@link CHANGE_PORT}); none when 0 or absent. */
  change?: number;
  /** Add a FINGERPRINT (messages with the magic cookie only). */
  fingerprint?: boolean;
  /** RESPONSE-PORT (RFC 5780): the answer goes to this port of the requesting address. */
  responsePort?: number;
  /**
   * Pad the request to {@link PADDED_REQUEST_LEN} bytes, so that no answer of p2p's responder
   * is larger than it: a captured request replayed from a spoofed address gains the attacker
   * nothing. What p2p's own clients send (the STUN probe, the doctor).
   */
  padded?: boolean;
}

/**
 * Length of a padded Binding request (see {@link BindingRequestOptions.padded}): at least the
 * largest success answer of {@link StunResponder} without SOFTWARE (124 bytes: IPv6
 * XOR-MAPPED-ADDRESS, MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, FINGERPRINT), rounded up.
 * The padding is a SOFTWARE attribute ("p2p" and spaces): comprehension-optional, so every
 * server ignores it (RFC 5780's PADDING is comprehension-required, and a server without RFC
 * 5780 would answer 420).
 */
export const PADDED_REQUEST_LEN = 128;

/**
 * A Binding request with transaction id `transactionId` (12 bytes: RFC 8489 with the magic
 * cookie; 16 bytes: a classic RFC 3489 request).
 */
export function bindingRequest(
  transactionId: Uint8Array,
  o: BindingRequestOptions = {},
): Uint8Array {
  const attributes: StunAttribute[] = [];
  if (o.change) {
    const v = new Uint8Array(4);
    v[3] = o.change & (CHANGE_IP | CHANGE_PORT);
    attributes.push({ type: Attr.ChangeRequest, value: v });
  }
  if (o.responsePort !== undefined) {
    const v = new Uint8Array(4);
    put16(v, 0, o.responsePort);
    attributes.push({ type: Attr.ResponsePort, value: v });
  }
  const fingerprint = o.fingerprint ?? transactionId.length === 12;
  if (o.padded) {
    // Header, the attributes so far, the SOFTWARE attribute's own 4 bytes, FINGERPRINT.
    let size = STUN_HEADER_LEN + 4 + (fingerprint && transactionId.length === 12 ? 8 : 0);
    for (const a of attributes) size += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
    const pad = new Uint8Array(Math.max(4, PADDED_REQUEST_LEN - size)).fill(0x20);
    pad.set(utf8.encode("p2p"));
    attributes.push({ type: Attr.Software, value: pad });
  }
  return encodeStun({ cls: StunClass.Request, transactionId, attributes, fingerprint });
}

/** The value of a {@link Attr.AltPort} attribute naming `port`. */
export function altPortValue(port: number): Uint8Array {
  const v = new Uint8Array(4);
  put16(v, 0, port);
  return v;
}

/**
 * The other port a server's answer names in {@link Attr.AltPort} (a server with one address
 * and two ports), or null when it names none or the attribute is malformed. Never throws.
 */
export function altPortOf(m: StunMessage): number | null {
  const a = findAttribute(m, Attr.AltPort);
  if (!a || a.value.length !== 4) return null;
  const port = u16(a.value, 0);
  return port === 0 ? null : port;
}

// ---------------------------------------------------------------------------------------------
// The responder

/**
 * The server's sockets by role: index `ip * 2 + port`, where `ip` is 0 for the primary address
 * and 1 for `--alt-host`, `port` 0 for the primary port and 1 for `--alt-port`. So 0 is the
 * primary socket, 1 primary address + alternate port, 2 alternate address + primary port, 3
 * both alternate. `null` (or absent) for a socket the server does not have.
 */
export type StunSockets = readonly (Endpoint | null | undefined)[];

/** Rate limits of the responder. */
export interface StunLimits {
  /** Answers a second to one source IP address. */
  perSourceRate: number;
  /** Burst of answers to one source IP address. */
  perSourceBurst: number;
  /** Answers a second in total. */
  totalRate: number;
  /** Burst of answers in total. */
  totalBurst: number;
  /** Source addresses whose buckets are remembered (the least recently seen are forgotten). */
  maxSources: number;
}

/** Default {@link StunLimits}. */
export const DEFAULT_STUN_LIMITS: StunLimits = {
  perSourceRate: 10,
  perSourceBurst: 20,
  totalRate: 2000,
  totalBurst: 2000,
  maxSources: 10_000,
};

/** Options of {@link StunResponder}. */
export interface StunResponderOptions {
  /** The sockets by role (see {@link StunSockets}); index 0, the primary, is required. */
  sockets: StunSockets;
  /** A SOFTWARE attribute in success responses (none by default: smaller answers). */
  software?: string;
  /** Rate limits (defaults in {@link DEFAULT_STUN_LIMITS}). */
  limits?: Partial<StunLimits>;
}

/** An answer to send: from socket `via` (a role index) to `to`. */
export interface StunReply {
  /** Role index of the socket to send from. */
  via: number;
  /** Destination. */
  to: Endpoint;
  /** The encoded message. */
  data: Uint8Array;
}

/** Counters of a {@link StunResponder}. */
export interface StunStats {
  /** Binding requests answered with a success response. */
  answered: number;
  /** Binding requests answered with an error response (400, 420). */
  errors: number;
  /** Answers sent from another socket than the request came in on (CHANGE-REQUEST). */
  changed: number;
  /** Requests from clients without the magic cookie (RFC 3489). */
  classic: number;
  /** Datagrams not answered, by reason (`stun-...` decode failures, `stun-rate-limited`, ...). */
  drops: Record<string, number>;
}

/**
 * Comprehension-required attributes (type < 0x8000) a Binding request may carry without a 420:
 * those the responder acts on, and credentials and ICE attributes it has no use for (this
 * server runs no authentication; an ICE agent would reject the unauthenticated answer itself).
 */
const UNDERSTOOD = new Set<number>([
  Attr.ChangeRequest,
  Attr.ResponsePort,
  Attr.Padding,
  Attr.Username,
  Attr.MessageIntegrity,
  Attr.MessageIntegritySha256,
  Attr.Userhash,
  Attr.Realm,
  Attr.Nonce,
  Attr.Priority,
  Attr.UseCandidate,
]);

const ANY_ADDRESS = new Set(["0.0.0.0", "::", ""]);
const utf8 = new TextEncoder();

/**
 * Answers STUN Binding requests (see the module documentation). Pure: feed it each STUN
 * datagram with the role of the socket it arrived on; it returns what to send from which
 * socket, or nothing. Never throws on input.
 */
export class StunResponder {
  #sockets: (Endpoint | null)[];
  #full: boolean;
  #software: Uint8Array | null;
  #limits: StunLimits;
  #sources = new Map<string, TokenBucket>();
  #total: TokenBucket | undefined;
  /** Counters. */
  readonly stats: StunStats = { answered: 0, errors: 0, changed: 0, classic: 0, drops: {} };

  /** A responder for the given sockets. */
  constructor(o: StunResponderOptions) {
    this.#sockets = [0, 1, 2, 3].map((i) => o.sockets[i] ?? null);
    if (!this.#sockets[0]) throw new Error("stun: the primary socket (role 0) is required");
    // RFC 5780 discovery needs a second address and a second port, all four combinations bound,
    // and addresses a client can be told (not a wildcard).
    this.#full = this.#sockets.every((s) => s !== null && !ANY_ADDRESS.has(s.hostname));
    const sw = o.software ? utf8.encode(o.software).slice(0, 763) : null;
    this.#software = sw && sw.length > 0 ? sw : null;
    this.#limits = { ...DEFAULT_STUN_LIMITS, ...o.limits };
  }

  /** True when RFC 5780 behaviour discovery is offered (OTHER-ADDRESS is sent). */
  get behaviourDiscovery(): boolean {
    return this.#full;
  }

  #drop(reason: string): undefined {
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
    return undefined;
  }

  #allow(now: number, ip: string): boolean {
    const l = this.#limits;
    let b = this.#sources.get(ip);
    if (b) {
      // Most recently seen last: the first entry is the one to forget when full.
      this.#sources.delete(ip);
    } else {
      b = new TokenBucket(l.perSourceRate, l.perSourceBurst, now);
      while (this.#sources.size >= l.maxSources) {
        const oldest = this.#sources.keys().next().value;
        if (oldest === undefined) break;
        this.#sources.delete(oldest);
      }
    }
    this.#sources.set(ip, b);
    this.#total ??= new TokenBucket(l.totalRate, l.totalBurst, now);
    // Check the source first, so one noisy source cannot drain the shared bucket.
    return b.take(now, 1) && this.#total.take(now, 1);
  }

  /**
   * Handles one datagram that {@link looksLikeStun}, received from `from` on the socket of role
   * `via`. Returns the answer to send, if any.
   */
  handle(now: number, via: number, from: Endpoint, data: Uint8Array): StunReply | undefined {
    const d = decodeStun(data);
    if (!d.ok) return this.#drop(d.reason);
    const m = d.value;
    if (m.cls !== StunClass.Request) return this.#drop("stun-not-request");
    if (m.method !== BINDING) return this.#drop("stun-unsupported-method");
    if (!this.#sockets[via]) return this.#drop("stun-unknown-socket");
    if (!this.#allow(now, sourceKey(from.hostname))) return this.#drop("stun-rate-limited");
    if (!m.cookie) this.stats.classic++;

    const asked = readRequest(m);
    if (!asked) return this.#error(m, via, from, 400, "Bad Request");
    const { change, responsePort, padding, unknown } = asked;
    const target = via ^ ((change & CHANGE_IP) ? 2 : 0) ^ ((change & CHANGE_PORT) ? 1 : 0);
    const origin = this.#sockets[target];
    if (!origin && !unknown.includes(Attr.ChangeRequest)) unknown.push(Attr.ChangeRequest);
    if (unknown.length > 0 || !origin) {
      return this.#error(m, via, from, 420, "Unknown Attribute", unknown);
    }

    const to = responsePort === undefined ? from : { hostname: from.hostname, port: responsePort };
    const attrs = this.#answer(m, via, from, origin);
    if (attrs.length === 0) return this.#drop("stun-bad-source");
    if (padding > 0) pad(attrs, padding, data.length);
    this.stats.answered++;
    if (target !== via) this.stats.changed++;
    const out = encodeStun({
      cls: StunClass.Success,
      transactionId: m.transactionId,
      attributes: attrs,
      fingerprint: true,
    });
    return { via: target, to, data: out };
  }

  /**
   * The attributes of a success answer to `m` from `from`, received on socket `via` and
   * answered from `origin`: XOR-MAPPED-ADDRESS and the rest (RFC 5389), or MAPPED-ADDRESS and
   * the rest (RFC 3489, no magic cookie); none when `from` cannot be encoded.
   */
  #answer(m: StunMessage, via: number, from: Endpoint, origin: Endpoint): StunAttribute[] {
    const attrs: StunAttribute[] = [];
    const add = (type: number, v: Uint8Array | null) => v && attrs.push({ type, value: v });
    // OTHER-ADDRESS / CHANGED-ADDRESS: where a change of both would come from, relative to the
    // address the request was sent to.
    const other = this.#full ? this.#sockets[via ^ 3]! : null;
    // One address with two ports: the other port, so p2p's peers can ask it too.
    const otherPort = other ? null : this.#sockets[via ^ 1];
    if (m.cookie) {
      add(Attr.XorMappedAddress, encodeAddress(from, m.transactionId));
      add(Attr.MappedAddress, encodeAddress(from));
      if (other) {
        add(Attr.ResponseOrigin, encodeAddress(origin));
        add(Attr.OtherAddress, encodeAddress(other));
      }
      if (otherPort) add(Attr.AltPort, altPortValue(otherPort.port));
      if (this.#software) add(Attr.Software, this.#software);
    } else {
      add(Attr.MappedAddress, encodeAddress(from));
      if (other) {
        add(Attr.SourceAddress, encodeAddress(origin));
        add(Attr.ChangedAddress, encodeAddress(other));
      }
    }
    return attrs;
  }

  #error(
    m: StunMessage,
    via: number,
    to: Endpoint,
    code: number,
    reason: string,
    unknown: number[] = [],
  ): StunReply {
    const phrase = utf8.encode(reason);
    const ec = new Uint8Array(4 + phrase.length);
    ec[2] = Math.floor(code / 100);
    ec[3] = code % 100;
    ec.set(phrase, 4);
    const attributes: StunAttribute[] = [{ type: Attr.ErrorCode, value: ec }];
    if (unknown.length > 0) {
      // At most as many as fit the request's own attributes; RFC 3489 repeats one to fill 4 bytes.
      const list = unknown.slice(0, 8);
      if (!m.cookie && list.length % 2 === 1) list.push(list[list.length - 1]!);
      const v = new Uint8Array(list.length * 2);
      list.forEach((t, i) => put16(v, i * 2, t));
      attributes.push({ type: Attr.UnknownAttributes, value: v });
    }
    this.stats.errors++;
    const data = encodeStun({
      cls: StunClass.Error,
      transactionId: m.transactionId,
      attributes,
      fingerprint: true,
    });
    return { via, to, data };
  }
}

/** What a Binding request asks for, read from its comprehension-required attributes. */
interface BindingAsk {
  /** CHANGE-REQUEST's flags (0: none). */
  change: number;
  /** RESPONSE-PORT (RFC 5780; only with the magic cookie). */
  responsePort: number | undefined;
  /** PADDING's length (only with the magic cookie). */
  padding: number;
  /** Comprehension-required attributes not understood (for a 420). */
  unknown: number[];
}

/** What `m` asks for; null when an attribute it acts on is malformed (a 400). */
function readRequest(m: StunMessage): BindingAsk | null {
  const ask: BindingAsk = { change: 0, responsePort: undefined, padding: 0, unknown: [] };
  for (const a of m.attributes) {
    if (a.type >= 0x8000) continue;
    if (a.type === Attr.ChangeRequest) {
      if (a.value.length !== 4) return null;
      ask.change = a.value[3]! & (CHANGE_IP | CHANGE_PORT);
    } else if (a.type === Attr.ResponsePort && m.cookie) {
      if (a.value.length !== 4) return null;
      ask.responsePort = u16(a.value, 0);
      if (ask.responsePort === 0) return null;
    } else if (a.type === Attr.Padding && m.cookie) {
      ask.padding = a.value.length;
    } else if (!UNDERSTOOD.has(a.type) && !ask.unknown.includes(a.type)) {
      ask.unknown.push(a.type);
    }
  }
  return ask;
}

/**
 * Adds PADDING of up to `padding` bytes to `attrs`, honoured only while the answer stays no
 * larger than the request (`requestLen` bytes).
 */
function pad(attrs: StunAttribute[], padding: number, requestLen: number): void {
  let size = STUN_HEADER_LEN + 8 + 4;
  for (const a of attrs) size += 4 + a.value.length + ((4 - (a.value.length % 4)) % 4);
  const room = Math.floor((requestLen - size) / 4) * 4;
  const n = Math.min(padding, room);
  if (n > 0) attrs.push({ type: Attr.Padding, value: new Uint8Array(n) });
}
