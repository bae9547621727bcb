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
 * | type | name     | body                                                                  |
 * | ---- | -------- | --------------------------------------------------------------------- |
 * | 0x01 | HELLO    | id, cookie[8], nonce[8], flags u8, room id[32], name tag[8], signature[64], private endpoints |
 * | 0x02 | WELCOME  | id, nonce[8] (the HELLO's, echoed), token[8], observed endpoint       |
 * | 0x03 | REFUSED  | echo[8] (the request's nonce or token), code u8 ({@link RefuseCode}), message str8 |
 * | 0x04 | INTRO    | token[8], seq u32, id, epoch[8], flags u8, public list (0 or 1), private list |
 * | 0x05 | LEFT     | token[8], seq u32, id, reason u8 ({@link LeftReason})                 |
 * | 0x06 | PING     | id, token[8], cookie[8], digest u32 (of the peer ids it knows)        |
 * | 0x07 | PONG     | token[8], observed endpoint, digest u32 (of the room as the server sees it) |
 * | 0x08 | ROSTER   | token[8], seq u32, count u16, ids                                     |
 * | 0x09 | BYE      | id, token[8]                                                          |
 * | 0x0a | RELAY    | from id, token[8], to id, payload (rest: a peer frame)                |
 * | 0x0b | RELAYED  | token[8], from id, payload (rest)                                     |
 * | 0x0c | REPUNCH  | id, token[8], target id                                               |
 * | 0x0d | COOKIE   | cookie[8]                                                             |
 * | 0x0e | REACH    | nonce[8], mac[16] (server → peer, from its alternate address)         |
 * | 0x0f | REACHED  | id, token[8], nonce[8] (peer → server's main address: the REACH got in) |
 *
 * The server never learns room names, peer names or keys: a room id is the 32-byte Ed25519
 * public key the peers derive from the room passphrase, and a name an opaque 8-byte tag.
 *
 * Room membership: every HELLO carries an Ed25519 signature, by the room's key (which only
 * holders of the passphrase can derive), over {@link helloSigningInput}: a fixed label, the id,
 * the cookie, the nonce, the flags and the name tag. The server verifies it (only after the
 * cookie check, so spoofed HELLOs cost it no signature check) and refuses a bad one with
 * REFUSED Invalid. A captured HELLO is useless from another address (the cookie binds the
 * address) and after two cookie periods (the cookie expires), so the room id is no credential.
 *
 * Return routability: the server acts on a HELLO, or on a PING from an address other than the
 * one the peer registered from, only when it carries the cookie the server issues for that
 * peer id and source address (an HMAC under a secret the server rotates every minute).
 * Otherwise it answers with a COOKIE, no larger than the request.
 *
 * Registration secret: WELCOME hands the peer a random token and echoes the HELLO's nonce (8
 * random bytes, new for every registration attempt), so an off-path attacker cannot forge it;
 * a forged COOKIE can only change which cookie the peer's next HELLO carries. Every later message in either direction carries the
 * token, so nobody who has not seen the WELCOME can forge the server's word (INTRO, LEFT,
 * ROSTER, PONG, RELAYED) or the peer's (PING, BYE, RELAY, REPUNCH). REFUSED echoes the token or
 * nonce of the request it answers. INTRO, LEFT and ROSTER also carry a per-registration sequence
 * number, so a duplicated or replayed old one (an empty ROSTER from long ago) changes nothing.
 *
 * HELLO flag bit 0 is "relay only": the server then never reveals this peer's endpoints and
 * never gives it anybody else's. INTRO carries the same flag.
 *
 * Supernodes ({@link FLAG_SUPERNODE}, HELLO and INTRO bit 1): a peer that may serve its room as
 * rendezvous and relay sets the bit in its HELLO. A server with a second address (`--alt-host`)
 * then checks, once per registration and rate-limited, that the peer is reachable without a
 * prior outbound packet: it sends a REACH (nonce, `HMAC-SHA256(token, "p2p reach v1" ‖ nonce)`
 * truncated to 16 bytes; 28 bytes, smaller than the HELLO) from the alternate address, which the
 * peer never contacted, to the peer's observed endpoint. Only a public address or a NAT that
 * filters endpoint-independently lets it in. The peer checks the MAC (a forged REACH is
 * ignored) and answers the server's main address with REACHED (its id, token and the nonce).
 * Only then is the member a supernode: INTROs about it, which only authenticated members of its
 * room receive, carry bit 1. A supernode runs the same registry (`lib/server/registry.ts`) restricted
 * to its own room inside the join process, on the same socket; members register with it too
 * (same HELLO, cookie and token rules) and relay through it, end-to-end sealed.
 *
 * Relay size limit: a RELAY, like every datagram, is at most {@link MAX_DATAGRAM} bytes, so its
 * payload is at most {@link MAX_RELAY_PAYLOAD} (1172) bytes, and the RELAYED carrying it is 8
 * bytes shorter still. The largest frame a peer ever sends, a SEALED DATA frame of
 * {@link MAX_FRAGMENT} bytes of text, is 1058 bytes; HANDSHAKE frames are under 200. The server
 * refuses a larger RELAY visibly: it counts the drop (`relay-oversize`) and answers a sender whose
 * id, address and token check out with REFUSED Limit, at most every 5 s.
 *
 * ## Peer ↔ peer (end-to-end sealed; the server relays them without being able to read them)
 *
 * | type | name      | body                                                                  |
 * | ---- | --------- | --------------------------------------------------------------------- |
 * | 0x20 | SEALED    | from id, to id, counter u64, AEAD ciphertext of an inner frame + tag  |
 * | 0x21 | HANDSHAKE | from id, to id, stage u8 (0..3), attempt u32, cookie u32, Noise handshake message |
 *
 * HANDSHAKE carries the three messages of Noise_XXpsk0_25519_ChaChaPoly_SHA256 (see
 * `lib/peer/handshake/handshake.ts`; each peer initiates one handshake, so messages 1 and 3 from a peer belong
 * to its handshake and message 2 to ours; stage 0 is ignored); a peer without the room secret
 * cannot produce a first message that a member accepts. HANDSHAKE frames travel relayed and
 * directly: a message 1 sent directly carries a random cookie, which the message 2 answering it
 * directly echoes (0 otherwise). The 28 bytes before a SEALED ciphertext are the AEAD's associated data. Inner
 * frames:
 *
 * | kind | name      | body                                                  |
 * | ---- | --------- | ----------------------------------------------------- |
 * | 1    | PROBE     | txid u32                                              |
 * | 2    | PROBE_ACK | txid u32, observed endpoint (where the probe came from) |
 * | 3    | DATA      | seq u32, stream u32, base u32, flags u8 (bit 0: more fragments follow; bit 1: first fragment), text |
 * | 4    | ACK       | stream u32, cumulative seq u32, selective bitmap u32 (bit i: cum+2+i) |
 * | 5    | ANNOUNCE  | attempt u32: the responder's confirmation that it completed the recipient's handshake attempt |
 * | 6    | CANDIDATES | endpoint list: more addresses to punch to (from `join --stun`) |
 * | 7    | NAT       | mapping u8 (0 unknown, 1 endpoint-independent, 2 address-dependent), ports list (count u8, u16 each: the public ports STUN servers saw, in order) |
 * | 8    | BIRTHDAY  | stage u8 (1 propose, 2 accept, 3 go), round u32, sockets u16 (see `lib/peer/path/birthday.ts`) |
 * | 9    | DATA_BATCH | seq u32, stream u32, base u32, then 2 or more parts to the end, each flags u8 (as DATA's), length u16, text |
 *
 * DATA_BATCH is a DATA frame that carries several payloads under one sequence number (a sender
 * packs payloads queued behind its window): the receiver delivers its parts in order, as if each
 * had come in a DATA of its own. Its parts take at most {@link MAX_BATCH} bytes, counting
 * {@link BATCH_PART_OVERHEAD} per part, so it is never larger than a DATA of
 * {@link MAX_FRAGMENT} bytes of text. Both decode to the same {@link InnerFrame} (kind DATA); a
 * batch has its first part in `first`/`more`/`text` and the rest in `packed`.
 * | 10   | RELAYS    | server RTT u16 (ms; 0xffff unknown), supernode id (zeros: none), supernode RTT u16: for choosing the relay with the lowest RTT sum |
 *
 * @module
 */
import { COOKIE_LEN, REACH_MAC_LEN } from "../crypto/cookie.ts";

/**
 * Protocol version carried in byte 2 of every datagram (not the program's version). Version 5:
 * both peers of a pair initiate a handshake, HANDSHAKE carries a cookie, and supernodes exist (a
 * version-4 server would pass a HELLO's supernode bit on in INTROs as it is), so version 4 and
 * 5 must not talk to each other.
 */
export const PROTOCOL_VERSION = 5;

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
export const MAX_ROOM_SIZE: number = Math.floor((MAX_DATAGRAM - 4 - 8 - 4 - 2) / ID_LEN) + 1;

/** Size of a return-routability cookie in bytes (defined with the cookie, `lib/crypto/cookie.ts`). */
export { COOKIE_LEN };

/** Size of an X25519 public key in bytes. */
export const KEY_LEN = 32;

/** Size of a pair's introduction epoch in bytes. */
export const EPOCH_LEN = 8;

/** Size of a registration token in bytes. */
export const TOKEN_LEN = 8;

/** Size of a room id (the room's Ed25519 public key) in bytes. */
export const ROOM_ID_LEN = 32;

/** Size of a HELLO's nonce (echoed by WELCOME and REFUSED) in bytes. */
export const NONCE_LEN = 8;

/** Size of a HELLO's Ed25519 signature in bytes. */
export const SIGNATURE_LEN = 64;

/** Size of an opaque name tag in bytes. */
export const NAME_TAG_LEN = 8;

/** Size of a SEALED frame's header, which is also its associated data. */
export const SEALED_HEADER_LEN: number = 4 + ID_LEN + ID_LEN + 8;

/** Size of a RELAY datagram before its payload: header, from id, token, to id. */
export const RELAY_HEADER_LEN: number = 4 + ID_LEN + TOKEN_LEN + ID_LEN;

/** Size of a RELAYED datagram before its payload: header, token, from id. */
export const RELAYED_HEADER_LEN: number = 4 + TOKEN_LEN + ID_LEN;

/** Largest payload one RELAY carries (1172 bytes: the RELAY is then {@link MAX_DATAGRAM}). */
export const MAX_RELAY_PAYLOAD: number = MAX_DATAGRAM - RELAY_HEADER_LEN;

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
  Reach: 0x0e,
  Reached: 0x0f,
  Sealed: 0x20,
  Handshake: 0x21,
} as const;

