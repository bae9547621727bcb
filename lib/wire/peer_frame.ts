/**
 * The frames between two peers: SEALED (an inner frame under the pair's transport key; its
 * 28-byte header is the associated data) and HANDSHAKE (one Noise_XXpsk0 message), which the
 * server relays without being able to read them, and the inner frames a SEALED frame carries
 * (PROBE, PROBE_ACK, DATA and DATA_BATCH, ACK, ANNOUNCE, CANDIDATES, NAT, BIRTHDAY, RELAYS,
 * SERVER_HINT, GOODBYE, GOODBYE_ACK, and the file-transfer frames of `file_frame.ts`:
 * {@link InnerFrame}). See `docs/protocol.md`, "Peer ↔ peer". Pure; decoders never throw.
 *
 * @module
 */
import type { Endpoint } from "./address.ts";
import { checkUint, type Decoded, Reader, ShortRead, Writer } from "./codec.ts";
import { ID_LEN, MAX_PRIVATE_ENDPOINTS, MsgType, peekType, writeHeader } from "./header.ts";
import {
  decodeFileFrame,
  encodeFileFrame,
  FILE_BLOCK,
  type FileFrame,
  FileKind,
  isFileKind,
  MAX_ACK_RANGES,
  MAX_FILE_NAME,
  MAX_REQUEST_CHUNKS,
  MAX_SWARM,
} from "./file_frame.ts";

export { FILE_BLOCK, MAX_ACK_RANGES, MAX_FILE_NAME, MAX_REQUEST_CHUNKS, MAX_SWARM };

/** Largest chat text carried by one DATA frame; longer lines are split into fragments. */
export const MAX_FRAGMENT = 1000;

/** Longest room or peer name in bytes of UTF-8. */
export const MAX_NAME = 64;

/** Size of an X25519 public key in bytes. */
export const KEY_LEN = 32;

/** Size of a SEALED frame's header, which is also its associated data. */
export const SEALED_HEADER_LEN: number = 4 + ID_LEN + ID_LEN + 8;

/** The header of a SEALED peer frame; `body` is ciphertext plus tag. */
export interface SealedFrame {
  /** Sender's peer id. */
  from: Uint8Array;
  /** Recipient's peer id. */
  to: Uint8Array;
  /** Per-direction message counter, also the AEAD nonce. */
  counter: bigint;
  /** The first {@link SEALED_HEADER_LEN} bytes, used as associated data (a view). */
  header: Uint8Array;
  /** Ciphertext with the authentication tag at the end (a view). */
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
  ServerHint: 11,
  Goodbye: 12,
  GoodbyeAck: 13,
  FileOffer: FileKind.Offer,
  FileReply: FileKind.Reply,
  FileRequest: FileKind.Request,
  FileData: FileKind.Data,
  FileAck: FileKind.Ack,
  FileSwarm: FileKind.Swarm,
} as const;

/** Size of a SERVER_HINT's boot id (8 zero bytes: the sender does not know it). */
export const HINT_BOOT_LEN = 8;

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
  }
  | {
    kind: typeof InnerKind.ServerHint;
    /** The boot id of the server we just registered with again (zeros: not known). */
    boot: Uint8Array;
  }
  | { kind: typeof InnerKind.Goodbye }
  | { kind: typeof InnerKind.GoodbyeAck }
  | FileFrame;

/** Encodes the header of a SEALED frame (also its associated data). */
export function encodeSealedHeader(from: Uint8Array, to: Uint8Array, counter: bigint): Uint8Array {
  return writeHeader(MsgType.Sealed).fixed(from, ID_LEN).fixed(to, ID_LEN).u64(counter).finish();
}

/**
 * Splits a SEALED datagram into header fields and ciphertext. `header` and `body` are views of
 * `b`, not copies (the frame is opened at once, into a plaintext of its own): a caller that keeps
 * them past the datagram's handling copies them.
 */
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
      header: b.subarray(0, SEALED_HEADER_LEN),
      body: b.subarray(SEALED_HEADER_LEN),
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
  return writeHeader(MsgType.Handshake).fixed(f.from, ID_LEN).fixed(f.to, ID_LEN).u8(f.stage)
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
  if (isFileKind(f.kind)) return encodeFileFrame(f as FileFrame);
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
    case InnerKind.ServerHint:
      return w.fixed(f.boot, HINT_BOOT_LEN).finish();
    case InnerKind.Goodbye:
    case InnerKind.GoodbyeAck:
      return w.finish();
    default:
      w.finish();
      throw new RangeError(`Unknown inner kind ${(f as { kind: number }).kind}`);
  }
}

/**
 * Decodes an inner peer frame (after the AEAD has authenticated it). The text of DATA views
 * `b` (the decrypted frame, which the caller owns) rather than copying it.
 */
export function decodeInner(b: Uint8Array): Decoded<InnerFrame> {
  if (b.length > 0 && isFileKind(b[0]!)) return decodeFileFrame(b);
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
      case InnerKind.ServerHint:
        f = { kind, boot: r.bytes(HINT_BOOT_LEN) };
        break;
      case InnerKind.Goodbye:
      case InnerKind.GoodbyeAck:
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
