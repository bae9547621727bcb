/**
 * A receiver's whole-file SHA-256 computed as the chunks are written, so that a finished
 * download is checked without reading it back (seconds for gigabytes). Chunks arrive in any order
 * (a group transfer brings them from several peers): the hash takes a chunk when it continues
 * the bytes hashed so far; one written ahead is remembered by position and length, and once the
 * gap before it is filled its bytes are asked back ({@link InOrderHash.pollReadBack}: the caller
 * reads them from the partial file). At most {@link MAX_AHEAD} chunks are remembered; past that
 * (or when a chunk overlaps in a way the hash cannot follow) the running hash gives up and the
 * caller hashes the finished file as before. Pure.
 *
 * Call order: {@link written} after each chunk is written; then drain
 * {@link pollReadBack}, giving each range's bytes to {@link readBack}; {@link digest} at the end.
 *
 * @module
 */
import { Sha256 } from "../crypto/sha256.ts";

/** Most chunks written ahead of the hashed prefix that are remembered. */
export const MAX_AHEAD = 16_384;

/** The running SHA-256 of one partial file. */
export class InOrderHash {
  #hash: Sha256 | undefined = new Sha256();
  #hashed = 0;
  /** Chunks written beyond the hashed prefix: position → length. */
  #ahead = new Map<number, number>();

  /** Bytes hashed so far (a prefix of the file). */
  get hashed(): number {
    return this.#hashed;
  }

  /** Whether the running hash still follows the file (false: hash the file at the end). */
  get following(): boolean {
    return this.#hash !== undefined;
  }

  /** `data` was written at `position`. */
  written(position: number, data: Uint8Array): void {
    if (!this.#hash || data.length === 0) return;
    if (position === this.#hashed) {
      this.#hash.update(data);
      this.#hashed += data.length;
      return;
    }
    if (position < this.#hashed) {
      // The same bytes again (a chunk fetched twice is the same verified chunk) only when it
      // lies wholly inside the prefix; anything else the hash cannot follow.
      if (position + data.length > this.#hashed) this.#hash = undefined;
      return;
    }
    const known = this.#ahead.get(position);
    if (known !== undefined && known !== data.length) return void (this.#hash = undefined);
    if (known === undefined && this.#ahead.size >= MAX_AHEAD) return void (this.#hash = undefined);
    this.#ahead.set(position, data.length);
  }

  /** The next range written ahead that now continues the prefix: read it back, then {@link readBack}. */
  pollReadBack(): { position: number; length: number } | undefined {
    if (!this.#hash) return undefined;
    const length = this.#ahead.get(this.#hashed);
    if (length === undefined) return undefined;
    return { position: this.#hashed, length };
  }

  /** The bytes of the range {@link pollReadBack} gave (null: they could not be read). */
  readBack(position: number, data: Uint8Array | null): void {
    if (!this.#hash || position !== this.#hashed) return;
    const length = this.#ahead.get(position);
    this.#ahead.delete(position);
    if (data === null || data.length !== length) return void (this.#hash = undefined);
    this.#hash.update(data);
    this.#hashed += data.length;
  }

  /** The file's SHA-256 when the hash followed all `size` bytes; undefined otherwise. */
  digest(size: number): Uint8Array | undefined {
    if (!this.#hash || this.#hashed !== size) return undefined;
    const d = this.#hash.digest();
    this.#hash = undefined;
    return d;
  }
}
