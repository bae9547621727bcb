/**
 * The sending half of the reliable channel (`lib/peer/reliable.ts`): this side's stream, its
 * queue, what is in flight and when to send it again. Pure; time is a number in milliseconds
 * supplied by the caller.
 *
 * Payloads are numbered from 1 within a *stream* (a 32-bit id fixed when the channel is made;
 * once the sequence numbers run out, and everything is acknowledged, the next stream). Each is
 * kept until acknowledged and retransmitted with exponential backoff (RTO from RFC 6298's
 * smoothed RTT, `lib/peer/reliable_rtt.ts`, whose samples follow Karn's rule). ACKs of any
 * stream but ours are ignored.
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
 * Batching: whatever is queued when {@link ReliableSender.pollData} sends a new frame is
 * packed, several payloads to a DATA frame (up to {@link ReliableOptions.batchBytes}): the
 * payloads pushed since the last poll (a caller polls once per step, so one step's lines share
 * frames) and those that waited behind a full window. The frame travels, is retransmitted and
 * acknowledged as one, and the receiver delivers its payloads in order. Nothing is held back to
 * wait for company: a payload pushed alone into an open window goes out alone at the next poll.
 *
 * @module
 */
import { BATCH_PART_OVERHEAD, type DataPart, MAX_BATCH } from "../wire/peer_frame.ts";
import type {
  OutAck,
  OutData,
  ReliableOptions,
  ReliableStats,
  SendReason,
} from "./reliable_types.ts";
import { RttEstimator } from "./reliable_rtt.ts";

/** A payload waiting in the queue. */
interface Queued {
  first: boolean;
  more: boolean;
  text: Uint8Array;
}

/** A DATA frame in flight, until acknowledged. */
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

/**
 * The sending half of a reliable channel: payloads queued ({@link push}), sent within the
 * window and sent again until acknowledged ({@link pollData}, {@link onAck}, {@link expedite}).
 */
export class ReliableSender {
  #o: ReliableOptions;
  #stats: ReliableStats;
  #stream: number;
  #nextSeq = 1;
  #queue: Queued[] = [];
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
  /** The RTT estimate and the RTO. */
  #rtt: RttEstimator;
  /** Transmissions so far (the next one gets this number plus one). */
  #sendIndex = 0;
  /** Highest transmission number acknowledged unambiguously (a first transmission). */
  #largestAcked = 0;
  /** When the last ACK of our stream arrived. */
  #lastAckAt = -Infinity;
  /** Frames wait behind the oldest one's retries (see `#resendDue`): an ACK sends them. */
  #waiting = false;

  /** A sender on `stream` with resolved `options`, counting into `stats` (shared). */
  constructor(options: ReliableOptions, stats: ReliableStats, stream: number) {
    this.#o = options;
    this.#stats = stats;
    this.#rtt = new RttEstimator(options.initialRto, options.minRto, options.maxRto);
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
    return this.queued + this.#inflightPayloads;
  }

  /** The stream this side sends on. */
  get stream(): number {
    return this.#stream;
  }

  /** The current retransmission timeout in ms. */
  get rto(): number {
    return this.#rtt.rto;
  }

  /** Smoothed RTT in ms from acknowledged first transmissions, if any. */
  get srtt(): number | undefined {
    return this.#rtt.srtt;
  }

  /** Seeds the RTT estimate (from path probes) when no data sample exists yet. */
  seedRtt(rtt: number): void {
    this.#rtt.seed(rtt);
  }

