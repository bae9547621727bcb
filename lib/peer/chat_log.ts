/**
 * A joining peer's memory of its room's chat: the last {@link HISTORY_LINES} public lines seen
 * (its own and its room-mates'), from which a peer that joins later is sent the lines this peer
 * wrote, as history; and the ids of lines already shown, so a line that arrives twice (live and
 * as history, or as history from two introductions) is shown once. Only a line's author repeats
 * it: lines are authenticated pair by pair, so a member can never put words in another's mouth,
 * and a line whose author left is not repeated. Private lines are never kept. Bounded: at most
 * {@link HISTORY_LINES} lines and {@link MAX_SEEN} ids. Pure.
 *
 * @module
 */
import { CHAT_ID_LEN, chatIdKey } from "../wire/chat_message.ts";

/** How many of the room's latest public lines a peer holds for late joiners. */
export const HISTORY_LINES = 50;
/** How many line ids (per sender and line) a peer remembers having shown. */
export const MAX_SEEN = 4096;

/** One of our own lines, as history repeats it. */
export interface OwnLine {
  /** Its id (run id ‖ counter). */
  id: Uint8Array;
  /** When we sent it. */
  at: number;
  /** Its text. */
  text: string;
}

/** The room's recent lines, and the ids shown. */
export class ChatLog {
  #run: Uint8Array;
  #next = 0;
  /** The latest public lines, oldest first; `own` only for ours. */
  #lines: { own: OwnLine | null }[] = [];
  #seen = new Set<string>();

  /** A log whose line ids start with `run` (4 random bytes, drawn once per run). */
  constructor(run: Uint8Array) {
    this.#run = run.slice(0, 4);
  }

  /** A fresh id for our next line. */
  nextId(): Uint8Array {
    const id = new Uint8Array(CHAT_ID_LEN);
    id.set(this.#run);
    new DataView(id.buffer).setUint32(4, this.#next, false);
    this.#next = (this.#next + 1) >>> 0;
    return id;
  }

  /** Records our own public line `text` with id `id`, sent at `now`. */
  wrote(now: number, id: Uint8Array, text: string): void {
    this.#push({ own: { id, at: now, text } });
  }

  /**
   * A line `id` from the peer `author` (its fingerprint) arrived: true when it is new (show it;
   * it is remembered, and counted among the room's latest lines unless `history`).
   */
  received(author: string, id: Uint8Array, history: boolean): boolean {
    const key = `${author}:${chatIdKey(id)}`;
    if (this.#seen.has(key)) return false;
    this.#seen.add(key);
    if (this.#seen.size > MAX_SEEN) this.#seen.delete(this.#seen.values().next().value!);
    if (!history) this.#push({ own: null });
    return true;
  }

  /** Our own lines among the room's latest {@link HISTORY_LINES}, oldest first. */
  ownHistory(): OwnLine[] {
    const out: OwnLine[] = [];
    for (const l of this.#lines) if (l.own) out.push(l.own);
    return out;
  }

  #push(l: { own: OwnLine | null }): void {
    this.#lines.push(l);
    if (this.#lines.length > HISTORY_LINES) this.#lines.shift();
  }
}
