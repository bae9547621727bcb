/**
 * Ordered, exactly-once delivery over an unreliable path, in sans-IO style.
 *
 * One {@link ReliableChannel} exists per remote peer and carries both directions. The sender
 * numbers payloads from 1 within a *stream* (a 32-bit id fixed when the channel is made), keeps
 * each until acknowledged, and retransmits with exponential backoff (RTO from RFC 6298's
 * smoothed RTT). The receiver delivers payloads strictly in sequence, buffers out-of-order ones,
 * drops duplicates and acknowledges (the stream, a cumulative sequence and a 32-bit selective
 * bitmap). The channel never learns which path a frame took, so switching between relay and
 * direct cannot lose or duplicate a payload.
 *
 * ACKs are delayed a little, as TCP's are: in-order DATA is acknowledged every
 * {@link ReliableOptions.ackEvery}th frame or {@link ReliableOptions.ackDelay} ms after the
 * first one left unacknowledged, whichever comes first; a duplicate, a frame out of order, one
 * that fills a gap, or one of a new stream is acknowledged at once (so lost ACKs and losses are
 * repaired quickly). An RTT sample may thus include up to `ackDelay`.
 *
 * A peer that acknowledges nothing at all (stopped, or its path died) is not sent a copy of every
 * frame in flight at every timeout: once the oldest frame has been retried and still nothing was
 * acknowledged since, only it is retried on its timer, and the others wait, new payloads too;
 * the first ACK sends them all at once (as a path change does). What piles up in a stopped
 * peer's socket meanwhile is one frame per timeout, so what matters when it wakes (a goodbye, an
 * introduction) still fits.
 *
 * Loss is detected two ways: by the retransmission timer, and by fast retransmit (RFC 9002's
 * rule, with both thresholds): a payload still in flight when one sent
 * {@link ReliableOptions.fastThreshold} or more transmissions after it has been acknowledged is
 * resent, without backoff, once it is older than the RTT estimate plus four deviations (the
 * RTO before its floor). Reordering within that time causes no spurious resend.
 *
 * Every DATA also carries the sender's *base*, its lowest unacknowledged sequence. When one side
 * has forgotten the other (a departed peer's state is dropped after a while) and makes a fresh
 * channel, its stream id differs: the receiver that sees a new stream starts it at `base`
 * (everything below was acknowledged, so delivered, before), and the sender ignores ACKs of any
 * stream but its own. Both halves therefore resynchronise without a handshake. On the current
 * stream a `base` beyond what the receiver delivered means the sender dropped what lies between
 * (this implementation never does, but a peer may): the receiver delivers what it buffered of
 * it, counts the rest as `missed` (its caller tells the user) and carries on from `base`.
 *
 * Batching: whatever is queued when {@link ReliableChannel.pollData} sends a new frame is
 * packed, several payloads to a DATA frame (up to {@link ReliableOptions.batchBytes}): the
 * payloads pushed since the last poll (a caller polls once per step, so one step's lines share
 * frames) and those that waited behind a full window. The frame travels, is retransmitted and
 * acknowledged as one, and the receiver delivers its payloads in order. Nothing is held back to
 * wait for company: a payload pushed alone into an open window goes out alone at the next poll.
 *
 * Time is a number in milliseconds supplied by the caller.
 *
 * @module
 */
import { BATCH_PART_OVERHEAD, type DataPart, MAX_BATCH } from "../wire/peer_frame.ts";
import {
  type DataFrame,
  DEFAULT_RELIABLE,
  type OutAck,
  type OutData,
  type ReliableOptions,
  type ReliableStats,
  type SendReason,
} from "./reliable_types.ts";
import { type DataOutcome, ReliableReceiver } from "./reliable_receive.ts";

export { type DataOutcome } from "./reliable_receive.ts";
export {
  type DataFrame,
  DEFAULT_RELIABLE,
  type Delivery,
  type OutAck,
  type OutData,
  type ReliableOptions,
  type ReliableStats,
  type SendReason,
} from "./reliable_types.ts";

interface Pending {
  seq: number;
  /** When it was first sent. */
  firstSent: number;
  first: boolean;
  more: boolean;
  text: Uint8Array;
  /** Payloads packed after `text` (a batch), if any. */
  packed: DataPart[] | undefined;
  /** Payload bytes of the frame (all its parts). */
  bytes: number;
  sentAt: number;
  due: number;
  tries: number;
  /** Sent more than once (timeout or path change): its ACK gives no RTT sample (Karn). */
  ambiguous: boolean;
  /** Made due by a path change rather than by its timer. */
  resend: boolean;
  /** Made due by fast retransmit (later payloads were acknowledged). */
  fast: boolean;
  /** Transmission number of its latest sending (counts every DATA sent, new or again). */
  sendIndex: number;
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
  /** Payload bytes in flight. */
  #inflightBytes = 0;
  /** Payloads in flight (a batch is several). */
  #inflightPayloads = 0;
  /** A lower bound of the earliest `due` in flight (exact after a scan); Infinity when none. */
  #earliest = Infinity;
  #srtt: number | undefined;
  #rttvar = 0;
  #rto: number;
  /** Transmissions so far (the next one gets this number plus one). */
  #sendIndex = 0;
  /** Highest transmission number acknowledged unambiguously (a first transmission). */
  #largestAcked = 0;
  /** When the last ACK of our stream arrived. */
  #lastAckAt = -Infinity;
  /** Frames wait behind the oldest one's retries (see `#resendDue`): an ACK sends them. */
  #waiting = false;
  #recv: ReliableReceiver;
  /** Counters. */
  readonly stats: ReliableStats = {
    sent: 0,
    batched: 0,
    retransmits: 0,
    fastRetransmits: 0,
    resends: 0,
    delivered: 0,
    duplicates: 0,
    streamResets: 0,
    acks: 0,
    missed: 0,
  };

