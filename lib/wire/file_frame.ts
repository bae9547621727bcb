/**
 * The inner frames of file transfer (docs/protocol.md, "File transfer"), carried in SEALED
 * frames beside the chat channel: FILE_OFFER (what a file is: id, name, size, SHA-256, chunk
 * size, hash-tree root), FILE_REPLY (a transfer's state as one side tells the other: pending,
 * rejected, complete, cancelled, failed), FILE_REQUEST (the chunks a receiver asks for: it
 * accepts by asking), FILE_DATA (one block of a chunk's payload under the pair's bulk packet
 * number), FILE_ACK (the bulk packets received, as ranges) and FILE_SWARM (who else receives
 * a file, so receivers fetch chunks from each other). Pure; decoders never throw and
 * bound every count and length.
 *
 * @module
 */
import { checkUint, type Decoded, Reader, ShortRead, Writer } from "./codec.ts";
import { ID_LEN } from "./header.ts";
import { MAX_RELAY_PAYLOAD } from "./server_msg.ts";

/** Inner kinds of the file frames (after the chat and control kinds 1 to 13). */
export const FileKind = {
  Offer: 14,
  Reply: 15,
  Request: 16,
  Data: 17,
  Ack: 18,
  Swarm: 19,
} as const;

/** Bytes of a transfer id (random, chosen by the sender per offer). */
export const FILE_ID_LEN = 8;
/** Bytes of a SHA-256 digest. */
export const DIGEST_LEN = 32;
/** Longest file name an offer carries, in bytes of UTF-8 (NAME_MAX of common file systems). */
export const MAX_FILE_NAME = 255;
/** Smallest and largest chunk sizes as powers of two (16 KiB and 4 MiB). */
export const MIN_CHUNK_SHIFT = 14;
/** Largest chunk size as a power of two (4 MiB). */
export const MAX_CHUNK_SHIFT = 22;
/** Most chunks one file has (the hash tree's leaves). */
export const MAX_CHUNKS: number = 2 ** 22;
/** Most chunks one FILE_REQUEST names. */
export const MAX_REQUEST_CHUNKS = 32;
/** Most recipients a FILE_SWARM lists (a group transfer's receivers). */
export const MAX_SWARM = 16;
/** Most ranges one FILE_ACK carries. */
export const MAX_ACK_RANGES = 32;
/** Bytes of FILE_DATA before its block: kind, id, packet number, chunk, offset. */
export const FILE_DATA_HEADER: number = 1 + FILE_ID_LEN + 4 + 4 + 4;
/**
 * Largest block one FILE_DATA carries: what fits a SEALED frame inside a RELAY (its header
 * 4 + 2 × 8 + 8 bytes, the 16-byte tag), so one block size serves direct and relayed paths.
 */
export const FILE_BLOCK: number = MAX_RELAY_PAYLOAD - (4 + 2 * ID_LEN + 8) - 16 - FILE_DATA_HEADER;

/** A transfer's state as one side tells the other in FILE_REPLY. */
export const FileStatus = {
  /** The offer arrived; the user has not decided yet (stops the sender's repeats). */
  Pending: 1,
  /** The receiver declined the offer. */
  Rejected: 2,
  /** The receiver holds the whole file, verified (also: it already had it). */
  Complete: 3,
  /** Either side gave the transfer up (the sender's file changed, the user cancelled). */
  Cancelled: 4,
  /** The receiver gave up: data failed verification again and again, or the disk failed. */
  Failed: 5,
} as const;

/** One of {@link FileStatus}. */
export type FileStatusCode = (typeof FileStatus)[keyof typeof FileStatus];

/** What a file is, as its sender offers it. */
export interface FileOffer {
  /** The transfer's id (the sender's random choice). */
  id: Uint8Array;
  /** The file's name as the sender has it (the receiver makes it safe before any use). */
  name: string;
  /** Length in bytes. */
  size: number;
  /** Chunk size as a power of two ({@link MIN_CHUNK_SHIFT} to {@link MAX_CHUNK_SHIFT}). */
  chunkShift: number;
  /** SHA-256 of the whole file. */
  sha256: Uint8Array;
  /** Root of the hash tree over the chunks (lib/files/merkle.ts). */
  root: Uint8Array;
}

/** The chunks of a file of `size` bytes in chunks of 2^`shift` (at least one, maybe empty). */
export function chunkCount(size: number, shift: number): number {
  return Math.max(1, Math.ceil(size / 2 ** shift));
}

