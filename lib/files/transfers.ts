/**
 * `FileTransfers`, the file-transfer coordinator of one peer: it routes each file frame to its
 * part ({@link Uploads}, {@link Downloads}, a pair's bulk stream), keeps one {@link BulkSender}
 * and {@link BulkReceiver} per peer (one packet number space per direction for every transfer
 * between the two), rate-limits offers per peer (2 a second, 8 in a burst: an offer over the
 * bound is answered "rejected" and forgotten, and nothing reaches the disk before the user
 * accepts), and reports progress at most every {@link PROGRESS_EVERY} ms.
 *
 * The receiver pulls: accepting means requesting chunks, within a bounded window
 * (`incoming.ts`), so a receiver that stops writing stops the sender. Frames to peers come out
 * in priority order: offers, replies and requests first, then acknowledgements, then bulk data
 * round-robin across peers (each pair paced by its own congestion controller); chat frames do
 * not pass through here at all and go out before any of these. Pure; time in ms; peers are
 * opaque keys chosen by the caller.
 *
 * Call order: after any input (`offer`, `accept`, `reject`, `cancel`, `handleFrame`,
 * `handleRead`, `handleWritten`, `handleFinished`, `handleTimeout`), drain `pollFrame(now)`,
 * then `pollOp()` (disk work for the I/O side), then `pollEvent()`, then read `nextTimeout(now)`.
 * A disk answer is an input too: drain again after it.
 *
 * @module
 */
import { TokenBucket } from "../core/limits.ts";
import { toHex } from "../wire/codec.ts";
import { type FileFrame, FileKind, type FileOffer } from "../wire/file_frame.ts";
import { BulkReceiver } from "./bulk_receiver.ts";
import { BulkSender } from "./bulk_sender.ts";
import { Downloads, type InState } from "./downloads.ts";
import { type FileEvent, type FileOp, FileOutputs } from "./file_outputs.ts";
import { type IncomingFile, REPEAT_AFTER } from "./incoming.ts";
import type { MerkleTree } from "./merkle.ts";
import type { OutgoingFile } from "./outgoing.ts";
import { Uploads } from "./uploads.ts";
import { PeerUplink } from "./uplink.ts";

export type { FileEvent, FileOp };

/** Offers accepted from one peer per second. */
export const OFFER_RATE = 2;
/** Burst of offers from one peer. */
export const OFFER_BURST = 8;
/** Most peers with bulk state at once. */
export const MAX_LINKS = 256;
/** How often progress is reported, in ms. */
export const PROGRESS_EVERY = 250;
/** The housekeeping tick of running downloads (request repeats, saves), in ms. */
const TICK: number = REPEAT_AFTER / 4;

interface Link {
  uplink: PeerUplink;
  out: BulkSender;
  in: BulkReceiver;
  offers: TokenBucket;
  /** When a frame last came from or went to the peer through it. */
  usedAt: number;
}

