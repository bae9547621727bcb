/**
 * A server under pressure (`docs/protocol.md` 6.11): how hard the registration puzzle is at the
 * current fill, and which registration gives way when the server is full. Anyone can fill a
 * server with registrations into rooms made up on the spot; what keeps a full server useful:
 *
 * - From `pressureAt` of the peer cap on ({@link PRESSURE_AT} by default; `p2p serve
 *   --puzzle-from`, `--no-puzzle`), every HELLO must carry the solution of a stateless puzzle
 *   the COOKIE asks for ({@link difficultyFor}: 14 bits, 16 from three quarters, 18 from nine
 *   tenths; `lib/crypto/puzzle.ts`: about 40 ms, 150 ms and 600 ms of a peer's CPU), so each
 *   registration costs its sender CPU.
 * - When full, rooms with members beat one-member rooms ("lonely" registrations: made alone, and
 *   still alone): a HELLO into an existing room takes the place of the newest lonely
 *   registration (an attack in progress is the newest), a HELLO that makes a new room the place
 *   of the oldest lonely one (a registration that stayed alone longest; the newest would be the
 *   one just made by the same flood). A room with two members or more is never evicted.
 *
 * {@link Lonely} keeps the lonely registrations in order of arrival (O(1) amortised). Pure.
 *
 * @module
 */

/** Fill (share of the peer cap) from which HELLOs carry a puzzle solution, by default. */
export const PRESSURE_AT = 0.5;

/**
 * The puzzle's difficulty in bits at `size` registrations of `maxPeers`, from the fill
 * `pressureAt` on (0: no puzzle).
 */
export function difficultyFor(size: number, maxPeers: number, pressureAt = PRESSURE_AT): number {
  const fill = size / maxPeers;
  if (fill < pressureAt) return 0;
  if (fill < 0.75) return 14;
  if (fill < 0.9) return 16;
  return 18;
}

/** What {@link Lonely} needs to know of a registration. */
export interface LonelyMember {
  /** Its id number. */
  readonly num: bigint;
  /** Its room's members now. */
  readonly room: { readonly members: { readonly size: number } };
}

/**
 * Registrations that made a new room and are still alone in it, in order of arrival. A member
 * stops counting once its room gets a second member (it stays counted out after that).
 */
export class Lonely<M extends LonelyMember> {
  #order: M[] = [];
  #head = 0;
  #members = new Set<M>();

  /** `m` made a new room. */
  add(m: M): void {
    this.#members.add(m);
    this.#order.push(m);
    // Entries of members gone or no longer alone are dropped lazily; compact now and then.
    if (this.#order.length - this.#head > 2 * this.#members.size + 1024) {
      this.#order = this.#order.slice(this.#head).filter((x) => this.#counts(x));
      this.#head = 0;
    }
  }

  /** `m` is gone, or no longer alone. */
  remove(m: M): void {
    this.#members.delete(m);
  }

  /** Registrations counted as lonely (some may have company since: they are skipped lazily). */
  get size(): number {
    return this.#members.size;
  }

  /** The newest lonely registration not in `except` (a room id hex), if any. */
  newest(except?: unknown): M | undefined {
    for (let i = this.#order.length - 1; i >= this.#head; i--) {
      const m = this.#order[i]!;
      if (!this.#counts(m)) {
        if (i === this.#order.length - 1) this.#order.pop();
        continue;
      }
      if (m.room !== except) return m;
    }
    return undefined;
  }

  /** The oldest lonely registration, if any. */
  oldest(): M | undefined {
    while (this.#head < this.#order.length) {
      const m = this.#order[this.#head]!;
      if (this.#counts(m)) return m;
      this.#head++;
    }
    this.#order.length = this.#head = 0;
    return undefined;
  }

  /** True while `m` is registered and alone in its room. */
  #counts(m: M): boolean {
    if (!this.#members.has(m)) return false;
    if (m.room.members.size > 1) {
      this.#members.delete(m);
      return false;
    }
    return true;
  }
}
