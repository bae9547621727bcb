/**
 * `Downloads`, the receiving side of file transfer across peers: offers received (bounded per
 * peer and in all; the rate limit is the caller's), the user's decision, each accepted
 * transfer's {@link IncomingFile}, its requests, writes, saves and the final check, and the
 * replies the sender is owed. Only blocks of a transfer accepted from the very peer that sends
 * them are taken. Pure; time in ms; outputs go to the shared {@link FileOutputs}.
 *
 * @module
 */
import { toHex } from "../wire/codec.ts";
import {
  type FileFrame,
  FileKind,
  type FileOffer,
  FileStatus,
  type FileStatusCode,
  MAX_REQUEST_CHUNKS,
} from "../wire/file_frame.ts";
import type { FileOutputs } from "./file_outputs.ts";
import { encodeResume, IncomingFile, MAX_CORRUPT } from "./incoming.ts";
import { safeRelativePath } from "./safe_name.ts";

/** Offers one peer may have waiting for a decision. */
export const MAX_UNDECIDED_PER_PEER = 8;
/** Incoming transfers kept in all (waiting, running, and recently finished). */
export const MAX_INCOMING = 64;
/** How often a running download's resume state is saved, in ms. */
export const SAVE_EVERY = 1000;

/** Where an incoming transfer stands. */
export type InState = "offered" | "accepted" | "finishing" | "done" | "failed" | "rejected";

interface Incoming {
  offer: FileOffer;
  from: string;
  name: string;
  state: InState;
  file?: IncomingFile;
  dirty: boolean;
  savedAt: number;
  /** A group transfer's receivers (keys; ours at `index`), as the sender listed them. */
  swarm?: { peers: string[]; index: number };
  /** When each chunk in the window was first asked of the receiver that owns it. */
  asked: Map<number, number>;
  /** When a block last came from each other receiver. */
  heard: Map<string, number>;
}

/**
 * A receiver that sent no block for this long (ms) is passed over: its chunks are asked of
 * the sender. While it sends, the others wait for it however slow the sender's links are.
 */
export const SWARM_SILENCE = 3000;
/** Longest wait (ms) for one chunk from the receiver that owns it, however live it is. */
export const SWARM_PATIENCE = 30_000;

/** The downloads of one peer. */
export class Downloads {
  #out: FileOutputs;
  #all = new Map<string, Incoming>();
  /** Downloads whose progress changed since the last report. */
  readonly changed = new Set<string>();

  #written: (id: string, chunk: number) => void;
  /** Swarms that came before their offer: id → sender, receivers, our index. */
  #early = new Map<string, { from: string; peers: string[]; index: number }>();

  /** Downloads giving out through `out`; `written` hears of every chunk on disk. */
  constructor(out: FileOutputs, written: (id: string, chunk: number) => void = () => {}) {
    this.#out = out;
    this.#written = written;
  }

  /** Transfer `id` as the view sees it. */
  get(id: string): { state: InState; from: string; name: string; offer: FileOffer } | undefined {
    const e = this.#all.get(id);
    return e && { state: e.state, from: e.from, name: e.name, offer: e.offer };
  }

  /** Whether any download is running (requests to repeat, state to save). */
  get running(): boolean {
    for (const e of this.#all.values()) if (e.state === "accepted") return true;
    return false;
  }

  /** An offer from `peer`; `allowed` is false when its rate limit is spent. */
  handleOffer(peer: string, f: FileOffer, allowed: boolean): void {
    const id = toHex(f.id);
    const e = this.#all.get(id);
    if (e) {
      if (e.from !== peer) return this.#out.drop("offer-id-taken");
      if (e.state === "accepted" || e.state === "finishing") return; // its requests answer it
      const status = e.state === "done"
        ? FileStatus.Complete
        : e.state === "rejected"
        ? FileStatus.Rejected
        : e.state === "failed"
        ? FileStatus.Failed
        : FileStatus.Pending;
      this.#out.send(peer, { kind: FileKind.Reply, id: f.id, status });
      return;
    }
    let undecided = 0;
    for (const x of this.#all.values()) if (x.from === peer && x.state === "offered") undecided++;
    if (!allowed || undecided >= MAX_UNDECIDED_PER_PEER || !this.#room()) {
      this.#out.drop("offer-flood");
      this.#out.send(peer, { kind: FileKind.Reply, id: f.id, status: FileStatus.Rejected });
      return;
    }
    const offer = { ...f };
    delete (offer as { kind?: number }).kind;
    const name = safeRelativePath(offer.name).join("/");
    this.#all.set(id, {
      offer,
      from: peer,
      name,
      state: "offered",
      dirty: false,
      savedAt: 0,
      asked: new Map(),
      heard: new Map(),
    });
    const early = this.#early.get(id);
    this.#early.delete(id);
    if (early && early.from === peer) {
      this.#all.get(id)!.swarm = { peers: early.peers, index: early.index };
    }
    this.#out.send(peer, { kind: FileKind.Reply, id: f.id, status: FileStatus.Pending });
    this.#out.event({ state: "offered", id, bytes: 0, from: peer }, offer, name);
  }

