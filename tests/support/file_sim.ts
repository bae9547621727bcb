/**
 * A seeded, virtual-time simulator for the file-transfer core: {@link FileTransfers} nodes
 * joined by bottleneck links (rate, drop-tail queue or a policer, latency, loss, duplication,
 * jitter that reorders), every frame encoded and decoded by the real codec, and an in-memory disk per node
 * whose writes can be held (a receiver that stops reading). One seed gives one trace.
 *
 * @module
 */
import { Sha256 } from "../../lib/crypto/sha256.ts";
import { leafHash, MerkleTree } from "../../lib/files/merkle.ts";
import { type FileEvent, type FileOp, FileTransfers } from "../../lib/files/transfers.ts";
import { toHex } from "../../lib/wire/codec.ts";
import {
  decodeFileFrame,
  encodeFileFrame,
  type FileFrame,
  type FileOffer,
} from "../../lib/wire/file_frame.ts";
import { DATA_OVERHEAD } from "../../lib/files/bulk_sender.ts";
import { prng } from "./prng.ts";

/** One direction of a link. */
export interface LinkConditions {
  /** One-way latency, ms. */
  latency: number;
  /** Bottleneck rate in bytes per ms (1250 = 10 Mbit/s). */
  rate: number;
  /** Bytes the bottleneck queue holds before it drops. */
  queue: number;
  loss: number;
  dup: number;
  /** Extra random delay up to this many ms. */
  jitter: number;
  /**
   * A policer instead of a queue: a token bucket of `queue` bytes filling at `rate`; a packet
   * that finds too few tokens is dropped, the others pass at once (no queueing delay).
   */
  police?: boolean;
}

/** A node: the core and its disk. */
export interface SimNode {
  name: string;
  core: FileTransfers;
  /** Files it can send, by transfer id. */
  files: Map<string, Uint8Array>;
  /** Downloads in progress (and done), by transfer id. */
  downloads: Map<string, Uint8Array>;
  /** Saved resume states. */
  saved: Map<string, Uint8Array>;
  /** Finished files: id → bytes (renamed into place). */
  finished: Map<string, Uint8Array>;
  events: FileEvent[];
  ops: FileOp[];
  /** While true, writes wait (the disk or the application stopped reading). */
  holdWrites: boolean;
  held: FileOp[];
  /** Overrides what reads return (a lying sender). */
  readHook?: (id: string, position: number, length: number) => Uint8Array;
  alive: boolean;
}

interface Flight {
  at: number;
  order: number;
  from: string;
  to: string;
  data: Uint8Array;
}

/** Makes an offer and its tree for `data`. */
export function offerOf(
  id: Uint8Array,
  name: string,
  data: Uint8Array,
  chunkShift = 16,
): { offer: FileOffer; tree: MerkleTree } {
  const size = data.length, chunk = 2 ** chunkShift;
  const leaves: Uint8Array[] = [];
  for (let o = 0; o === 0 || o < size; o += chunk) {
    leaves.push(leafHash(data.subarray(o, Math.min(size, o + chunk))));
  }
  const tree = new MerkleTree(leaves);
  const sha256 = new Sha256().update(data).digest();
  return { offer: { id, name, size, chunkShift, sha256, root: tree.root }, tree };
}

/** The simulator. */
export class FileSim {
  now = 0;
  #rng: () => number;
  #order = 0;
  #queue: Flight[] = [];
  readonly nodes = new Map<string, SimNode>();
  /** Conditions per directed link `a>b`; missing means `defaults`. */
  readonly links = new Map<string, LinkConditions>();
  defaults: LinkConditions;
  #busy = new Map<string, number>();
  /** Test hook: rewrite or drop (return null) a frame in flight. */
  tamper: (from: string, to: string, f: FileFrame) => FileFrame | null = (_a, _b, f) => f;
  /** Datagram bytes sent per directed link. */
  readonly sent = new Map<string, number>();
  /** Datagrams a policer dropped, per directed link. */
  readonly policed = new Map<string, number>();
  #buckets = new Map<string, { tokens: number; at: number }>();
  /** Frames delivered, by kind. */
  readonly delivered = new Map<number, number>();

  constructor(seed: number, defaults: Partial<LinkConditions> = {}) {
    this.#rng = prng(seed);
    this.defaults = {
      latency: 10,
      rate: 1250,
      queue: 64 * 1024,
      loss: 0,
      dup: 0,
      jitter: 0,
      ...defaults,
    };
  }

  /** Adds a node. */
  add(name: string): SimNode {
    const n: SimNode = {
      name,
      core: new FileTransfers(),
      files: new Map(),
      downloads: new Map(),
      saved: new Map(),
      finished: new Map(),
      events: [],
      ops: [],
      holdWrites: false,
      held: [],
      alive: true,
    };
    this.nodes.set(name, n);
    return n;
  }

  /** Conditions of the link from `a` to `b` (a copy of the defaults until set). */
  link(a: string, b: string): LinkConditions {
    let c = this.links.get(`${a}>${b}`);
    if (!c) this.links.set(`${a}>${b}`, c = { ...this.defaults });
    return c;
  }

