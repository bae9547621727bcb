/**
 * What both halves of the reliable channel share: its tunables ({@link ReliableOptions},
 * {@link DEFAULT_RELIABLE}), the frames they exchange ({@link DataFrame}, {@link OutData},
 * {@link OutAck}), what the receiver hands to the application ({@link Delivery}) and the
 * counters ({@link ReliableStats}). See `lib/peer/reliable.ts` for the channel itself.
 *
 * @module
 */
import { type DataPart, MAX_BATCH } from "../wire/peer_frame.ts";

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
  /**
   * Most payload bytes in flight (a payload is sent when nothing is in flight, whatever its
   * size). With {@link window} it keeps what a flood can pile up in the peer's socket receive
   * buffer (about 208 KiB on Linux, counting ~0.8 KiB per small datagram and ~2.3 KiB per
   * full one) below its size, so a fast sender does not overflow a slower receiver.
   */
  windowBytes: number;
  /** Most payloads queued behind the window; `ReliableChannel.push` refuses more. */
  maxQueue: number;
  /** Highest sequence number of a stream; after it the sender starts a new stream. */
  maxSeq: number;
  /** In-order DATA frames acknowledged by one ACK (1: every frame at once). */
  ackEvery: number;
  /** Longest an ACK of in-order DATA waits for more frames to acknowledge, in ms. */
  ackDelay: number;
  /**
   * Fast retransmit: a payload may be deemed lost once one sent this many transmissions after
   * it has been acknowledged (Infinity: only the timer detects loss).
   */
  fastThreshold: number;
  /**
   * Most bytes of payloads packed into one DATA frame, counting
   * `BATCH_PART_OVERHEAD` per payload (at most {@link MAX_BATCH}); 0 sends one payload
   * per frame.
   */
  batchBytes: number;
}

/** Defaults suited to chat over the Internet. */
export const DEFAULT_RELIABLE: ReliableOptions = {
  initialRto: 500,
  minRto: 150,
  maxRto: 8000,
  window: 128,
  windowBytes: 64 * 1024,
  maxQueue: 4096,
  maxSeq: 0xffff_ffff,
  ackEvery: 4,
  ackDelay: 5,
  fastThreshold: 3,
  batchBytes: MAX_BATCH,
};

/**
 * Why a DATA frame goes out: `new`, `timeout` (its timer expired), `fast` (later payloads were
 * acknowledged: fast retransmit) or `resend` (the path changed).
 */
export type SendReason = "new" | "timeout" | "fast" | "resend";

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
  /** Further payloads after `text`, under the same sequence number (a batch). */
  packed?: DataPart[];
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
  /** Payloads sent packed behind another one in a DATA frame (see `batchBytes`). */
  batched: number;
  /** DATA frames sent again because their timer expired. */
  retransmits: number;
  /** DATA frames sent again at once because later ones were acknowledged (fast retransmit). */
  fastRetransmits: number;
  /** DATA frames sent again at once because the path changed. */
  resends: number;
  /** Payloads handed to the application. */
  delivered: number;
  /** DATA frames received that were already delivered or buffered. */
  duplicates: number;
  /** Times the peer's stream changed (it forgot us, or wrapped its sequence numbers). */
  streamResets: number;
  /** ACKs handed out (at once from `ReliableChannel.onData`, or delayed). */
  acks: number;
  /** Sequence numbers of the peer's stream skipped because its base moved past them. */
  missed: number;
}
