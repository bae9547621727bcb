/**
 * Ordered, exactly-once delivery over an unreliable path, in sans-IO style.
 *
 * One {@link ReliableChannel} exists per remote peer and carries both directions. The sender
 * numbers payloads from 1, keeps each until acknowledged, and retransmits with exponential
 * backoff (RTO from RFC 6298's smoothed RTT). The receiver delivers payloads strictly in
 * sequence, buffers out-of-order ones, drops duplicates and answers every DATA with an ACK
 * (cumulative sequence plus a 32-bit selective bitmap). The channel never learns which path a
 * frame took, so switching between relay and direct cannot lose or duplicate a payload.
 *
 * Time is a number in milliseconds supplied by the caller.
 *
 * @module
 */

/** Tunables of a channel. */
export interface ReliableOptions {
  /** Retransmission timeout before any RTT sample, in ms. */
  initialRto: number;
  /** Lower bound of the retransmission timeout, in ms. */
  minRto: number;
  /** Upper bound of the retransmission timeout (after backoff), in ms. */
  maxRto: number;
  /** Most payloads in flight (sent, not yet acknowledged). */
  window: number;
  /** How far ahead of the last in-order delivery the receiver accepts a payload, in sequence numbers. */
  receiveBuffer: number;
}

/** Defaults suited to chat over the Internet. */
export const DEFAULT_RELIABLE: ReliableOptions = {
  initialRto: 500,
  minRto: 150,
  maxRto: 8000,
  window: 256,
  receiveBuffer: 1024,
};

/** A DATA frame the caller should put on the wire. */
export interface OutData {
  /** Sequence number. */
  seq: number;
  /** Whether more fragments of the same message follow. */
  more: boolean;
  /** Payload bytes. */
  text: Uint8Array;
  /** True when this is a retransmission. */
  retransmit: boolean;
}

/** An ACK frame the caller should put on the wire. */
export interface OutAck {
  /** Highest sequence delivered in order. */
  cumulative: number;
  /** Bit i set: sequence `cumulative + 2 + i` was received. */
  selective: number;
}

interface Pending {
  seq: number;
  more: boolean;
  text: Uint8Array;
  firstSent: number;
  sentAt: number;
  due: number;
  tries: number;
}

/** Counters a channel keeps for diagnostics and tests. */
export interface ReliableStats {
  /** DATA frames sent for the first time. */
  sent: number;
  /** DATA frames sent again. */
  retransmits: number;
  /** Payloads handed to the application. */
  delivered: number;
  /** DATA frames received that were already delivered or buffered. */
  duplicates: number;
}

/** Both halves of a reliable stream with one peer. */
export class ReliableChannel {
  #o: ReliableOptions;
  // Sender half.
  #nextSeq = 1;
  #queue: { more: boolean; text: Uint8Array }[] = [];
  #inflight = new Map<number, Pending>();
  #srtt: number | undefined;
  #rttvar = 0;
  #rto: number;
  // Receiver half.
  #delivered = 0;
  #buffer = new Map<number, { more: boolean; text: Uint8Array }>();
  /** Counters. */
  readonly stats: ReliableStats = { sent: 0, retransmits: 0, delivered: 0, duplicates: 0 };

  /** Makes a channel; `options` override {@link DEFAULT_RELIABLE}. */
  constructor(options: Partial<ReliableOptions> = {}) {
    this.#o = { ...DEFAULT_RELIABLE, ...options };
    this.#rto = this.#o.initialRto;
  }

  /** Queues one payload (a fragment; `more` says another fragment of the message follows). */
  push(text: Uint8Array, more = false): void {
    this.#queue.push({ more, text });
  }

  /** Payloads queued or in flight: zero means everything pushed was acknowledged. */
  get outstanding(): number {
    return this.#queue.length + this.#inflight.size;
  }

  /** The current retransmission timeout in ms. */
  get rto(): number {
    return this.#rto;
  }

  /** Smoothed RTT in ms from acknowledged first transmissions, if any. */
  get srtt(): number | undefined {
    return this.#srtt;
  }

