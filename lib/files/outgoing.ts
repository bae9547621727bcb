/**
 * The sending side of one offered file: the offer and its hash tree, the chunks in memory (each
 * chunk's payload, audit path and bytes, read once and shared by every receiver that asked for
 * it, dropped when none needs it any more, its buffer kept for the next chunks: at most
 * {@link SPARE_PAYLOADS} of them), the reads owed to the disk, and each receiver's state with the
 * schedule of offer repeats. Pure; time in ms.
 *
 * @module
 */
import { type FileOffer, FileStatus, type FileStatusCode } from "../wire/file_frame.ts";
import { ChunkLayout } from "./chunks.ts";

/** Chunk buffers an outgoing file keeps for its next chunks once their chunks are done with. */
export const SPARE_PAYLOADS = 8;

/** Where one receiver stands. */
export type SendState = "offering" | "pending" | "active" | "done" | "rejected" | "failed";

/** First repeat of an unanswered offer, in ms (then doubling). */
export const OFFER_REPEAT = 1000;
/** Longest gap between offer repeats, and how long an answered receiver may stay silent, in ms. */
export const OFFER_IDLE = 10_000;

/** One receiver of an outgoing file. */
export interface Recipient {
  state: SendState;
  /** When the offer goes again (offering: backoff; pending/active: silence). */
  offerAt: number;
  backoff: number;
  /** Bytes of chunks whose every block this receiver acknowledged. */
  bytes: number;
  /** When the group's receivers (FILE_SWARM) were last sent again to this one. */
  swarmAt: number;
}

interface Cached {
  payload: Uint8Array | undefined;
  reading: boolean;
  /** Serving entries that need it. */
  refs: number;
}

/** An outgoing file. */
export class OutgoingFile {
  readonly offer: FileOffer;
  readonly layout: ChunkLayout;
  readonly #proofOf: (c: number) => Uint8Array | undefined;
  /**
   * A receiver passing on chunks it verified to the other receivers of a group transfer: it
   * never offers, and serves only chunks whose audit path it kept.
   */
  readonly relay: boolean;
  readonly recipients = new Map<string, Recipient>();
  #cache = new Map<number, Cached>();
  /** Payload buffers free for the next chunks (each holds the largest payload). */
  #spare: Uint8Array[] = [];
  #reads: number[] = [];
  /** Set when the file on disk no longer matches the offer. */
  broken = false;

  /** A file offered (`relay` false) or passed on, its chunks' audit paths from `proofOf`. */
  constructor(offer: FileOffer, proofOf: (c: number) => Uint8Array | undefined, relay = false) {
    this.offer = offer;
    this.layout = new ChunkLayout(offer);
    this.#proofOf = proofOf;
    this.relay = relay;
  }

  /** Offers the file to `peer` from `now`. */
  addRecipient(peer: string, now: number): void {
    if (this.recipients.has(peer)) return;
    this.recipients.set(peer, {
      state: this.relay ? "active" : "offering",
      offerAt: this.relay ? Infinity : now,
      backoff: OFFER_REPEAT,
      bytes: 0,
      swarmAt: -Infinity,
    });
  }

  /** A reply or request from `peer` (it knows the offer): the offer repeats wait. */
  heard(peer: string, now: number): void {
    const r = this.recipients.get(peer);
    if (r && !this.relay) r.offerAt = now + OFFER_IDLE;
  }

  /** `peer` told us `status`; returns the recipient when its state changed. */
  handleStatus(peer: string, status: FileStatusCode, now: number): Recipient | undefined {
    const r = this.recipients.get(peer);
    if (!r || r.state === "done" || r.state === "rejected" || r.state === "failed") return;
    this.heard(peer, now);
    const next: SendState | undefined = status === FileStatus.Pending
      ? (r.state === "offering" ? "pending" : undefined)
      : status === FileStatus.Complete
      ? "done"
      : status === FileStatus.Rejected
      ? "rejected"
      : "failed";
    if (!next) return;
    r.state = next;
    if (next === "done") r.bytes = this.offer.size;
    return r;
  }

  /** Peers owed the offer at `now` (their repeat schedule advances). */
  dueOffers(now: number): string[] {
    const out: string[] = [];
    for (const [peer, r] of this.recipients) {
      if (r.state !== "offering" && r.state !== "pending" && r.state !== "active") continue;
      if (now < r.offerAt) continue;
      out.push(peer);
      if (r.state === "offering") {
        r.offerAt = now + r.backoff;
        r.backoff = Math.min(OFFER_IDLE, r.backoff * 2);
      } else r.offerAt = now + OFFER_IDLE;
    }
    return out;
  }

  /** The earliest offer repeat. */
  nextOfferAt(): number | undefined {
    let t: number | undefined;
    for (const r of this.recipients.values()) {
      if (r.state !== "offering" && r.state !== "pending" && r.state !== "active") continue;
      if (t === undefined || r.offerAt < t) t = r.offerAt;
    }
    return t;
  }

  /** Whether every recipient is finished one way or another. */
  get settled(): boolean {
    for (const r of this.recipients.values()) {
      if (r.state === "offering" || r.state === "pending" || r.state === "active") return false;
    }
    return true;
  }

  /** A serving entry needs chunk `c` (a read is owed unless it is here or coming). */
  want(c: number): void {
    const e = this.#cache.get(c);
    if (e) {
      e.refs++;
      return;
    }
    this.#cache.set(c, { payload: undefined, reading: true, refs: 1 });
    this.#reads.push(c);
  }

  /** A serving entry is done with chunk `c`. */
  unwant(c: number): void {
    const e = this.#cache.get(c);
    if (!e || --e.refs > 0) return;
    this.#cache.delete(c);
    // Its blocks were all sent (each copied into its datagram): the buffer serves another chunk.
    if (e.payload && this.#spare.length < SPARE_PAYLOADS) {
      this.#spare.push(new Uint8Array(e.payload.buffer, 0, e.payload.buffer.byteLength));
    }
  }

  /** Chunk `c`'s payload, if it is in memory. */
  payload(c: number): Uint8Array | undefined {
    return this.#cache.get(c)?.payload;
  }

  /** The next chunk to read from the disk. */
  pollRead(): number | undefined {
    while (this.#reads.length > 0) {
      const c = this.#reads.shift()!;
      if (this.#cache.has(c)) return c;
    }
    return undefined;
  }

  /**
   * The disk read chunk `c` (`data` null: it failed); `data` is copied, so it is the caller's
   * again after the call. A read of the wrong length means the file changed since it was
   * offered: the file is broken and false comes back.
   */
  handleRead(c: number, data: Uint8Array | null): boolean {
    if (!data || data.length !== this.layout.length(c)) {
      this.broken = true;
      this.#cache.clear();
      return false;
    }
    const e = this.#cache.get(c);
    if (!e) return true;
    const proof = this.#proofOf(c);
    if (!proof) return true;
    const largest = this.layout.proofBytes(0) + this.layout.length(0);
    const buf = this.#spare.pop() ?? new Uint8Array(largest);
    const payload = buf.subarray(0, proof.length + data.length);
    payload.set(proof, 0);
    payload.set(data, proof.length);
    e.payload = payload;
    e.reading = false;
    return true;
  }

  /** Chunks in memory or being read (for tests of the memory bound). */
  get cached(): number {
    return this.#cache.size;
  }
}