/** A file frame. */
export type FileFrame =
  | ({ kind: typeof FileKind.Offer } & FileOffer)
  | { kind: typeof FileKind.Reply; id: Uint8Array; status: FileStatusCode }
  | { kind: typeof FileKind.Request; id: Uint8Array; chunks: number[] }
  | {
    kind: typeof FileKind.Data;
    id: Uint8Array;
    /** The pair's bulk packet number (one space per direction for all transfers). */
    pn: number;
    chunk: number;
    /** Where the block starts in the chunk's payload (audit path, then the chunk's bytes). */
    offset: number;
    data: Uint8Array;
  }
  | {
    kind: typeof FileKind.Swarm;
    id: Uint8Array;
    /** Which of `peers` the recipient is. */
    index: number;
    /** Every recipient's peer id, in the sender's order (chunk c's is `peers[c mod n]`). */
    peers: Uint8Array[];
  }
  | {
    kind: typeof FileKind.Ack;
    /** How long the receiver held the acknowledgement back, in units of 100 µs. */
    delay: number;
    /** Received packet numbers as inclusive `[high, low]` ranges, highest first, disjoint. */
    ranges: [number, number][];
  };

/** Whether `kind` is one of the file frames' kinds. */
export function isFileKind(kind: number): boolean {
  return kind >= FileKind.Offer && kind <= FileKind.Swarm;
}

/** Whether an offer's numbers are within the protocol's bounds. */
export function offerInBounds(o: Pick<FileOffer, "size" | "chunkShift">): boolean {
  return Number.isSafeInteger(o.size) && o.size >= 0 && o.chunkShift >= MIN_CHUNK_SHIFT &&
    o.chunkShift <= MAX_CHUNK_SHIFT && chunkCount(o.size, o.chunkShift) <= MAX_CHUNKS;
}

/** Encodes a file frame; throws RangeError on a frame built out of bounds (a caller's bug). */
export function encodeFileFrame(f: FileFrame): Uint8Array {
  switch (f.kind) {
    case FileKind.Offer: {
      const name = new TextEncoder().encode(f.name);
      if (!offerInBounds(f)) throw new RangeError("Offer out of bounds");
      if (name.length === 0 || name.length > MAX_FILE_NAME) {
        throw new RangeError("File name must be 1 to 255 bytes");
      }
      return new Writer().u8(f.kind).fixed(f.id, FILE_ID_LEN).u64(BigInt(f.size))
        .u8(f.chunkShift).fixed(f.sha256, DIGEST_LEN).fixed(f.root, DIGEST_LEN).u8(name.length)
        .bytes(name).finish();
    }
    case FileKind.Reply:
      return new Writer().u8(f.kind).fixed(f.id, FILE_ID_LEN).u8(f.status).finish();
    case FileKind.Request: {
      if (f.chunks.length < 1 || f.chunks.length > MAX_REQUEST_CHUNKS) {
        throw new RangeError("A request names 1 to 32 chunks");
      }
      for (const c of f.chunks) checkUint(c, 0xffff_ffff, "chunk");
      const w = new Writer().u8(f.kind).fixed(f.id, FILE_ID_LEN).u8(f.chunks.length);
      for (const c of f.chunks) w.u32(c);
      return w.finish();
    }
    case FileKind.Data:
      if (f.data.length > FILE_BLOCK) throw new RangeError("Block is too large");
      return new Writer().u8(f.kind).fixed(f.id, FILE_ID_LEN).u32(f.pn).u32(f.chunk)
        .u32(f.offset).bytes(f.data).finish();
    case FileKind.Swarm: {
      if (f.peers.length < 2 || f.peers.length > MAX_SWARM || f.index >= f.peers.length) {
        throw new RangeError("A swarm lists 2 to 16 peers, the recipient among them");
      }
      const w = new Writer().u8(f.kind).fixed(f.id, FILE_ID_LEN).u8(f.index).u8(f.peers.length);
      for (const p of f.peers) w.fixed(p, ID_LEN);
      return w.finish();
    }
    case FileKind.Ack: {
      if (f.ranges.length < 1 || f.ranges.length > MAX_ACK_RANGES) {
        throw new RangeError("An ack carries 1 to 32 ranges");
      }
      for (const [hi, lo] of f.ranges) {
        checkUint(hi, 0xffff_ffff, "packet number");
        checkUint(lo, hi, "packet number");
      }
      const w = new Writer().u8(f.kind).u16(Math.min(0xffff, Math.max(0, Math.round(f.delay))))
        .u8(f.ranges.length);
      for (const [hi, lo] of f.ranges) w.u32(hi).u32(lo);
      return w.finish();
    }
  }
}

