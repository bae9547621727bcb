/**
 * `Uploads`, the sending side of file transfer across peers: the files offered (each an
 * {@link OutgoingFile}), the offer repeats, receivers' replies and requests (queued on the
 * requesting peer's {@link PeerUplink}), the disk reads owed, and the progress and end of each
 * receiver. Pure; time in ms; outputs go to the shared {@link FileOutputs}.
 *
 * @module
 */
import { toHex } from "../wire/codec.ts";
import { FileKind, type FileOffer, FileStatus, type FileStatusCode } from "../wire/file_frame.ts";
import type { FileOutputs } from "./file_outputs.ts";
import type { MerkleTree } from "./merkle.ts";
import { OutgoingFile } from "./outgoing.ts";
import type { PeerUplink } from "./uplink.ts";

/** The uploads of one peer. */
export class Uploads {
  #out: FileOutputs;
  #all = new Map<string, OutgoingFile>();
  /** `id>peer` keys whose progress changed since the last report. */
  readonly changed = new Set<string>();

  constructor(out: FileOutputs) {
    this.#out = out;
  }

  /** Outgoing file `id`. */
  get(id: string): OutgoingFile | undefined {
    return this.#all.get(id);
  }

  /** Offers a file to `peers` at `now`; returns its id. */
  offer(offer: FileOffer, tree: MerkleTree, peers: readonly string[], now: number): string {
    const id = toHex(offer.id);
    let f = this.#all.get(id);
    if (!f) this.#all.set(id, f = new OutgoingFile(offer, tree));
    for (const p of peers) f.addRecipient(p, now);
    this.offersDue(now);
    return id;
  }

  /** Offers owed at `now` go out. */
  offersDue(now: number): void {
    for (const f of this.#all.values()) {
      for (const peer of f.dueOffers(now)) {
        this.#out.send(peer, { kind: FileKind.Offer, ...f.offer });
      }
    }
  }

  /** The earliest offer repeat. */
  nextOfferAt(): number | undefined {
    let t: number | undefined;
    for (const f of this.#all.values()) {
      const x = f.nextOfferAt();
      if (x !== undefined && (t === undefined || x < t)) t = x;
    }
    return t;
  }

  /** Gives up upload `id` to everyone; false if none. */
  cancel(id: string, uplinks: (peer: string) => PeerUplink | undefined): boolean {
    const f = this.#all.get(id);
    if (!f) return false;
    this.#fail(f, "cancelled", uplinks);
    return true;
  }

  #fail(f: OutgoingFile, reason: string, uplinks: (peer: string) => PeerUplink | undefined) {
    const id = toHex(f.offer.id);
    for (const [peer, r] of f.recipients) {
      uplinks(peer)?.drop(f);
      if (r.state === "done" || r.state === "failed" || r.state === "rejected") continue;
      r.state = "failed";
      this.#out.send(peer, { kind: FileKind.Reply, id: f.offer.id, status: FileStatus.Cancelled });
      this.#out.event(
        { state: "failed", id, bytes: r.bytes, to: peer, reason },
        f.offer,
        f.offer.name,
      );
    }
  }

  /** A reply about upload `id` from `peer`; false when it is not one of ours. */
  handleReply(
    peer: string,
    id: string,
    status: FileStatusCode,
    now: number,
    uplink: PeerUplink | undefined,
  ): boolean {
    const f = this.#all.get(id);
    if (!f?.recipients.has(peer)) return false;
    const r = f.handleStatus(peer, status, now);
    if (!r || r.state === "pending") return true;
    uplink?.drop(f);
    if (r.state === "done") {
      this.#out.event({ state: "done", id, bytes: r.bytes, to: peer }, f.offer, f.offer.name);
    } else {
      const reason = r.state === "rejected" ? "rejected" : "failed by the receiver";
      this.#out.event(
        { state: "failed", id, bytes: r.bytes, to: peer, reason },
        f.offer,
        f.offer.name,
      );
    }
    return true;
  }

  /** `peer` asks for `chunks` of upload `id`, to be queued on its `uplink`. */
  handleRequest(peer: string, id: string, chunks: number[], now: number, uplink: PeerUplink) {
    const f = this.#all.get(id);
    const r = f?.recipients.get(peer);
    if (!f || !r) return this.#out.drop("request-unknown");
    if (r.state !== "offering" && r.state !== "pending" && r.state !== "active") {
      return this.#out.drop("request-closed");
    }
    if (f.broken) {
      this.#out.send(peer, { kind: FileKind.Reply, id: f.offer.id, status: FileStatus.Cancelled });
      return;
    }
    r.state = "active";
    f.heard(peer, now);
    for (const c of chunks) {
      if (c >= f.layout.chunks) return this.#out.drop("request-bad-chunk");
      if (!uplink.request(f, c)) return this.#out.drop("request-queue-full");
    }
    for (let c = f.pollRead(); c !== undefined; c = f.pollRead()) {
      this.#out.ops.push({
        op: "read",
        id,
        chunk: c,
        position: f.layout.start(c),
        length: f.layout.length(c),
      });
    }
  }

  /** The disk read chunk `chunk` of `id` (`data` null: the read failed). */
  handleRead(
    id: string,
    chunk: number,
    data: Uint8Array | null,
    uplinks: (peer: string) => PeerUplink | undefined,
  ): void {
    const f = this.#all.get(id);
    if (f && !f.handleRead(chunk, data)) {
      this.#fail(f, "the file changed or cannot be read", uplinks);
    }
  }

  /** Chunks `uplink`'s peer now holds in full count toward its progress. */
  collect(uplink: PeerUplink): void {
    for (let x = uplink.pollFinished(); x; x = uplink.pollFinished()) {
      const f = this.#all.get(x[0]), r = f?.recipients.get(uplink.peer);
      if (!f || !r || r.state !== "active") continue;
      r.bytes = Math.min(f.offer.size, r.bytes + x[2]);
      this.changed.add(`${x[0]}>${uplink.peer}`);
    }
  }

  /** A progress event for `id` to `peer`, if that upload is running. */
  progress(id: string, peer: string): void {
    const f = this.#all.get(id), r = f?.recipients.get(peer);
    if (f && r?.state === "active") {
      this.#out.event({ state: "progress", id, bytes: r.bytes, to: peer }, f.offer, f.offer.name);
    }
  }
}
