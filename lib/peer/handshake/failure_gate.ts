/**
 * The handshake failure gate: a client-wide bound on the cryptographic work that handshake
 * messages which fail to authenticate can cost. Ids and attempt numbers travel in clear, so
 * anyone can forge a message 1 "from" a member; reading one costs hashes, a key derivation and
 * a failed AEAD open (about 20 times what any other garbage costs). Failures are counted per
 * source (a direct sender's address, as `sourceKey` counts it; a relayed sender's id) and, for
 * direct senders, client-wide; a source over its budget, or any direct source while the
 * client-wide budget is spent, is dropped before any cryptography. Relayed copies come through
 * the rendezvous point, which checked the sender's token, so they spend only their own
 * sender's budget: a flood of direct forgeries cannot keep a member's relayed handshake out.
 *
 * Pure: time comes from the caller. Memory: at most {@link GATE_SOURCES} sources.
 *
 * @module
 */
import { sourceKey, TokenBucket } from "../../core/limits.ts";
import type { Endpoint } from "../../wire/address.ts";

/** Failed handshake messages a source may cost a second, and its burst. */
export const SOURCE_FAILURES = { rate: 1, burst: 4 } as const;
/** Failed direct handshake messages all direct sources together may cost a second, and the burst. */
export const DIRECT_FAILURES = { rate: 32, burst: 64 } as const;
/** Sources remembered (the oldest is forgotten first). */
export const GATE_SOURCES = 1024;

/** The key a handshake message's source is counted under. */
export function gateKey(from: Endpoint | null, sender: Uint8Array): string {
  if (from) return `d:${sourceKey(from.hostname)}`;
  let hex = "r:";
  for (const b of sender) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/** Counts handshake failures per source and client-wide; says who may still cost work. */
export class FailureGate {
  #sources = new Map<string, TokenBucket>();
  #direct: TokenBucket;

  /** An open gate at time `now`. */
  constructor(now = 0) {
    this.#direct = new TokenBucket(DIRECT_FAILURES.rate, DIRECT_FAILURES.burst, now);
  }

  /** True when a message from `key` may be read now (its source and, if direct, all have budget). */
  allows(now: number, key: string): boolean {
    const b = this.#sources.get(key);
    if (b && !b.has(now, 1)) return false;
    return !key.startsWith("d:") || this.#direct.has(now, 1);
  }

  /** A message from `key` failed to authenticate: it spends from the budgets. */
  failed(now: number, key: string): void {
    let b = this.#sources.get(key);
    if (!b) {
      if (this.#sources.size >= GATE_SOURCES) {
        this.#sources.delete(this.#sources.keys().next().value!);
      }
      this.#sources.set(key, b = new TokenBucket(SOURCE_FAILURES.rate, SOURCE_FAILURES.burst, now));
    }
    b.take(now, 1);
    if (key.startsWith("d:")) this.#direct.take(now, 1);
  }

  /** Sources remembered now. */
  get size(): number {
    return this.#sources.size;
  }
}
