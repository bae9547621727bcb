/**
 * What the registry hands its driver: the datagrams it wants sent ({@link Outbox.pollTransmit})
 * and the events it wants logged ({@link Outbox.pollEvent}), plus the counters
 * ({@link RegistryStats}) every part of it adds to. Every datagram is cut from a shared slab
 * ({@link Outbox.carve}): a typed array of its own would cost a backing-store allocation each,
 * several times the copy into it. Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import { encodeServerMsgInto, type ServerMsg } from "../wire/server_msg.ts";
import type { Transmit } from "../wire/transmit.ts";

/** Something worth a log line. */
export type RegistryEvent =
  | { type: "registered"; room: string; name: string; addr: Endpoint; relayOnly: boolean }
  | { type: "moved"; room: string; name: string; addr: Endpoint }
  | { type: "introduced"; room: string; a: string; b: string; repunch: boolean }
  | { type: "relaying"; room: string; from: string; to: string }
  | { type: "left"; room: string; name: string; reason: "bye" | "expired" | "replaced" | "evicted" }
  | { type: "refused"; addr: Endpoint; why: string; code: number }
  | { type: "limited"; room: string; name: string; what: "relay" | "relay-size" }
  | { type: "supernode"; room: string; name: string; addr: Endpoint };

/** Server-wide counters. */
export interface RegistryStats {
  /** Datagrams relayed between peers. */
  relayedPackets: number;
  /** Payload bytes relayed between peers. */
  relayedBytes: number;
  /** Dropped datagrams by reason. */
  drops: Record<string, number>;
  /** COOKIE replies sent (first contact, server restarts, address changes, spoofing). */
  cookies: number;
  /**
   * COOKIEs sent unasked to members of a cluster that shares cookies, once a period, so that
   * the cookie they would fail over with stays valid (`docs/protocol.md` 23).
   */
  cookiesRefreshed: number;
  /** Reachability probes (REACH) sent to peers offering to be supernodes. */
  reachSent: number;
  /** Peers that answered one (REACHED): supernodes. */
  reachPassed: number;
}

/** Size of the slabs datagrams are cut from (54 of the largest RELAYED fit in one). */
const SLAB_SIZE = 65_536;

/**
 * The registry's output queues and counters, shared by its parts. Queue with {@link send},
 * {@link push} and {@link event}; the registry's driver drains {@link pollTransmit} and
 * {@link pollEvent}.
 */
export class Outbox {
  #out: Transmit[] = [];
  #events: RegistryEvent[] = [];
  /** Counters. */
  readonly stats: RegistryStats = {
    relayedPackets: 0,
    relayedBytes: 0,
    drops: {},
    cookies: 0,
    cookiesRefreshed: 0,
    reachSent: 0,
    reachPassed: 0,
  };
  /** Datagrams are cut from this slab, front to back, never reused (see {@link carve}). */
  #slab = new Uint8Array(0);
  #slabView = new DataView(new ArrayBuffer(0));
  #slabUsed = 0;
  /** {@link carve} as a function for the encoder. */
  readonly carver = (n: number): Uint8Array => this.carve(n);

  /** Takes the next datagram to send, if any. */
  pollTransmit(): Transmit | undefined {
    return this.#out.shift();
  }

  /** Takes the next event to log, if any. */
  pollEvent(): RegistryEvent | undefined {
    return this.#events.shift();
  }

  /** Counts a dropped datagram under `reason`. */
  drop(reason: string): void {
    const d = this.stats.drops;
    d[reason] = (d[reason] ?? 0) + 1;
  }

  /** Queues `m`, encoded into slab bytes, for `to`. */
  send(to: Endpoint, m: ServerMsg): void {
    this.#out.push({ to, data: encodeServerMsgInto(m, this.carver) });
  }

  /**
   * Refuses a request from `to` (logged, and a REFUSED sent back); `echo` is its token or
   * nonce, so the peer knows the answer is real.
   */
  refuse(to: Endpoint, echo: Uint8Array, code: number, message: string): void {
    this.event({ type: "refused", addr: to, why: message, code });
    this.send(to, { type: MsgType.Refused, echo, code, message });
  }

  /** Queues a datagram built in place (its bytes from {@link carve}). */
  push(t: Transmit): void {
    this.#out.push(t);
  }

  /** Queues an event for the log. */
  event(e: RegistryEvent): void {
    this.#events.push(e);
  }

  /**
   * `n` fresh bytes for an outgoing datagram, cut from a shared slab. A slab's bytes are handed
   * out once, so no two datagrams share any; it is freed when none of them is referenced. Write
   * them through {@link slabView} at their `byteOffset`.
   */
  carve(n: number): Uint8Array {
    if (this.#slabUsed + n > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_SIZE);
      this.#slabView = new DataView(this.#slab.buffer);
      this.#slabUsed = 0;
    }
    return this.#slab.subarray(this.#slabUsed, this.#slabUsed += n);
  }

  /** A view of the whole slab the last {@link carve} cut from. */
  get slabView(): DataView {
    return this.#slabView;
  }
}
