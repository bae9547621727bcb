/**
 * The sending half of one pair's bulk stream: packet numbers, the packets in flight, RTT
 * estimation and loss recovery after RFC 9002 (QUIC), congestion control and pacing from
 * `congestion.ts`. The data itself is not kept here: a lost packet's block is sent again under
 * a new packet number, its bytes asked again from the {@link BlockSource} (the chunk it belongs
 * to stays cached until all of its blocks are acknowledged, or is no longer wanted).
 *
 * Loss recovery is SACK-based: a FILE_ACK lists up to 32 ranges of packet numbers received; a
 * packet is lost when one sent 3 or more packet numbers later was acknowledged, or when it is
 * 9/8 of an RTT older than the newest acknowledged one. When nothing is acknowledged for a
 * probe timeout (srtt + 4·rttvar + the peer's ack delay, doubled each time), the oldest block in
 * flight is sent again as a probe; two probe timeouts in a row are persistent congestion.
 * Pure; time in ms. Call order: after any input (`handleAck`, `handleTimeout`, new blocks
 * available), drain `pollFrame(now)` until undefined, then read `nextTimeout`.
 *
 * @module
 */
import { type FileFrame, FileKind } from "../wire/file_frame.ts";
import { MAX_ACK_DELAY } from "./bulk_receiver.ts";
import { Cubic, MSS, Pacer } from "./congestion.ts";

/** One block of a transfer's chunk payload. */
export interface BlockRef {
  /** The transfer's id. */
  id: Uint8Array;
  chunk: number;
  offset: number;
  length: number;
  /** The source's own name for the block's chunk (its map key), if it keeps one. */
  key?: string;
}

/** Where a bulk sender gets its blocks. */
export interface BlockSource {
  /** Whether a new block is ready to go. */
  hasBlock(): boolean;
  /** Takes the next new block and its bytes. */
  nextBlock(): { ref: BlockRef; data: Uint8Array } | undefined;
  /** The bytes of `ref` to send again, or undefined when the block is no longer wanted. */
  blockData(ref: BlockRef): Uint8Array | undefined;
  /** `ref` is done with: acknowledged (true), or given up (false, no longer wanted). */
  release(ref: BlockRef, acked: boolean): void;
}

/** The bytes a FILE_DATA datagram takes besides its block (headers, tag). */
export const DATA_OVERHEAD = 21 + 28 + 16;

/**
 * Queueing delay (an RTT sample less the peer's ack delay and the path's minimum) above which the
 * window shrinks as for a loss, in ms: a transfer never keeps more than this queued ahead of a
 * chat line (at a bottleneck, or in a slow receiver's socket buffer).
 */
export const QUEUE_TARGET = 10;
/** Delay-based decreases in a row after which an unchanged delay means a longer path. */
export const PATH_STREAK = 4;
/** How long the minimum RTT is kept before a new one is measured, in ms. */
export const MIN_RTT_WINDOW = 3_000;

/** Packet threshold of loss detection. */
const PACKET_THRESHOLD = 3;
/** Time threshold of loss detection, as a multiple of the RTT. */
const TIME_THRESHOLD = 9 / 8;
/** Initial RTT before any sample, in ms (RFC 9002). */
const INITIAL_RTT = 333;
/** Smallest loss delay and PTO variance term, in ms. */
const GRANULARITY = 1;

interface Sent {
  pn: number;
  sentAt: number;
  size: number;
  ref: BlockRef;
  /** The window was full when it left (the sender is not application-limited). */
  limited: boolean;
}

/** Packets in flight, ascending packet numbers: taking them from the front moves nothing. */
class InFlight {
  #a: Sent[] = [];
  #head = 0;

  get length(): number {
    return this.#a.length - this.#head;
  }

  /** The `i`th oldest. */
  at(i: number): Sent {
    return this.#a[this.#head + i]!;
  }

  push(s: Sent): void {
    this.#a.push(s);
  }

