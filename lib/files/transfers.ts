/**
 * `FileTransfers`, the file-transfer coordinator of one peer: the offers it made and received,
 * each pair's bulk stream (a {@link BulkSender} and {@link BulkReceiver} per peer, one packet
 * number space per direction for every transfer between the two), and the rules that keep a
 * hostile peer cheap: offers are rate-limited and bounded per peer and in total (an offer over
 * the bounds is answered "rejected" and forgotten; nothing reaches the disk before the user
 * accepts), blocks of transfers that were not accepted from that very peer are dropped, chunks
 * are verified before they are written, and a file that fails its SHA-256 is discarded.
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
 *
 * @module
 */
import { TokenBucket } from "../core/limits.ts";
import { toHex } from "../wire/codec.ts";
import {
  type FileFrame,
  FileKind,
  type FileOffer,
  FileStatus,
  type FileStatusCode,
  MAX_REQUEST_CHUNKS,
} from "../wire/file_frame.ts";
import { BulkReceiver } from "./bulk_receiver.ts";
import { BulkSender } from "./bulk_sender.ts";
import { encodeResume, IncomingFile, REPEAT_AFTER } from "./incoming.ts";
import type { MerkleTree } from "./merkle.ts";
import { OutgoingFile } from "./outgoing.ts";
import { safeFileName } from "./safe_name.ts";
import { PeerUplink } from "./uplink.ts";

/** Offers one peer may have waiting for a decision. */
export const MAX_UNDECIDED_PER_PEER = 8;
/** Incoming transfers kept in all (waiting, running, and recently finished). */
export const MAX_INCOMING = 64;
/** Offers accepted from one peer per second, and in a burst. */
export const OFFER_RATE = 2;
/** Burst of offers from one peer. */
export const OFFER_BURST = 8;
/** Most peers with bulk state at once. */
export const MAX_LINKS = 256;
/** How often progress is reported, in ms. */
export const PROGRESS_EVERY = 250;
/** How often a running download's resume state is saved, in ms. */
export const SAVE_EVERY = 1000;

/** The housekeeping tick of running downloads (request repeats, saves), in ms. */
const TICK: number = Math.min(REPEAT_AFTER, SAVE_EVERY) / 4;

/** What the user is told about a transfer. */
export interface FileEvent {
  state: "offered" | "progress" | "done" | "failed";
  /** The transfer id in hex. */
  id: string;
  /** The file name (for incoming files: made safe, lib/files/safe_name.ts). */
  name: string;
  size: number;
  bytes: number;
  /** The sending peer (incoming) or the receiving one (outgoing). */
  from?: string;
  to?: string;
  /** SHA-256 of the file, hex. */
  sha256: string;
  /** Why it failed. */
  reason?: string;
  /** Where the file is (a receiver's `done`, from the I/O side). */
  path?: string;
}

/** Disk work for the I/O side. */
export type FileOp =
  | { op: "read"; id: string; chunk: number; position: number; length: number }
  | { op: "write"; id: string; chunk: number; position: number; data: Uint8Array }
  | { op: "save"; id: string; state: Uint8Array }
  | { op: "finish"; id: string; offer: FileOffer }
  | { op: "discard"; id: string };

type InState = "offered" | "accepted" | "finishing" | "done" | "failed" | "rejected";

interface Incoming {
  offer: FileOffer;
  from: string;
  name: string;
  state: InState;
  file?: IncomingFile;
  dirty: boolean;
  savedAt: number;
}

interface Link {
  uplink: PeerUplink;
  out: BulkSender;
  in: BulkReceiver;
  offers: TokenBucket;
}

/** The file-transfer coordinator. */
export class FileTransfers {
  #outgoing = new Map<string, OutgoingFile>();
  #incoming = new Map<string, Incoming>();
  #links = new Map<string, Link>();
  #control: { to: string; frame: FileFrame }[] = [];
  #ops: FileOp[] = [];
  #events: FileEvent[] = [];
  #rr: string[] = [];
  #progressAt = 0;
  /** The next housekeeping tick (request repeats, saves), a fixed schedule. */
  #tickAt = 0;
  #progressDirty = new Set<string>();
  /** Inputs dropped, by reason. */
  readonly drops = new Map<string, number>();

