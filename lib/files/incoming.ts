/**
 * The receiving side of one file transfer: which chunks are verified (a bitmap that can be
 * persisted and reloaded to resume), which are being assembled from blocks, which wait for the
 * disk, and what to ask the sender for next. A chunk is verified against the offer's hash-tree
 * root as soon as its last block arrives (its audit path travels with it); a corrupt chunk is
 * discarded and asked for again, alone. Memory is bounded: at most {@link WINDOW_BYTES} of
 * chunks are requested, assembling or waiting to be written at once, so a slow disk stops the
 * requests and with them the sender. A chunk gets a buffer when its first block comes, and the
 * buffer is used again once the disk has written the chunk (at most a window's worth exist), so a
 * long transfer neither holds its whole window in memory nor churns through a fresh chunk-sized
 * buffer per chunk. Pure; time in ms.
 *
 * Call order: `wanted(now)` gives the chunks to request; `handleData` for each block; drain
 * `pollWrite()` to the disk and answer each with `handleWritten` (a write's `data` stays the
 * I/O side's to read until then: its buffer is used again after); `complete` says when every
 * chunk is on disk (the whole file's SHA-256 is then checked by the I/O side).
 *
 * @module
 */
import { bytesEqual } from "../core/bytes.ts";
import { decodeFileFrame, encodeFileFrame, FileKind, type FileOffer } from "../wire/file_frame.ts";
import { FILE_BLOCK } from "../wire/file_frame.ts";
import { ChunkLayout } from "./chunks.ts";
import { leafHash, rootFromPath } from "./merkle.ts";

/** Most bytes of chunks requested, assembling or waiting for the disk at once. */
export const WINDOW_BYTES: number = 8 * 1024 * 1024;
/** Most chunks outstanding at once, whatever their size. */
export const MAX_WINDOW_CHUNKS = 32;
/** A requested chunk with no block for this long (ms) is asked for again. */
export const REPEAT_AFTER = 1000;
/** Most chunks a file may have for its audit paths to be kept (about 32 MiB of them at most). */
export const MAX_PROOF_CHUNKS = 65_536;
/** Chunks that failed verification before the transfer is given up. */
export const MAX_CORRUPT = 16;

/** What became of one block. */
export type BlockVerdict =
  | "stored"
  | "duplicate"
  | "unrequested"
  | "bad-block"
  | "verified"
  | "corrupt";

/** A verified chunk for the disk. */
export interface ChunkWrite {
  chunk: number;
  /** Where it goes in the file. */
  position: number;
  data: Uint8Array;
}

interface Assembly {
  /** The chunk's payload as it is assembled (a buffer from its first block on). */
  payload: Uint8Array | undefined;
  have: Uint8Array;
  missing: number;
  lastActivity: number;
  requestedAt: number;
}

/** The receiver's state of one transfer. */
export class IncomingFile {
  readonly offer: FileOffer;
  readonly layout: ChunkLayout;
  #verified: Uint8Array;
  #verifiedCount = 0;
  #assembling = new Map<number, Assembly>();
  /** Chunks verified and waiting for the disk, with the buffer each was assembled in. */
  #writing = new Map<number, Uint8Array>();
  /** Assembly buffers free for the next chunks (each holds the largest payload). */
  #spare: Uint8Array[] = [];
  #writes: ChunkWrite[] = [];
  #nextNew = 0;
  /** Bytes verified and written. */
  bytesDone = 0;
  /** Chunks that failed verification. */
  corrupt = 0;
  /** The audit paths of chunks verified since {@link keepProofs} (to pass them on). */
  #proofs: Map<number, Uint8Array> | undefined;

  /** A transfer of `offer`, resuming from `bitmap` (from {@link encodeResume}) if given. */
  constructor(offer: FileOffer, bitmap?: Uint8Array) {
    this.offer = offer;
    this.layout = new ChunkLayout(offer);
    this.#verified = new Uint8Array(Math.ceil(this.layout.chunks / 8));
    if (bitmap && bitmap.length === this.#verified.length) {
      for (let c = 0; c < this.layout.chunks; c++) {
        if (bitmap[c >> 3]! & (1 << (c & 7))) this.#mark(c);
      }
    }
  }

