/**
 * The receiving half of the reliable channel (`lib/peer/reliable.ts`): the peer's stream, what
 * was delivered of it, the frames that came out of order, and the ACKs that say so. Pure; time is
 * a number in milliseconds supplied by the caller.
 *
 * Payloads are delivered strictly in sequence: out-of-order frames wait in a buffer (within the
 * window), duplicates are dropped, and each ACK carries the stream, the highest sequence
 * delivered in order and a 32-bit selective bitmap of what is buffered beyond it.
 *
 * ACKs are delayed a little, as TCP's are: in-order DATA is acknowledged every
 * {@link ReliableOptions.ackEvery}th frame or {@link ReliableOptions.ackDelay} ms after the
 * first one left unacknowledged, whichever comes first; a duplicate, a frame out of order, one
 * that fills a gap, or one of a new stream is acknowledged at once (so lost ACKs and losses are
 * repaired quickly).
 *
 * Every DATA carries the sender's *base*, its lowest unacknowledged sequence. A new stream (the
 * peer forgot us and made a fresh channel, or wrapped its sequence numbers) starts at `base`:
 * everything below was acknowledged, so delivered, before. A late frame of a stream the peer
 * left behind is only acknowledged, never followed back. On the current stream a `base` beyond
 * what was delivered means the sender dropped what lies between: what was buffered of it is
 * delivered, the rest counted as `missed`, and delivery carries on from `base`.
 *
 * @module
 */
import type { DataPart } from "../wire/peer_frame.ts";
import type {
  DataFrame,
  Delivery,
  OutAck,
  ReliableOptions,
  ReliableStats,
} from "./reliable_types.ts";

/** What one DATA frame brought (see {@link ReliableReceiver.onData}). */
export interface DataOutcome {
  /** Payloads now deliverable, in order (possibly none). */
  deliver: Delivery[];
  /** The ACK as of this frame: what this side has received of the peer's stream. */
  ack: OutAck;
  /**
   * Send `ack` now. When false it is delayed: `pollAck` hands it out at the channel's
   * `nextTimeout` (or sooner, with a later frame's `ackNow`).
   */
  ackNow: boolean;
  /** The peer's stream changed. */
  reset: boolean;
  /**
   * Sequence numbers of the peer's stream we never received and never will: its `base` moved
   * past them (it gave them up). 0 almost always.
   */
  missed: number;
}

/** A frame held out of order: its first payload and any packed after it. */
type Held = DataPart & { packed?: DataPart[] };

/** Streams the peer left behind that are remembered (their late frames are only acknowledged). */
const OLD_STREAMS = 8;

/**
 * The receiving half of a reliable channel: the peer's stream delivered in order, exactly once,
 * and the ACKs for it (at once, or delayed until {@link pollAck} or {@link takeAck}).
 */
export class ReliableReceiver {
  #o: ReliableOptions;
  #stats: ReliableStats;
  /** The peer's current stream (undefined until its first frame). */
  #stream: number | undefined;
  /** Streams the peer left behind; a late frame of one is never followed again. */
  #oldStreams: number[] = [];
  /** The highest sequence delivered in order. */
  #delivered = 0;
  #buffer = new Map<number, Held>();
  /** In-order DATA frames received since the last ACK handed out. */
  #unacked = 0;
  /** When the delayed ACK is due (Infinity: none pending). */
  #ackDue = Infinity;
  /**
   * When {@link ackWake} says to look for a delayed ACK: a lower bound of `#ackDue`, left in
   * place when an ACK goes out early, so a flood of DATA does not move the caller's timer on
   * every frame (a spurious wake-up costs one look).
   */
  #ackWake = Infinity;

  /** A receiver with resolved `options`, counting into `stats` (shared with the sender). */
  constructor(options: ReliableOptions, stats: ReliableStats) {
    this.#o = options;
    this.#stats = stats;
  }

  /**
   * When {@link pollAck} may next have a delayed ACK (Infinity: none); possibly early, never
   * late.
   */
  get ackWake(): number {
    return this.#ackWake;
  }

  /** True while a delayed ACK waits to be handed out by {@link pollAck}. */
  get ackPending(): boolean {
    return this.#ackDue !== Infinity;
  }

