/**
 * The verifying keys of rooms (a room id is the room's Ed25519 public key), made on demand and
 * kept for the {@link ROOM_KEYS_KEPT} rooms most recently registered into. A `node:crypto` key
 * object costs about 0.9 KB (its native half outside the V8 heap, and its wrapper), so keeping
 * one per room held 9 MB at 100k peers in rooms of 10; a HELLO into a room not kept makes its
 * key again (one parse of 32 bytes), which a herd registering into the same room never does.
 *
 * @module
 */
import type { KeyObject } from "node:crypto";
import { ed25519PublicKey } from "../crypto/ed25519.ts";

/** How many rooms' keys are kept (the most recently used). */
export const ROOM_KEYS_KEPT = 1024;

/** A bounded cache of room keys, least recently used forgotten first. */
export class RoomKeys {
  #keys = new Map<string, KeyObject>();
  #max: number;

  /** Keeps at most `max` keys. */
  constructor(max: number = ROOM_KEYS_KEPT) {
    this.#max = max;
  }

  /** The key of the room `hex` (the hex of `id`); undefined when `id` is no Ed25519 public key. */
  get(hex: string, id: Uint8Array): KeyObject | undefined {
    let key = this.#keys.get(hex);
    if (key) {
      // Most recently used last: the first entry is the one to forget when full.
      this.#keys.delete(hex);
    } else {
      key = ed25519PublicKey(id);
      if (!key) return undefined;
      if (this.#keys.size >= this.#max) this.#keys.delete(this.#keys.keys().next().value!);
    }
    this.#keys.set(hex, key);
    return key;
  }

  /** How many keys are kept. */
  get size(): number {
    return this.#keys.size;
  }
}