  #mark(c: number): void {
    this.#verified[c >> 3]! |= 1 << (c & 7);
    this.#verifiedCount++;
    this.bytesDone += this.layout.length(c);
  }

  /**
   * Keeps the audit path of each chunk verified from now on, so it can be passed on to other
   * receivers (a group transfer); false for files of more than {@link MAX_PROOF_CHUNKS} chunks.
   */
  keepProofs(): boolean {
    if (this.layout.chunks > MAX_PROOF_CHUNKS) return false;
    this.#proofs ??= new Map();
    return true;
  }

  /** Chunk `c`'s audit path, if it is verified and its path was kept. */
  proofOf(c: number): Uint8Array | undefined {
    return this.isVerified(c) ? this.#proofs?.get(c) : undefined;
  }

  /** Whether chunk `c` is verified and on disk. */
  isVerified(c: number): boolean {
    return (this.#verified[c >> 3]! & (1 << (c & 7))) !== 0;
  }

  /** Every chunk verified and written. */
  get complete(): boolean {
    return this.#verifiedCount === this.layout.chunks;
  }

  /** A copy of the verified-chunk bitmap (bit c of byte c/8), for the resume state. */
  bitmap(): Uint8Array {
    return this.#verified.slice();
  }

  #window(): number {
    return Math.max(
      2,
      Math.min(MAX_WINDOW_CHUNKS, Math.floor(WINDOW_BYTES / 2 ** this.layout.shift)),
    );
  }

  /** The chunks to request at `now`: new ones within the window, and stale ones again. */
  wanted(now: number): number[] {
    const out: number[] = [];
    for (const [c, a] of this.#assembling) {
      if (now - a.lastActivity >= REPEAT_AFTER) {
        a.lastActivity = now;
        out.push(c);
      }
    }
    while (this.#assembling.size + this.#writing.size < this.#window()) {
      while (this.#nextNew < this.layout.chunks && this.#skip(this.#nextNew)) this.#nextNew++;
      if (this.#nextNew >= this.layout.chunks) break;
      const c = this.#nextNew++;
      this.#start(c, now);
      out.push(c);
    }
    return out;
  }

  #skip(c: number): boolean {
    return this.isVerified(c) || this.#assembling.has(c) || this.#writing.has(c);
  }

  #start(c: number, now: number): void {
    const blocks = this.layout.blocks(c);
    this.#assembling.set(c, {
      payload: undefined,
      have: new Uint8Array(Math.ceil(blocks / 8)),
      missing: blocks,
      lastActivity: now,
      requestedAt: now,
    });
  }

  /** The next verified chunk for the disk. */
  pollWrite(): ChunkWrite | undefined {
    return this.#writes.shift();
  }

  /** The disk wrote chunk `c`. */
  handleWritten(c: number): void {
    const buf = this.#writing.get(c);
    if (!buf) return;
    this.#writing.delete(c);
    this.#reuse(buf);
    if (!this.isVerified(c)) this.#mark(c);
  }

  /** The buffer of `payload` is free: kept for another chunk, within the window. */
  #reuse(payload: Uint8Array): void {
    const buf = new Uint8Array(payload.buffer, 0, payload.buffer.byteLength);
    if (this.#spare.length >= this.#window()) return;
    this.#spare.push(buf);
  }

  /** The largest payload a chunk of this file has (the first's: the longest audit path). */
  #largest(): number {
    return this.layout.proofBytes(0) + this.layout.length(0);
  }

  /** One block of chunk `c`'s payload at `offset` arrived at `now`. */
  handleData(c: number, offset: number, data: Uint8Array, now: number): BlockVerdict {
    if (!this.layout.isBlock(c, offset, data.length)) return "bad-block";
    const a = this.#assembling.get(c);
    if (!a) return this.isVerified(c) || this.#writing.has(c) ? "duplicate" : "unrequested";
    const b = offset / FILE_BLOCK;
    if (a.have[b >> 3]! & (1 << (b & 7))) return "duplicate";
    a.have[b >> 3]! |= 1 << (b & 7);
    // A buffer only once blocks come: the sender serves a few chunks at a time, not the window.
    const payload = a.payload ??= (this.#spare.pop() ?? new Uint8Array(this.#largest()))
      .subarray(0, this.layout.payloadBytes(c));
    payload.set(data, offset);
    a.lastActivity = now;
    if (--a.missing > 0) return "stored";
    this.#assembling.delete(c);
    const proofLen = this.layout.proofBytes(c);
    const whole = new Uint8Array(payload.buffer, 0, payload.buffer.byteLength);
    const chunk = payload.subarray(proofLen);
    const root = rootFromPath(
      c,
      this.layout.chunks,
      leafHash(chunk),
      payload.subarray(0, proofLen),
    );
    if (!root || !bytesEqual(root, this.offer.root)) {
      this.corrupt++;
      if (c < this.#nextNew) this.#nextNew = c;
      this.#reuse(whole);
      return "corrupt";
    }
    this.#writing.set(c, whole);
    this.#proofs?.set(c, payload.slice(0, proofLen));
    this.#writes.push({ chunk: c, position: this.layout.start(c), data: chunk });
    return "verified";
  }

  /** Chunks being assembled (requested, not all blocks here). */
  get assembling(): number {
    return this.#assembling.size;
  }

  /** Chunks verified and waiting for the disk. */
  get writing(): number {
    return this.#writing.size;
  }
}

const RESUME_MAGIC = [0x70, 0x32, 0x52, 0x01]; // "p2R", version 1

/** The resume state of a transfer: its offer and the verified-chunk bitmap. */
export function encodeResume(offer: FileOffer, bitmap: Uint8Array): Uint8Array {
  const o = encodeFileFrame({ kind: FileKind.Offer, ...offer });
  const out = new Uint8Array(4 + 2 + o.length + 4 + bitmap.length);
  const v = new DataView(out.buffer);
  out.set(RESUME_MAGIC, 0);
  v.setUint16(4, o.length);
  out.set(o, 6);
  v.setUint32(6 + o.length, bitmap.length);
  out.set(bitmap, 10 + o.length);
  return out;
}

/** Reads a resume state; null for anything that is not one (never throws). */
export function decodeResume(b: Uint8Array): { offer: FileOffer; bitmap: Uint8Array } | null {
  if (b.length < 10 || RESUME_MAGIC.some((m, i) => b[i] !== m)) return null;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const olen = v.getUint16(4);
  if (10 + olen > b.length) return null;
  const d = decodeFileFrame(b.subarray(6, 6 + olen));
  if (!d.ok || d.value.kind !== FileKind.Offer) return null;
  const blen = v.getUint32(6 + olen);
  if (10 + olen + blen !== b.length) return null;
  const { kind: _, ...offer } = d.value;
  if (blen !== Math.ceil(new ChunkLayout(offer).chunks / 8)) return null;
  return { offer, bitmap: b.slice(10 + olen) };
}
