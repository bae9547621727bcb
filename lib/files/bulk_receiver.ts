/**
 * The receiving half of one pair's bulk stream: which packet numbers arrived (at most
 * {@link MAX_ACK_RANGES} ranges, the highest kept), duplicates told apart, and when to send a
 * FILE_ACK: after every {@link ACK_EVERY} packets, at once when a packet arrives out of order
 * (so the sender's loss detection runs without waiting), else within {@link MAX_ACK_DELAY}. A
 * fast stream, whose {@link ACK_EVERY} packets came within {@link FAST_SPAN}, is acknowledged
 * every {@link ACK_EVERY_FAST} packets or {@link FAST_SPAN} after the first unacknowledged one:
 * half the acknowledgements (each costs a datagram, a seal and a step on both sides) where the
 * window holds many packets per round trip, the same as before on slow paths.
 * Pure; time in ms. Call order: `handlePacket` for each FILE_DATA, then `pollAck`, then
 * `nextTimeout`; `handleTimeout` when it comes.
 *
 * @module
 */
import { type FileFrame, FileKind, MAX_ACK_RANGES } from "../wire/file_frame.ts";

/** Packets received before an acknowledgement is sent at once. */
export const ACK_EVERY = 8;
/** Packets received before an acknowledgement when they come fast (see {@link FAST_SPAN}). */
export const ACK_EVERY_FAST = 16;
/** A stream whose {@link ACK_EVERY} packets came within this many ms is fast. */
export const FAST_SPAN = 1;
/** Longest an acknowledgement is held back, in ms. */
export const MAX_ACK_DELAY = 5;

/** The receiver's side of a bulk stream. */
export class BulkReceiver {
  /** Inclusive `[high, low]` ranges, highest first. */
  #ranges: [number, number][] = [];
  #unacked = 0;
  #firstUnackedAt = 0;
  #ackNow = false;
  /** Packets received (including duplicates). */
  packets = 0;
  /** Duplicates seen. */
  duplicates = 0;
  /** Acknowledgements sent. */
  acks = 0;

  /** A FILE_DATA with packet number `pn` arrived at `now`; returns false for a duplicate. */
  handlePacket(pn: number, now: number): boolean {
    this.packets++;
    const r = this.#ranges;
    const top = r[0];
    if (this.#unacked === 0) this.#firstUnackedAt = now;
    this.#unacked++;
    if (top && pn === top[0] + 1) {
      top[0] = pn;
      if (
        this.#unacked >= ACK_EVERY_FAST ||
        (this.#unacked >= ACK_EVERY && now - this.#firstUnackedAt > FAST_SPAN)
      ) this.#ackNow = true;
      return true;
    }
    // Out of order (or the first): insert, merge, and acknowledge at once.
    this.#ackNow = true;
    let i = 0;
    while (i < r.length && r[i]![1] > pn) i++;
    // r[i] is the first range whose low ≤ pn (or none).
    const at = r[i];
    if (at && at[0] >= pn) {
      this.duplicates++;
      this.#unacked--;
      return false;
    }
    const above = i > 0 ? r[i - 1]! : undefined;
    if (above && above[1] === pn + 1) {
      above[1] = pn;
      if (at && at[0] === pn - 1) {
        above[1] = at[1];
        r.splice(i, 1);
      }
    } else if (at && at[0] === pn - 1) at[0] = pn;
    else r.splice(i, 0, [pn, pn]);
    if (r.length > MAX_ACK_RANGES) r.length = MAX_ACK_RANGES;
    return true;
  }

  /** The FILE_ACK owed now, if any. */
  pollAck(now: number): FileFrame | undefined {
    if (this.#unacked === 0 && !this.#ackNow) return undefined;
    if (!this.#ackNow && now < this.#due()) return undefined;
    if (this.#ranges.length === 0) return undefined;
    const delay = (now - this.#firstUnackedAt) * 10;
    this.#unacked = 0;
    this.#ackNow = false;
    this.acks++;
    return { kind: FileKind.Ack, delay, ranges: this.#ranges.map(([h, l]) => [h, l]) };
  }

  /** When a held-back acknowledgement is due. */
  nextTimeout(): number | undefined {
    if (this.#unacked === 0 && !this.#ackNow) return undefined;
    return this.#ackNow ? this.#firstUnackedAt : this.#due();
  }

  /** When the packets held back are acknowledged at the latest. */
  #due(): number {
    return this.#firstUnackedAt + (this.#unacked >= ACK_EVERY ? FAST_SPAN : MAX_ACK_DELAY);
  }
}
