/**
 * What one peer asked us to send it, across all our outgoing files: a queue of requested chunks
 * (at most {@link MAX_SERVING} at once), cut into blocks for the pair's bulk sender, which it
 * serves as a {@link BlockSource}. Only the first {@link READ_AHEAD} chunks not yet sent in full
 * are read from the disk (so memory holds those and the chunks in flight, not the whole queue). A chunk stays queued until every one of its blocks is
 * acknowledged (or no longer wanted), and a request for a chunk still queued changes nothing,
 * so a repeated request costs nothing and a chunk asked for again after that (it failed
 * verification, the receiver restarted) is sent again in full. Pure.
 *
 * @module
 */
import { toHex } from "../wire/codec.ts";
import { FILE_BLOCK } from "../wire/file_frame.ts";
import type { BlockRef, BlockSource } from "./bulk_sender.ts";
import type { OutgoingFile } from "./outgoing.ts";

/** Most chunks one peer may have queued with us (its receive window is smaller). */
export const MAX_SERVING = 48;
/** Chunks read ahead of the one being sent (each read once wanted, kept until acknowledged). */
export const READ_AHEAD = 8;

interface Serving {
  /** Its key in the queue (`id hex:chunk`), carried by its blocks' refs. */
  key: string;
  file: OutgoingFile;
  chunk: number;
  next: number;
  blocks: number;
  outstanding: number;
  acked: number;
  /** Its chunk is wanted from the file (read, or being read): within the read-ahead. */
  wanted: boolean;
}

/** One peer's requested chunks. */
export class PeerUplink implements BlockSource {
  readonly peer: string;
  #queue = new Map<string, Serving>();
  /** Chunks whose every block the peer acknowledged: `[file id hex, chunk, bytes]`. */
  #finished: [string, number, number][] = [];

  constructor(peer: string) {
    this.peer = peer;
  }

  /** The peer asks for chunk `c` of `file`; false when refused (queue full). */
  request(file: OutgoingFile, c: number): boolean {
    const key = `${toHex(file.offer.id)}:${c}`;
    if (this.#queue.has(key)) return true;
    if (this.#queue.size >= MAX_SERVING) return false;
    this.#queue.set(key, {
      key,
      file,
      chunk: c,
      next: 0,
      blocks: file.layout.blocks(c),
      outstanding: 0,
      acked: 0,
      wanted: false,
    });
    this.#readAhead();
    return true;
  }

  /** The first {@link READ_AHEAD} chunks not yet sent in full are wanted from their files. */
  #readAhead(): void {
    let ahead = 0;
    for (const s of this.#queue.values()) {
      if (s.next >= s.blocks) continue;
      if (!s.wanted) {
        s.wanted = true;
        s.file.want(s.chunk);
      }
      if (++ahead >= READ_AHEAD) return;
    }
  }

  /** Drops everything queued for `file` (cancelled, rejected, broken). */
  drop(file: OutgoingFile): void {
    for (const [k, s] of this.#queue) {
      if (s.file === file) {
        this.#queue.delete(k);
        if (s.wanted) file.unwant(s.chunk);
      }
    }
    this.#readAhead();
  }

  /** Drops everything queued (the peer is gone). */
  clear(): void {
    for (const s of this.#queue.values()) if (s.wanted) s.file.unwant(s.chunk);
    this.#queue.clear();
  }

  /** Chunks queued. */
  get size(): number {
    return this.#queue.size;
  }

  hasBlock(): boolean {
    for (const s of this.#queue.values()) {
      if (s.wanted && s.next < s.blocks && s.file.payload(s.chunk)) return true;
    }
    return false;
  }

  nextBlock(): { ref: BlockRef; data: Uint8Array } | undefined {
    for (const s of this.#queue.values()) {
      if (s.next >= s.blocks || !s.wanted) continue;
      const payload = s.file.payload(s.chunk);
      if (!payload) continue;
      const offset = s.next++ * FILE_BLOCK;
      // Sent in full: the next chunk in the queue is read.
      if (s.next >= s.blocks) this.#readAhead();
      const data = payload.subarray(offset, Math.min(payload.length, offset + FILE_BLOCK));
      s.outstanding++;
      const ref = { id: s.file.offer.id, chunk: s.chunk, offset, length: data.length, key: s.key };
      return { ref, data };
    }
    return undefined;
  }

  blockData(ref: BlockRef): Uint8Array | undefined {
    const s = this.#queue.get(ref.key ?? `${toHex(ref.id)}:${ref.chunk}`);
    const payload = s?.wanted ? s.file.payload(ref.chunk) : undefined;
    if (!payload) return undefined;
    return payload.subarray(ref.offset, ref.offset + ref.length);
  }

  release(ref: BlockRef, acked: boolean): void {
    const key = ref.key ?? `${toHex(ref.id)}:${ref.chunk}`;
    const s = this.#queue.get(key);
    if (!s) return;
    s.outstanding--;
    if (acked) s.acked++;
    if (s.outstanding > 0 || s.next < s.blocks) return;
    this.#queue.delete(key);
    if (s.wanted) s.file.unwant(s.chunk);
    if (s.acked >= s.blocks) {
      this.#finished.push([key.slice(0, key.indexOf(":")), s.chunk, s.file.layout.length(s.chunk)]);
    }
  }

  /** The next chunk the peer has in full (for progress). */
  pollFinished(): [string, number, number] | undefined {
    return this.#finished.shift();
  }
}