  /** Seeds the RTT estimate (from path probes) when no data sample exists yet. */
  seedRtt(rtt: number): void {
    if (this.#srtt !== undefined) return;
    this.#sample(rtt);
  }

  #sample(rtt: number): void {
    if (this.#srtt === undefined) {
      this.#srtt = rtt;
      this.#rttvar = rtt / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - rtt);
      this.#srtt = 0.875 * this.#srtt + 0.125 * rtt;
    }
    this.#rto = clamp(this.#srtt + Math.max(4 * this.#rttvar, 20), this.#o.minRto, this.#o.maxRto);
  }

  /**
   * Returns the DATA frames to send now: new payloads while the window allows, and
   * retransmissions whose timer expired (each backs off exponentially).
   */
  pollData(now: number): OutData[] {
    const out: OutData[] = [];
    for (const p of this.#inflight.values()) {
      if (p.due > now) continue;
      p.tries++;
      p.sentAt = now;
      p.due = now + Math.min(this.#rto * 2 ** (p.tries - 1), this.#o.maxRto);
      this.stats.retransmits++;
      out.push({ seq: p.seq, more: p.more, text: p.text, retransmit: true });
    }
    while (this.#queue.length > 0 && this.#inflight.size < this.#o.window) {
      const q = this.#queue.shift()!;
      const p: Pending = {
        seq: this.#nextSeq++,
        more: q.more,
        text: q.text,
        firstSent: now,
        sentAt: now,
        due: now + this.#rto,
        tries: 1,
      };
      this.#inflight.set(p.seq, p);
      this.stats.sent++;
      out.push({ seq: p.seq, more: p.more, text: p.text, retransmit: false });
    }
    return out;
  }

  /** Earliest time a retransmission is due, if anything is in flight. */
  nextTimeout(): number | undefined {
    let t: number | undefined;
    for (const p of this.#inflight.values()) if (t === undefined || p.due < t) t = p.due;
    return t;
  }

  /** True when some payload has been retransmitted and is still unacknowledged. */
  get struggling(): boolean {
    for (const p of this.#inflight.values()) if (p.tries > 1) return true;
    return false;
  }

  /** Makes every in-flight payload due now (after a path change, to resend at once). */
  expedite(now: number): void {
    for (const p of this.#inflight.values()) p.due = Math.min(p.due, now);
  }

  /** Applies an ACK from the peer. */
  onAck(now: number, ack: OutAck): void {
    const acked = (seq: number) => {
      const p = this.#inflight.get(seq);
      if (!p) return;
      // Karn's rule: only first transmissions give RTT samples.
      if (p.tries === 1) this.#sample(now - p.sentAt);
      this.#inflight.delete(seq);
    };
    for (const seq of [...this.#inflight.keys()]) if (seq <= ack.cumulative) acked(seq);
    for (let i = 0; i < 32; i++) {
      if ((ack.selective >>> i) & 1) acked(ack.cumulative + 2 + i);
    }
  }

  /**
   * Takes a DATA frame from the peer. Returns the payloads now deliverable in order (possibly
   * none) and the ACK to send back (always, so lost ACKs are repaired by retransmissions).
   */
  onData(
    seq: number,
    more: boolean,
    text: Uint8Array,
  ): { deliver: { more: boolean; text: Uint8Array }[]; ack: OutAck } {
    const deliver: { more: boolean; text: Uint8Array }[] = [];
    if (seq <= this.#delivered || this.#buffer.has(seq)) {
      this.stats.duplicates++;
    } else if (seq - this.#delivered <= this.#o.receiveBuffer) {
      this.#buffer.set(seq, { more, text });
      for (;;) {
        const next = this.#buffer.get(this.#delivered + 1);
        if (!next) break;
        this.#buffer.delete(++this.#delivered);
        this.stats.delivered++;
        deliver.push(next);
      }
    }
    return { deliver, ack: this.#ack() };
  }

  #ack(): OutAck {
    let selective = 0;
    for (let i = 0; i < 32; i++) {
      if (this.#buffer.has(this.#delivered + 2 + i)) selective |= 1 << i;
    }
    return { cumulative: this.#delivered, selective: selective >>> 0 };
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
