/**
 * Ordered, exactly-once delivery over an unreliable path, in sans-IO style.
 *
 * One {@link ReliableChannel} exists per remote peer and carries both directions. The sender
 * numbers payloads from 1 within a *stream* (a 32-bit id fixed when the channel is made), keeps
 * each until acknowledged, and retransmits with exponential backoff (RTO from RFC 6298's
 * smoothed RTT). The receiver delivers payloads strictly in sequence, buffers out-of-order ones,
 * drops duplicates and answers every DATA with an ACK (the stream, a cumulative sequence and a
 * 32-bit selective bitmap). The channel never learns which path a frame took, so switching
 * between relay and direct cannot lose or duplicate a payload.
 *
 * Every DATA also carries the sender's *base*, its lowest unacknowledged sequence. When one side
 * has forgotten the other (a departed peer's state is dropped after a while) and makes a fresh
 * channel, its stream id differs: the receiver that sees a new stream starts it at `base`
 * (everything below was acknowledged, so delivered, before), and the sender ignores ACKs of any
 * stream but its own. Both halves therefore resynchronise without a handshake.
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
  /**
   * Span of sequence numbers in flight: a payload is sent only while its sequence is less than
   * the lowest unacknowledged one plus `window`. The receiver buffers the same span.
   */
  window: number;
  /** Most payloads queued behind the window; {@link ReliableChannel.push} refuses more. */
  maxQueue: number;
  /** Highest sequence number of a stream; after it the sender starts a new stream. */
  maxSeq: number;
}

/** Defaults suited to chat over the Internet. */
export const DEFAULT_RELIABLE: ReliableOptions = {
  initialRto: 500,
  minRto: 150,
  maxRto: 8000,
  window: 256,
  maxQueue: 4096,
  maxSeq: 0xffff_ffff,
};

/** Why a DATA frame goes out. */
export type SendReason = "new" | "timeout" | "resend";

/** A DATA frame as it travels: what the caller puts on the wire and hands to the peer. */
export interface DataFrame {
  /** The sender's stream id. */
  stream: number;
  /** The sender's lowest unacknowledged sequence when it sent this frame. */
  base: number;
  /** Sequence number. */
  seq: number;
  /** Whether this is the first fragment of a message. */
  first: boolean;
  /** Whether more fragments of the same message follow. */
  more: boolean;
  /** Payload bytes. */
  text: Uint8Array;
}

/** A DATA frame the caller should put on the wire. */
export interface OutData extends DataFrame {
  /** `timeout`: resent because no ACK came in time (the path may be failing). */
  reason: SendReason;
}

/** An ACK frame (sent and received). */
export interface OutAck {
  /** The stream acknowledged (the DATA sender's). */
  stream: number;
  /** Highest sequence delivered in order. */
  cumulative: number;
  /** Bit i set: sequence `cumulative + 2 + i` was received. */
  selective: number;
}

interface Pending {
  seq: number;
  /** When it was first sent. */
  firstSent: number;
  first: boolean;
  more: boolean;
  text: Uint8Array;
  sentAt: number;
  due: number;
  tries: number;
  /** Sent more than once (timeout or path change): its ACK gives no RTT sample (Karn). */
  ambiguous: boolean;
  /** Made due by a path change rather than by its timer. */
  resend: boolean;
}

/** A payload handed to the application, in order. */
export interface Delivery {
  /** First fragment of a message. */
  first: boolean;
  /** More fragments of the same message follow. */
  more: boolean;
  /** Payload bytes. */
  text: Uint8Array;
}

/** Counters a channel keeps for diagnostics and tests. */
export interface ReliableStats {
  /** DATA frames sent for the first time. */
  sent: number;
  /** DATA frames sent again because their timer expired. */
  retransmits: number;
  /** DATA frames sent again at once because the path changed. */
  resends: number;
  /** Payloads handed to the application. */
  delivered: number;
  /** DATA frames received that were already delivered or buffered. */
  duplicates: number;
  /** Times the peer's stream changed (it forgot us, or wrapped its sequence numbers). */
  streamResets: number;
}