/** Why the server refused a request. */
export const RefuseCode = {
  /** The server does not know this peer id (it restarted or expired us): register again. */
  Unknown: 1,
  /** The request was malformed or not allowed. */
  Invalid: 2,
  /** The room has reached its size limit. */
  RoomFull: 3,
  /** Another member of the room has this name tag: pick another name. */
  NameTaken: 4,
  /** A server limit was reached (peers, registrations per address, rooms per address). */
  Limit: 5,
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

/**
 * HELLO flag: this peer offers to be its room's supernode (the server checks its reachability
 * with REACH). INTRO flag: this member passed that check and serves as a supernode. The server
 * never passes a HELLO's bit on as it is: only its own check sets the INTRO bit.
 */
export const FLAG_SUPERNODE = 2;

/** Size of a REACH's nonce and of its MAC, in bytes. */
export const REACH_NONCE_LEN = 8;
/** Size of a REACH's MAC, in bytes (defined with the MAC, `lib/crypto/cookie.ts`). */
export { REACH_MAC_LEN };

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
    /** Fresh random bytes per registration attempt, echoed by WELCOME and REFUSED. */
    nonce: Uint8Array;
    flags: number;
    /** Room id: the room's Ed25519 public key (from the room name and passphrase). */
    room: Uint8Array;
    /** Opaque name tag (unique per room). */
    nameTag: Uint8Array;
    /** The room key's signature over {@link helloSigningInput}. */
    signature: Uint8Array;
    privateEndpoints: Endpoint[];
  }
  | {
    type: typeof MsgType.Welcome;
    id: Uint8Array;
    /** The HELLO's nonce, echoed. */
    nonce: Uint8Array;
    token: Uint8Array;
    observed: Endpoint;
  }
  | { type: typeof MsgType.Refused; echo: Uint8Array; code: number; message: string }
  | {
    type: typeof MsgType.Intro;
    token: Uint8Array;
    seq: number;
    id: Uint8Array;
    /** Same value in both INTROs of a pair; changes when either side registers anew. */
    epoch: Uint8Array;
    flags: number;
    publicEndpoint: Endpoint | null;
    privateEndpoints: Endpoint[];
  }
  | { type: typeof MsgType.Left; token: Uint8Array; seq: number; id: Uint8Array; reason: number }
  | {
    type: typeof MsgType.Ping;
    id: Uint8Array;
    token: Uint8Array;
    cookie: Uint8Array;
    digest: number;
  }
  | { type: typeof MsgType.Pong; token: Uint8Array; observed: Endpoint; digest: number }
  | { type: typeof MsgType.Roster; token: Uint8Array; seq: number; ids: Uint8Array[] }
  | { type: typeof MsgType.Bye; id: Uint8Array; token: Uint8Array }
  | {
    type: typeof MsgType.Relay;
    from: Uint8Array;
    token: Uint8Array;
    to: Uint8Array;
    payload: Uint8Array;
  }
  | { type: typeof MsgType.Relayed; token: Uint8Array; from: Uint8Array; payload: Uint8Array }
  | { type: typeof MsgType.Repunch; id: Uint8Array; token: Uint8Array; target: Uint8Array }
  | { type: typeof MsgType.Cookie; cookie: Uint8Array }
  | { type: typeof MsgType.Reach; nonce: Uint8Array; mac: Uint8Array }
  | { type: typeof MsgType.Reached; id: Uint8Array; token: Uint8Array; nonce: Uint8Array };

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

