/**
 * The geometry of a file's chunks as both sides compute it from the offer: how many chunks, how
 * long each is, and each chunk's _payload_ as it travels, its audit path followed by its bytes,
 * cut into blocks of {@link FILE_BLOCK} bytes (an empty payload is one empty block). Pure.
 *
 * @module
 */
import { SHA256_LEN } from "../crypto/sha256.ts";
import { chunkCount, FILE_BLOCK, type FileOffer } from "../wire/file_frame.ts";
import { proofLength } from "./merkle.ts";

/** A file's chunk layout. */
export class ChunkLayout {
  readonly size: number;
  readonly shift: number;
  readonly chunks: number;

  constructor(offer: Pick<FileOffer, "size" | "chunkShift">) {
    this.size = offer.size;
    this.shift = offer.chunkShift;
    this.chunks = chunkCount(offer.size, offer.chunkShift);
  }

  /** Where chunk `c` starts in the file. */
  start(c: number): number {
    return c * 2 ** this.shift;
  }

  /** Bytes of chunk `c`. */
  length(c: number): number {
    return Math.max(0, Math.min(2 ** this.shift, this.size - this.start(c)));
  }

  /** Bytes of chunk `c`'s audit path. */
  proofBytes(c: number): number {
    return proofLength(c, this.chunks) * SHA256_LEN;
  }

  /** Bytes of chunk `c`'s payload (audit path and data). */
  payloadBytes(c: number): number {
    return this.proofBytes(c) + this.length(c);
  }

  /** Blocks of chunk `c`'s payload. */
  blocks(c: number): number {
    return Math.max(1, Math.ceil(this.payloadBytes(c) / FILE_BLOCK));
  }

  /** Whether `offset`/`length` is exactly block of chunk `c` (chunk in range). */
  isBlock(c: number, offset: number, length: number): boolean {
    if (!Number.isInteger(c) || c < 0 || c >= this.chunks) return false;
    const total = this.payloadBytes(c);
    if (offset % FILE_BLOCK !== 0 || offset > total || (offset === total && total !== 0)) {
      return false;
    }
    return length === Math.min(FILE_BLOCK, total - offset);
  }
}
