/**
 * Datagrams over a byte stream (TCP or TLS, `docs/protocol.md` 22): each datagram is sent as a
 * 2-byte big-endian length followed by that many bytes, back to back. A length of 0 or above
 * {@link MAX_STREAM_FRAME} is a framing error: the receiver closes the stream. {@link frame}
 * encodes; {@link Deframer} cuts a received byte stream back into datagrams with at most one
 * frame's worth of buffered bytes. Pure; never throws on input.
 *
 * @module
 */
import { MAX_DATAGRAM } from "./header.ts";

/** Bytes of the length prefix. */
export const FRAME_PREFIX = 2;
/** Largest datagram a frame may carry: the same bound as UDP's. */
export const MAX_STREAM_FRAME = MAX_DATAGRAM;

/**
 * `data` as one frame (length prefix, then the bytes), or null when it is empty or larger than
 * {@link MAX_STREAM_FRAME} (nothing is sent for it; the caller counts it).
 */
export function frame(data: Uint8Array): Uint8Array | null {
  if (data.length === 0 || data.length > MAX_STREAM_FRAME) return null;
  const out = new Uint8Array(FRAME_PREFIX + data.length);
  out[0] = data.length >> 8;
  out[1] = data.length & 0xff;
  out.set(data, FRAME_PREFIX);
  return out;
}

/**
 * Cuts a byte stream into frames.
 *
 * Driving it: {@link push} each received chunk, then call {@link next} until it returns
 * undefined. A frame returned is a view valid until the next {@link next} or {@link push} (it
 * may point into the chunk or into the deframer's own buffer). After a framing error ({@link failed}) nothing more comes out; close the stream.
 * Memory: one buffer of `FRAME_PREFIX + max` bytes for a frame split across chunks.
 */
export class Deframer {
  #max: number;
  /** A frame split across chunks: its bytes so far (prefix included). */
  #partial: Uint8Array;
  #have = 0;
  #chunk: Uint8Array = new Uint8Array(0);
  #at = 0;
  #failed = false;

  /** A deframer of frames of at most `max` bytes (default {@link MAX_STREAM_FRAME}). */
  constructor(max: number = MAX_STREAM_FRAME) {
    this.#max = max;
    this.#partial = new Uint8Array(FRAME_PREFIX + max);
  }

  /** True after a length of 0 or above the maximum: the stream must be closed. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Bytes held for a frame that is not complete yet. */
  get buffered(): number {
    return this.#have + (this.#chunk.length - this.#at);
  }

  /**
   * Takes the next received chunk. Frames still unread from the previous chunk are kept (the
   * bytes left of it are copied first), so call {@link next} until undefined before pushing.
   */
  push(chunk: Uint8Array): void {
    if (this.#failed) return;
    if (this.#at < this.#chunk.length) this.#stash(this.#chunk.subarray(this.#at));
    this.#chunk = chunk;
    this.#at = 0;
  }

  /** The next complete frame, or undefined when more bytes are needed (or after a failure). */
  next(): Uint8Array | undefined {
    if (this.#failed) return undefined;
    if (this.#have > 0) return this.#fromPartial();
    const c = this.#chunk, left = c.length - this.#at;
    if (left < FRAME_PREFIX) return this.#keepRest();
    const n = (c[this.#at]! << 8) | c[this.#at + 1]!;
    if (!this.#lengthOk(n)) return undefined;
    if (left < FRAME_PREFIX + n) return this.#keepRest();
    const start = this.#at + FRAME_PREFIX;
    this.#at = start + n;
    return c.subarray(start, start + n);
  }

  /** Copies what is left of the chunk into the partial buffer (a frame not complete yet). */
  #keepRest(): undefined {
    if (this.#at < this.#chunk.length) this.#stash(this.#chunk.subarray(this.#at));
    this.#at = this.#chunk.length;
    return undefined;
  }

  #stash(bytes: Uint8Array): void {
    this.#partial.set(bytes.subarray(0, this.#partial.length - this.#have), this.#have);
    this.#have += Math.min(bytes.length, this.#partial.length - this.#have);
  }

  #lengthOk(n: number): boolean {
    if (n >= 1 && n <= this.#max) return true;
    this.#failed = true;
    this.#have = 0;
    this.#chunk = new Uint8Array(0);
    this.#at = 0;
    return false;
  }

  /** Completes the frame in the partial buffer from the chunk, if enough bytes came. */
  #fromPartial(): Uint8Array | undefined {
    const c = this.#chunk;
    if (this.#have < FRAME_PREFIX) {
      const take = Math.min(FRAME_PREFIX - this.#have, c.length - this.#at);
      this.#partial.set(c.subarray(this.#at, this.#at + take), this.#have);
      this.#have += take;
      this.#at += take;
      if (this.#have < FRAME_PREFIX) return undefined;
    }
    const n = (this.#partial[0]! << 8) | this.#partial[1]!;
    if (!this.#lengthOk(n)) return undefined;
    const need = FRAME_PREFIX + n - this.#have;
    const take = Math.min(need, c.length - this.#at);
    this.#partial.set(c.subarray(this.#at, this.#at + take), this.#have);
    this.#have += take;
    this.#at += take;
    if (take < need) return undefined;
    this.#have = 0;
    return this.#partial.subarray(FRAME_PREFIX, FRAME_PREFIX + n);
  }
}
