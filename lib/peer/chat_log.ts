/**
 * A joining peer's memory of its room's chat: the last {@link HISTORY_LINES} public lines seen
 * (its own and its room-mates'), from which a peer that joins later is sent the lines this peer
 * wrote, as history; and the ids of lines already shown, so a line that arrives twice (live and
 * as history, or as history from two introductions) is shown once. Only a line's author repeats
 * it: lines are authenticated pair by pair, so a member can never put words in another's mouth,
 * and a line whose author left is not repeated. Private lines are never kept. Bounded: at most
 * {@link HISTORY_LINES} lines and {@link MAX_SEEN} senders' runs. Pure.
 *
 * @module
 */

/** How many of the room's latest public lines a peer holds for late joiners. */
export const HISTORY_LINES = 50;
/** How many senders' runs a peer remembers the newest shown line of. */
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
  /** The latest public lines, a ring from {@link #head}: ours, or null for another's. */
  #lines: (OwnLine | null)[] = [];
  #head = 0;
  /**
   * The highest line counter shown, per sender and run id (lines of one run come in order on
   * the pair's stream, history first): at most {@link MAX_SEEN} of them.
   */
  #shown = new Map<string, number>();
  /** The key of the last sender and run seen, cached: most lines come from the same one. */
  #lastAuthor = "";
  #lastRun = -1;
  #lastKey = "";

  /** A log whose line ids start with `run` (4 random bytes, drawn once per run). */
  constructor(run: Uint8Array) {
    this.#run = run.slice(0, 4);
  }

  /** Our run id (4 bytes, drawn once per run): the first half of each of our line ids. */
  get run(): Uint8Array {
    return this.#run;
  }

  /** The counter of our next line (the second half of its id). */
  nextSeq(): number {
    const n = this.#next;
    this.#next = (n + 1) >>> 0;
    return n;
  }

  /** Records our own public line `text` with id `id`, sent at `now`. */
  wrote(now: number, id: Uint8Array, text: string): void {
    this.#push({ id, at: now, text });
  }

  /**
   * A line `id` from the peer `author` (its fingerprint) arrived: true when it is new (show it;
   * it is remembered, and counted among the room's latest lines unless `history`).
   */
  received(author: string, id: Uint8Array, history: boolean): boolean {
    const run = ((id[0]! << 24) | (id[1]! << 16) | (id[2]! << 8) | id[3]!) >>> 0;
    const seq = ((id[4]! << 24) | (id[5]! << 16) | (id[6]! << 8) | id[7]!) >>> 0;
    if (author !== this.#lastAuthor || run !== this.#lastRun) {
      this.#lastAuthor = author;
      this.#lastRun = run;
      this.#lastKey = `${author}:${run}`;
    }
    const key = this.#lastKey;
    const max = this.#shown.get(key);
    if (max !== undefined && seq <= max) return false;
    if (max === undefined && this.#shown.size >= MAX_SEEN) {
      this.#shown.delete(this.#shown.keys().next().value!);
    }
    this.#shown.set(key, seq);
    if (!history) this.#push(null);
    return true;
  }

  /** Our own lines among the room's latest {@link HISTORY_LINES}, oldest first. */
  ownHistory(): OwnLine[] {
    const out: OwnLine[] = [];
    const n = this.#lines.length;
    for (let i = 0; i < n; i++) {
      const l = this.#lines[(this.#head + i) % n];
      if (l) out.push(l);
    }
    return out;
  }

  #push(l: OwnLine | null): void {
    if (this.#lines.length < HISTORY_LINES) this.#lines.push(l);
    else {
      this.#lines[this.#head] = l;
      this.#head = (this.#head + 1) % HISTORY_LINES;
    }
  }
}