/**
 * Encodes FILE_DATA `f` into `out`, which is exactly `FILE_DATA_HEADER + f.data.length` bytes
 * (the bytes {@link encodeFileFrame} gives, written where the caller seals them); throws
 * RangeError like it.
 */
export function encodeFileDataInto(
  f: Extract<FileFrame, { kind: typeof FileKind.Data }>,
  out: Uint8Array,
): void {
  if (f.data.length > FILE_BLOCK) throw new RangeError("Block is too large");
  if (f.id.length !== FILE_ID_LEN) throw new RangeError(`Expected ${FILE_ID_LEN} bytes`);
  if (out.length !== FILE_DATA_HEADER + f.data.length) throw new RangeError("Wrong output size");
  checkUint(f.pn, 0xffff_ffff, "packet number");
  checkUint(f.chunk, 0xffff_ffff, "chunk");
  checkUint(f.offset, 0xffff_ffff, "offset");
  out[0] = FileKind.Data;
  out.set(f.id, 1);
  put32(out, 1 + FILE_ID_LEN, f.pn);
  put32(out, 5 + FILE_ID_LEN, f.chunk);
  put32(out, 9 + FILE_ID_LEN, f.offset);
  out.set(f.data, FILE_DATA_HEADER);
}

function put32(out: Uint8Array, at: number, v: number): void {
  out[at] = v >>> 24;
  out[at + 1] = (v >>> 16) & 0xff;
  out[at + 2] = (v >>> 8) & 0xff;
  out[at + 3] = v & 0xff;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Decodes a file frame (the whole inner frame, kind byte first); never throws. */
export function decodeFileFrame(b: Uint8Array): Decoded<FileFrame> {
  const r = new Reader(b, 0);
  try {
    const kind = r.u8();
    let f: FileFrame;
    switch (kind) {
      case FileKind.Offer: {
        const id = r.bytes(FILE_ID_LEN), size = r.u64(), chunkShift = r.u8();
        const sha256 = r.bytes(DIGEST_LEN), root = r.bytes(DIGEST_LEN);
        const len = r.u8();
        if (len === 0) return { ok: false, reason: "bad-offer" };
        let name: string;
        try {
          name = utf8.decode(r.view(len));
        } catch (e) {
          if (e instanceof ShortRead) throw e;
          return { ok: false, reason: "bad-offer" };
        }
        if (size > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, reason: "bad-offer" };
        const o = { size: Number(size), chunkShift };
        if (!offerInBounds(o)) return { ok: false, reason: "bad-offer" };
        f = { kind, id, name, ...o, sha256, root };
        break;
      }
      case FileKind.Reply: {
        const id = r.bytes(FILE_ID_LEN), status = r.u8();
        if (status < FileStatus.Pending || status > FileStatus.Failed) {
          return { ok: false, reason: "bad-status" };
        }
        f = { kind, id, status: status as FileStatusCode };
        break;
      }
      case FileKind.Request: {
        const id = r.bytes(FILE_ID_LEN), n = r.u8();
        if (n < 1 || n > MAX_REQUEST_CHUNKS) return { ok: false, reason: "oversize" };
        const chunks: number[] = [];
        for (let i = 0; i < n; i++) chunks.push(r.u32());
        f = { kind, id, chunks };
        break;
      }
      case FileKind.Data: {
        const id = r.bytes(FILE_ID_LEN), pn = r.u32(), chunk = r.u32(), offset = r.u32();
        if (r.remaining > FILE_BLOCK) return { ok: false, reason: "oversize" };
        f = { kind, id, pn, chunk, offset, data: r.view(r.remaining) };
        break;
      }
      case FileKind.Ack: {
        const delay = r.u16(), n = r.u8();
        if (n < 1 || n > MAX_ACK_RANGES) return { ok: false, reason: "oversize" };
        const ranges: [number, number][] = [];
        let below = Infinity;
        for (let i = 0; i < n; i++) {
          const hi = r.u32(), lo = r.u32();
          // Highest first, each range low ≤ high, a gap of at least one between ranges.
          if (lo > hi || hi + 1 >= below) return { ok: false, reason: "bad-ranges" };
          ranges.push([hi, lo]);
          below = lo;
        }
        f = { kind, delay, ranges };
        break;
      }
      case FileKind.Swarm: {
        const id = r.bytes(FILE_ID_LEN), index = r.u8(), n = r.u8();
        if (n < 2 || n > MAX_SWARM || index >= n) return { ok: false, reason: "bad-swarm" };
        const peers: Uint8Array[] = [];
        for (let i = 0; i < n; i++) peers.push(r.bytes(ID_LEN));
        f = { kind, id, index, peers };
        break;
      }
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