/** The inner kind byte of DATA_BATCH (decoded as an {@link InnerKind} DATA frame). */
export const DATA_BATCH_KIND = 9;
/** Bytes a part of a DATA_BATCH takes besides its text: flags u8 and length u16. */
export const BATCH_PART_OVERHEAD = 3;
/** Most bytes the parts of a DATA_BATCH take (text plus {@link BATCH_PART_OVERHEAD} each). */
export const MAX_BATCH: number = MAX_FRAGMENT;

/** One payload of a DATA frame: a chat message fragment and where it sits in its message. */
export interface DataPart {
  /** Whether this is the first fragment of a message. */
  first: boolean;
  /** Whether more fragments of the same message follow. */
  more: boolean;
  /** Payload bytes. */
  text: Uint8Array;
}

/** Inner frame kinds carried inside SEALED. */
export const InnerKind = {
  Probe: 1,
  ProbeAck: 2,
  Data: 3,
  Ack: 4,
  Announce: 5,
  Candidates: 6,
  Nat: 7,
  Birthday: 8,
  Relays: 10,
} as const;

/** A RELAYS frame's round-trip time for "not measured". */
export const RTT_UNKNOWN = 0xffff;

/** NAT mapping behaviour as told to a peer in a NAT frame (RFC 4787 §4.1). */
export const NatMapping = {
  Unknown: 0,
  EndpointIndependent: 1,
  AddressDependent: 2,
} as const;

