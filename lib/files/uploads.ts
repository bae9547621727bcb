/**
 * `Uploads`, the sending side of file transfer across peers: the files offered (each an
 * {@link OutgoingFile}), the offer repeats, receivers' replies and requests (queued on the
 * requesting peer's {@link PeerUplink}), the disk reads owed, and the progress and end of each
 * receiver. In a group transfer it also tells each receiver the others (FILE_SWARM), and a
 * receiver passes on what it verified to them (a _relay_ file, {@link Uploads.relay}). Pure;
 * time in ms; outputs go to the shared {@link FileOutputs}.
 *
 * @module
 */
import { toHex } from "../wire/codec.ts";
import {
  FileKind,
  type FileOffer,
  FileStatus,
  type FileStatusCode,
  MAX_SWARM,
} from "../wire/file_frame.ts";
import type { FileOutputs } from "./file_outputs.ts";
import type { MerkleTree } from "./merkle.ts";
import { OutgoingFile } from "./outgoing.ts";
import type { PeerUplink } from "./uplink.ts";

/** Files a receiver passes on at once (group transfers); the oldest is forgotten first. */
export const MAX_RELAYS = 16;
/** Requests a relaying receiver holds for chunks it has not verified yet, per file. */
export const MAX_DEFERRED = 256;
/** Least gap (ms) between repeats of FILE_SWARM to one receiver that asks for others' chunks. */
export const SWARM_REPEAT = 2000;

/** A 16-hex-digit key as the 8 bytes of a peer id, or undefined. */
function idOf(key: string): Uint8Array | undefined {
  if (!/^[0-9a-f]{16}$/.test(key)) return undefined;
  const out = new Uint8Array(8);
  for (let i = 0; i < 8; i++) out[i] = parseInt(key.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The uploads of one peer. */
export class Uploads {
  #out: FileOutputs;
  #all = new Map<string, OutgoingFile>();
  /** A relayed file's chunks verified here, and the requests waiting for others. */
  #relays = new Map<string, { have: (c: number) => boolean; deferred: [string, number][] }>();
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
    if (!f) this.#all.set(id, f = new OutgoingFile(offer, (c) => tree.proof(c)));
    for (const p of peers) f.addRecipient(p, now);
    this.offersDue(now);
    return id;
  }

  /** Offers owed at `now` go out. */
  offersDue(now: number): void {
    for (const f of this.#all.values()) {
      if (f.relay) continue;
      const due = f.dueOffers(now);
      if (due.length === 0) continue;
      const swarm = this.#swarmOf(f);
      for (const peer of due) {
        // The swarm first, so that a receiver that accepts at once asks the right peers, and
        // again after the offer: a receiver that lacks it asks us for everything.
        const index = swarm?.keys.indexOf(peer) ?? -1;
        if (index >= 0) this.#sendSwarm(f, swarm!.ids, index, peer);
        this.#out.send(peer, { kind: FileKind.Offer, ...f.offer });
        if (index >= 0) this.#sendSwarm(f, swarm!.ids, index, peer);
      }
    }
  }

  /**
   * A group transfer's receivers (2 to {@link MAX_SWARM}, peer ids for keys): each fetches
   * chunk c from the one at `c mod n`, which fetches it from us.
   */
  #swarmOf(f: OutgoingFile): { keys: string[]; ids: Uint8Array[] } | undefined {
    const keys = [...f.recipients.keys()].sort();
    if (keys.length < 2 || keys.length > MAX_SWARM) return undefined;
    const ids = keys.map(idOf);
    if (ids.some((x) => !x)) return undefined;
    return { keys, ids: ids as Uint8Array[] };
  }

  #sendSwarm(f: OutgoingFile, peers: Uint8Array[], index: number, peer: string): void {
    this.#out.send(peer, { kind: FileKind.Swarm, id: f.offer.id, index, peers });
  }

  /**
   * A group receiver asked us for `chunks`, some of which another receiver owns: its FILE_SWARM
   * was lost (or it gave up on that receiver). It gets the swarm again, once per
   * {@link SWARM_REPEAT}; a receiver that has it changes nothing.
   */
  #swarmAgain(f: OutgoingFile, peer: string, chunks: number[], now: number): void {
    const r = f.recipients.get(peer);
    if (!r || f.relay || now - r.swarmAt < SWARM_REPEAT) return;
    const swarm = this.#swarmOf(f);
    const index = swarm?.keys.indexOf(peer) ?? -1;
    if (!swarm || index < 0 || chunks.every((c) => c % swarm.keys.length === index)) return;
    r.swarmAt = now;
    this.#sendSwarm(f, swarm.ids, index, peer);
  }

  /**
   * Passes on the chunks of download `offer` (verified here: `have`, with audit paths from
   * `proofOf`) to the other receivers `peers` of a group transfer.
   */
  relay(
    offer: FileOffer,
    proofOf: (c: number) => Uint8Array | undefined,
    have: (c: number) => boolean,
    peers: readonly string[],
    now: number,
  ): void {
    const id = toHex(offer.id);
    if (this.#all.has(id)) return;
    const f = new OutgoingFile(offer, proofOf, true);
    for (const p of peers) f.addRecipient(p, now);
    if (this.#relays.size >= MAX_RELAYS) {
      const old = this.#relays.keys().next().value!;
      this.#relays.delete(old);
      this.#all.delete(old);
    }
    this.#all.set(id, f);
    this.#relays.set(id, { have, deferred: [] });
  }

  /** Chunk `c` of relayed `id` is verified here now: the requests that waited for it are queued. */
  relayHas(id: string, c: number, uplinks: (peer: string) => PeerUplink | undefined): void {
    const r = this.#relays.get(id), f = this.#all.get(id);
    if (!r || !f) return;
    const waiting = r.deferred.filter(([, x]) => x === c);
    if (waiting.length === 0) return;
    r.deferred = r.deferred.filter(([, x]) => x !== c);
    for (const [peer] of waiting) uplinks(peer)?.request(f, c);
    this.#reads(id, f);
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
      // A relay stops quietly: its receivers fetch from the sender instead.
      if (f.relay || r.state === "done" || r.state === "failed" || r.state === "rejected") continue;
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
    if (!f?.recipients.has(peer) || f.relay) return false;
    const r = f.handleStatus(peer, status, now);
    if (!r || r.state === "pending") return true;
    uplink?.drop(f);
    // Everyone answered for good: the file (its tree, its chunks) is let go.
    if (f.settled) this.#all.delete(id);
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
    this.#swarmAgain(f, peer, chunks, now);
    const relay = this.#relays.get(id);
    for (const c of chunks) {
      if (c >= f.layout.chunks) return this.#out.drop("request-bad-chunk");
      if (relay && !relay.have(c)) {
        // Not here yet: served once verified (the asker also falls back to the sender).
        if (relay.deferred.length >= MAX_DEFERRED) relay.deferred.shift();
        if (!relay.deferred.some(([p, x]) => p === peer && x === c)) relay.deferred.push([peer, c]);
        continue;
      }
      if (!uplink.request(f, c)) return this.#out.drop("request-queue-full");
    }
    this.#reads(id, f);
  }

  /** The reads every file owes (its uplinks came to want more chunks as they sent). */
  reads(): void {
    for (const [id, f] of this.#all) this.#reads(id, f);
  }

  #reads(id: string, f: OutgoingFile): void {
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
      if (!f || !r || r.state !== "active" || f.relay) continue;
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