  /** Takes the `n` packets from the `start`th oldest on, in order. */
  take(start: number, n: number): Sent[] {
    if (start > 0) return this.#a.splice(this.#head + start, n);
    const out = this.#a.slice(this.#head, this.#head + n);
    this.#head += n;
    if (this.#head === this.#a.length || (this.#head >= 1024 && 2 * this.#head >= this.#a.length)) {
      this.#a = this.#a.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }
}

/** Counters of one bulk sender. */
export interface BulkStats {
  packets: number;
  retransmits: number;
  lost: number;
  probes: number;
  bytesAcked: number;
  /** Round trips whose queueing delay exceeded {@link QUEUE_TARGET}. */
  delayed: number;
}

/** The sender's side of a bulk stream. */
export class BulkSender {
  #source: BlockSource;
  readonly cc: Cubic = new Cubic();
  #pacer = new Pacer();
  #nextPn = 0;
  /** Packets in flight, ascending packet numbers. */
  #flight = new InFlight();
  #bytesInFlight = 0;
  #retransmit: BlockRef[] = [];
  #largestAcked = -1;
  #lossTime: number | undefined;
  #lastAckElicitingAt = 0;
  #ptoCount = 0;
  /** A probe is owed: the next packet leaves whatever the window and the pacer say. */
  #probe = false;
  /** Smoothed RTT, its variation and the minimum, in ms (null before the first sample). */
  srtt: number | null = null;
  rttvar = 0;
  minRtt = Infinity;
  #minRttAt = 0;
  /** Delay-based decreases in a row: the window before them and the first delay. */
  #streak: { cwnd: number; queued: number; n: number } | undefined;
  #delayAt = -Infinity;
  #latestRtt = 0;
  readonly stats: BulkStats = {
    packets: 0,
    retransmits: 0,
    lost: 0,
    probes: 0,
    bytesAcked: 0,
    delayed: 0,
  };

  constructor(source: BlockSource) {
    this.#source = source;
  }

  /** Bytes in flight. */
  get bytesInFlight(): number {
    return this.#bytesInFlight;
  }

  /** Whether anything is in flight or waiting to be sent again. */
  get busy(): boolean {
    return this.#flight.length > 0 || this.#retransmit.length > 0;
  }

  #pto(): number {
    const srtt = this.srtt ?? INITIAL_RTT;
    const rttvar = this.srtt === null ? INITIAL_RTT / 2 : this.rttvar;
    return (srtt + Math.max(4 * rttvar, GRANULARITY) + MAX_ACK_DELAY) * 2 ** this.#ptoCount;
  }

  #hasWork(): boolean {
    return this.#retransmit.length > 0 || this.#source.hasBlock();
  }