/** Stages of a birthday search's agreement (BIRTHDAY frames). */
export const BirthdayStage = {
  Propose: 1,
  Accept: 2,
  Go: 3,
} as const;

/** Most ports a NAT frame lists. */
export const MAX_NAT_PORTS = 8;

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
    /** Further payloads after `text` under the same sequence number (a DATA_BATCH). */
    packed?: DataPart[];
  }
  | { kind: typeof InnerKind.Ack; stream: number; cumulative: number; selective: number }
  | { kind: typeof InnerKind.Announce; attempt: number }
  | { kind: typeof InnerKind.Candidates; endpoints: Endpoint[] }
  | {
    kind: typeof InnerKind.Nat;
    mapping: (typeof NatMapping)[keyof typeof NatMapping];
    ports: number[];
  }
  | {
    kind: typeof InnerKind.Birthday;
    stage: (typeof BirthdayStage)[keyof typeof BirthdayStage];
    round: number;
    sockets: number;
  }
  | {
    kind: typeof InnerKind.Relays;
    /** Our RTT to the server in ms ({@link RTT_UNKNOWN}: not measured). */
    serverRtt: number;
    /** The supernode we are registered with (zeros: none). */
    supernode: Uint8Array;
    /** Our RTT to it in ms ({@link RTT_UNKNOWN}: not measured). */
    supernodeRtt: number;
  };

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
 * Unspecified, multicast, broadcast, reserved and IPv4-mapped IPv6 addresses never are; loopback
 * only when `loopback` is set (the server observed a peer on loopback, so both run on one host).
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
  // IPv4-mapped (::ffff:a.b.c.d): sent to the IPv4 address, loopback too; IPv4 is family 4.
  if (v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) {
    return false;
  }
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

/** Lowercase hex of `bytes` (peer ids, transaction ids, file-name nonces). */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Hex form of a peer id, for map keys and logs. */
export const idHex: (id: Uint8Array) => string = toHex;

/** Parses a literal IPv4 address into 4 bytes, or returns null. */
export function parseIPv4(s: string): Uint8Array | null {
  // Four groups of 1 to 3 ASCII digits, each at most 255, joined by dots (a character loop:
  // every PONG and WELCOME the server sends carries an address).
  if (s.length < 7 || s.length > 15) return null;
  const out = new Uint8Array(4);
  let part = 0, digits = 0, n = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return null;
      n = n * 10 + (c - 0x30);
    } else if (c === 0x2e) {
      if (digits === 0 || n > 255 || part > 3) return null;
      out[part++] = n;
      digits = n = 0;
    } else return null;
  }
  return part === 4 ? out : null;
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