/** Both halves of a reliable stream with one peer. */
export class ReliableChannel {
  #o: ReliableOptions;
  // Sender half.
  #stream: number;
  #nextSeq = 1;
  #queue: { first: boolean; more: boolean; text: Uint8Array }[] = [];
  /** The last payload pushed had `more` set: the next one continues its message. */
  #continuing = false;
  #queueHead = 0;
  /** In flight, in sequence order (Map keeps insertion order, and sequences only grow). */
  #inflight = new Map<number, Pending>();
  /** A lower bound of the earliest `due` in flight (exact after a scan); Infinity when none. */
  #earliest = Infinity;
  #srtt: number | undefined;
  #rttvar = 0;
  #rto: number;
  // Receiver half.
  #recvStream: number | undefined;
  /** Streams the peer left behind; a late frame of one is never followed again. */
  #oldStreams: number[] = [];
  #delivered = 0;
  #buffer = new Map<number, Delivery>();
  /** Counters. */
  readonly stats: ReliableStats = {
    sent: 0,
    retransmits: 0,
    resends: 0,
    delivered: 0,
    duplicates: 0,
    streamResets: 0,
  };

  /** Makes a channel sending on `stream`; `options` override {@link DEFAULT_RELIABLE}. */
  constructor(options: Partial<ReliableOptions> = {}, stream = 0) {
    this.#o = { ...DEFAULT_RELIABLE, ...options };
    this.#rto = this.#o.initialRto;
    this.#stream = stream >>> 0;
  }

