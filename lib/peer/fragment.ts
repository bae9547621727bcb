/**
 * Chat lines on the wire: splitting a line into DATA-sized fragments on code-point boundaries,
 * and putting the fragments of one remote peer's messages back together with a size cap.
 * Pure and synchronous.
 *
 * @module
 */
import { MAX_FRAGMENT } from "../wire/peer_frame.ts";

/** Longest chat message in bytes of UTF-8; longer lines are refused with a notice. */
export const MAX_MESSAGE = 64 * 1024;

/** Splits UTF-8 bytes into fragments of at most MAX_FRAGMENT bytes on code-point boundaries. */
export function fragment(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length <= MAX_FRAGMENT) return [bytes];
  const out: Uint8Array[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + MAX_FRAGMENT, bytes.length);
    // Back off continuation bytes (10xxxxxx) so no code point is split.
    while (end < bytes.length && end > start && (bytes[end]! & 0xc0) === 0x80) end--;
    if (end === start) end = Math.min(start + MAX_FRAGMENT, bytes.length); // Not UTF-8.
    out.push(bytes.subarray(start, end));
    start = end;
  }
  return out;
}

/** What {@link Reassembler.push} made of a fragment. */
export type Reassembled =
  /** Held, waiting for more fragments. */
  | { kind: "partial" }
  /** A whole message. */
  | { kind: "message"; bytes: Uint8Array }
  /** The message exceeded the limit and is dropped whole. */
  | { kind: "too-long" }
  /** A fragment continuing a message whose start this side never saw: dropped. */
  | { kind: "orphan" };

/**
 * Collects the fragments of one sender's messages, in delivery order. Each fragment says
 * whether it starts a message; a fragment that continues a message this side never saw the
 * start of (its stream resumed mid-message) is dropped, so no truncated message is ever shown.
 * A message longer than `limit` bytes (no honest sender sends one) is dropped whole and the
 * stream goes on with the next message; at most `limit` bytes are ever held.
 */
export class Reassembler {
  /** Fragments of the message in progress, or null between messages (or while skipping one). */
  #parts: Uint8Array[] | null = null;
  #bytes = 0;
  #limit: number;

  /** Makes a reassembler holding at most `limit` bytes of one message. */
  constructor(limit = MAX_MESSAGE) {
    this.#limit = limit;
  }

  /** Bytes held for the message in progress. */
  get held(): number {
    return this.#bytes;
  }

  /**
   * Adds the next fragment: `first` starts a message, `more` says another fragment of it
   * follows. Returns a whole message when one is complete.
   */
  push(first: boolean, more: boolean, text: Uint8Array): Reassembled {
    if (first && !more) {
      // A whole message in one fragment (the common case): nothing to gather or copy.
      this.reset();
      if (text.length > this.#limit) return { kind: "too-long" };
      return { kind: "message", bytes: text };
    }
    if (first) {
      // A message in progress that never got its last fragment is void (its stream restarted).
      this.#parts = [];
      this.#bytes = 0;
    }
    if (this.#parts === null) return { kind: "orphan" };
    if (this.#bytes + text.length > this.#limit) {
      this.reset();
      return { kind: "too-long" };
    }
    this.#parts.push(text);
    this.#bytes += text.length;
    if (more) return { kind: "partial" };
    const all = new Uint8Array(this.#bytes);
    let o = 0;
    for (const p of this.#parts) {
      all.set(p, o);
      o += p.length;
    }
    this.reset();
    return { kind: "message", bytes: all };
  }

  /** Forgets the message in progress; fragments are skipped until the next first one. */
  reset(): void {
    this.#parts = null;
    this.#bytes = 0;
  }
}
