/**
 * Counters of dropped datagrams by reason, shared by the peer's machines (the client and the
 * parts it owns count into one record, which `Client.drops` shows).
 *
 * @module
 */

/** Dropped datagrams by reason. */
export type Drops = Record<string, number>;

/** Counts one datagram dropped for `reason`. */
export function countDrop(drops: Drops, reason: string): void {
  drops[reason] = (drops[reason] ?? 0) + 1;
}