  /** The delayed ACK, once it is due (at {@link ackWake}); otherwise undefined. */
  pollAck(now: number): OutAck | undefined {
    if (this.#ackWake > now) return undefined;
    if (this.#ackDue > now) {
      this.#ackWake = this.#ackDue;
      return undefined;
    }
    this.#ackWake = Infinity;
    return this.#ackSent();
  }

  /**
   * The ACK as of now, pending or not, once anything came (undefined before): what a leaving peer
   * repeats with each GOODBYE, so that the other side learns what arrived even when an ACK was
   * lost. Changes nothing (a pending delayed ACK stays pending).
   */
  currentAck(): OutAck | undefined {
    return this.#stream === undefined ? undefined : this.#ack();
  }

  /** The delayed ACK at once, if one is pending (e.g. before leaving). */
  takeAck(): OutAck | undefined {
    if (this.#ackDue === Infinity) return undefined;
    this.#ackWake = Infinity;
    return this.#ackSent();
  }

  /**
   * Takes a DATA frame from the peer received at `now`. Returns the payloads now deliverable in
   * order (possibly none), the ACK as of this frame and whether to send it now (`ackNow`; a
   * delayed one comes from {@link pollAck}), and `reset` when the peer's stream changed. A late
   * frame of a stream the peer left behind is only acknowledged (at once), never followed back.
   */
  onData(d: DataFrame, now: number): DataOutcome {
    const deliver: Delivery[] = [];
    const stream = d.stream >>> 0;
    if (stream !== this.#stream && this.#oldStreams.includes(stream)) {
      this.#stats.duplicates++;
      this.#stats.acks++;
      const ack = { stream, cumulative: d.base - 1, selective: 0 };
      return { deliver, ack, ackNow: true, reset: false, missed: 0 };
    }
    const reset = stream !== this.#stream && this.#follow(stream, d.base);
    // The sender says it saw everything below `base` acknowledged, so none of it is coming: what
    // we lack of it is missed (a sender that gave it up), what we buffered of it is delivered.
    const missed = d.base - 1 > this.#delivered ? this.#skipTo(d.base - 1, deliver) : 0;
    // (Placed first: it must run whatever `reset` says.)
    const immediate = this.#place(d, deliver) || reset;
    if (immediate || missed > 0 || ++this.#unacked >= this.#o.ackEvery || this.#o.ackDelay <= 0) {
      return { deliver, ack: this.#ackSent(), ackNow: true, reset, missed };
    }
    if (this.#ackDue === Infinity) {
      this.#ackDue = now + this.#o.ackDelay;
      if (this.#ackWake === Infinity) this.#ackWake = this.#ackDue;
    }
    return { deliver, ack: this.#ack(), ackNow: false, reset, missed };
  }

  /**
   * Makes `stream` the peer's current one, starting at `base`; returns whether it replaced one
   * (then remembered as left behind).
   */
  #follow(stream: number, base: number): boolean {
    let reset = false;
    if (this.#stream !== undefined) {
      this.#stats.streamResets++;
      reset = true;
      this.#oldStreams.push(this.#stream);
      if (this.#oldStreams.length > OLD_STREAMS) this.#oldStreams.shift();
    }
    this.#stream = stream;
    this.#delivered = Math.max(0, base - 1);
    this.#buffer.clear();
    return reset;
  }

  /**
   * Delivers `d` (with whatever it lets out of the buffer) or buffers it or drops it; returns
   * whether its ACK must go at once: anything but the next frame in order with nothing buffered
   * is acknowledged at once (a duplicate: our ACK was lost; a frame beyond the window; one out
   * of order: a loss to repair; one that fills a gap: the repair worked).
   */
  #place(d: DataFrame, deliver: Delivery[]): boolean {
    const seq = d.seq;
    if (seq <= this.#delivered || this.#buffer.has(seq)) {
      this.#stats.duplicates++;
      return true;
    }
    if (seq === this.#delivered + 1 && this.#buffer.size === 0) {
      // The common case: the next one, nothing buffered.
      this.#delivered = seq;
      this.#deliver(d, deliver);
      return false;
    }
    if (seq - this.#delivered <= this.#o.window) {
      const { first, more, text, packed } = d;
      this.#buffer.set(seq, packed ? { first, more, text, packed } : { first, more, text });
      for (;;) {
        const next = this.#buffer.get(this.#delivered + 1);
        if (!next) break;
        this.#buffer.delete(++this.#delivered);
        this.#deliver(next, deliver);
      }
    }
    return true;
  }

  /**
   * Moves `delivered` up to `to`, delivering what is buffered on the way; returns how many
   * sequence numbers were skipped, never received.
   */
  #skipTo(to: number, deliver: Delivery[]): number {
    let missed = 0;
    for (let seq = this.#delivered + 1; seq <= to; seq++) {
      const held = this.#buffer.get(seq);
      if (held) {
        this.#buffer.delete(seq);
        this.#deliver(held, deliver);
      } else missed++;
      // A hostile or broken base far ahead: skip the rest without walking it.
      if (this.#buffer.size === 0) {
        missed += to - seq;
        break;
      }
    }
    this.#delivered = to;
    this.#stats.missed += missed;
    return missed;
  }

  /** Hands out the payloads of one frame (the first, then any packed after it). */
  #deliver(d: Held, out: Delivery[]): void {
    out.push({ first: d.first, more: d.more, text: d.text });
    for (const p of d.packed ?? []) out.push({ first: p.first, more: p.more, text: p.text });
    this.#stats.delivered += 1 + (d.packed?.length ?? 0);
  }

  /** Hands out the ACK as of now and clears what was pending. */
  #ackSent(): OutAck {
    this.#unacked = 0;
    this.#ackDue = Infinity;
    this.#stats.acks++;
    return this.#ack();
  }

  /** The ACK as of now: the stream, what was delivered in order, what is buffered beyond. */
  #ack(): OutAck {
    let selective = 0;
    if (this.#buffer.size > 0) {
      for (let i = 0; i < 32; i++) {
        if (this.#buffer.has(this.#delivered + 2 + i)) selective |= 1 << i;
      }
    }
    return {
      stream: this.#stream ?? 0,
      cumulative: this.#delivered,
      selective: selective >>> 0,
    };
  }
}