  /** `node` offers `data` to `peers`; returns the transfer id. */
  offer(from: string, name: string, data: Uint8Array, peers: string[], shift = 16): string {
    const n = this.nodes.get(from)!;
    const id = new Uint8Array(8);
    id[0] = this.#order & 0xff;
    for (let i = 1; i < 8; i++) id[i] = Math.floor(this.#rng() * 256);
    const { offer, tree } = offerOf(id, name, data, shift);
    n.files.set(toHex(id), data);
    n.core.offer(offer, tree, peers, this.now);
    this.pump(n);
    return toHex(id);
  }

  /** Drains a node's outputs: frames onto links, disk ops run, events recorded. */
  pump(n: SimNode): void {
    for (let round = 0; round < 1000; round++) {
      if (!this.#pumpOnce(n)) return;
    }
    throw new Error("pump did not settle");
  }

  #pumpOnce(n: SimNode): boolean {
    let any = false;
    for (let i = 0; i < 100_000; i++) {
      const out = n.core.pollFrame(this.now);
      if (!out) break;
      this.#transmit(n.name, out.to, out.frame);
    }
    for (let op = n.core.pollOp(); op; op = n.core.pollOp()) {
      any = true;
      n.ops.push(op);
      if (op.op === "write" && n.holdWrites) n.held.push(op);
      else this.#disk(n, op);
    }
    for (let e = n.core.pollEvent(); e; e = n.core.pollEvent()) n.events.push(e);
    return any;
  }

  /** Lets held writes through (the receiver reads again). */
  release(name: string): void {
    const n = this.nodes.get(name)!;
    n.holdWrites = false;
    const held = n.held.splice(0);
    for (const op of held) this.#disk(n, op);
    this.pump(n);
  }

  #disk(n: SimNode, op: FileOp): void {
    switch (op.op) {
      case "read": {
        // A file we send, or (a group transfer's relay) the download in progress.
        const from = n.files.get(op.id) ?? n.downloads.get(op.id);
        const data = n.readHook?.(op.id, op.position, op.length) ??
          from?.slice(op.position, op.position + op.length) ?? null;
        n.core.handleRead(op.id, op.chunk, data);
        break;
      }
      case "write": {
        const e = n.core.incoming(op.id)!;
        let buf = n.downloads.get(op.id);
        if (!buf) n.downloads.set(op.id, buf = new Uint8Array(e.offer.size));
        buf.set(op.data, op.position);
        n.core.handleWritten(op.id, op.chunk, true, this.now);
        break;
      }
      case "save":
        n.saved.set(op.id, op.state);
        break;
      case "finish": {
        const buf = n.downloads.get(op.id) ?? new Uint8Array(0);
        const digest = new Sha256().update(buf).digest();
        if (toHex(digest) === toHex(op.offer.sha256)) {
          n.finished.set(op.id, buf);
          n.saved.delete(op.id);
          n.core.handleFinished(op.id, { ok: true, path: `/downloads/${op.id}` });
        } else n.core.handleFinished(op.id, { ok: false, reason: "sha256 mismatch" });
        break;
      }
      case "discard":
        n.downloads.delete(op.id);
        n.saved.delete(op.id);
        break;
    }
  }

  #transmit(from: string, to: string, frame: FileFrame): void {
    const c = this.link(from, to);
    const t = this.tamper(from, to, frame);
    if (!t) return;
    const data = encodeFileFrame(t);
    const size = data.length + DATA_OVERHEAD - 21;
    const key = `${from}>${to}`;
    this.sent.set(key, (this.sent.get(key) ?? 0) + size);
    let leaves = this.now;
    if (c.police) {
      const b = this.#buckets.get(key) ?? { tokens: c.queue, at: this.now };
      b.tokens = Math.min(c.queue, b.tokens + (this.now - b.at) * c.rate);
      b.at = this.now;
      this.#buckets.set(key, b);
      if (b.tokens < size) {
        this.policed.set(key, (this.policed.get(key) ?? 0) + 1);
        return;
      }
      b.tokens -= size;
    } else {
      const busy = Math.max(this.now, this.#busy.get(key) ?? 0);
      if ((busy - this.now) * c.rate + size > c.queue) return; // drop-tail
      leaves = busy + size / c.rate;
      this.#busy.set(key, leaves);
    }
    if (this.#rng() < c.loss) return;
    const copies = this.#rng() < c.dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const at = leaves + c.latency + this.#rng() * c.jitter;
      this.#queue.push({ at, order: this.#order++, from, to, data });
    }
  }

  /** Runs until `until` (virtual ms) or until `done()` holds; returns whether it held. */
  run(until: number, done: () => boolean = () => false): boolean {
    for (let steps = 0; steps < 5_000_000; steps++) {
      if (done()) return true;
      let next = Infinity;
      for (const f of this.#queue) if (f.at < next) next = f.at;
      for (const n of this.nodes.values()) {
        if (!n.alive) continue;
        const t = n.core.nextTimeout(this.now);
        if (t !== undefined && t < next) next = Math.max(t, this.now);
      }
      if (next > until) {
        this.now = until;
        return done();
      }
      this.now = next;
      const due = this.#queue.filter((f) => f.at <= this.now).sort((a, b) =>
        a.at - b.at || a.order - b.order
      );
      this.#queue = this.#queue.filter((f) => f.at > this.now);
      for (const f of due) {
        const n = this.nodes.get(f.to);
        if (!n?.alive) continue;
        const d = decodeFileFrame(f.data);
        if (!d.ok) throw new Error(`undecodable frame: ${d.reason}`);
        this.delivered.set(d.value.kind, (this.delivered.get(d.value.kind) ?? 0) + 1);
        n.core.handleFrame(f.from, d.value, this.now);
        this.pump(n);
      }
      for (const n of this.nodes.values()) {
        if (!n.alive) continue;
        const t = n.core.nextTimeout(this.now);
        if (t !== undefined && t <= this.now) {
          n.core.handleTimeout(this.now);
          this.pump(n);
        }
      }
    }
    throw new Error("simulation did not settle");
  }

  /** Replaces a node's core (a restart: its disk stays, its memory is gone). */
  restart(name: string): SimNode {
    const n = this.nodes.get(name)!;
    n.core = new FileTransfers();
    n.held = [];
    n.holdWrites = false;
    this.#queue = this.#queue.filter((f) => f.to !== name);
    return n;
  }
}