  /** The next FILE_DATA to send now, if the window, the pacer and the source allow one. */
  pollFrame(now: number): FileFrame | undefined {
    const size = MSS;
    if (!this.#probe) {
      if (this.#bytesInFlight + size > this.cc.cwnd) return;
      if (!this.#pacer.canSend(now, size)) return;
    }
    let ref: BlockRef | undefined, data: Uint8Array | undefined;
    while (!data && this.#retransmit.length > 0) {
      ref = this.#retransmit.shift()!;
      data = this.#source.blockData(ref);
      if (!data) this.#source.release(ref, false);
      else this.stats.retransmits++;
    }
    if (!data) {
      const next = this.#source.nextBlock();
      if (!next) return;
      ({ ref, data } = next);
    }
    this.#probe = false;
    const pn = this.#nextPn++;
    const bytes = data.length + DATA_OVERHEAD;
    // Not application-limited while more waits to be sent (held back by the window or the
    // pacer, which counts as using the window: RFC 9002 7.8), or while the window is nearly full.
    const limited = this.#hasWork() || this.#bytesInFlight + 2 * MSS > this.cc.cwnd;
    this.#flight.push({ pn, sentAt: now, size: bytes, ref: ref!, limited });
    this.#bytesInFlight += bytes;
    this.#lastAckElicitingAt = now;
    this.#pacer.onSent(now, bytes);
    this.stats.packets++;
    const r = ref!;
    return { kind: FileKind.Data, id: r.id, pn, chunk: r.chunk, offset: r.offset, data };
  }

  /** A FILE_ACK arrived at `now`. */
  handleAck(f: Extract<FileFrame, { kind: typeof FileKind.Ack }>, now: number): void {
    const largest = f.ranges[0]![0];
    if (largest >= this.#nextPn) return; // acknowledges what was never sent: ignore
    let newest: Sent | undefined;
    for (const [hi, lo] of f.ranges) {
      const start = this.#lowerBound(lo);
      let end = start;
      while (end < this.#flight.length && this.#flight.at(end).pn <= hi) end++;
      if (end === start) continue;
      for (const s of this.#flight.take(start, end - start)) {
        this.#bytesInFlight -= s.size;
        this.stats.bytesAcked += s.ref.length;
        if (!newest || s.pn > newest.pn) newest = s;
        this.cc.onAcked(s.size, s.sentAt, now, this.srtt ?? INITIAL_RTT, s.limited);
        this.#source.release(s.ref, true);
      }
    }
    if (!newest) return;
    if (largest > this.#largestAcked) this.#largestAcked = largest;
    if (newest.pn === largest) {
      const ackDelay = f.delay / 10;
      this.#sampleRtt(now - newest.sentAt, ackDelay, now);
      this.#delay(now - newest.sentAt - Math.min(ackDelay, MAX_ACK_DELAY), newest.sentAt, now);
    }
    this.#ptoCount = 0;
    this.#detectLosses(now);
    this.#pacer.update(this.cc.cwnd, this.srtt, this.cc.slowStart, now, this.cc.paceCap);
  }

  /**
   * Queueing delay beyond the target is congestion too (once per round trip, like a loss). A
   * delay that does not shrink over {@link PATH_STREAK} such decreases in a row is no queue of
   * ours: the path changed (a longer one, such as the relay after a direct path). Its new
   * minimum is taken and the window goes back to what it was before the streak.
   */
  #delay(base: number, sentAt: number, now: number): void {
    const queued = base - this.minRtt;
    if (queued <= QUEUE_TARGET) {
      this.#streak = undefined;
      return;
    }
    if (sentAt <= this.#delayAt) return; // this round trip already counted
    this.#delayAt = now;
    const s = this.#streak ??= { cwnd: this.cc.cwnd, queued, n: 0 };
    if (++s.n >= PATH_STREAK && queued >= 0.75 * s.queued) {
      this.minRtt = base;
      this.#minRttAt = now;
      this.cc.restore(s.cwnd, now);
      this.#streak = undefined;
      return;
    }
    this.stats.delayed++;
    this.cc.onDelay(sentAt, now);
  }

  #lowerBound(pn: number): number {
    let lo = 0, hi = this.#flight.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#flight.at(mid).pn < pn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #sampleRtt(latest: number, ackDelay: number, now: number): void {
    this.#latestRtt = latest;
    // The minimum over about the last MIN_RTT_WINDOW: a path that changed is measured anew.
    const base = Math.max(0, latest - Math.min(ackDelay, MAX_ACK_DELAY));
    if (base <= this.minRtt || now - this.#minRttAt > MIN_RTT_WINDOW) {
      this.minRtt = base;
      this.#minRttAt = now;
    }
    if (this.srtt === null) {
      this.srtt = latest;
      this.rttvar = latest / 2;
      return;
    }
    const adjusted = latest >= this.minRtt + ackDelay ? latest - ackDelay : latest;
    this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - adjusted);
    this.srtt = 0.875 * this.srtt + 0.125 * adjusted;
  }

  #detectLosses(now: number): void {
    this.#lossTime = undefined;
    const rtt = Math.max(this.#latestRtt, this.srtt ?? INITIAL_RTT);
    const delay = Math.max(TIME_THRESHOLD * rtt, GRANULARITY);
    let n = 0;
    for (let i = 0; i < this.#flight.length; i++) {
      const s = this.#flight.at(i);
      if (s.pn > this.#largestAcked) break;
      if (this.#largestAcked - s.pn >= PACKET_THRESHOLD || s.sentAt + delay <= now) {
        n++;
        continue;
      }
      this.#lossTime = s.sentAt + delay;
      break;
    }
    if (n > 0) this.#declareLost(this.#flight.take(0, n), now);
  }

  #declareLost(lost: Sent[], now: number): void {
    for (const s of lost) {
      this.#bytesInFlight -= s.size;
      this.stats.lost++;
      this.cc.onLost(s.sentAt, now);
      this.#retransmit.push(s.ref);
    }
  }

  /** The time of the next loss-timer, probe-timeout or paced send. */
  nextTimeout(now: number): number | undefined {
    let t: number | undefined = this.#lossTime;
    if (this.#flight.length > 0 && t === undefined) t = this.#lastAckElicitingAt + this.#pto();
    if (this.#hasWork() && this.#probe) return now;
    if (this.#hasWork() && this.#bytesInFlight + MSS <= this.cc.cwnd) {
      const paced = this.#pacer.nextSend(now, MSS);
      if (t === undefined || paced < t) t = paced;
    }
    return t;
  }

  /** Timers at `now`: the loss timer, or the probe timeout. */
  handleTimeout(now: number): void {
    if (this.#lossTime !== undefined && now >= this.#lossTime) {
      this.#detectLosses(now);
      return;
    }
    if (this.#flight.length === 0 || this.#lossTime !== undefined) return;
    if (now < this.#lastAckElicitingAt + this.#pto()) return;
    // Probe timeout: send the oldest block again (it stays in flight as well).
    this.stats.probes++;
    this.#ptoCount++;
    if (this.#ptoCount >= 2) {
      this.cc.onPersistentCongestion(now);
      // Everything in flight is presumed lost; the oldest leads the retransmissions.
      this.#declareLost(this.#flight.take(0, this.#flight.length), now);
      this.#lastAckElicitingAt = now;
      this.#probe = true;
      return;
    }
    const oldest = this.#flight.take(0, 1)[0]!;
    this.#bytesInFlight -= oldest.size;
    this.#retransmit.unshift(oldest.ref);
    this.#lastAckElicitingAt = now;
    this.#probe = true;
  }
}