  /** The lowest unacknowledged sequence (the next one when nothing is in flight). */
  get base(): number {
    for (const seq of this.#inflight.keys()) return seq;
    return this.#nextSeq;
  }

  /**
   * When {@link pollData} may next have a retransmission: possibly early (a spurious wake-up
   * costs one scan), never late; Infinity when nothing is in flight.
   */
  get wake(): number {
    return this.#inflight.size === 0 ? Infinity : this.#earliest;
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

  /** Sends again what is due: by its timer, by fast retransmit, or by a path change. */
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
      if (p.due <= now) out.push(this.#again(now, base, p));
      earliest = Math.min(earliest, p.due);
    }
    this.#earliest = earliest;
  }

  /** The DATA frame that sends `p` again at `now`, counted by why, with its next due time. */
  #again(now: number, base: number, p: Pending): OutData {
    const reason: SendReason = p.resend ? "resend" : p.fast ? "fast" : "timeout";
    p.resend = p.fast = false;
    if (reason === "timeout") {
      p.tries++;
      this.#stats.retransmits++;
    } else if (reason === "fast") this.#stats.fastRetransmits++;
    else this.#stats.resends++;
    p.ambiguous = true;
    p.sentAt = now;
    p.sendIndex = ++this.#sendIndex;
    p.due = now + Math.min(this.#rtt.rto * 2 ** (p.tries - 1), this.#o.maxRto);
    return outData(this.#stream, base, p, reason);
  }

  /** Sends new frames from the queue while the window (sequences and bytes) allows. */
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
        due: now + this.#rtt.rto,
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
      this.#stats.sent++;
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
      this.#stats.batched++;
      room -= n + BATCH_PART_OVERHEAD;
      bytes += n;
      inflight += n;
    }
    return { packed, bytes };
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
   * Gives up everything not acknowledged (we are leaving): what is in flight and what is queued
   * is dropped, and the DATA frame returned, with an empty payload and a `base` equal to its own
   * sequence, tells the receiver so: it delivers what it holds below `base` and counts the rest
   * as missed (each queued payload counts as one sequence number). Undefined when nothing was
   * outstanding.
   */
  giveUp(): OutData | undefined {
    if (this.outstanding === 0) return undefined;
    const seq = this.#nextSeq + this.queued;
    this.#nextSeq = seq + 1;
    this.#queue = [];
    this.#queueHead = 0;
    this.#continuing = false;
    this.#inflight.clear();
    this.#inflightBytes = this.#inflightPayloads = 0;
    this.#earliest = Infinity;
    this.#waiting = false;
    const text = new Uint8Array(0);
    return { stream: this.#stream, base: seq, seq, first: true, more: false, text, reason: "new" };
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
    const newest = this.#acknowledge(now, ack);
    if (!newest) {
      if (this.#inflight.size === 0) this.#earliest = Infinity;
      return;
    }
    const largest = this.#largestAcked = Math.max(this.#largestAcked, newest.sendIndex);
    if (this.#inflight.size === 0) {
      this.#earliest = Infinity;
      return;
    }
    this.#fastRetransmit(now, largest);
  }

  /**
   * Takes what `ack` acknowledges out of flight and samples the RTT from it; returns the
   * unambiguous first transmission it acknowledges that was sent last, if any.
   */
  #acknowledge(now: number, ack: OutAck): Pending | undefined {
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
    if (newest && !repaired) this.#rtt.sample(now - newest.sentAt);
    return newest;
  }

  /**
   * Makes due what was sent {@link ReliableOptions.fastThreshold} transmissions before
   * `largest` (the newest acknowledged), once older than the loss delay.
   */
  #fastRetransmit(now: number, largest: number): void {
    // In sequence order, first transmissions have growing numbers and every transmission of a
    // later sequence came after them: the scan stops at the first first transmission too recent
    // to be deemed lost, so it costs O(losses + 1).
    const limit = largest - this.#o.fastThreshold;
    if (limit < 1) return;
    const delay = this.#rtt.lossDelay;
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
}

/** The DATA frame that (re)sends `p`. */
function outData(stream: number, base: number, p: Pending, reason: SendReason): OutData {
  const { seq, first, more, text, packed } = p;
  return packed
    ? { stream, base, seq, first, more, text, packed, reason }
    : { stream, base, seq, first, more, text, reason };
}
