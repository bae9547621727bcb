/**
 * What a server lets one TCP or TLS connection cost it ({@link StreamPolicy}): how many
 * connections in all and per source address (an IPv4 address or an IPv6 /64, as
 * {@link sourceKey}), how long a connection may go without a complete frame (a new one gets a
 * short deadline for its first; slowloris trickling bytes never moves it), how many bytes may
 * wait to be written to it, and how long a write may stay pending (a peer that stops reading).
 * New connections per source are rate-limited too (TLS handshakes cost CPU). Each connection's
 * one deadline sits in a {@link DeadlineQueue}. Pure: the I/O side
 * (`lib/io/tcp.ts`) reports what happens and closes what {@link StreamPolicy.pollDrop} names.
 *
 * @module
 */
import { DeadlineQueue } from "./deadlines.ts";
import { sourceKey, TokenBucket } from "./limits.ts";

/** The bounds of {@link StreamPolicy}. */
export interface StreamLimits {
  /** Connections open at once, in all. */
  maxConnections: number;
  /** Connections open at once from one source address. */
  maxPerSource: number;
  /** A new connection must deliver its first complete frame within this long, ms. */
  firstFrameWithin: number;
  /** A connection without a complete frame for this long is dropped, ms. */
  idleAfter: number;
  /** Bytes that may wait to be written to one connection; more drops it. */
  maxQueued: number;
  /** A write pending this long without progress drops the connection (it stopped reading), ms. */
  writeStallAfter: number;
  /**
   * New connections a second from one source address, burst four times that (a TLS handshake
   * costs the server CPU; a source that closes and reopens connections is refused).
   */
  acceptRate?: number;
}

/** Sources whose accept rate is remembered (the least recently seen are forgotten). */
const MAX_RATED_SOURCES = 10_000;

/**
 * The server's defaults: 1,000 connections (64 per source, 10 new ones a second, burst 40), 10 s
 * for the first frame, 90 s idle (peers PING every 25 s; the server forgets members silent 75 s),
 * 32 KiB queued, 10 s for a write.
 */
export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxConnections: 1_000,
  maxPerSource: 64,
  firstFrameWithin: 10_000,
  idleAfter: 90_000,
  maxQueued: 32 * 1024,
  writeStallAfter: 10_000,
  acceptRate: 10,
};

/** Why a connection was refused or dropped. */
export type StreamDropReason =
  | "full"
  | "source-full"
  | "source-rate"
  | "no-first-frame"
  | "idle"
  | "queue-full"
  | "slow-reader"
  | "bad-frame";

interface Conn {
  source: string;
  /** When the last complete frame arrived (or the connection opened). */
  heard: number;
  framed: boolean;
  queued: number;
  /** When the oldest pending write started, or the last one progressed; undefined if none. */
  writing: number | undefined;
}

/**
 * Admission and deadlines of a server's stream connections.
 *
 * Driving it: {@link admit} each accepted connection (a refusal: close it at once); report
 * {@link received} frames, {@link queue}d and {@link wrote} bytes, and {@link closed}; call
 * {@link handleTimeout} at {@link nextTimeout}; after any call, close each connection
 * {@link pollDrop} names (and then report it {@link closed}).
 */
export class StreamPolicy {
  #l: StreamLimits;
  #conns = new Map<number, Conn>();
  #perSource = new Map<string, number>();
  #deadlines = new DeadlineQueue<number>();
  #drops: { id: number; reason: StreamDropReason }[] = [];
  /** New-connection budgets per source, least recently seen first. */
  #rates = new Map<string, TokenBucket>();

  /** A policy with limits `limits`. */
  constructor(limits: StreamLimits = DEFAULT_STREAM_LIMITS) {
    this.#l = limits;
  }

  /** Connections open. */
  get size(): number {
    return this.#conns.size;
  }

