/**
 * Ordered, exactly-once delivery over an unreliable path, in sans-IO style.
 *
 * One {@link ReliableChannel} exists per remote peer and carries both directions: its sending
 * half, a {@link ReliableSender} (`lib/peer/reliable_send.ts`: this side's stream, queue, what is
 * in flight, retransmission by timer and fast retransmit, RTT and RTO, DATA_BATCH packing), and
 * its receiving half, a {@link ReliableReceiver} (`lib/peer/reliable_receive.ts`: the peer's
 * stream delivered in order, the out-of-order buffer, immediate and delayed ACKs). The channel
 * is the facade its callers drive: one timer for both halves ({@link ReliableChannel.nextTimeout})
 * and one set of counters ({@link ReliableChannel.stats}). What both halves share (options,
 * frames, counters) is in `lib/peer/reliable_types.ts`.
 *
 * The sender numbers payloads from 1 within a *stream* (a 32-bit id fixed when the channel is
 * made), keeps each until acknowledged, and retransmits with exponential backoff (RTO from RFC
 * 6298's smoothed RTT). The receiver delivers payloads strictly in sequence, buffers out-of-order
 * ones, drops duplicates and acknowledges (the stream, a cumulative sequence and a 32-bit
 * selective bitmap), a little delayed when nothing is amiss, as TCP's are (so an RTT sample may
 * include up to {@link ReliableOptions.ackDelay}). The channel never learns which path a frame
 * took, so switching between relay and direct cannot lose or duplicate a payload.
 *
 * Every DATA also carries the sender's *base*, its lowest unacknowledged sequence. When one side
 * has forgotten the other (a departed peer's state is dropped after a while) and makes a fresh
 * channel, its stream id differs: the receiver that sees a new stream starts it at `base`
 * (everything below was acknowledged, so delivered, before), and the sender ignores ACKs of any
 * stream but its own. Both halves therefore resynchronise without a handshake. On the current
 * stream a `base` beyond what the receiver delivered means the sender dropped what lies between
 * (this implementation does only when it leaves with something unacknowledged, see
 * {@link ReliableChannel.giveUp}): the receiver delivers what it buffered of it, counts the rest
 * as `missed` (its caller tells the user) and carries on from `base`.
 *
 * Time is a number in milliseconds supplied by the caller.
 *
 * @module
 */
import type {
  DataFrame,
  OutAck,
  OutData,
  ReliableOptions,
  ReliableStats,
} from "./reliable_types.ts";
import { DEFAULT_RELIABLE } from "./reliable_types.ts";
import { type DataOutcome, ReliableReceiver } from "./reliable_receive.ts";
import { ReliableSender } from "./reliable_send.ts";

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

/**
 * Both halves of a reliable stream with one peer. Call order per step: {@link onData} and
 * {@link onAck} for what arrived, then {@link pollData} and {@link pollAck} for what to send, then
 * {@link nextTimeout} for when to come back.
 */
export class ReliableChannel {
  #send: ReliableSender;
  #recv: ReliableReceiver;
  /** Counters (both halves count into this one object). */
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
    const o = { ...DEFAULT_RELIABLE, ...options };
    this.#send = new ReliableSender(o, this.stats, stream);
    this.#recv = new ReliableReceiver(o, this.stats);
  }

  /** Queues one payload (a fragment; `more` says another follows). False when the queue is full. */
  push(text: Uint8Array, more = false): boolean {
    return this.#send.push(text, more);
  }

  /** Room left in the send queue, in payloads. */
  get queueRoom(): number {
    return this.#send.queueRoom;
  }

  /** Payloads queued behind the window. */
  get queued(): number {
    return this.#send.queued;
  }

  /** Payloads queued or in flight: zero means everything pushed was acknowledged. */
  get outstanding(): number {
    return this.#send.outstanding;
  }

  /** The stream this side sends on. */
  get stream(): number {
    return this.#send.stream;
  }

  /** The current retransmission timeout in ms. */
  get rto(): number {
    return this.#send.rto;
  }

  /** Smoothed RTT in ms from acknowledged first transmissions, if any. */
  get srtt(): number | undefined {
    return this.#send.srtt;
  }

  /** Seeds the RTT estimate (from path probes) when no data sample exists yet. */
  seedRtt(rtt: number): void {
    this.#send.seedRtt(rtt);
  }

  /** The lowest unacknowledged sequence (the next one when nothing is in flight). */
  get base(): number {
    return this.#send.base;
  }

  /**
   * Returns the DATA frames to send now: retransmissions whose timer expired (each backs off
   * exponentially), payloads made due by fast retransmit or {@link expedite}, and new payloads
   * while the window allows. Costs O(1) when nothing is due and nothing is queued.
   */
  pollData(now: number): OutData[] {
    return this.#send.pollData(now);
  }

  /**
   * When {@link pollData} may next have a retransmission (if anything is in flight) or
   * {@link pollAck} a delayed ACK. It may be early (a spurious wake-up costs one scan), never
   * late; undefined when there is neither.
   */
  nextTimeout(): number | undefined {
    const t = Math.min(this.#send.wake, this.#recv.ackWake);
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

  /** The ACK as of now, pending or not, once anything came (see `ReliableReceiver`). */
  currentAck(): OutAck | undefined {
    return this.#recv.currentAck();
  }

  /** The delayed ACK at once, if one is pending. */
  takeAck(): OutAck | undefined {
    return this.#recv.takeAck();
  }

  /** When the oldest unacknowledged payload was first sent, if any is in flight. */
  oldestSentAt(): number | undefined {
    return this.#send.oldestSentAt();
  }

  /** True when some payload has been retransmitted after a timeout and is still unacknowledged. */
  get struggling(): boolean {
    return this.#send.struggling;
  }

  /**
   * Resends every in-flight payload at the next {@link pollData} because the path changed. These
   * resends are reported as `resend`, not `timeout`, and do not back off: they say nothing
   * about the new path.
   */
  expedite(now: number): void {
    this.#send.expedite(now);
  }

  /**
   * Gives up everything not acknowledged (we are leaving) and returns the DATA frame, with an
   * empty payload, whose `base` tells the receiver how much it missed; undefined when nothing
   * was outstanding.
   */
  giveUp(): OutData | undefined {
    return this.#send.giveUp();
  }

  /**
   * Applies an ACK from the peer; ACKs of another stream are ignored. Payloads still in flight
   * that were sent {@link ReliableOptions.fastThreshold} transmissions before one now
   * acknowledged are made due once older than the loss delay (fast retransmit).
   */
  onAck(now: number, ack: OutAck): void {
    this.#send.onAck(now, ack);
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