/** The file-transfer coordinator. */
export class FileTransfers {
  #out = new FileOutputs();
  #uploads = new Uploads(this.#out);
  #downloads = new Downloads(
    this.#out,
    (id, c) => this.#uploads.relayHas(id, c, this.#uplinkOf),
  );
  #links = new Map<string, Link>();
  #rr: string[] = [];
  #progressAt = 0;
  #tickAt = 0;
  #uplinkOf = (peer: string): PeerUplink | undefined => this.#links.get(peer)?.uplink;

  /** Inputs dropped, by reason. */
  get drops(): Map<string, number> {
    return this.#out.drops;
  }

  #link(peer: string, now: number): Link | undefined {
    let l = this.#links.get(peer);
    if (l) {
      l.usedAt = now;
      return l;
    }
    if (this.#links.size >= MAX_LINKS && !this.#evictIdle()) return undefined;
    const uplink = new PeerUplink(peer);
    l = {
      uplink,
      out: new BulkSender(uplink),
      in: new BulkReceiver(),
      offers: new TokenBucket(OFFER_RATE, OFFER_BURST, now),
      usedAt: now,
    };
    this.#links.set(peer, l);
    this.#rr.push(peer);
    return l;
  }

  /** Forgets the least recently used link with nothing in flight or queued; false if none. */
  #evictIdle(): boolean {
    let oldest: string | undefined, at = Infinity;
    for (const [peer, l] of this.#links) {
      if (l.out.busy || l.uplink.size > 0 || l.usedAt >= at) continue;
      oldest = peer;
      at = l.usedAt;
    }
    if (oldest === undefined) return false;
    this.peerGone(oldest);
    return true;
  }

  /** The bulk receiver from `peer` (for tests and stats). */
  receiverOf(peer: string): BulkReceiver | undefined {
    return this.#links.get(peer)?.in;
  }

  /** The bulk sender toward `peer` (for tests and stats). */
  senderOf(peer: string): BulkSender | undefined {
    return this.#links.get(peer)?.out;
  }

  /** Incoming transfer `id` (for tests and the view). */
  incoming(
    id: string,
  ): { state: InState; from: string; name: string; offer: FileOffer } | undefined {
    return this.#downloads.get(id);
  }

  /** Outgoing transfer `id` (for tests and the view). */
  outgoing(id: string): OutgoingFile | undefined {
    return this.#uploads.get(id);
  }

  /** Offers a file (its hash tree built by the caller) to `peers` at `now`; returns its id. */
  offer(offer: FileOffer, tree: MerkleTree, peers: readonly string[], now: number): string {
    return this.#uploads.offer(offer, tree, peers, now);
  }

  /** Accepts offer `id`, resuming from `bitmap` (the I/O side's saved state) if given. */
  accept(id: string, now: number, bitmap?: Uint8Array): boolean {
    if (!this.#downloads.accept(id, now, bitmap)) return false;
    const swarm = this.#downloads.swarmOf(id);
    if (swarm) this.#relay(swarm, now);
    return true;
  }

  /** A download passes its verified chunks on to the other receivers of its group. */
  #relay(s: { file: IncomingFile; others: string[] }, now: number): void {
    const f = s.file;
    this.#uploads.relay(
      f.offer,
      (c) => f.proofOf(c),
      (c) => f.proofOf(c) !== undefined,
      s.others,
      now,
    );
  }

  /** The receiver already holds offer `id`'s file, verified, at `path`: nothing is sent. */
  alreadyHave(id: string, path: string): boolean {
    return this.#downloads.alreadyHave(id, path);
  }

  /** Declines offer `id`. */
  reject(id: string): boolean {
    return this.#downloads.reject(id);
  }

  /** Gives up transfer `id` either way (a partial download is kept for a later resume). */
  cancel(id: string): boolean {
    return this.#downloads.cancel(id) || this.#uploads.cancel(id, this.#uplinkOf);
  }

  /** A file frame from `peer` (authenticated by the secure link) at `now`. */
  handleFrame(peer: string, f: FileFrame, now: number): void {
    switch (f.kind) {
      case FileKind.Offer: {
        const id = toHex(f.id);
        if (this.#uploads.get(id) && !this.#downloads.get(id)) {
          return this.#out.drop("offer-id-taken");
        }
        const l = this.#link(peer, now);
        return this.#downloads.handleOffer(peer, f, !!l && l.offers.take(now, 1));
      }
      case FileKind.Reply: {
        const id = toHex(f.id);
        if (this.#uploads.handleReply(peer, id, f.status, now, this.#uplinkOf(peer))) return;
        if (!this.#downloads.handleReply(peer, id, f.status)) this.#out.drop("reply-unknown");
        return;
      }
      case FileKind.Request: {
        const l = this.#link(peer, now);
        if (!l) return this.#out.drop("links-full");
        return this.#uploads.handleRequest(peer, toHex(f.id), f.chunks, now, l.uplink);
      }
      case FileKind.Data: {
        const l = this.#link(peer, now);
        if (!l) return this.#out.drop("links-full");
        if (!l.in.handlePacket(f.pn, now)) return this.#out.drop("data-duplicate-packet");
        return this.#downloads.handleData(peer, f, now);
      }
      case FileKind.Swarm: {
        const id = toHex(f.id);
        const peers = f.peers.map(toHex);
        const got = this.#downloads.handleSwarm(peer, id, peers, f.index);
        if (!got) return;
        this.#relay(got, now);
        return;
      }
      case FileKind.Ack: {
        const l = this.#links.get(peer);
        if (!l) return this.#out.drop("ack-unknown");
        l.out.handleAck(f, now);
        this.#uploads.collect(l.uplink);
        return;
      }
    }
  }

  /** The disk read chunk `chunk` of outgoing `id` (`data` null: the read failed). */
  handleRead(id: string, chunk: number, data: Uint8Array | null): void {
    this.#uploads.handleRead(id, chunk, data, this.#uplinkOf);
  }

  /** The disk wrote chunk `chunk` of incoming `id` (`ok` false: it failed). */
  handleWritten(id: string, chunk: number, ok: boolean, now: number): void {
    this.#downloads.handleWritten(id, chunk, ok, now);
  }

  /** The I/O side checked the whole file's SHA-256 and put it in place (or failed to). */
  handleFinished(id: string, result: { ok: true; path: string } | { ok: false; reason: string }) {
    this.#downloads.handleFinished(id, result);
  }

  /** Timers at `now`: offer repeats, bulk loss timers, stale requests, saves, progress. */
  handleTimeout(now: number): void {
    this.#uploads.offersDue(now);
    for (const l of this.#links.values()) l.out.handleTimeout(now);
    if (now >= this.#tickAt) {
      this.#tickAt = now + TICK;
      this.#downloads.tick(now);
    }
    if (now >= this.#progressAt + PROGRESS_EVERY) this.#progress(now);
  }

  #progress(now: number): void {
    this.#progressAt = now;
    for (const id of this.#downloads.changed) this.#downloads.progress(id);
    this.#downloads.changed.clear();
    for (const key of this.#uploads.changed) {
      const [id, peer] = key.split(">") as [string, string];
      this.#uploads.progress(id, peer);
    }
    this.#uploads.changed.clear();
  }

  /** The next frame for a peer: control frames, then acknowledgements, then paced bulk data. */
  pollFrame(now: number): { to: string; frame: FileFrame } | undefined {
    const c = this.#out.control.shift();
    if (c) return c;
    for (const l of this.#links.values()) {
      const ack = l.in.pollAck(now);
      if (ack) return { to: l.uplink.peer, frame: ack };
    }
    for (let i = 0; i < this.#rr.length; i++) {
      const peer = this.#rr.shift()!;
      this.#rr.push(peer);
      const frame = this.#links.get(peer)?.out.pollFrame(now);
      if (frame) return { to: peer, frame };
    }
    return undefined;
  }

  /** The next piece of disk work. */
  pollOp(): FileOp | undefined {
    // Chunks read ahead as the uplinks sent (after pollFrame) go last.
    if (this.#out.ops.length === 0) this.#uploads.reads();
    return this.#out.ops.shift();
  }

  /** The next event for the user. */
  pollEvent(): FileEvent | undefined {
    return this.#out.events.shift();
  }

  /** When `handleTimeout` is next due. */
  nextTimeout(now: number): number | undefined {
    let t = this.#uploads.nextOfferAt();
    const at = (x: number | undefined) => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    for (const l of this.#links.values()) {
      at(l.in.nextTimeout());
      at(l.out.nextTimeout(now));
    }
    if (this.#downloads.running) at(Math.max(this.#tickAt, now));
    if (this.#downloads.changed.size + this.#uploads.changed.size > 0) {
      at(this.#progressAt + PROGRESS_EVERY);
    }
    return t;
  }

  /** `peer` left: its bulk state goes (its transfers resume when it is offered the file again). */
  peerGone(peer: string): void {
    this.#links.get(peer)?.uplink.clear();
    this.#links.delete(peer);
    this.#rr = this.#rr.filter((p) => p !== peer);
  }
}