  /**
   * A new connection `id` from address `hostname`: null when admitted, else why it is refused
   * (close it without reading).
   */
  admit(now: number, id: number, hostname: string): StreamDropReason | null {
    if (this.#conns.size >= this.#l.maxConnections) return "full";
    const source = sourceKey(hostname);
    const n = this.#perSource.get(source) ?? 0;
    if (n >= this.#l.maxPerSource) return "source-full";
    if (!this.#rateOk(now, source)) return "source-rate";
    this.#perSource.set(source, n + 1);
    this.#conns.set(id, { source, heard: now, framed: false, queued: 0, writing: undefined });
    this.#deadlines.set(id, now + this.#l.firstFrameWithin);
    return null;
  }

  /** A complete frame arrived on `id`: its idle deadline moves. */
  received(now: number, id: number): void {
    const c = this.#conns.get(id);
    if (!c) return;
    c.heard = now;
    c.framed = true;
    this.#schedule(id, c);
  }

  /** `id` sent a malformed frame: it is dropped. */
  badFrame(id: number): void {
    if (this.#conns.has(id)) this.#drop(id, "bad-frame");
  }

  /**
   * `bytes` are to be written to `id`. False (and `id` dropped) when that would put more than
   * `maxQueued` bytes in its queue: the caller does not queue them.
   */
  queue(now: number, id: number, bytes: number): boolean {
    const c = this.#conns.get(id);
    if (!c) return false;
    if (c.queued + bytes > this.#l.maxQueued) {
      this.#drop(id, "queue-full");
      return false;
    }
    c.queued += bytes;
    if (c.writing === undefined) {
      c.writing = now;
      this.#schedule(id, c);
    }
    return true;
  }

  /** `bytes` of `id`'s queue were written. */
  wrote(now: number, id: number, bytes: number): void {
    const c = this.#conns.get(id);
    if (!c) return;
    c.queued = Math.max(0, c.queued - bytes);
    c.writing = c.queued > 0 ? now : undefined;
    this.#schedule(id, c);
  }

  /** Bytes waiting to be written to `id`. */
  queued(id: number): number {
    return this.#conns.get(id)?.queued ?? 0;
  }

  /** Connection `id` is gone (closed by either side, or dropped). */
  closed(id: number): void {
    const c = this.#conns.get(id);
    if (!c) return;
    this.#conns.delete(id);
    this.#deadlines.set(id, undefined);
    const n = (this.#perSource.get(c.source) ?? 1) - 1;
    if (n > 0) this.#perSource.set(c.source, n);
    else this.#perSource.delete(c.source);
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    return this.#deadlines.peek();
  }

  /** Drops the connections whose deadline passed. */
  handleTimeout(now: number): void {
    for (const id of this.#deadlines.popDue(now)) {
      const c = this.#conns.get(id);
      if (!c) continue;
      if (c.writing !== undefined && now >= c.writing + this.#l.writeStallAfter) {
        this.#drop(id, "slow-reader");
      } else if (now >= this.#idleAt(c)) {
        this.#drop(id, c.framed ? "idle" : "no-first-frame");
      } else {
        this.#schedule(id, c);
      }
    }
  }

  /** The next connection to close, and why. */
  pollDrop(): { id: number; reason: StreamDropReason } | undefined {
    return this.#drops.shift();
  }

  /** Takes one from `source`'s new-connection budget (none without `acceptRate`). */
  #rateOk(now: number, source: string): boolean {
    const rate = this.#l.acceptRate;
    if (rate === undefined) return true;
    let b = this.#rates.get(source);
    if (b) this.#rates.delete(source);
    else {
      b = new TokenBucket(rate, 4 * rate, now);
      if (this.#rates.size >= MAX_RATED_SOURCES) {
        const oldest = this.#rates.keys().next().value;
        if (oldest !== undefined) this.#rates.delete(oldest);
      }
    }
    this.#rates.set(source, b);
    return b.take(now, 1);
  }

  #idleAt(c: Conn): number {
    return c.heard + (c.framed ? this.#l.idleAfter : this.#l.firstFrameWithin);
  }

  #schedule(id: number, c: Conn): void {
    const idle = this.#idleAt(c);
    const stall = c.writing === undefined ? Infinity : c.writing + this.#l.writeStallAfter;
    this.#deadlines.set(id, Math.min(idle, stall));
  }

  /** Queues `id` to be closed; it stops counting against the limits at once. */
  #drop(id: number, reason: StreamDropReason): void {
    this.closed(id);
    this.#drops.push({ id, reason });
  }
}