  /** Queues one payload (a fragment; `more` says another follows). False when the queue is full. */
  push(text: Uint8Array, more = false): boolean {
    if (this.queued >= this.#o.maxQueue) return false;
    this.#queue.push({ first: !this.#continuing, more, text });
    this.#continuing = more;
    return true;
  }

  /** Room left in the send queue, in payloads. */
  get queueRoom(): number {
    return this.#o.maxQueue - this.queued;
  }

  /** Payloads queued behind the window. */
  get queued(): number {
    return this.#queue.length - this.#queueHead;
  }

  /** Payloads queued or in flight: zero means everything pushed was acknowledged. */
  get outstanding(): number {
    return this.queued + this.#inflight.size;
  }

  /** The stream this side sends on. */
  get stream(): number {
    return this.#stream;
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

  /** The lowest unacknowledged sequence (the next one when nothing is in flight). */
  get base(): number {
    for (const seq of this.#inflight.keys()) return seq;
    return this.#nextSeq;
  }

  /**
   * Returns the DATA frames to send now: retransmissions whose timer expired (each backs off
   * exponentially), payloads made due by {@link expedite}, and new payloads while the window
   * allows. Costs O(1) when nothing is due and nothing is queued.
   */
  pollData(now: number): OutData[] {
    const out: OutData[] = [];
    if (this.#earliest <= now) this.#resendDue(now, out);
    if (this.queued > 0) this.#sendNew(now, out);
    return out;
  }

  #resendDue(now: number, out: OutData[]): void {
    const base = this.base;
    let earliest = Infinity;
    for (const p of this.#inflight.values()) {
      if (p.due <= now) {
        const reason: SendReason = p.resend ? "resend" : "timeout";
        p.resend = false;
        if (reason === "timeout") {
          p.tries++;
          this.stats.retransmits++;
        } else this.stats.resends++;
        p.ambiguous = true;
        p.sentAt = now;
        p.due = now + Math.min(this.#rto * 2 ** (p.tries - 1), this.#o.maxRto);
        const { seq, first, more, text } = p;
        out.push({ stream: this.#stream, base, seq, first, more, text, reason });
      }
      earliest = Math.min(earliest, p.due);
    }
    this.#earliest = earliest;
  }

  #sendNew(now: number, out: OutData[]): void {
    if (this.#nextSeq > this.#o.maxSeq) {
      // Sequence space used up: once everything is acknowledged, start a new stream.
      if (this.#inflight.size > 0) return;
      this.#stream = (this.#stream + 1) >>> 0;
      this.#nextSeq = 1;
    }
    const base = this.base;
    while (
      this.queued > 0 && this.#nextSeq - base < this.#o.window && this.#nextSeq <= this.#o.maxSeq
    ) {
      const q = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined!;
      const p: Pending = {
        seq: this.#nextSeq++,
        firstSent: now,
        first: q.first,
        more: q.more,
        text: q.text,
        sentAt: now,
        due: now + this.#rto,
        tries: 1,
        ambiguous: false,
        resend: false,
      };
      this.#inflight.set(p.seq, p);
      this.#earliest = Math.min(this.#earliest, p.due);
      this.stats.sent++;
      const { seq, first, more, text } = p;
      out.push({ stream: this.#stream, base, seq, first, more, text, reason: "new" });
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  /**
   * When {@link pollData} may next have a retransmission, if anything is in flight. It may be
   * early (a spurious wake-up costs one scan), never late.
   */
  nextTimeout(): number | undefined {
    return this.#inflight.size === 0 ? undefined : this.#earliest;
  }

  /** When the oldest unacknowledged payload was first sent, if any is in flight. */
  oldestSentAt(): number | undefined {
    for (const p of this.#inflight.values()) return p.firstSent;
    return undefined;
  }

  /**
   * Gives up on everything queued or in flight (the peer stopped acknowledging): drops it and
   * continues on a new stream, so the peer, if it comes back, resynchronises instead of waiting
   * for what will never come. Returns how many payloads were dropped.
   */
  abandon(): number {
    const n = this.outstanding;
    this.#inflight.clear();
    this.#queue = [];
    this.#queueHead = 0;
    this.#continuing = false;
    this.#earliest = Infinity;
    this.#stream = (this.#stream + 1) >>> 0;
    this.#nextSeq = 1;
    return n;
  }

  /** True when some payload has been retransmitted after a timeout and is still unacknowledged. */
  get struggling(): boolean {
    for (const p of this.#inflight.values()) if (p.tries > 1) return true;
    return false;
  }

  /**
   * Resends every in-flight payload at the next {@link pollData} because the path changed. These
   * resends are reported as `resend`, not `timeout`, and do not back off: they say nothing
   * about the new path.
   */
  expedite(now: number): void {
    if (this.#inflight.size === 0) return;
    for (const p of this.#inflight.values()) {
      if (p.due <= now) continue; // Already due by its timer: a timeout, not a resend.
      p.due = now;
      p.resend = true;
    }
    this.#earliest = Math.min(this.#earliest, now);
  }

  /** Applies an ACK from the peer; ACKs of another stream are ignored. */
  onAck(now: number, ack: OutAck): void {
    if ((ack.stream >>> 0) !== this.#stream) return;
    const acked = (p: Pending) => {
      // Karn's rule: only unambiguous first transmissions give RTT samples.
      if (!p.ambiguous) this.#sample(now - p.sentAt);
      this.#inflight.delete(p.seq);
    };
    for (const p of this.#inflight.values()) {
      if (p.seq > ack.cumulative) break;
      acked(p);
    }
    for (let i = 0; i < 32 && this.#inflight.size > 0; i++) {
      if ((ack.selective >>> i) & 1) {
        const p = this.#inflight.get(ack.cumulative + 2 + i);
        if (p) acked(p);
      }
    }
    if (this.#inflight.size === 0) this.#earliest = Infinity;
  }

  /**
   * Takes a DATA frame from the peer. Returns the payloads now deliverable in order (possibly
   * none), the ACK to send back (always, so lost ACKs are repaired by retransmissions), and
   * `reset` when the peer's stream changed. A late frame of a stream the peer left behind is
   * only acknowledged, never followed back.
   */
  onData(d: DataFrame): { deliver: Delivery[]; ack: OutAck; reset: boolean } {
    const deliver: Delivery[] = [];
    const stream = d.stream >>> 0;
    if (stream !== this.#recvStream && this.#oldStreams.includes(stream)) {
      this.stats.duplicates++;
      return { deliver, ack: { stream, cumulative: d.base - 1, selective: 0 }, reset: false };
    }
    let reset = false;
    if (stream !== this.#recvStream) {
      if (this.#recvStream !== undefined) {
        this.stats.streamResets++;
        reset = true;
        this.#oldStreams.push(this.#recvStream);
        if (this.#oldStreams.length > 8) this.#oldStreams.shift();
      }
      this.#recvStream = stream;
      this.#delivered = Math.max(0, d.base - 1);
      this.#buffer.clear();
    }
    const seq = d.seq;
    if (seq <= this.#delivered || this.#buffer.has(seq)) {
      this.stats.duplicates++;
    } else if (seq - this.#delivered <= this.#o.window) {
      this.#buffer.set(seq, { first: d.first, more: d.more, text: d.text });
      for (;;) {
        const next = this.#buffer.get(this.#delivered + 1);
        if (!next) break;
        this.#buffer.delete(++this.#delivered);
        this.stats.delivered++;
        deliver.push(next);
      }
    }
    return { deliver, ack: this.#ack(), reset };
  }

  #ack(): OutAck {
    let selective = 0;
    if (this.#buffer.size > 0) {
      for (let i = 0; i < 32; i++) {
        if (this.#buffer.has(this.#delivered + 2 + i)) selective |= 1 << i;
      }
    }
    return {
      stream: this.#recvStream ?? 0,
      cumulative: this.#delivered,
      selective: selective >>> 0,
    };
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
