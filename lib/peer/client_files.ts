/**
 * File transfer as a client runs it: the {@link FileTransfers} coordinator (`lib/files/`) keyed by
 * the remotes' keys, the file frames remotes received handed to it at the end of each client step,
 * and its frames sent along each peer's path after the step's chat frames (so chat goes first).
 * Its events become the client's `file` events, naming peers by their names. The client
 * (`lib/peer/client.ts`) owns one. Pure.
 *
 * @module
 */
import type { FileFrame, FileOffer } from "../wire/file_frame.ts";
import type { FileEvent, FileOp } from "../files/file_outputs.ts";
import { FileTransfers } from "../files/transfers.ts";
import type { MerkleTree } from "../files/merkle.ts";
import { countDrop } from "./drops.ts";
import type { PeerTable } from "./peer_table.ts";
import type { RemotePeer } from "./remote.ts";

/**
 * A file event as the client reports it: peers by name; a `progress` event also carries the
 * rate (bytes a second, smoothed) and whether the peer is reached directly or through a relay.
 */
export type ClientFileEvent =
  & { type: "file"; rate?: number; route?: "direct" | "relay"; relay?: string | null }
  & FileEvent;

/**
 * A client's file transfers.
 *
 * Driving it: remotes' file frames go in through {@link receive} as they are drained; the client
 * calls {@link step} at the end of every step (and {@link handleTimeout} when its timers run);
 * the I/O side takes {@link pollOp} after each step and answers through {@link core}.
 */
export class ClientFiles {
  /** The coordinator (offer, accept, disk answers go to it directly). */
  readonly core: FileTransfers = new FileTransfers();
  #peers: PeerTable;
  #drops: Record<string, number>;
  #in: [RemotePeer, FileFrame][] = [];
  /** The remotes a step sent file frames to (one set, cleared after each step). */
  #sent = new Set<RemotePeer>();
  #now = 0;
  /** The last progress of each running transfer (`id>peer`): when, bytes, rate. */
  #rates = new Map<string, { at: number; bytes: number; rate: number }>();

  /** File transfers with the remotes of `peers`, counting unsendable frames in `drops`. */
  constructor(peers: PeerTable, drops: Record<string, number>) {
    this.#peers = peers;
    this.#drops = drops;
  }

  /** A file frame `r` sent us (handled at the end of the step). */
  receive(r: RemotePeer, f: FileFrame): void {
    this.#in.push([r, f]);
  }

  /** The end of a client step at `now`: frames in, then frames out; their remotes in `touched`. */
  step(now: number, touched: (r: RemotePeer) => void): void {
    this.#now = now;
    // Run once per datagram: nothing is allocated here unless frames come in or go out.
    const inbox = this.#in, n = inbox.length;
    for (let i = 0; i < n; i++) this.core.handleFrame(inbox[i]![0].key, inbox[i]![1], now);
    if (inbox.length === n) inbox.length = 0;
    else inbox.splice(0, n);
    const sent = this.#sent;
    for (let o = this.core.pollFrame(now); o; o = this.core.pollFrame(now)) {
      const r = this.#peers.get(o.to);
      if (!r || !r.sendFile(now, o.frame)) countDrop(this.#drops, "file-unsendable");
      else sent.add(r);
    }
    if (sent.size === 0) return;
    for (const r of sent) touched(r);
    sent.clear();
  }

  /** Timers at `now`. */
  handleTimeout(now: number): void {
    this.#now = now;
    const t = this.core.nextTimeout(now);
    if (t !== undefined && t <= now) this.core.handleTimeout(now);
  }

  /** When its timers are due. */
  nextTimeout(): number | undefined {
    return this.core.nextTimeout(this.#now);
  }

  /** The remotes present and established named `names` (all of them without names). */
  recipients(names?: readonly string[]): RemotePeer[] {
    const out: RemotePeer[] = [];
    for (const r of this.#peers.values()) {
      if (!r.present || !r.established) continue;
      if (!names || names.includes(r.name)) out.push(r);
    }
    return out;
  }

  /**
   * The remote keyed `key` left the room: its bulk stream and queued chunks go now, not when
   * the link table fills (a transfer with it resumes if it is offered the file again).
   */
  peerLeft(key: string): void {
    if (this.#peers.get(key)?.present) return; // back already
    this.core.peerGone(key);
  }

  /** Offers a file to `to` at `now`; returns its id. */
  offer(now: number, offer: FileOffer, tree: MerkleTree, to: readonly RemotePeer[]): string {
    return this.core.offer(offer, tree, to.map((r) => r.key), now);
  }

  /** The next disk operation for the I/O side. */
  pollOp(): FileOp | undefined {
    return this.core.pollOp();
  }

  /** The next event, peers named. */
  pollEvent(): ClientFileEvent | undefined {
    const e = this.core.pollEvent();
    if (!e) return undefined;
    const name = (key: string) => this.#peers.get(key)?.name || key;
    const out: ClientFileEvent = { type: "file", ...e };
    if (e.from !== undefined) out.from = name(e.from);
    if (e.to !== undefined) out.to = name(e.to);
    const peer = e.from ?? e.to ?? "";
    const key = `${e.id}>${peer}`;
    if (e.state !== "progress") {
      this.#rates.delete(key);
      return out;
    }
    const last = this.#rates.get(key);
    let rate = 0;
    if (last && this.#now > last.at) {
      const now = (e.bytes - last.bytes) / ((this.#now - last.at) / 1000);
      rate = last.rate === 0 ? now : 0.7 * last.rate + 0.3 * now;
    }
    if (this.#rates.size < 1024 || last) {
      this.#rates.set(key, { at: this.#now, bytes: e.bytes, rate });
    }
    out.rate = Math.round(rate);
    const p = this.#peers.get(peer);
    out.route = p?.direct ? "direct" : "relay";
    if (out.route === "relay") out.relay = p?.relayedBy ?? null;
    return out;
  }
}
