/**
 * An indexed binary min-heap of deadlines, one per item: O(log n) to set, move or clear an
 * item's deadline, O(1) to read the earliest. Lets a machine with many sub-machines answer
 * `nextTimeout()` and find the due ones without scanning all of them.
 *
 * @module
 */

interface Slot<T> {
  item: T;
  at: number;
}

/** Deadlines keyed by item. */
export class DeadlineQueue<T> {
  #heap: Slot<T>[] = [];
  #index = new Map<T, number>();

  /** Number of items with a deadline. */
  get size(): number {
    return this.#heap.length;
  }

  /** Sets (or, with `undefined`, clears) the deadline of `item`. */
  set(item: T, at: number | undefined): void {
    const i = this.#index.get(item);
    if (at === undefined) {
      if (i !== undefined) this.#removeAt(i);
      return;
    }
    if (i === undefined) {
      this.#heap.push({ item, at });
      this.#index.set(item, this.#heap.length - 1);
      this.#up(this.#heap.length - 1);
      return;
    }
    const old = this.#heap[i]!.at;
    this.#heap[i]!.at = at;
    if (at < old) this.#up(i);
    else if (at > old) this.#down(i);
  }

  /** The deadline of `item`, if it has one. */
  get(item: T): number | undefined {
    const i = this.#index.get(item);
    return i === undefined ? undefined : this.#heap[i]!.at;
  }

  /** The earliest deadline, if any. */
  peek(): number | undefined {
    return this.#heap[0]?.at;
  }

  /** Removes and returns every item whose deadline is at or before `now`, earliest first. */
  popDue(now: number): T[] {
    const out: T[] = [];
    while (this.#heap.length > 0 && this.#heap[0]!.at <= now) {
      out.push(this.#heap[0]!.item);
      this.#removeAt(0);
    }
    return out;
  }

  #removeAt(i: number): void {
    const h = this.#heap;
    this.#index.delete(h[i]!.item);
    const last = h.pop()!;
    if (i === h.length) return; // It was the last slot.
    h[i] = last;
    this.#index.set(last.item, i);
    this.#down(i);
    this.#up(i);
  }

  #up(i: number): void {
    const h = this.#heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= h[i]!.at) break;
      this.#swap(i, p);
      i = p;
    }
  }

  #down(i: number): void {
    const h = this.#heap;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < h.length && h[l]!.at < h[m]!.at) m = l;
      if (r < h.length && h[r]!.at < h[m]!.at) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(a: number, b: number): void {
    const h = this.#heap;
    const t = h[a]!;
    h[a] = h[b]!;
    h[b] = t;
    this.#index.set(h[a]!.item, a);
    this.#index.set(h[b]!.item, b);
  }
}
