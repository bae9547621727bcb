/**
 * The doctor's STUN transactions (`lib/nat/doctor.ts`): Binding requests from one of its two
 * sockets (plain, with CHANGE-REQUEST, with RESPONSE-PORT, or the hairpin test's request to our
 * own public address), repeated 300, 600, 1200, 1600 … ms apart until their timeout, and answers
 * matched by their random 96-bit transaction ids. Pure.
 *
 * @module
 */
import { bindingRequest, decodeStun, looksLikeStun, StunClass, type StunMessage } from "./stun.ts";
import type { Endpoint } from "../wire/address.ts";
import { toHex } from "../wire/codec.ts";
import type { Transmit } from "../wire/transmit.ts";

/** The longest gap between two sends of one request, ms. */
const RTO_MAX = 1600;

/** Where a request stands. */
export type TxState = "pending" | "answered" | "error" | "timeout" | "cancelled";

/** One request. */
export interface Tx {
  /** Its transaction id. */
  id: Uint8Array;
  /** The id in hex. */
  key: string;
  /** The socket it goes from. */
  socket: 0 | 1;
  /** Where it goes. */
  to: Endpoint;
  /** Its bytes. */
  data: Uint8Array;
  /** When it was first sent. */
  started: number;
  /** When it is sent again. */
  nextSend: number;
  /** The gap after the next send. */
  gap: number;
  /** When it times out. */
  deadline: number;
  /** Where it stands. */
  state: TxState;
  /** For the hairpin test: our own request coming back is the answer. */
  hairpin: boolean;
  /** The answer, once it came. */
  reply?: { msg: StunMessage; from: Endpoint; at: number };
}

/** What a request asks for besides a plain Binding. */
export interface RequestOptions {
  /** CHANGE-REQUEST flags. */
  change?: number;
  /** RESPONSE-PORT: answer to this port of our address. */
  responsePort?: number;
  /** The hairpin test's request (answered by itself arriving on socket 0). */
  hairpin?: boolean;
}

/**
 * The doctor's requests on its two sockets.
 *
 * Driving it: {@link request} queues a datagram; feed {@link handleDatagram} and
 * {@link handleTimeout}; drain {@link pollTransmit} for each socket.
 */
export class StunTransactions {
  #txs = new Map<string, Tx>();
  #out: [Transmit[], Transmit[]] = [[], []];
  #o: { random: (n: number) => Uint8Array; rto: number; timeout: number };

  /** Requests with ids from `random`, first repeated after `rto` ms, given up after `timeout`. */
  constructor(o: { random: (n: number) => Uint8Array; rto: number; timeout: number }) {
    this.#o = o;
  }

  /** Sends a request from `socket` to `to` now. */
  request(now: number, socket: 0 | 1, to: Endpoint, o: RequestOptions = {}): Tx {
    const id = this.#o.random(12).slice(0, 12);
    // Padded: no answer is larger than the request (see PADDED_REQUEST_LEN).
    const data = o.responsePort !== undefined
      ? bindingRequest(id, { responsePort: o.responsePort, fingerprint: true, padded: true })
      : bindingRequest(id, { change: o.change ?? 0, padded: true });
    const rto = this.#o.rto;
    const tx: Tx = {
      id,
      key: toHex(id),
      socket,
      to,
      data,
      started: now,
      nextSend: now + rto,
      gap: Math.min(rto * 2, RTO_MAX),
      deadline: now + this.#o.timeout,
      state: "pending",
      hairpin: o.hairpin ?? false,
    };
    this.#txs.set(tx.key, tx);
    this.#out[socket].push({ to, data });
    return tx;
  }

  /** The next datagram for `socket`. */
  pollTransmit(socket: 0 | 1): Transmit | undefined {
    return this.#out[socket].shift();
  }

  /** True while a datagram waits for `socket`. */
  waiting(socket: 0 | 1): boolean {
    return this.#out[socket].length > 0;
  }

  /**
   * A datagram on `socket` from `from`: true when it answered a pending request (which is now
   * `answered`, or `error` for a STUN error response).
   */
  handleDatagram(now: number, socket: 0 | 1, from: Endpoint, data: Uint8Array): boolean {
    if (!looksLikeStun(data)) return false;
    const d = decodeStun(data);
    if (!d.ok || !d.value.cookie) return false;
    const m = d.value;
    const tx = this.#txs.get(toHex(m.transactionId));
    if (!tx || tx.state !== "pending") return false;
    if (tx.hairpin) {
      // Socket 1's request, looped back by the NAT (or, without a NAT, by our own host).
      if (m.cls !== StunClass.Request || socket !== 0) return false;
      tx.state = "answered";
    } else if (m.cls === StunClass.Success) {
      tx.state = "answered";
    } else if (m.cls === StunClass.Error) {
      tx.state = "error";
    } else {
      return false;
    }
    tx.reply = { msg: m, from, at: now };
    return true;
  }

  /** Repeats what is due and times out what waited too long. */
  handleTimeout(now: number): void {
    for (const tx of this.#txs.values()) {
      if (tx.state !== "pending") continue;
      if (now >= tx.deadline) {
        tx.state = "timeout";
      } else if (now >= tx.nextSend) {
        this.#out[tx.socket].push({ to: tx.to, data: tx.data });
        tx.nextSend = now + tx.gap;
        tx.gap = Math.min(tx.gap * 2, RTO_MAX);
      }
    }
  }

  /** The earliest repeat or timeout of a pending request. */
  nextTimeout(): number | undefined {
    let at: number | undefined;
    for (const tx of this.#txs.values()) {
      if (tx.state !== "pending") continue;
      const t = Math.min(tx.nextSend, tx.deadline);
      if (at === undefined || t < at) at = t;
    }
    return at;
  }

  /** Cancels `txs` if pending. */
  cancel(...txs: (Tx | null)[]): void {
    for (const tx of txs) if (tx?.state === "pending") tx.state = "cancelled";
  }

  /** Cancels every pending request. */
  cancelAll(): void {
    for (const tx of this.#txs.values()) if (tx.state === "pending") tx.state = "cancelled";
  }
}