/** Formats 16 bytes as an IPv6 address the way sockets report it (RFC 5952 compression). */
export function formatIPv6(b: Uint8Array): string {
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

/**
 * The scratch buffer Writers fill (encoding is synchronous): each encoding then allocates
 * only its result. A Writer made while another holds it (never, today: no encoder nests) gets
 * a buffer of its own. A Writer gives it back when it finishes or refuses a value; encoders
 * check their own limits before they make one, so no other throw can keep it.
 */
let scratch: Uint8Array = new Uint8Array(2048);
let scratchView: DataView = new DataView(scratch.buffer);
let scratchOwner: Writer | null = null;

/** Growable big-endian writer. */
class Writer {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;
  /** Where {@link finish} puts the bytes (a fresh array of their own when unset). */
  alloc: ((n: number) => Uint8Array) | undefined;

  constructor() {
    if (scratchOwner === null) {
      scratchOwner = this;
      this.#buf = scratch;
      this.#view = scratchView;
    } else {
      this.#buf = new Uint8Array(256);
      this.#view = new DataView(this.#buf.buffer);
    }
  }

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
    if (scratchOwner === this) (scratch = next, scratchView = this.#view);
  }
  u8(v: number): this {
    this.#check(v, 0xff, "u8");
    this.#ensure(1);
    this.#view.setUint8(this.#len++, v);
    return this;
  }
  u16(v: number): this {
    this.#check(v, 0xffff, "u16");
    this.#ensure(2);
    this.#view.setUint16(this.#len, v);
    this.#len += 2;
    return this;
  }
  u32(v: number): this {
    this.#check(v, 0xffff_ffff, "u32");
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
    if (b.length !== len) this.#refuse(`Expected ${len} bytes, got ${b.length}`);
    return this.bytes(b);
  }
  str8(s: string): this {
    const b = encoder.encode(s);
    if (b.length > 255) this.#refuse("String is longer than 255 bytes of UTF-8");
    return this.u8(b.length).bytes(b);
  }
  endpoint(ep: Endpoint): this {
    const v4 = parseIPv4(ep.hostname);
    if (v4) return this.u8(4).bytes(v4).u16(ep.port);
    const v6 = parseIPv6(ep.hostname);
    if (v6) return this.u8(6).bytes(v6).u16(ep.port);
    return this.#refuse(`Endpoint address is not a literal IP: ${ep.hostname}`);
  }
  endpoints(list: readonly Endpoint[]): this {
    if (list.length > 255) this.#refuse("Too many endpoints");
    this.u8(list.length);
    for (const ep of list) this.endpoint(ep);
    return this;
  }
  finish(): Uint8Array {
    if (scratchOwner === this) scratchOwner = null;
    if (!this.alloc) return this.#buf.slice(0, this.#len);
    const out = this.alloc(this.#len);
    out.set(this.#buf.subarray(0, this.#len));
    return out;
  }
  #check(v: number, max: number, what: string): void {
    if (!Number.isInteger(v) || v < 0 || v > max) this.#refuse(`${what} out of range: ${v}`);
  }
  /** Gives the scratch buffer back and throws RangeError (a value the caller built wrong). */
  #refuse(message: string): never {
    if (scratchOwner === this) scratchOwner = null;
    throw new RangeError(message);
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
  /** The next `n` bytes as a view of the input (no copy). */
  view(n: number): Uint8Array {
    this.#need(n);
    const out = this.#b.subarray(this.#o, this.#o + n);
    this.#o += n;
    return out;
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

/** True when `b` starts with a valid header of message type `type`; allocates nothing. */
export function hasHeader(b: Uint8Array, type: number): boolean {
  return b.length >= 4 && b[3] === type && b[0] === MAGIC0 && b[1] === MAGIC1 &&
    b[2] === PROTOCOL_VERSION;
}

/** Throws when `v` is not a whole number from 0 to `max` (a value the caller built wrong). */
function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} out of range: ${v}`);
}

/** The label that starts every {@link helloSigningInput} (ASCII, then a zero byte). */
export const HELLO_SIGNING_LABEL = "p2p hello v1";

/**
 * What a HELLO's signature covers: `"p2p hello v1" ‖ 0x00 ‖ id ‖ cookie ‖ nonce ‖ flags u8 ‖
 * name tag` (the room id is the verifying key itself). Throws RangeError on wrong sizes.
 */
export function helloSigningInput(
  m: Pick<MsgOf<typeof MsgType.Hello>, "id" | "cookie" | "nonce" | "flags" | "nameTag">,
): Uint8Array {
  const w = new Writer();
  return w.bytes(encoder.encode(HELLO_SIGNING_LABEL)).u8(0).fixed(m.id, ID_LEN).fixed(
    m.cookie,
    COOKIE_LEN,
  ).fixed(m.nonce, NONCE_LEN)
    .u8(m.flags).fixed(m.nameTag, NAME_TAG_LEN).finish();
}

/** Encodes a server-facing message. Throws RangeError only on values the caller built wrong. */
export function encodeServerMsg(m: ServerMsg): Uint8Array {
  return encodeServerMsgInto(m, undefined);
}

/**
 * {@link encodeServerMsg} into the `n` bytes `alloc(n)` provides (e.g. cut from a slab shared by
 * many datagrams, which saves a backing-store allocation per datagram); undefined: fresh ones.
 */
export function encodeServerMsgInto(
  m: ServerMsg,
  alloc: ((n: number) => Uint8Array) | undefined,
): Uint8Array {
  const w = header(m.type);
  w.alloc = alloc;
  switch (m.type) {
    case MsgType.Hello:
      return w.fixed(m.id, ID_LEN).fixed(m.cookie, COOKIE_LEN).fixed(m.nonce, NONCE_LEN)
        .u8(m.flags).fixed(m.room, ROOM_ID_LEN).fixed(m.nameTag, NAME_TAG_LEN)
        .fixed(m.signature, SIGNATURE_LEN).endpoints(m.privateEndpoints).finish();
    case MsgType.Welcome:
      return w.fixed(m.id, ID_LEN).fixed(m.nonce, NONCE_LEN).fixed(m.token, TOKEN_LEN)
        .endpoint(m.observed).finish();
    case MsgType.Refused:
      return w.fixed(m.echo, TOKEN_LEN).u8(m.code).str8(m.message).finish();
    case MsgType.Intro:
      return w.fixed(m.token, TOKEN_LEN).u32(m.seq).fixed(m.id, ID_LEN).fixed(m.epoch, EPOCH_LEN)
        .u8(m.flags)
        .endpoints(m.publicEndpoint ? [m.publicEndpoint] : []).endpoints(m.privateEndpoints)
        .finish();
    case MsgType.Left:
      return w.fixed(m.token, TOKEN_LEN).u32(m.seq).fixed(m.id, ID_LEN).u8(m.reason).finish();
    case MsgType.Ping:
      return w.fixed(m.id, ID_LEN).fixed(m.token, TOKEN_LEN).fixed(m.cookie, COOKIE_LEN)
        .u32(m.digest).finish();
    case MsgType.Pong:
      return w.fixed(m.token, TOKEN_LEN).endpoint(m.observed).u32(m.digest).finish();
    case MsgType.Roster: {
      w.fixed(m.token, TOKEN_LEN).u32(m.seq).u16(m.ids.length);
      for (const id of m.ids) w.fixed(id, ID_LEN);
      return w.finish();
    }
    case MsgType.Bye:
      return w.fixed(m.id, ID_LEN).fixed(m.token, TOKEN_LEN).finish();
    case MsgType.Relay:
      return w.fixed(m.from, ID_LEN).fixed(m.token, TOKEN_LEN).fixed(m.to, ID_LEN)
        .bytes(m.payload).finish();
    case MsgType.Relayed:
      return w.fixed(m.token, TOKEN_LEN).fixed(m.from, ID_LEN).bytes(m.payload).finish();
    case MsgType.Repunch:
      return w.fixed(m.id, ID_LEN).fixed(m.token, TOKEN_LEN).fixed(m.target, ID_LEN).finish();
    case MsgType.Cookie:
      return w.fixed(m.cookie, COOKIE_LEN).finish();
    case MsgType.Reach:
      return w.fixed(m.nonce, REACH_NONCE_LEN).fixed(m.mac, REACH_MAC_LEN).finish();
    case MsgType.Reached:
      return w.fixed(m.id, ID_LEN).fixed(m.token, TOKEN_LEN).fixed(m.nonce, REACH_NONCE_LEN)
        .finish();
  }
}

/** Decodes a server-facing message; malformed input yields `{ ok: false }`, never a throw. */
export function decodeServerMsg(b: Uint8Array): Decoded<ServerMsg> {
  const t = peekType(b);
  if (!t.ok) return t;
  const r = new Reader(b, 4);
  try {
    const m = readServerMsg(t.value, r);
    if (!m) return { ok: false, reason: "unknown-type" };
    r.end();
    return { ok: true, value: m };
  } catch (e) {
    if (e instanceof ShortRead) return { ok: false, reason: "malformed" };
    throw e;
  }
}

function readServerMsg(type: number, r: Reader): ServerMsg | undefined {
  const id = () => r.bytes(ID_LEN), token = () => r.bytes(TOKEN_LEN);
  switch (type) {
    case MsgType.Hello: {
      const m = { type: MsgType.Hello, id: id(), cookie: r.bytes(COOKIE_LEN) };
      const nonce = r.bytes(NONCE_LEN), flags = r.u8();
      const room = r.bytes(ROOM_ID_LEN), nameTag = r.bytes(NAME_TAG_LEN);
      const signature = r.bytes(SIGNATURE_LEN);
      return { ...m, nonce, flags, room, nameTag, signature, privateEndpoints: r.endpoints() };
    }
    case MsgType.Welcome:
      return {
        type: MsgType.Welcome,
        id: id(),
        nonce: r.bytes(NONCE_LEN),
        token: token(),
        observed: r.endpoint(),
      };
    case MsgType.Refused:
      return { type: MsgType.Refused, echo: token(), code: r.u8(), message: r.str8() };
    case MsgType.Intro: {
      const head = {
        type: MsgType.Intro,
        token: token(),
        seq: r.u32(),
        id: id(),
        epoch: r.bytes(EPOCH_LEN),
      };
      const flags = r.u8(), pub = r.endpoints();
      if (pub.length > 1) throw new ShortRead("More than one public endpoint");
      return { ...head, flags, publicEndpoint: pub[0] ?? null, privateEndpoints: r.endpoints() };
    }
    case MsgType.Left:
      return { type: MsgType.Left, token: token(), seq: r.u32(), id: id(), reason: r.u8() };
    case MsgType.Ping:
      return {
        type: MsgType.Ping,
        id: id(),
        token: token(),
        cookie: r.bytes(COOKIE_LEN),
        digest: r.u32(),
      };
    case MsgType.Pong:
      return { type: MsgType.Pong, token: token(), observed: r.endpoint(), digest: r.u32() };
    case MsgType.Roster: {
      const tk = token(), seq = r.u32(), n = r.u16();
      const ids: Uint8Array[] = [];
      for (let i = 0; i < n; i++) ids.push(id());
      return { type: MsgType.Roster, token: tk, seq, ids };
    }
    case MsgType.Bye:
      return { type: MsgType.Bye, id: id(), token: token() };
    case MsgType.Relay:
      return { type: MsgType.Relay, from: id(), token: token(), to: id(), payload: r.rest() };
    case MsgType.Relayed:
      return { type: MsgType.Relayed, token: token(), from: id(), payload: r.rest() };
    case MsgType.Repunch:
      return { type: MsgType.Repunch, id: id(), token: token(), target: id() };
    case MsgType.Cookie:
      return { type: MsgType.Cookie, cookie: r.bytes(COOKIE_LEN) };
    case MsgType.Reach:
      return { type: MsgType.Reach, nonce: r.bytes(REACH_NONCE_LEN), mac: r.bytes(REACH_MAC_LEN) };
    case MsgType.Reached:
      return { type: MsgType.Reached, id: id(), token: token(), nonce: r.bytes(REACH_NONCE_LEN) };
    default:
      return undefined;
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

/** A HANDSHAKE frame: one Noise handshake message between two peers. */
export interface HandshakeFrame {
  /** Sender's peer id. */
  from: Uint8Array;
  /** Recipient's peer id. */
  to: Uint8Array;
  /** Which message of the handshake: 1, 2 or 3 (0 is ignored). */
  stage: number;
  /** The initiator's attempt number, so answers are matched to the attempt they answer. */
  attempt: number;
  /**
   * A direct copy of message 1: its random cookie; a message 2 answering it directly: the same
   * cookie. 0 (or absent, when encoding) otherwise.
   */
  cookie?: number;
  /** The Noise message. */
  message: Uint8Array;
}

/** Size of a HANDSHAKE frame's header. */
export const HANDSHAKE_HEADER_LEN: number = 4 + ID_LEN + ID_LEN + 1 + 4 + 4;

/** Encodes a HANDSHAKE frame. */
export function encodeHandshake(f: HandshakeFrame): Uint8Array {
  checkUint(f.stage, 3, "handshake stage");
  return header(MsgType.Handshake).fixed(f.from, ID_LEN).fixed(f.to, ID_LEN).u8(f.stage)
    .u32(f.attempt).u32(f.cookie ?? 0).bytes(f.message).finish();
}

/** Decodes a HANDSHAKE frame; malformed input yields `{ ok: false }`, never a throw. */
export function decodeHandshake(b: Uint8Array): Decoded<HandshakeFrame & { cookie: number }> {
  const t = peekType(b);
  if (!t.ok) return t;
  if (t.value !== MsgType.Handshake) return { ok: false, reason: "unknown-type" };
  if (b.length < HANDSHAKE_HEADER_LEN) return { ok: false, reason: "malformed" };
  const r = new Reader(b, 4);
  const from = r.bytes(ID_LEN), to = r.bytes(ID_LEN), stage = r.u8(), attempt = r.u32();
  const cookie = r.u32();
  if (stage > 3) return { ok: false, reason: "bad-stage" };
  return { ok: true, value: { from, to, stage, attempt, cookie, message: r.rest() } };
}

/** The sender and recipient ids of a peer frame (SEALED or HANDSHAKE), without decoding it all. */
export function peerFrameIds(b: Uint8Array): Decoded<{ from: Uint8Array; to: Uint8Array }> {
  const t = peekType(b);
  if (!t.ok) return t;
  if (t.value !== MsgType.Sealed && t.value !== MsgType.Handshake) {
    return { ok: false, reason: "unknown-type" };
  }
  if (b.length < 4 + 2 * ID_LEN) return { ok: false, reason: "malformed" };
  return {
    ok: true,
    value: { from: b.slice(4, 4 + ID_LEN), to: b.slice(4 + ID_LEN, 4 + 2 * ID_LEN) },
  };
}

/** Size of DATA's fixed part: kind, seq, stream, base, flags. */
const DATA_FIXED = 14;
/** Size of DATA_BATCH's fixed part: kind, seq, stream, base. */
const BATCH_FIXED = 13;

function dataFlags(p: DataPart): number {
  return (p.more ? 1 : 0) | (p.first ? 2 : 0);
}

/** DATA, or DATA_BATCH when it has packed parts, written straight into a buffer of its size. */
function encodeData(f: Extract<InnerFrame, { kind: typeof InnerKind.Data }>): Uint8Array {
  checkUint(f.seq, 0xffff_ffff, "u32");
  checkUint(f.stream, 0xffff_ffff, "u32");
  checkUint(f.base, 0xffff_ffff, "u32");
  const packed = f.packed ?? [];
  let size: number;
  if (packed.length === 0) {
    if (f.text.length > MAX_FRAGMENT) throw new RangeError("Fragment is too large");
    size = DATA_FIXED + f.text.length;
  } else {
    let parts = BATCH_PART_OVERHEAD + f.text.length;
    for (const p of packed) parts += BATCH_PART_OVERHEAD + p.text.length;
    if (parts > MAX_BATCH) throw new RangeError("Batch is too large");
    size = BATCH_FIXED + parts;
  }
  const out = new Uint8Array(size);
  const v = new DataView(out.buffer);
  out[0] = packed.length === 0 ? InnerKind.Data : DATA_BATCH_KIND;
  v.setUint32(1, f.seq);
  v.setUint32(5, f.stream);
  v.setUint32(9, f.base);
  if (packed.length === 0) {
    out[13] = dataFlags(f);
    out.set(f.text, DATA_FIXED);
    return out;
  }
  let o = BATCH_FIXED;
  for (const p of [f, ...packed]) {
    out[o] = dataFlags(p);
    v.setUint16(o + 1, p.text.length);
    out.set(p.text, o + BATCH_PART_OVERHEAD);
    o += BATCH_PART_OVERHEAD + p.text.length;
  }
  return out;
}

/** Decodes DATA_BATCH (the kind byte is read): at least two parts filling it exactly. */
function decodeBatch(r: Reader): Decoded<InnerFrame> {
  const seq = r.u32(), stream = r.u32(), base = r.u32();
  if (r.remaining > MAX_BATCH) return { ok: false, reason: "oversize" };
  const parts: DataPart[] = [];
  while (r.remaining > 0) {
    const flags = r.u8(), len = r.u16();
    parts.push({ first: (flags & 2) !== 0, more: (flags & 1) !== 0, text: r.view(len) });
  }
  const [head, ...packed] = parts;
  if (!head || packed.length === 0) return { ok: false, reason: "malformed" };
  const { first, more, text } = head;
  return {
    ok: true,
    value: { kind: InnerKind.Data, seq, stream, base, first, more, text, packed },
  };
}

/** Encodes an inner (plaintext) peer frame. */
export function encodeInner(f: InnerFrame): Uint8Array {
  if (f.kind === InnerKind.Data) return encodeData(f);
  if (f.kind === InnerKind.Candidates && f.endpoints.length > MAX_PRIVATE_ENDPOINTS) {
    throw new RangeError("Too many candidates");
  }
  const w = new Writer().u8(f.kind);
  switch (f.kind) {
    case InnerKind.Probe:
      return w.u32(f.txid).finish();
    case InnerKind.ProbeAck:
      return w.u32(f.txid).endpoint(f.observed).finish();
    case InnerKind.Ack:
      return w.u32(f.stream).u32(f.cumulative).u32(f.selective).finish();
    case InnerKind.Announce:
      return w.u32(f.attempt).finish();
    case InnerKind.Candidates:
      return w.endpoints(f.endpoints).finish();
    case InnerKind.Nat: {
      if (f.ports.length > MAX_NAT_PORTS) throw new RangeError("Too many ports");
      w.u8(f.mapping).u8(f.ports.length);
      for (const p of f.ports) w.u16(p);
      return w.finish();
    }
    case InnerKind.Birthday:
      return w.u8(f.stage).u32(f.round).u16(f.sockets).finish();
    case InnerKind.Relays:
      return w.u16(f.serverRtt).fixed(f.supernode, ID_LEN).u16(f.supernodeRtt).finish();
  }
}

/**
 * Decodes an inner peer frame (after the AEAD has authenticated it). The text of DATA views
 * `b` (the decrypted frame, which the caller owns) rather than copying it.
 */
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
          text: r.view(r.remaining),
        };
        break;
      }
      case InnerKind.Ack:
        f = { kind, stream: r.u32(), cumulative: r.u32(), selective: r.u32() };
        break;
      case InnerKind.Announce:
        f = { kind, attempt: r.u32() };
        break;
      case InnerKind.Candidates: {
        const endpoints = r.endpoints();
        if (endpoints.length > MAX_PRIVATE_ENDPOINTS) return { ok: false, reason: "oversize" };
        f = { kind, endpoints };
        break;
      }
      case InnerKind.Nat: {
        const mapping = r.u8();
        if (mapping > NatMapping.AddressDependent) return { ok: false, reason: "bad-nat" };
        const n = r.u8();
        if (n > MAX_NAT_PORTS) return { ok: false, reason: "oversize" };
        const ports: number[] = [];
        for (let i = 0; i < n; i++) ports.push(r.u16());
        f = { kind, mapping: mapping as 0 | 1 | 2, ports };
        break;
      }
      case InnerKind.Birthday: {
        const stage = r.u8();
        if (stage < BirthdayStage.Propose || stage > BirthdayStage.Go) {
          return { ok: false, reason: "bad-birthday" };
        }
        f = { kind, stage: stage as 1 | 2 | 3, round: r.u32(), sockets: r.u16() };
        break;
      }
      case DATA_BATCH_KIND:
        return decodeBatch(r);
      case InnerKind.Relays:
        f = { kind, serverRtt: r.u16(), supernode: r.bytes(ID_LEN), supernodeRtt: r.u16() };
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
  /**
   * Which local socket sends it: undefined or 0 = the main socket of `to`'s address family;
   * 1..{@link MAX_AUX_SOCKETS} = auxiliary IPv4 socket n (opened by the driver on first use).
   */
  via?: number;
}

/** Most auxiliary sockets a machine may use at once (birthday probing needs ~256). */
export const MAX_AUX_SOCKETS = 512;

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