  /** Makes a channel sending on `stream`; `options` override {@link DEFAULT_RELIABLE}. */
  constructor(options: Partial<ReliableOptions> = {}, stream = 0) {
    this.#o = { ...DEFAULT_RELIABLE, ...options };
    this.#rto = this.#o.initialRto;
    this.#stream = stream >>> 0;
    this.#recv = new ReliableReceiver(this.#o, this.stats);
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
    return this.queued + this.#inflightPayloads;
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
   * exponentially), payloads made due by fast retransmit or {@link expedite}, and new payloads
   * while the window allows. Costs O(1) when nothing is due and nothing is queued.
   */
  pollData(now: number): OutData[] {
    const out: OutData[] = [];
    if (this.#earliest <= now) this.#resendDue(now, out);
    // New payloads wait too while the peer is silent (see #resendDue).
    if (this.queued > 0 && !this.#silent()) this.#sendNew(now, out);
    else if (this.queued > 0) this.#waiting = true;
    return out;
  }

  /**
   * True when the peer acknowledged nothing since the oldest frame in flight went out again
   * (it was resent by its timer at least once): it is not there, for now.
   */
  #silent(): boolean {
    for (const p of this.#inflight.values()) return p.tries > 1 && this.#lastAckAt < p.sentAt;
    return false;
  }

  #resendDue(now: number, out: OutData[]): void {
    const base = this.base;
    let earliest = Infinity;
    // A peer that acknowledged nothing since our oldest frame went out again is not there
    // (stopped, or its path died): only that frame is retried on its timer; the others wait for
    // an ACK (then go at once), so what waits in a stopped peer's socket for it to read is not
    // one copy of every frame every few seconds.
    let oldest: Pending | undefined;
    for (const p of this.#inflight.values()) {
      oldest = p;
      break;
    }
    const silent = this.#silent();
    for (const p of this.#inflight.values()) {
      if (p.due <= now && silent && p !== oldest && !p.resend && !p.fast) {
        p.due = Math.max(p.due, oldest!.due);
        this.#waiting = true;
      }
      if (p.due <= now) {
        const reason: SendReason = p.resend ? "resend" : p.fast ? "fast" : "timeout";
        p.resend = p.fast = false;
        if (reason === "timeout") {
          p.tries++;
          this.stats.retransmits++;
        } else if (reason === "fast") this.stats.fastRetransmits++;
        else this.stats.resends++;
        p.ambiguous = true;
        p.sentAt = now;
        p.sendIndex = ++this.#sendIndex;
        p.due = now + Math.min(this.#rto * 2 ** (p.tries - 1), this.#o.maxRto);
        out.push(outData(this.#stream, base, p, reason));
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
      if (this.#inflight.size > 0 && this.#inflightBytes + q.text.length > this.#o.windowBytes) {
        break;
      }
      this.#queue[this.#queueHead++] = undefined!;
      const { packed, bytes } = this.#pack(q.text.length, this.#inflightBytes + q.text.length);
      const p: Pending = {
        seq: this.#nextSeq++,
        firstSent: now,
        first: q.first,
        more: q.more,
        text: q.text,
        packed,
        bytes,
        sentAt: now,
        due: now + this.#rto,
        tries: 1,
        ambiguous: false,
        resend: false,
        fast: false,
        sendIndex: ++this.#sendIndex,
      };
      this.#inflight.set(p.seq, p);
      this.#inflightBytes += bytes;
      this.#inflightPayloads += 1 + (packed?.length ?? 0);
      this.#earliest = Math.min(this.#earliest, p.due);
      this.stats.sent++;
      out.push(outData(this.#stream, base, p, "new"));
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
  }

  /**
   * Takes the queued payloads that fit in a batch behind one of `first` bytes (just taken off
   * the queue), within the byte window (`inflight` counts what would be in flight with it).
   */
  #pack(first: number, inflight: number): { packed: DataPart[] | undefined; bytes: number } {
    const limit = Math.min(this.#o.batchBytes, MAX_BATCH);
    let room = limit - BATCH_PART_OVERHEAD - first, bytes = first;
    let packed: DataPart[] | undefined;
    while (this.queued > 0) {
      const q = this.#queue[this.#queueHead]!;
      const n = q.text.length;
      if (n + BATCH_PART_OVERHEAD > room || inflight + n > this.#o.windowBytes) break;
      this.#queue[this.#queueHead++] = undefined!;
      (packed ??= []).push(q);
      this.stats.batched++;
      room -= n + BATCH_PART_OVERHEAD;
      bytes += n;
      inflight += n;
    }
    return { packed, bytes };
  }

  /**
   * When {@link pollData} may next have a retransmission (if anything is in flight) or
   * {@link pollAck} a delayed ACK. It may be early (a spurious wake-up costs one scan), never
   * late; undefined when there is neither.
   */
  nextTimeout(): number | undefined {
    const wake = this.#recv.ackWake;
    const t = this.#inflight.size === 0 ? wake : Math.min(this.#earliest, wake);
    return t === Infinity ? undefined : t;
  }

  /** True while a delayed ACK waits to be handed out by {@link pollAck}. */
  get ackPending(): boolean {
    return this.#recv.ackPending;
  }

  /** The delayed ACK, once it is due (at {@link nextTimeout}); otherwise undefined. */
  pollAck(now: number): OutAck | undefined {
    return this.#recv.pollAck(now);
  }

  /** The delayed ACK at once, if one is pending (e.g. before leaving). */
  takeAck(): OutAck | undefined {
    return this.#recv.takeAck();
  }

  /** When the oldest unacknowledged payload was first sent, if any is in flight. */
  oldestSentAt(): number | undefined {
    for (const p of this.#inflight.values()) return p.firstSent;
    return undefined;
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

  /**
   * Applies an ACK from the peer; ACKs of another stream are ignored. Payloads still in flight
   * that were sent {@link ReliableOptions.fastThreshold} transmissions before one now
   * acknowledged are made due once older than the loss delay (fast retransmit).
   */
  onAck(now: number, ack: OutAck): void {
    if ((ack.stream >>> 0) !== this.#stream) return;
    this.#lastAckAt = now;
    if (this.#inflight.size === 0) return;
    if (this.#waiting) {
      // The peer is back: what waited behind the oldest frame's retries goes now.
      this.#waiting = false;
      this.expedite(now);
    }
    // Karn's rule: only unambiguous first transmissions give RTT samples; of those this ACK
    // acknowledges, the one sent last gives the sample (it waited least for a delayed ACK). An
    // ACK that also acknowledges a payload sent more than once gives none: what it acknowledges
    // cumulatively may have waited behind that payload's loss.
    let newest: Pending | undefined;
    let repaired = false;
    const acked = (p: Pending) => {
      if (p.ambiguous) repaired = true;
      else if (!newest || p.sendIndex > newest.sendIndex) newest = p;
      this.#inflight.delete(p.seq);
      this.#inflightBytes -= p.bytes;
      this.#inflightPayloads -= 1 + (p.packed?.length ?? 0);
    };
    for (const p of this.#inflight.values()) {
      if (p.seq > ack.cumulative) break;
      acked(p);
    }
    for (let bits = ack.selective >>> 0, i = 0; bits !== 0; bits >>>= 1, i++) {
      if ((bits & 1) === 0) continue;
      const p = this.#inflight.get(ack.cumulative + 2 + i);
      if (p) acked(p);
    }
    if (!newest) {
      if (this.#inflight.size === 0) this.#earliest = Infinity;
      return;
    }
    if (!repaired) this.#sample(now - newest.sentAt);
    const largest = this.#largestAcked = Math.max(this.#largestAcked, newest.sendIndex);
    if (this.#inflight.size === 0) {
      this.#earliest = Infinity;
      return;
    }
    // Fast retransmit. In sequence order, first transmissions have growing numbers and every
    // transmission of a later sequence came after them: the scan stops at the first first
    // transmission too recent to be deemed lost, so it costs O(losses + 1).
    const limit = largest - this.#o.fastThreshold;
    if (limit < 1) return;
    const delay = (this.#srtt ?? this.#rto) + 4 * this.#rttvar;
    for (const p of this.#inflight.values()) {
      if (p.sendIndex > limit) {
        if (!p.ambiguous) break;
        continue;
      }
      const at = Math.max(now, p.sentAt + delay);
      if (p.resend || at >= p.due) continue; // Going out by then anyway.
      p.fast = true;
      p.due = at;
      if (at < this.#earliest) this.#earliest = at;
    }
  }

  /**
   * Takes a DATA frame from the peer received at `now`. Returns the payloads now deliverable in
   * order (possibly none), the ACK as of this frame and whether to send it now (`ackNow`; a
   * delayed one comes from {@link pollAck}), and `reset` when the peer's stream changed. A late
   * frame of a stream the peer left behind is only acknowledged (at once), never followed back.
   */
  onData(d: DataFrame, now: number): DataOutcome {
    return this.#recv.onData(d, now);
  }
}

/** The DATA frame that (re)sends `p`. */
function outData(stream: number, base: number, p: Pending, reason: SendReason): OutData {
  const { seq, first, more, text, packed } = p;
  return packed
    ? { stream, base, seq, first, more, text, packed, reason }
    : { stream, base, seq, first, more, text, reason };
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
