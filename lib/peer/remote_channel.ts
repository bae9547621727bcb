/**
 * The reliable channel with one remote peer as the remote drives it: the {@link ReliableChannel}
 * (`lib/peer/reliable.ts`) plus where its ACKs go back (the way the latest DATA came, so acks flow
 * even while the two sides' paths disagree) and the reassembly of delivered fragments into chat
 * messages. {@link RemotePeer} (`lib/peer/remote.ts`) seals and sends what it hands out. Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import { type InnerFrame, InnerKind } from "../wire/peer_frame.ts";
import { MAX_MESSAGE, Reassembler } from "./fragment.ts";
import { CHAT_OVERHEAD } from "../wire/chat_message.ts";
import { type DataFrame, ReliableChannel } from "./reliable.ts";

/** An ACK frame to send, and where: `to` null is the relay; `via` is our socket. */
export interface AckOut {
  /** The ACK frame. */
  frame: InnerFrame;
  /** The peer's endpoint the latest DATA came from, or null (it came relayed). */
  to: Endpoint | null;
  /** Our socket the latest DATA arrived on. */
  via: number;
}

/** What one DATA frame from the peer brought (see {@link RemoteChannel.receive}). */
export interface Received {
  /** Frames the peer gave up that never reached us. */
  missed: number;
  /** Some payload was delivered in order. */
  delivered: boolean;
  /** The ACK to send at once, back the way the DATA came (null: it is delayed). */
  ack: InnerFrame | null;
  /** Whole chat messages (envelopes, see `lib/wire/chat_message.ts`), in order. */
  messages: Uint8Array[];
  /** Reasons of fragments dropped by the reassembly. */
  drops: string[];
}

/** The reliable channel with one peer, with its ACKs' way back and its messages' reassembly. */
export class RemoteChannel extends ReliableChannel {
  #inbox = new Reassembler(MAX_MESSAGE + CHAT_OVERHEAD);
  /** Where the latest DATA came from (null: relayed): a delayed ACK goes back that way. */
  #ackTo: Endpoint | null = null;
  /** Our socket the latest DATA arrived on. */
  #ackVia = 0;

  /** A DATA frame from `from` (null: relayed) on our socket `via`, received at `now`. */
  receive(now: number, f: DataFrame, from: Endpoint | null, via: number): Received {
    // A stream that restarts mid-message needs no special care: fragments carry `first`.
    const { deliver, ack, ackNow, missed } = this.onData(f, now);
    // Answer the way the data came, so acks flow even while paths disagree.
    this.#ackTo = from;
    this.#ackVia = via;
    const messages: Uint8Array[] = [];
    const drops: string[] = [];
    for (const part of deliver) {
      const r = this.#inbox.push(part.first, part.more, part.text);
      if (r.kind === "too-long" || r.kind === "orphan") drops.push(`fragment-${r.kind}`);
      else if (r.kind === "message") messages.push(r.bytes);
    }
    return {
      missed,
      delivered: deliver.length > 0,
      ack: ackNow ? { kind: InnerKind.Ack, ...ack } : null,
      messages,
      drops,
    };
  }

  /** The delayed ACK, now, if one is pending, with its way back. */
  takeAckOut(): AckOut | undefined {
    const ack = this.takeAck();
    return ack && { frame: { kind: InnerKind.Ack, ...ack }, to: this.#ackTo, via: this.#ackVia };
  }

  /** The ACK as of now, pending or not, with its way back (undefined before anything came). */
  currentAckOut(): AckOut | undefined {
    const ack = this.currentAck();
    return ack && { frame: { kind: InnerKind.Ack, ...ack }, to: this.#ackTo, via: this.#ackVia };
  }

  /** The delayed ACK if it is due at `now`, with its way back. */
  pollAckOut(now: number): AckOut | undefined {
    const ack = this.pollAck(now);
    return ack && { frame: { kind: InnerKind.Ack, ...ack }, to: this.#ackTo, via: this.#ackVia };
  }

  /** How long the oldest unacknowledged message has waited at `now` (0: none). */
  stalledFor(now: number): number {
    const oldest = this.oldestSentAt();
    return oldest === undefined ? 0 : now - oldest;
  }
}
