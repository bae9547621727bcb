/**
 * One remote peer as a joining peer sees it: the end-to-end session, the path machine, the
 * reliable channel, the reassembly of its messages, and the repair of a lost introduction
 * (relayed ANNOUNCEs until it is heard from). Sans-IO: it sends through a
 * {@link RemoteContext} and answers {@link RemotePeer.nextTimeout} from its own state only, so
 * a datagram or timer for one peer costs nothing for the others.
 *
 * @module
 */
import { compareBytes, type Identity, type PairSession } from "./crypto.ts";
import { MAX_MESSAGE, Reassembler } from "./fragment.ts";
import { type Candidate, PathMachine, type PathOptions } from "./path.ts";
import { ReliableChannel, type ReliableOptions } from "./reliable.ts";
import {
  decodeInner,
  encodeInner,
  encodeSealedHeader,
  type Endpoint,
  idHex,
  type InnerFrame,
  InnerKind,
  MsgType,
  type SealedFrame,
  type ServerMsg,
} from "./wire.ts";

/** First gap between ANNOUNCEs to a peer we have not heard from yet (ms); it doubles. */
export const ANNOUNCE_INTERVAL = 500;
/** Longest gap between ANNOUNCEs (ms). */
export const ANNOUNCE_MAX_INTERVAL = 8_000;
/** Least time between two re-introductions asked for because frames failed to open (ms). */
const REKEY_INTERVAL = 2_000;

/** What a remote peer reports to the user. */
export type RemoteEvent =
  | {
    type: "peer";
    name: string;
    path: "direct" | "relay";
    addr: Endpoint | null;
    rtt: number | null;
  }
  | { type: "message"; from: string; text: string };

/** One row of the peer listing. */
export interface PeerInfo {
  /** Peer's name. */
  name: string;
  /** Current path, or `pending` while the first punch round runs. */
  path: "direct" | "relay" | "pending";
  /** Direct endpoint, if direct. */
  addr: Endpoint | null;
  /** Direct path RTT in ms, if direct. */
  rtt: number | null;
  /** Messages queued or in flight to this peer. */
  outstanding: number;
}

/** An introduction from the server, as the remote peer needs it. */
export interface Introduction {
  /** Its peer id. */
  id: Uint8Array;
  /** Its public key. */
  pubkey: Uint8Array;
  /** The pair's introduction epoch. */
  epoch: Uint8Array;
  /** Its name in the room. */
  name: string;
  /** Either side asked never to punch. */
  relayOnly: boolean;
  /** Endpoints to punch to. */
  candidates: Candidate[];
}

/** What a remote peer needs from the client that owns it. */
export interface RemoteContext {
  /** Our peer id. */
  readonly id: Uint8Array;
  /** Our identity (for sessions). */
  readonly identity: Identity;
  /** We never send directly. */
  readonly relayOnly: boolean;
  /** Path machine options. */
  readonly path: Partial<PathOptions>;
  /** Reliable channel options. */
  readonly reliable: Partial<ReliableOptions> | undefined;
  /** Sends a datagram straight to a peer endpoint. */
  direct(to: Endpoint, data: Uint8Array): void;
  /** Sends a message to the server. */
  server(m: ServerMsg): void;
  /** Reports an event to the user. */
  event(e: RemoteEvent): void;
  /** Counts a dropped datagram. */
  drop(reason: string): void;
}

const textDecoder = new TextDecoder();

/** The u32 a fresh channel to this peer sends on: taken from the pair's epoch. */
function streamOf(epoch: Uint8Array): number {
  return ((epoch[0]! << 24) | (epoch[1]! << 16) | (epoch[2]! << 8) | epoch[3]!) >>> 0;
}

/** One remote peer. */
export class RemotePeer {
  /** Its peer id. */
  readonly id: Uint8Array;
  /** Hex of the id (map key). */
  readonly key: string;
  /** Its public key. */
  readonly pubkey: Uint8Array;
  /** Its name in the room. */
  name: string;
  #ctx: RemoteContext;
  #epoch: Uint8Array;
  #session: PairSession;
  #path: PathMachine | null;
  #channel: ReliableChannel;
  #inbox = new Reassembler(MAX_MESSAGE);
  /** True once any authenticated frame came from this peer (so it knows us). */
  #heard = false;
  #nextAnnounce: number;
  #announces = 0;
  /** A path has been reported to the user since the last introduction. */
  #announced = false;
  #lastRekey = -Infinity;
  /** When it left the room, if it has. */
  goneAt: number | undefined;