  #drop(reason: string): void {
    this.drops.set(reason, (this.drops.get(reason) ?? 0) + 1);
  }

  #link(peer: string, now: number): Link | undefined {
    let l = this.#links.get(peer);
    if (l) return l;
    if (this.#links.size >= MAX_LINKS) return undefined;
    const uplink = new PeerUplink(peer);
    l = {
      uplink,
      out: new BulkSender(uplink),
      in: new BulkReceiver(),
      offers: new TokenBucket(OFFER_RATE, OFFER_BURST, now),
    };
    this.#links.set(peer, l);
    this.#rr.push(peer);
    return l;
  }

  /** The bulk sender toward `peer` (for tests and stats). */
  senderOf(peer: string): BulkSender | undefined {
    return this.#links.get(peer)?.out;
  }

  /** The incoming transfer `id`'s state (for tests and the view). */
  incoming(
    id: string,
  ): { state: InState; from: string; name: string; offer: FileOffer } | undefined {
    const e = this.#incoming.get(id);
    return e && { state: e.state, from: e.from, name: e.name, offer: e.offer };
  }

  /** The outgoing transfer `id` (for tests and the view). */
  outgoing(id: string): OutgoingFile | undefined {
    return this.#outgoing.get(id);
  }

  #send(to: string, frame: FileFrame): void {
    this.#control.push({ to, frame });
  }

  #event(e: Omit<FileEvent, "sha256" | "name" | "size">, offer: FileOffer, name: string): void {
    this.#events.push({ ...e, name, size: offer.size, sha256: toHex(offer.sha256) });
  }

  /** Offers a file (its hash tree built by the caller) to `peers` at `now`; returns its id. */
  offer(offer: FileOffer, tree: MerkleTree, peers: readonly string[], now: number): string {
    const id = toHex(offer.id);
    let f = this.#outgoing.get(id);
    if (!f) this.#outgoing.set(id, f = new OutgoingFile(offer, tree));
    for (const p of peers) f.addRecipient(p, now);
    this.#offersDue(now);
    return id;
  }

  /** Accepts offer `id`, resuming from `bitmap` (the I/O side's saved state) if given. */
  accept(id: string, now: number, bitmap?: Uint8Array): boolean {
    const e = this.#incoming.get(id);
    if (!e || e.state !== "offered") return false;
    e.state = "accepted";
    e.file = new IncomingFile(e.offer, bitmap);
    this.#afterWrite(id, e, now);
    return true;
  }

  /** The receiver already holds offer `id`'s file, verified, at `path`: nothing is sent. */
  alreadyHave(id: string, path: string): boolean {
    const e = this.#incoming.get(id);
    if (!e || (e.state !== "offered" && e.state !== "accepted")) return false;
    e.state = "done";
    this.#send(e.from, { kind: FileKind.Reply, id: e.offer.id, status: FileStatus.Complete });
    this.#event({ state: "done", id, bytes: e.offer.size, from: e.from, path }, e.offer, e.name);
    return true;
  }

  /** Declines offer `id`. */
  reject(id: string): boolean {
    const e = this.#incoming.get(id);
    if (!e || e.state !== "offered") return false;
    e.state = "rejected";
    this.#send(e.from, { kind: FileKind.Reply, id: e.offer.id, status: FileStatus.Rejected });
    return true;
  }

  /** Gives up transfer `id` either way (the partial download is kept for a later resume). */
  cancel(id: string): boolean {
    const e = this.#incoming.get(id);
    if (e && (e.state === "offered" || e.state === "accepted")) {
      this.#failIncoming(id, e, "cancelled", FileStatus.Cancelled, false);
      return true;
    }
    const f = this.#outgoing.get(id);
    if (!f) return false;
    this.#failOutgoing(f, "cancelled");
    return true;
  }

  #failIncoming(id: string, e: Incoming, reason: string, status: FileStatusCode, discard: boolean) {
    e.state = "failed";
    e.file = undefined;
    this.#send(e.from, { kind: FileKind.Reply, id: e.offer.id, status });
    if (discard) this.#ops.push({ op: "discard", id });
    this.#event({ state: "failed", id, bytes: 0, from: e.from, reason }, e.offer, e.name);
  }

  #failOutgoing(f: OutgoingFile, reason: string): void {
    const id = toHex(f.offer.id);
    for (const [peer, r] of f.recipients) {
      this.#links.get(peer)?.uplink.drop(f);
      if (r.state === "done" || r.state === "failed" || r.state === "rejected") continue;
      r.state = "failed";
      this.#send(peer, { kind: FileKind.Reply, id: f.offer.id, status: FileStatus.Cancelled });
      this.#event({ state: "failed", id, bytes: r.bytes, to: peer, reason }, f.offer, f.offer.name);
    }
  }

  /** A file frame from `peer` (authenticated by the secure link) at `now`. */
  handleFrame(peer: string, f: FileFrame, now: number): void {
    switch (f.kind) {
      case FileKind.Offer:
        return this.#handleOffer(peer, f, now);
      case FileKind.Reply:
        return this.#handleReply(peer, toHex(f.id), f.status, now);
      case FileKind.Request:
        return this.#handleRequest(peer, toHex(f.id), f.chunks, now);
      case FileKind.Data:
        return this.#handleData(peer, f, now);
      case FileKind.Ack: {
        const l = this.#links.get(peer);
        if (!l) return this.#drop("ack-unknown");
        l.out.handleAck(f, now);
        this.#collectFinished(l);
        return;
      }
    }
  }

  #handleOffer(peer: string, f: FileOffer & { kind: number }, now: number): void {
    const id = toHex(f.id);
    const e = this.#incoming.get(id);
    if (e) {
      if (e.from !== peer) return this.#drop("offer-id-taken");
      const status = e.state === "done"
        ? FileStatus.Complete
        : e.state === "rejected"
        ? FileStatus.Rejected
        : e.state === "failed"
        ? FileStatus.Failed
        : FileStatus.Pending;
      if (e.state === "accepted") return; // its requests answer it
      this.#send(peer, { kind: FileKind.Reply, id: f.id, status });
      return;
    }
    if (this.#outgoing.has(id)) return this.#drop("offer-id-taken");
    const l = this.#link(peer, now);
    let undecided = 0;
    for (const x of this.#incoming.values()) {
      if (x.from === peer && x.state === "offered") undecided++;
    }
    if (!l || undecided >= MAX_UNDECIDED_PER_PEER || !l.offers.take(now, 1) || !this.#room()) {
      this.#drop("offer-flood");
      this.#send(peer, { kind: FileKind.Reply, id: f.id, status: FileStatus.Rejected });
      return;
    }
    const { kind: _, ...offer } = f;
    const name = safeFileName(offer.name);
    this.#incoming.set(id, { offer, from: peer, name, state: "offered", dirty: false, savedAt: 0 });
    this.#send(peer, { kind: FileKind.Reply, id: f.id, status: FileStatus.Pending });
    this.#event({ state: "offered", id, bytes: 0, from: peer }, offer, name);
  }

  /** Makes room for one more incoming transfer by forgetting the oldest finished one. */
  #room(): boolean {
    if (this.#incoming.size < MAX_INCOMING) return true;
    for (const [id, e] of this.#incoming) {
      if (e.state === "done" || e.state === "failed" || e.state === "rejected") {
        this.#incoming.delete(id);
        return true;
      }
    }
    return false;
  }

  #handleReply(peer: string, id: string, status: FileStatusCode, now: number): void {
    const f = this.#outgoing.get(id);
    if (f?.recipients.has(peer)) {
      const r = f.handleStatus(peer, status, now);
      if (!r) return;
      if (r.state !== "pending") this.#links.get(peer)?.uplink.drop(f);
      if (r.state === "done") {
        this.#event({ state: "done", id, bytes: r.bytes, to: peer }, f.offer, f.offer.name);
      } else if (r.state !== "pending") {
        const reason = r.state === "rejected" ? "rejected" : "failed by the receiver";
        this.#event(
          { state: "failed", id, bytes: r.bytes, to: peer, reason },
          f.offer,
          f.offer.name,
        );
      }
      return;
    }
    const e = this.#incoming.get(id);
    if (!e || e.from !== peer) return this.#drop("reply-unknown");
    if (status === FileStatus.Cancelled && (e.state === "offered" || e.state === "accepted")) {
      e.state = "failed";
      e.file = undefined;
      this.#event(
        { state: "failed", id, bytes: 0, from: peer, reason: "cancelled by the sender" },
        e.offer,
        e.name,
      );
    }
  }

  #handleRequest(peer: string, id: string, chunks: number[], now: number): void {
    const f = this.#outgoing.get(id);
    const r = f?.recipients.get(peer);
    if (!f || !r) return this.#drop("request-unknown");
    if (r.state !== "offering" && r.state !== "pending" && r.state !== "active") {
      return this.#drop("request-closed");
    }
    if (f.broken) {
      this.#send(peer, { kind: FileKind.Reply, id: f.offer.id, status: FileStatus.Cancelled });
      return;
    }
    r.state = "active";
    f.heard(peer, now);
    const l = this.#link(peer, now);
    if (!l) return this.#drop("links-full");
    for (const c of chunks) {
      if (c >= f.layout.chunks) return this.#drop("request-bad-chunk");
      if (!l.uplink.request(f, c)) return this.#drop("request-queue-full");
    }
    this.#pumpReads();
  }

  #pumpReads(): void {
    for (const [id, f] of this.#outgoing) {
      for (let c = f.pollRead(); c !== undefined; c = f.pollRead()) {
        this.#ops.push({
          op: "read",
          id,
          chunk: c,
          position: f.layout.start(c),
          length: f.layout.length(c),
        });
      }
    }
  }

  #handleData(peer: string, f: Extract<FileFrame, { kind: typeof FileKind.Data }>, now: number) {
    const l = this.#links.get(peer) ?? this.#link(peer, now);
    if (!l) return this.#drop("links-full");
    if (!l.in.handlePacket(f.pn, now)) return this.#drop("data-duplicate-packet");
    const id = toHex(f.id);
    const e = this.#incoming.get(id);
    if (!e || e.from !== peer || e.state !== "accepted" || !e.file) {
      return this.#drop("data-unaccepted");
    }
    const verdict = e.file.handleData(f.chunk, f.offset, f.data, now);
    if (verdict === "corrupt") {
      this.#drop("data-corrupt-chunk");
      if (e.file.corrupt > 16) {
        this.#failIncoming(id, e, "data failed verification", FileStatus.Failed, true);
      } else this.#requests(id, e, now);
      return;
    }
    if (verdict !== "stored" && verdict !== "verified") return this.#drop(`data-${verdict}`);
    this.#progressDirty.add(id);
    if (verdict === "verified") {
      for (let w = e.file.pollWrite(); w; w = e.file.pollWrite()) {
        this.#ops.push({ op: "write", id, ...w });
      }
    }
    this.#requests(id, e, now);
  }

  #requests(id: string, e: Incoming, now: number): void {
    if (!e.file) return;
    const want = e.file.wanted(now);
    for (let i = 0; i < want.length; i += MAX_REQUEST_CHUNKS) {
      const chunks = want.slice(i, i + MAX_REQUEST_CHUNKS);
      this.#send(e.from, { kind: FileKind.Request, id: e.offer.id, chunks });
    }
    void id;
  }

  /** The disk read chunk `chunk` of outgoing `id` (`data` null: the read failed). */
  handleRead(id: string, chunk: number, data: Uint8Array | null): void {
    const f = this.#outgoing.get(id);
    if (!f) return;
    if (!f.handleRead(chunk, data)) this.#failOutgoing(f, "the file changed or cannot be read");
  }

  /** The disk wrote chunk `chunk` of incoming `id` (`ok` false: it failed). */
  handleWritten(id: string, chunk: number, ok: boolean, now: number): void {
    const e = this.#incoming.get(id);
    if (!e?.file || e.state !== "accepted") return;
    if (!ok) return this.#failIncoming(id, e, "cannot write the file", FileStatus.Failed, false);
    e.file.handleWritten(chunk);
    e.dirty = true;
    this.#progressDirty.add(id);
    this.#afterWrite(id, e, now);
  }

  #afterWrite(id: string, e: Incoming, now: number): void {
    if (!e.file) return;
    if (e.file.complete) {
      e.state = "finishing";
      this.#ops.push({ op: "finish", id, offer: e.offer });
      return;
    }
    this.#requests(id, e, now);
  }

  /** The I/O side checked the whole file's SHA-256 and put it in place (or failed to). */
  handleFinished(id: string, result: { ok: true; path: string } | { ok: false; reason: string }) {
    const e = this.#incoming.get(id);
    if (!e || e.state !== "finishing") return;
    if (!result.ok) {
      return this.#failIncoming(id, e, result.reason, FileStatus.Failed, true);
    }
    e.state = "done";
    e.file = undefined;
    this.#send(e.from, { kind: FileKind.Reply, id: e.offer.id, status: FileStatus.Complete });
    this.#event(
      { state: "done", id, bytes: e.offer.size, from: e.from, path: result.path },
      e.offer,
      e.name,
    );
  }

  #collectFinished(l: Link): void {
    for (let x = l.uplink.pollFinished(); x; x = l.uplink.pollFinished()) {
      const r = this.#outgoing.get(x[0])?.recipients.get(l.uplink.peer);
      if (!r || r.state !== "active") continue;
      r.bytes = Math.min(this.#outgoing.get(x[0])!.offer.size, r.bytes + x[2]);
      this.#progressDirty.add(`${x[0]}>${l.uplink.peer}`);
    }
  }

  #offersDue(now: number): void {
    for (const f of this.#outgoing.values()) {
      for (const peer of f.dueOffers(now)) this.#send(peer, { kind: FileKind.Offer, ...f.offer });
    }
  }

  /** Timers at `now`: offer repeats, stale requests, bulk loss timers, acks, saves, progress. */
  handleTimeout(now: number): void {
    this.#offersDue(now);
    for (const l of this.#links.values()) l.out.handleTimeout(now);
    if (now < this.#tickAt) return this.#progressDue(now);
    this.#tickAt = now + TICK;
    for (const [id, e] of this.#incoming) {
      if (e.state !== "accepted" || !e.file) continue;
      this.#requests(id, e, now);
      if (e.dirty && now >= e.savedAt + SAVE_EVERY) {
        e.dirty = false;
        e.savedAt = now;
        this.#ops.push({ op: "save", id, state: encodeResume(e.offer, e.file.bitmap()) });
      }
    }
    this.#progressDue(now);
  }

  #progressDue(now: number): void {
    if (now >= this.#progressAt + PROGRESS_EVERY) this.#progress(now);
  }

  #progress(now: number): void {
    this.#progressAt = now;
    for (const key of this.#progressDirty) {
      const [id, to] = key.split(">") as [string, string | undefined];
      if (to !== undefined) {
        const f = this.#outgoing.get(id), r = f?.recipients.get(to);
        if (f && r?.state === "active") {
          this.#event({ state: "progress", id, bytes: r.bytes, to }, f.offer, f.offer.name);
        }
      } else {
        const e = this.#incoming.get(id);
        if (e?.file && e.state === "accepted") {
          this.#event(
            { state: "progress", id, bytes: e.file.bytesDone, from: e.from },
            e.offer,
            e.name,
          );
        }
      }
    }
    this.#progressDirty.clear();
  }

  /** The next frame for a peer: control frames, then acknowledgements, then paced bulk data. */
  pollFrame(now: number): { to: string; frame: FileFrame } | undefined {
    const c = this.#control.shift();
    if (c) return c;
    for (const [peer, l] of this.#links) {
      const ack = l.in.pollAck(now);
      if (ack) return { to: peer, frame: ack };
    }
    for (let i = 0; i < this.#rr.length; i++) {
      const peer = this.#rr.shift()!;
      this.#rr.push(peer);
      const l = this.#links.get(peer);
      const frame = l?.out.pollFrame(now);
      if (frame) return { to: peer, frame };
    }
    return undefined;
  }

  /** The next piece of disk work. */
  pollOp(): FileOp | undefined {
    return this.#ops.shift();
  }

  /** The next event for the user. */
  pollEvent(): FileEvent | undefined {
    return this.#events.shift();
  }

  /** When `handleTimeout` is next due. */
  nextTimeout(now: number): number | undefined {
    let t: number | undefined;
    const at = (x: number | undefined) => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    for (const f of this.#outgoing.values()) at(f.nextOfferAt());
    for (const l of this.#links.values()) {
      at(l.in.nextTimeout());
      at(l.out.nextTimeout(now));
    }
    for (const e of this.#incoming.values()) {
      if (e.state === "accepted") at(Math.max(this.#tickAt, now));
    }
    if (this.#progressDirty.size > 0) at(this.#progressAt + PROGRESS_EVERY);
    return t;
  }

  /** `peer` left: its bulk state goes (transfers resume when it is offered the file again). */
  peerGone(peer: string): void {
    this.#links.delete(peer);
    this.#rr = this.#rr.filter((p) => p !== peer);
  }
}