  /** Makes room for one more transfer by forgetting the oldest finished one. */
  #room(): boolean {
    if (this.#all.size < MAX_INCOMING) return true;
    for (const [id, e] of this.#all) {
      if (e.state === "done" || e.state === "failed" || e.state === "rejected") {
        this.#all.delete(id);
        return true;
      }
    }
    return false;
  }

  /** Accepts offer `id`, resuming from `bitmap` if given. */
  accept(id: string, now: number, bitmap?: Uint8Array): boolean {
    const e = this.#all.get(id);
    if (!e || e.state !== "offered") return false;
    e.state = "accepted";
    e.file = new IncomingFile(e.offer, bitmap);
    this.#afterWrite(id, e, now);
    return true;
  }

  /** The file of offer `id` is here already, verified, at `path`: nothing is fetched. */
  alreadyHave(id: string, path: string): boolean {
    const e = this.#all.get(id);
    if (!e || (e.state !== "offered" && e.state !== "accepted")) return false;
    e.state = "done";
    e.file = undefined;
    this.#out.send(e.from, { kind: FileKind.Reply, id: e.offer.id, status: FileStatus.Complete });
    this.#out.event(
      { state: "done", id, bytes: e.offer.size, from: e.from, path },
      e.offer,
      e.name,
    );
    return true;
  }

  /** Declines offer `id`. */
  reject(id: string): boolean {
    const e = this.#all.get(id);
    if (!e || e.state !== "offered") return false;
    e.state = "rejected";
    this.#out.send(e.from, { kind: FileKind.Reply, id: e.offer.id, status: FileStatus.Rejected });
    return true;
  }

  /** Gives up download `id` (its partial file stays for a later resume); false if none. */
  cancel(id: string): boolean {
    const e = this.#all.get(id);
    if (!e || (e.state !== "offered" && e.state !== "accepted")) return false;
    this.#fail(id, e, "cancelled", FileStatus.Cancelled, false);
    return true;
  }

  #fail(id: string, e: Incoming, reason: string, status: FileStatusCode, discard: boolean) {
    e.state = "failed";
    e.file = undefined;
    this.#out.send(e.from, { kind: FileKind.Reply, id: e.offer.id, status });
    if (discard) this.#out.ops.push({ op: "discard", id, offer: e.offer });
    this.#out.event({ state: "failed", id, bytes: 0, from: e.from, reason }, e.offer, e.name);
  }

  /** A reply about download `id` from `peer`; false when it is not one of ours. */
  handleReply(peer: string, id: string, status: FileStatusCode): boolean {
    const e = this.#all.get(id);
    if (!e || e.from !== peer) return false;
    if (status === FileStatus.Cancelled && (e.state === "offered" || e.state === "accepted")) {
      e.state = "failed";
      e.file = undefined;
      const reason = "cancelled by the sender";
      this.#out.event({ state: "failed", id, bytes: 0, from: peer, reason }, e.offer, e.name);
    }
    return true;
  }

  /**
   * The sender of `id` lists the receivers of a group transfer (`peers`, ours at `index`). The
   * chunks of the download, once verified, may then be passed on to the others: returned when
   * that is so (the download, our key, the others).
   */
  handleSwarm(
    peer: string,
    id: string,
    peers: string[],
    index: number,
  ): { file: IncomingFile; others: string[] } | undefined {
    const e = this.#all.get(id);
    if (peers.includes(peer)) return undefined;
    if (!e) {
      // Before its offer (sent first, or reordered): kept a while, a few at most.
      if (this.#early.size >= MAX_UNDECIDED_PER_PEER) {
        this.#early.delete(this.#early.keys().next().value!);
      }
      this.#early.set(id, { from: peer, peers, index });
      return undefined;
    }
    if (e.from !== peer) return undefined;
    if (e.state !== "offered" && e.state !== "accepted") return undefined;
    e.swarm = { peers, index };
    if (!e.file?.keepProofs()) return undefined;
    return { file: e.file, others: peers.filter((_, i) => i !== index) };
  }

  /** The swarm of download `id`, if any (for the coordinator, once accepted). */
  swarmOf(id: string): { file: IncomingFile; others: string[] } | undefined {
    const e = this.#all.get(id);
    if (!e?.swarm || !e.file?.keepProofs()) return undefined;
    return { file: e.file, others: e.swarm.peers.filter((_, i) => i !== e.swarm!.index) };
  }

  /** A block from `peer` (its packet already acknowledged). */
  handleData(peer: string, f: Extract<FileFrame, { kind: typeof FileKind.Data }>, now: number) {
    const id = toHex(f.id);
    const e = this.#all.get(id);
    const from = e && (e.from === peer || e.swarm?.peers.includes(peer));
    if (!e || !from || e.state !== "accepted" || !e.file) {
      return this.#out.drop("data-unaccepted");
    }
    if (peer !== e.from) e.heard.set(peer, now);
    const verdict = e.file.handleData(f.chunk, f.offset, f.data, now);
    if (verdict === "corrupt") {
      this.#out.drop("data-corrupt-chunk");
      if (e.file.corrupt > MAX_CORRUPT) {
        this.#fail(id, e, "data failed verification", FileStatus.Failed, true);
      } else this.#requests(e, now);
      return;
    }
    if (verdict !== "stored" && verdict !== "verified") return this.#out.drop(`data-${verdict}`);
    this.changed.add(id);
    if (verdict === "verified") {
      for (let w = e.file.pollWrite(); w; w = e.file.pollWrite()) {
        this.#out.ops.push({ op: "write", id, ...w });
      }
    }
    // The window moves when a chunk is written (handleWritten asks for more), and stale
    // chunks are asked for again on the tick: nothing to ask for per block.
  }

  #requests(e: Incoming, now: number): void {
    if (!e.file) return;
    const want = e.file.wanted(now);
    const by = new Map<string, number[]>();
    for (const c of want) {
      const source = this.#sourceOf(e, c, now);
      let list = by.get(source);
      if (!list) by.set(source, list = []);
      list.push(c);
    }
    for (const [to, list] of by) {
      for (let i = 0; i < list.length; i += MAX_REQUEST_CHUNKS) {
        const chunks = list.slice(i, i + MAX_REQUEST_CHUNKS);
        this.#out.send(to, { kind: FileKind.Request, id: e.offer.id, chunks });
      }
    }
  }

  /**
   * Whom chunk `c` is asked of at `now`: in a group transfer the receiver at `c mod n` (which
   * asks the sender), unless that receiver has been silent for {@link SWARM_SILENCE} or the
   * chunk waited {@link SWARM_PATIENCE} for it; else the sender.
   */
  #sourceOf(e: Incoming, c: number, now: number): string {
    const s = e.swarm;
    if (!s) return e.from;
    const i = c % s.peers.length;
    if (i === s.index) return e.from;
    const owner = s.peers[i]!;
    let asked = e.asked.get(c);
    if (asked === undefined) e.asked.set(c, asked = now);
    const heard = Math.max(e.heard.get(owner) ?? asked, asked);
    if (now - heard >= SWARM_SILENCE || now - asked >= SWARM_PATIENCE) return e.from;
    return owner;
  }

  /** The disk wrote chunk `chunk` of `id` (`ok` false: it failed). */
  handleWritten(id: string, chunk: number, ok: boolean, now: number): void {
    const e = this.#all.get(id);
    if (!e?.file || e.state !== "accepted") return;
    if (!ok) return this.#fail(id, e, "cannot write the file", FileStatus.Failed, false);
    e.file.handleWritten(chunk);
    e.asked.delete(chunk);
    this.#written(id, chunk);
    e.dirty = true;
    this.changed.add(id);
    this.#afterWrite(id, e, now);
  }

  #afterWrite(id: string, e: Incoming, now: number): void {
    if (!e.file) return;
    if (e.file.complete) {
      e.state = "finishing";
      this.#out.ops.push({ op: "finish", id, offer: e.offer });
      return;
    }
    this.#requests(e, now);
  }

  /** The I/O side checked the whole file's SHA-256 and put it in place (or could not). */
  handleFinished(id: string, result: { ok: true; path: string } | { ok: false; reason: string }) {
    const e = this.#all.get(id);
    if (!e || e.state !== "finishing") return;
    if (!result.ok) return this.#fail(id, e, result.reason, FileStatus.Failed, true);
    e.state = "done";
    e.file = undefined;
    this.#out.send(e.from, { kind: FileKind.Reply, id: e.offer.id, status: FileStatus.Complete });
    this.#out.event(
      { state: "done", id, bytes: e.offer.size, from: e.from, path: result.path },
      e.offer,
      e.name,
    );
  }

  /** Housekeeping at `now`: requests again for stale chunks, resume states saved. */
  tick(now: number): void {
    for (const [id, e] of this.#all) {
      if (e.state !== "accepted" || !e.file) continue;
      this.#requests(e, now);
      if (e.dirty && now >= e.savedAt + SAVE_EVERY) {
        e.dirty = false;
        e.savedAt = now;
        this.#out.ops.push({ op: "save", id, state: encodeResume(e.offer, e.file.bitmap()) });
      }
    }
  }

  /** A progress event for download `id`, if it is running. */
  progress(id: string): void {
    const e = this.#all.get(id);
    if (!e?.file || e.state !== "accepted") return;
    this.#out.event(
      { state: "progress", id, bytes: e.file.bytesDone, from: e.from },
      e.offer,
      e.name,
    );
  }
}