  private constructor(ctx: RemoteContext, now: number, intro: Introduction, s: PairSession) {
    this.#ctx = ctx;
    this.id = intro.id;
    this.key = idHex(intro.id);
    this.pubkey = intro.pubkey;
    this.name = intro.name;
    this.#epoch = intro.epoch;
    this.#session = s;
    this.#channel = new ReliableChannel(ctx.reliable, streamOf(intro.epoch));
    this.#path = this.#newPath(now, intro);
    this.#nextAnnounce = now;
    this.#settle(now);
  }

  /** Makes the remote for a first introduction; null when its key is unusable. */
  static create(ctx: RemoteContext, now: number, intro: Introduction): RemotePeer | null {
    const s = ctx.identity.sessionWith(intro.pubkey, {
      myId: ctx.id,
      theirId: intro.id,
      epoch: intro.epoch,
    });
    return s ? new RemotePeer(ctx, now, intro, s) : null;
  }

  /** The pair's current introduction epoch. */
  get epoch(): Uint8Array {
    return this.#epoch;
  }

  /** True while the peer is in the room. */
  get present(): boolean {
    return this.goneAt === undefined;
  }

  /** Messages queued or in flight to it. */
  get outstanding(): number {
    return this.#channel.outstanding;
  }

  /** Room left in its send queue, in fragments. */
  get queueRoom(): number {
    return this.#channel.queueRoom;
  }

  /**
   * A repeated or new introduction. A new epoch (either side registered anew) means new
   * session keys; the reliable channel carries on (its streams resynchronise by themselves).
   * Returns false when the new key material is unusable.
   */
  reintroduce(now: number, intro: Introduction): boolean {
    if (compareBytes(intro.epoch, this.#epoch) !== 0) {
      const s = this.#ctx.identity.sessionWith(intro.pubkey, {
        myId: this.#ctx.id,
        theirId: intro.id,
        epoch: intro.epoch,
      });
      if (!s) return false;
      this.#session = s;
      this.#epoch = intro.epoch;
      this.#heard = false;
      this.#announces = 0;
      this.#nextAnnounce = now;
    }
    this.name = intro.name;
    if (this.#path && this.present) {
      this.#path.updateCandidates(now, intro.candidates);
    } else {
      // Back after leaving: a fresh path; sequence numbers continue on the kept channel.
      this.goneAt = undefined;
      this.#path = this.#newPath(now, intro);
      this.#announced = false;
      this.#heard = false;
      this.#announces = 0;
      this.#nextAnnounce = now;
    }
    this.#settle(now);
    return true;
  }

  /** Marks it gone from the room: no timers, no sends until it is introduced again. */
  depart(now: number): boolean {
    if (!this.present) return false;
    this.goneAt = now;
    this.#path = null;
    return true;
  }

  /** Queues the fragments of one message. False (nothing queued) when its queue is full. */
  send(now: number, parts: Uint8Array[]): boolean {
    if (!this.present || this.#channel.queueRoom < parts.length) return false;
    parts.forEach((p, i) => this.#channel.push(p, i < parts.length - 1));
    this.#settle(now);
    return true;
  }

  /** The row for `/peers`. */
  info(): PeerInfo {
    const route = this.#path?.route() ?? null;
    return {
      name: this.name,
      path: this.#announced ? (route ? "direct" : "relay") : "pending",
      addr: route,
      rtt: this.#path?.rtt ?? null,
      outstanding: this.#channel.outstanding,
    };
  }

  /** Earliest time {@link handleTimeout} has work (none while departed). */
  nextTimeout(): number | undefined {
    if (!this.#path) return undefined;
    let t = this.#path.nextTimeout() ?? Infinity;
    const c = this.#channel.nextTimeout();
    if (c !== undefined && c < t) t = c;
    if (!this.#heard && this.#nextAnnounce < t) t = this.#nextAnnounce;
    return t === Infinity ? undefined : t;
  }

  /** Advances its timers. */
  handleTimeout(now: number): void {
    if (!this.#path) return;
    this.#path.handleTimeout(now);
    this.#settle(now);
  }

  /** Handles a sealed frame addressed to us from this peer (`via` null: it came relayed). */
  handleSealed(now: number, s: SealedFrame, via: Endpoint | null): void {
    const path = this.#path;
    if (!path) return this.#ctx.drop("departed-peer");
    const plain = this.#session.open(s.counter, s.header, s.body);
    if (!plain) {
      // Forged, replayed, or sealed under an epoch we missed: ask for a fresh introduction.
      this.#ctx.drop("auth-failed");
      if (now - this.#lastRekey >= REKEY_INTERVAL) {
        this.#lastRekey = now;
        this.#ctx.server({ type: MsgType.Repunch, id: this.#ctx.id, target: this.id });
      }
      return;
    }
    this.#heard = true;
    const inner = decodeInner(plain);
    if (!inner.ok) return this.#ctx.drop(inner.reason);
    const f = inner.value;
    if (via) path.onDirectTraffic(now, via);
    switch (f.kind) {
      case InnerKind.Probe:
        if (!via) return this.#ctx.drop("probe-via-relay");
        path.onProbe(now, via);
        this.#sendFrame(now, { kind: InnerKind.ProbeAck, txid: f.txid, observed: via }, via);
        break;
      case InnerKind.ProbeAck:
        if (!via) return this.#ctx.drop("probe-via-relay");
        path.onProbeAck(now, via, f.txid);
        break;
      case InnerKind.Data:
        this.#data(now, f, via);
        break;
      case InnerKind.Ack:
        this.#channel.onAck(now, f);
        break;
      case InnerKind.Announce:
        break; // It knows us, and we know it: nothing to do.
    }
    this.#settle(now);
  }

  #data(
    now: number,
    f: Extract<InnerFrame, { kind: typeof InnerKind.Data }>,
    via: Endpoint | null,
  ): void {
    // A stream that restarts mid-message needs no special care: fragments carry `first`.
    const { deliver, ack } = this.#channel.onData(f);
    // Answer the way the data came, so acks flow even while paths disagree.
    this.#sendFrame(now, { kind: InnerKind.Ack, ...ack }, via);
    for (const part of deliver) {
      const r = this.#inbox.push(part.first, part.more, part.text);
      if (r.kind === "too-long" || r.kind === "orphan") this.#ctx.drop(`fragment-${r.kind}`);
      else if (r.kind === "message") {
        this.#ctx.event({ type: "message", from: this.name, text: textDecoder.decode(r.bytes) });
      }
    }
  }

  #newPath(now: number, intro: Introduction): PathMachine {
    return new PathMachine(now, intro.candidates, {
      relayOnly: this.#ctx.relayOnly || intro.relayOnly,
      initiator: compareBytes(this.#ctx.id, intro.id) < 0,
      options: this.#ctx.path,
    });
  }

  /** Sends what is due: announces, channel data, path actions; reports path changes. */
  #settle(now: number): void {
    const path = this.#path;
    if (!path) return;
    if (!this.#heard && now >= this.#nextAnnounce) {
      // Until we hear from it, a relayed ANNOUNCE (at 0, 0.5, 1.5, 3.5 s …, gaps capped at
      // 8 s) makes a peer whose introduction of us was lost ask the server to resync.
      this.#sendFrame(now, { kind: InnerKind.Announce }, null);
      this.#nextAnnounce = now +
        Math.min(ANNOUNCE_INTERVAL * 2 ** this.#announces++, ANNOUNCE_MAX_INTERVAL);
    }
    for (const d of this.#channel.pollData(now)) {
      this.#sendFrame(now, { kind: InnerKind.Data, ...d });
      // Only a timed-out resend says something about the path; a path change's resends don't.
      if (d.reason === "timeout" && path.route()) path.suspect(now);
    }
    for (let a = path.pollAction(); a; a = path.pollAction()) {
      if (a.type === "probe") {
        this.#sendFrame(now, { kind: InnerKind.Probe, txid: a.txid }, a.to);
      } else {
        this.#ctx.server({ type: MsgType.Repunch, id: this.#ctx.id, target: this.id });
      }
    }
    let changed;
    for (let e = path.pollEvent(); e; e = path.pollEvent()) changed = e;
    if (!changed) return;
    this.#announced = true;
    if (changed.rtt !== null) this.#channel.seedRtt(changed.rtt);
    // Resend whatever is in flight over the new path right away.
    this.#channel.expedite(now);
    for (const d of this.#channel.pollData(now)) {
      this.#sendFrame(now, { kind: InnerKind.Data, ...d });
    }
    const { path: p, addr, rtt } = changed;
    this.#ctx.event({ type: "peer", name: this.name, path: p, addr, rtt });
  }

  /** Seals `f` and sends it to `to`, or along the path (direct or relay) when `to` is absent. */
  #sendFrame(now: number, f: InnerFrame, to?: Endpoint | null): void {
    const counter = this.#session.nextCounter();
    const header = encodeSealedHeader(this.#ctx.id, this.id, counter);
    const body = this.#session.seal(counter, header, encodeInner(f));
    const frame = new Uint8Array(header.length + body.length);
    frame.set(header);
    frame.set(body, header.length);
    const dest = to === undefined ? this.#path?.route() ?? null : to;
    if (dest && !this.#ctx.relayOnly) {
      if (to === undefined) this.#path?.onSentDirect(now);
      this.#ctx.direct(dest, frame);
    } else {
      this.#ctx.server({ type: MsgType.Relay, from: this.#ctx.id, to: this.id, payload: frame });
    }
  }
}
