/**
 * One remote peer as a joining peer sees it: the encrypted link ({@link SecureLink}: the two
 * room-secret handshakes and their keys), the path machine, the reliable channel and the
 * reassembly of its messages. Nothing but handshake messages is sent before our handshake
 * completes; the path machine starts once it has. Handshake messages go through the relay and
 * directly to the peer's candidates (each direct copy of message 1 with a fresh cookie, within
 * the client's handshake budget); a message 2 that comes back directly with a copy's cookie
 * starts the path machine on that endpoint, already direct. Sans-IO: it sends through a
 * {@link RemoteContext} and answers
 * {@link RemotePeer.nextTimeout} from its own state only, so a datagram or timer for one peer
 * costs nothing for the others.
 *
 * @module
 */
import {
  type BirthdayPool,
  BirthdaySearch,
  type BirthdayStats,
  type BirthdayView,
  type NatInfo,
} from "./path/birthday.ts";
import { bytesEqual } from "../core/bytes.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { normalizeName } from "../core/names.ts";
import { MAX_MESSAGE, Reassembler } from "./fragment.ts";
import type { Half, NoiseFactory } from "./handshake/handshake.ts";
import { HandshakeTransport, type Proof, type RouteView } from "./handshake/transport.ts";
import { type Candidate, PathMachine, type PathOptions, type ProbeBudget } from "./path/path.ts";
import { ReliableChannel, type ReliableOptions, type ReliableStats } from "./reliable.ts";
import type { TokenBucket } from "../core/limits.ts";
import { SecureLink } from "./handshake/secure_link.ts";
import { type Endpoint, isUsableCandidate } from "../wire/address.ts";
import { idHex, MsgType } from "../wire/header.ts";
import {
  decodeInner,
  encodeInner,
  type HandshakeFrame,
  type InnerFrame,
  InnerKind,
  NatMapping,
  type SealedFrame,
} from "../wire/peer_frame.ts";
import type { MsgOf } from "../wire/server_msg.ts";

/** What a remote peer asks the server for; the client adds its registration token. */
export type PeerRequest =
  | Omit<MsgOf<typeof MsgType.Relay>, "token">
  | Omit<MsgOf<typeof MsgType.Repunch>, "token">;

/** Failed frames in a row (since the last good one) that make us warn about tampering. */
const TAMPER_THRESHOLD = 5;
/** Least time between two warnings about one peer (ms). */
const WARN_INTERVAL = 60_000;
/** Give up on messages the peer has not acknowledged for this long (ms). */
export const GIVE_UP_AFTER = 60_000;
/** A peer whose oldest unacknowledged message is older than this (ms) is not taking messages. */
export const STALLED_AFTER = 3_000;

/** What a remote peer reports to the user. */
export type RemoteEvent =
  | {
    type: "peer";
    name: string;
    fingerprint: string;
    path: "direct" | "relay";
    addr: Endpoint | null;
    rtt: number | null;
    /** On the relay: the supernode's name, or null for the server's relay. */
    via?: string | null;
  }
  | { type: "message"; from: string; text: string }
  | {
    type: "warning";
    kind: "identity-changed" | "identity-shared" | "auth-failed" | "undelivered" | "name-clash";
    name: string | null;
    message: string;
  };

/** One row of the peer listing. */
export interface PeerInfo {
  /** Peer's name. */
  name: string;
  /** Its identity's fingerprint. */
  fingerprint: string;
  /** Current path, or `pending` while the first punch round runs. */
  path: "direct" | "relay" | "pending";
  /** Direct endpoint, if direct. */
  addr: Endpoint | null;
  /** Direct path RTT in ms, if direct. */
  rtt: number | null;
  /** On the relay: the supernode relaying, or null (or absent) for the server. */
  via?: string | null;
  /** Messages queued or in flight to this peer. */
  outstanding: number;
}

/** An introduction from the server, as the remote peer needs it. */
export interface Introduction {
  /** Its peer id. */
  id: Uint8Array;
  /** The pair's introduction epoch (new when either side registers anew). */
  epoch: Uint8Array;
  /** Either side asked never to punch. */
  relayOnly: boolean;
  /** Endpoints to punch to. */
  candidates: Candidate[];
  /**
   * Who introduced it: `server` (default) or `supernode:<id>`. Epochs are compared per
   * source, so a second rendezvous point introducing the same pair never forces a new
   * handshake; a new epoch from the same source (either side registered there anew) does.
   */
  source?: string;
}

/** What a remote peer needs from the client that owns it. */
export interface RemoteContext {
  /** Our peer id. */
  readonly id: Uint8Array;
  /** The opaque room id (bound into every handshake). */
  readonly roomId: Uint8Array;
  /** Our identity's public key (to notice a second process using it). */
  readonly identityKey: Uint8Array;
  /** Our name, sent inside handshakes. */
  name(): string;
  /** Makes Noise handshakes with our identity and the room's secret. */
  readonly noise: NoiseFactory;
  /** Names and fingerprints seen before in this room. */
  readonly knownPeers: ReadonlyMap<string, string>;
  /** We never send directly. */
  readonly relayOnly: boolean;
  /** Path machine options. */
  readonly path: Partial<PathOptions>;
  /** The client-wide budget for probes to endpoints that never answered. */
  readonly probeBudget: ProbeBudget;
  /**
   * The client-wide budget for direct handshake copies (and direct answers) to endpoints that
   * never answered: separate, so opening NATs does not eat the probes that upgrade later.
   */
  readonly handshakeBudget: ProbeBudget;
  /**
   * The client-wide budget for reading direct message 2s that echo no cookie of ours: each costs
   * a Diffie-Hellman before it can fail, and ids and attempts travel in clear.
   */
  readonly uncookied: TokenBucket;
  /** Addresses STUN servers saw for us beyond the server's view, to tell peers about. */
  extraCandidates(): Endpoint[];
  /** The fingerprint of another present peer already called `name`, if there is one. */
  nameHolder(name: string, except: RemotePeer): string | undefined;
  /** Reliable channel options. */
  readonly reliable: Partial<ReliableOptions> | undefined;
  /** Sends a datagram straight to a peer endpoint, from our socket `via` (0: the main one). */
  direct(to: Endpoint, data: Uint8Array, via?: number): void;
  /** What we know of our own NAT's mapping (from STUN). */
  nat(): NatInfo;
  /** The client-wide owner of auxiliary sockets for birthday searches. */
  readonly birthday: BirthdayPool;
  /** Randomness (birthday probe ports). */
  readonly random: (n: number) => Uint8Array;
  /**
   * Sends a request about peer `key` (its id in hex) to the server; a RELAY may go through a
   * supernode instead.
   */
  server(m: PeerRequest, key: string): void;
  /** The supernode that relays to peer `id`, by name, or null for the server's relay. */
  relayVia(id: Uint8Array): string | null;
  /** Frames relayed to peer `id` by a supernode stalled: use the server's relay instead. */
  relayStalled(id: Uint8Array): void;
  /** Our RTTs to the server and our supernode, to tell peers (null: nothing measured yet). */
  relays(): Extract<InnerFrame, { kind: typeof InnerKind.Relays }> | null;
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
  /** Its name in the room, as it told us in the handshake ("" until then). */
  name = "";
  /** Its identity's fingerprint, once the handshake completed. */
  fingerprint: string | undefined;
  #ctx: RemoteContext;
  #intro: Introduction;
  #link: SecureLink;
  #path: PathMachine | null = null;
  #channel: ReliableChannel;
  #inbox = new Reassembler(MAX_MESSAGE);
  /** Where the latest DATA came from (null: relayed): a delayed ACK goes back that way. */
  #ackVia: Endpoint | null = null;
  /** Our socket the latest DATA arrived on. */
  #ackSlot = 0;
  /** The peer's NAT mapping, as it told us (NAT frame). */
  #peerNat: NatInfo | null = null;
  /** Our NAT's mapping has to be told to this peer. */
  #natPending = true;
  /** Our relay RTTs have to be told to this peer. */
  #relaysPending = true;
  /** The peer's RTTs to the server and to its supernode (RELAYS frame), once told. */
  peerRelays: { serverRtt: number; supernode: string; supernodeRtt: number } | null = null;
  #search: BirthdaySearch;
  /** A path has been reported to the user since the last introduction. */
  #announced = false;
  /** The relay last reported (a supernode's name, or null for the server). */
  #via: string | null = null;
  /** The last epoch from each source of introductions (at most a few sources). */
  #epochs = new Map<string, string>();
  #failures = 0;
  #lastWarn = -Infinity;
  /** Our extra candidates still have to be told to this peer (a new path started). */
  #offerPending = false;
  /** Refused for good (it turned out to use our own identity). */
  #blocked = false;
  /** How handshake messages travel: relayed, and directly with cookies that prove paths. */
  #route: HandshakeTransport;
  /** Where the peer's handshake messages last came from directly, before a path existed. */
  #seenAt: { addr: Endpoint; via: number } | null = null;
  /** The peer's handshake attempt we completed and still have to confirm (0: none). */
  #confirmPending = 0;
  /** A direct path to it has worked (since it was last introduced). */
  wasDirect = false;
  /** When it left the room, if it has. */
  goneAt: number | undefined;
  /** Message parts given up on (never acknowledged). */
  undelivered = 0;

  /** Makes the remote for a first introduction and starts (or awaits) the handshake. */
  constructor(ctx: RemoteContext, now: number, intro: Introduction) {
    this.#ctx = ctx;
    this.id = intro.id;
    this.key = idHex(intro.id);
    this.#intro = intro;
    this.#epochs.set(intro.source ?? "server", idHex(intro.epoch));
    this.#channel = new ReliableChannel(ctx.reliable, streamOf(intro.epoch));
    this.#search = new BirthdaySearch(ctx.birthday, ctx.random);
    this.#route = new HandshakeTransport({
      id: ctx.id,
      relay: (payload) =>
        ctx.server({ type: MsgType.Relay, from: ctx.id, to: this.id, payload }, this.key),
      direct: (to, data, via) => ctx.direct(to, data, via),
      random: ctx.random,
      budget: ctx.handshakeBudget,
    }, this.id);
    this.#link = this.#newLink(now);
    this.#link.rekey(now);
    this.#settle(now);
  }

  #newLink(now: number): SecureLink {
    const c = this.#ctx;
    return new SecureLink({
      now,
      myId: c.id,
      theirId: this.id,
      roomId: c.roomId,
      myName: c.name(),
      noise: c.noise,
    });
  }

  /** The pair's current introduction epoch. */
  get epoch(): Uint8Array {
    return this.#intro.epoch;
  }

  /** True while the peer is in the room. */
  get present(): boolean {
    return this.goneAt === undefined;
  }

  /** True once the handshake completed (it is a proven member of the room). */
  get established(): boolean {
    return this.#link.established && this.fingerprint !== undefined && !this.#blocked;
  }

  /** Counters of the reliable channel with it. */
  get channelStats(): Readonly<ReliableStats> {
    return this.#channel.stats;
  }

  /** Messages queued or in flight to it. */
  get outstanding(): number {
    return this.#channel.outstanding;
  }

  /**
   * Payloads queued behind the window while it is taking messages (present, established, and
   * acknowledging: nothing in flight is older than {@link STALLED_AFTER}); else 0. Input can
   * wait on this without a silent peer holding it up.
   */
  backlog(now: number): number {
    const oldest = this.#channel.oldestSentAt();
    if (oldest === undefined || now - oldest > STALLED_AFTER || !this.present) return 0;
    return this.established ? this.#channel.queued : 0;
  }

  /**
   * A repeated or new introduction. A new epoch (either side registered anew) means a new
   * handshake; the reliable channel carries on (its streams resynchronise by themselves).
   */
  reintroduce(now: number, intro: Introduction): void {
    const source = intro.source ?? "server";
    const last = this.#epochs.get(source);
    const epoch = idHex(intro.epoch);
    const rekey = last !== undefined && last !== epoch;
    if (!this.#epochs.has(source) && this.#epochs.size >= 4) this.#epochs.clear();
    this.#epochs.set(source, epoch);
    // The server's view of a present peer's endpoints wins; a supernode's counts when it is the
    // one that introduced the peer (the server gone), or with a new epoch.
    const current = source === "server" || source === (this.#intro.source ?? "server");
    if (!current && this.present && !rekey) return this.#settle(now);
    this.#intro = intro;
    if (rekey) this.#link.rekey(now);
    if (!this.present) {
      // Back after leaving: a fresh path once the link is up; sequence numbers continue.
      this.goneAt = undefined;
      this.#announced = false;
    } else if (this.#path) {
      this.#path.updateCandidates(now, intro.candidates);
    }
    this.#settle(now);
  }

  /** Sends a delayed ACK now, if one is pending (before leaving: it would never go out). */
  flushAck(now: number): void {
    if (!this.present || !this.established) return;
    const ack = this.#channel.takeAck();
    if (ack) this.#sendFrame(now, { kind: InnerKind.Ack, ...ack }, this.#ackVia, this.#ackSlot);
  }

  /** Marks it gone from the room: no timers, no sends until it is introduced again. */
  depart(now: number): boolean {
    if (!this.present) return false;
    this.goneAt = now;
    this.#path = null;
    this.#search.close();
    return true;
  }

  /**
   * Queues the fragments of one message. False (nothing queued) when its queue is full. With
   * `settle` false nothing goes out until {@link flush}, so the messages of one step can share
   * DATA frames.
   */
  send(now: number, parts: Uint8Array[], settle = true): boolean {
    if (!this.present || this.#channel.queueRoom < parts.length) return false;
    parts.forEach((p, i) => this.#channel.push(p, i < parts.length - 1));
    if (settle) this.#settle(now);
    return true;
  }

  /** Sends what is due, such as messages queued by {@link send} without settling. */
  flush(now: number): void {
    this.#settle(now);
  }

  /** Tells the peer our extra candidates (sealed; repeated whenever a new path starts). */
  offerCandidates(now: number): void {
    this.#offerPending = false;
    const endpoints = this.#ctx.extraCandidates();
    if (!this.established || !this.present || endpoints.length === 0) return;
    this.#sendFrame(now, { kind: InnerKind.Candidates, endpoints });
  }

  /** Tells the peer what we know of our NAT's mapping (sealed; for birthday searches). */
  offerNat(now: number): void {
    this.#natPending = false;
    const nat = this.#ctx.nat();
    if (!this.established || !this.present || nat.mapping === NatMapping.Unknown) return;
    this.#sendFrame(now, { kind: InnerKind.Nat, ...nat }, null);
  }

  /** Tells the peer our RTTs to the server and our supernode (sealed; for the relay choice). */
  offerRelays(now: number): void {
    this.#relaysPending = false;
    const f = this.#ctx.relays();
    if (!this.established || !this.present || !f) return;
    this.#sendFrame(now, f, null);
  }

  /** Birthday search counters with this peer. */
  get birthday(): Readonly<BirthdayStats> {
    return this.#search.stats;
  }

  /** The row for `/peers`, once established. */
  info(): PeerInfo | undefined {
    if (!this.established) return undefined;
    const route = this.#path?.route() ?? null;
    return {
      name: this.name,
      fingerprint: this.fingerprint!,
      path: this.#announced ? (route ? "direct" : "relay") : "pending",
      addr: route,
      rtt: this.#path?.rtt ?? null,
      via: route ? null : this.#ctx.relayVia(this.id),
      outstanding: this.#channel.outstanding,
    };
  }

  /**
   * The relay that reaches this peer may have changed (a supernode came or went): a relayed
   * path is reported again with its new relay, and what is in flight is resent through it.
   */
  refreshRoute(now: number): void {
    if (this.present) this.#settle(now);
  }

  /** Earliest time {@link handleTimeout} has work (none while departed). */
  nextTimeout(): number | undefined {
    if (!this.present) return undefined;
    let t = this.#link.nextTimeout() ?? Infinity;
    if (this.#path) {
      t = Math.min(t, this.#path.nextTimeout() ?? Infinity);
      t = Math.min(t, this.#channel.nextTimeout() ?? Infinity);
      const view = this.#searchQuiet(this.#path) ? null : this.#searchView();
      if (view) t = Math.min(t, this.#search.nextTimeout(view) ?? Infinity);
    }
    const oldest = this.#channel.oldestSentAt();
    if (oldest !== undefined) t = Math.min(t, oldest + GIVE_UP_AFTER);
    return t === Infinity ? undefined : t;
  }

  /** Advances its timers. */
  handleTimeout(now: number): void {
    if (!this.present) return;
    const oldest = this.#channel.oldestSentAt();
    if (oldest !== undefined && now - oldest >= GIVE_UP_AFTER) this.#giveUp(now);
    this.#link.handleTimeout(now);
    this.#path?.handleTimeout(now);
    this.#settle(now);
  }

  /**
   * Handles a HANDSHAKE frame from this peer, relayed (`from` null) or sent directly from
   * `from` to our socket `slot`.
   */
  handleHandshake(now: number, f: HandshakeFrame, from: Endpoint | null = null, slot = 0): void {
    if (!this.present || this.#blocked) return this.#ctx.drop("departed-peer");
    if (
      from && f.stage === 2 && !this.#route.answersCopy(f.attempt, f.cookie ?? 0, from, slot) &&
      !this.#ctx.uncookied.take(now, 1)
    ) {
      return this.#ctx.drop("handshake-uncookied");
    }
    const r = this.#link.handle(now, f.stage, f.attempt, f.message);
    if (from && r.kind !== "ignored" && r.kind !== "failed" && r.kind !== "mismatch") {
      // The peer's messages come from its NAT's mapping towards us: worth probing.
      if (this.#path) this.#path.onPeerSeen(now, from, slot);
      else this.#seenAt = { addr: from, via: slot };
    }
    switch (r.kind) {
      case "failed":
        this.#failed(now, "handshake");
        break;
      case "mismatch":
        this.#warn(
          now,
          "auth-failed",
          this.name || null,
          `Refused a peer whose two handshakes showed different identities (${
            fingerprint(r.first)
          } and ${
            fingerprint(r.second)
          }): someone with the room secret is interfering; check fingerprints with your peers`,
        );
        this.#blocked = true;
        this.#path = null;
        break;
      case "answer":
        this.#route.answer(
          now,
          { attempt: r.attempt, message: r.message, cookie: f.cookie ?? 0 },
          from,
          slot,
          this.#routeView(),
        );
        break;
      case "sending":
        this.#established(
          now,
          r.half,
          this.#route.proof(now, f.attempt, f.cookie ?? 0, from, slot),
        );
        break;
      case "again": {
        const proven = this.#route.proof(now, f.attempt, f.cookie ?? 0, from, slot);
        if (proven) this.#path?.onHandshakeDirect(now, proven.addr, proven.via, proven.rtt);
        break;
      }
      case "receiving":
      case "reconfirm":
        this.#confirmPending = r.kind === "receiving" ? r.half.attempt : r.attempt;
        break;
    }
    this.#settle(now);
  }

  /** What the handshake route needs to know of this peer now. */
  #routeView(): RouteView {
    return {
      relayOnly: this.#ctx.relayOnly || this.#intro.relayOnly,
      candidates: this.#path?.candidates ?? this.#intro.candidates,
      path: this.#path,
    };
  }

  #established(
    now: number,
    e: Half,
    proven: Proof | null,
  ): void {
    const fp = fingerprint(e.remoteStatic);
    const checked = normalizeName(e.name);
    if (!checked.ok || checked.name !== e.name) {
      // Honest clients only send normalised names from the allowed set.
      this.#warn(
        now,
        "auth-failed",
        null,
        `Refused peer ${fp}: its name is not allowed (${
          checked.ok ? "not normalised" : checked.reason
        })`,
      );
      this.#blocked = true;
      this.#path = null;
      return;
    }
    if (bytesEqual(e.remoteStatic, this.#ctx.identityKey)) {
      this.#warn(
        now,
        "identity-shared",
        null,
        `Another p2p process uses your identity (${fp}) in this room; give each its own with --identity FILE`,
      );
      this.#blocked = true;
      this.#path = null;
      return;
    }
    const known = this.#ctx.knownPeers.get(e.name);
    if ((known !== undefined && known !== fp) || (this.fingerprint && this.fingerprint !== fp)) {
      this.#warn(
        now,
        "identity-changed",
        e.name,
        `${e.name} has a new identity (${fp}, was ${
          known ?? this.fingerprint
        }); check the fingerprint with them before trusting it`,
      );
    }
    const holder = this.#ctx.nameHolder(e.name, this);
    if (holder !== undefined && holder !== fp) {
      // Names are unique by tag at the server, but a member could claim another's name in its
      // handshake: both show their fingerprints, so the user can tell who is who.
      this.#warn(
        now,
        "name-clash",
        e.name,
        `Two peers call themselves ${e.name}: fingerprints ${holder} and ${fp}; ask them which is real`,
      );
    }
    this.name = e.name;
    this.fingerprint = fp;
    this.#failures = 0;
    if (!this.present) return;
    // The path starts now, on the proven direct path if the handshake found one.
    if (!this.#path) this.#path = this.#newPath(now, proven);
    else if (proven) this.#path.onHandshakeDirect(now, proven.addr, proven.via, proven.rtt);
  }

  /**
   * Handles a sealed frame addressed to us from this peer (`via` null: it came relayed), that
   * arrived on our socket `slot` (0: the main one).
   */
  handleSealed(now: number, s: SealedFrame, via: Endpoint | null, slot = 0): void {
    if (!this.present || this.#blocked) return this.#ctx.drop("departed-peer");
    const plain = this.#link.open(s);
    if (plain === "replay") return this.#ctx.drop("replayed");
    if (plain === "unkeyed") return this.#ctx.drop("unkeyed");
    if (plain === "failed") return this.#failed(now, "frame");
    this.#failures = 0;
    // Its frames can overtake the message 2 of our handshake: nothing to do with them yet.
    const path = this.#path;
    if (!path || !this.established) return this.#ctx.drop("not-established");
    const inner = decodeInner(plain);
    if (!inner.ok) return this.#ctx.drop(inner.reason);
    const f = inner.value;
    if (via) path.onDirectTraffic(now, via, slot);
    switch (f.kind) {
      case InnerKind.Probe:
        if (!via) return this.#ctx.drop("probe-via-relay");
        path.onProbe(now, via, slot);
        this.#sendFrame(now, { kind: InnerKind.ProbeAck, txid: f.txid, observed: via }, via, slot);
        break;
      case InnerKind.ProbeAck:
        if (!via) return this.#ctx.drop("probe-via-relay");
        path.onProbeAck(now, via, f.txid, slot);
        break;
      case InnerKind.Data:
        this.#data(now, f, via, slot);
        break;
      case InnerKind.Ack:
        this.#channel.onAck(now, f);
        break;
      case InnerKind.Announce:
        this.#link.confirm(f.attempt);
        break;
      case InnerKind.Candidates:
        path.addCandidates(now, f.endpoints.filter((e) => isUsableCandidate(e)));
        break;
      case InnerKind.Nat:
        this.#peerNat = { mapping: f.mapping, ports: f.ports };
        break;
      case InnerKind.Relays:
        this.peerRelays = {
          serverRtt: f.serverRtt,
          supernode: idHex(f.supernode),
          supernodeRtt: f.supernodeRtt,
        };
        break;
      case InnerKind.Birthday: {
        const view = this.#searchView();
        if (view) this.#search.onFrame(now, f, view);
        break;
      }
    }
    this.#settle(now);
  }

  /** The peer acknowledged nothing for GIVE_UP_AFTER: drop what waits for it and say so. */
  #giveUp(now: number): void {
    const n = this.#channel.abandon();
    this.undelivered += n;
    const who = this.name || `peer ${this.key.slice(0, 8)}`;
    this.#warn(
      now,
      "undelivered",
      this.name || null,
      `${who} acknowledged nothing for ${
        GIVE_UP_AFTER / 1000
      } s; ${n} message parts to it were dropped`,
    );
  }

  /** Counts a frame that did not authenticate; many in a row are worth telling the user. */
  #failed(now: number, what: "handshake" | "frame"): void {
    this.#ctx.drop(what === "handshake" ? "handshake-failed" : "auth-failed");
    if (what === "frame" && ++this.#failures < TAMPER_THRESHOLD) return;
    const who = this.name || `peer ${this.key.slice(0, 8)}`;
    this.#warn(
      now,
      "auth-failed",
      this.name || null,
      `Could not authenticate ${who}: tampered introduction or wrong room secret`,
    );
  }

  #warn(
    now: number,
    kind: "identity-changed" | "identity-shared" | "auth-failed" | "undelivered" | "name-clash",
    name: string | null,
    message: string,
  ): void {
    if (now - this.#lastWarn < WARN_INTERVAL && kind === "auth-failed") return;
    this.#lastWarn = now;
    this.#ctx.event({ type: "warning", kind, name, message });
  }

  #data(
    now: number,
    f: Extract<InnerFrame, { kind: typeof InnerKind.Data }>,
    via: Endpoint | null,
    slot: number,
  ): void {
    // A stream that restarts mid-message needs no special care: fragments carry `first`.
    const { deliver, ack, ackNow } = this.#channel.onData(f, now);
    // Data proves the peer reachable: say so before its first message, even if the path
    // machine has not decided yet (it reports again when it does).
    if (!this.#announced && deliver.length > 0) this.#announce(via ? "direct" : "relay", via);
    // Answer the way the data came, so acks flow even while paths disagree (a delayed ACK
    // goes out from #settle when due).
    this.#ackVia = via;
    this.#ackSlot = slot;
    if (ackNow) this.#sendFrame(now, { kind: InnerKind.Ack, ...ack }, via, slot);
    for (const part of deliver) {
      const r = this.#inbox.push(part.first, part.more, part.text);
      if (r.kind === "too-long" || r.kind === "orphan") this.#ctx.drop(`fragment-${r.kind}`);
      else if (r.kind === "message") {
        this.#ctx.event({ type: "message", from: this.name, text: textDecoder.decode(r.bytes) });
      }
    }
  }

  #newPath(
    now: number,
    proven: Proof | null = null,
  ): PathMachine {
    this.#offerPending = this.#ctx.extraCandidates().length > 0;
    this.#natPending = true;
    this.#relaysPending = true;
    const path = new PathMachine(now, this.#intro.candidates, {
      relayOnly: this.#ctx.relayOnly || this.#intro.relayOnly,
      initiator: this.#link.leader,
      options: this.#ctx.path,
      budget: this.#ctx.probeBudget,
      ...(proven ? { proven } : {}),
    });
    const seen = this.#seenAt;
    this.#seenAt = null;
    if (seen) path.onPeerSeen(now, seen.addr, seen.via);
    return path;
  }

  /** Sends what is due: handshake messages, channel data, path actions; reports path changes. */
  #settle(now: number): void {
    for (let h = this.#link.poll(); h; h = this.#link.poll()) {
      this.#route.send(now, h, this.#routeView());
    }
    if (!this.present || this.#blocked || !this.established) {
      // A refused pair's search would never run again: its sockets go back now.
      if (this.#blocked) this.#search.close();
      return;
    }
    this.#path ??= this.#newPath(now);
    const path = this.#path;
    if (this.#confirmPending) {
      // We completed the peer's handshake: tell it, so it stops repeating message 3 and
      // seals with its new key.
      this.#sendFrame(now, { kind: InnerKind.Announce, attempt: this.#confirmPending });
      this.#confirmPending = 0;
    }
    if (this.#offerPending) this.offerCandidates(now);
    if (this.#natPending) this.offerNat(now);
    if (this.#relaysPending) this.offerRelays(now);
    for (const d of this.#channel.pollData(now)) {
      this.#sendFrame(now, { kind: InnerKind.Data, ...d });
      // Only a timed-out resend says something about the path; a path change's resends don't.
      if (d.reason !== "timeout") continue;
      if (path.route()) path.suspect(now);
      else if (this.#via !== null && this.#stalledFor(now) >= STALLED_AFTER) {
        // Relayed by a supernode and nothing acknowledged for a while: the server relays.
        this.#ctx.relayStalled(this.id);
      }
    }
    const ack = this.#channel.pollAck(now);
    if (ack) this.#sendFrame(now, { kind: InnerKind.Ack, ...ack }, this.#ackVia, this.#ackSlot);
    this.#drive(now, path);
    for (let a = path.pollAction(); a; a = path.pollAction()) {
      if (a.type === "probe") {
        // Queued before the search let that socket go: sending would open it again.
        if (a.via && !this.#search.holds(a.via)) continue;
        this.#sendFrame(now, { kind: InnerKind.Probe, txid: a.txid }, a.to, a.via);
      } else {
        this.#ctx.server({ type: MsgType.Repunch, id: this.#ctx.id, target: this.id }, this.key);
      }
    }
    let changed;
    for (let e = path.pollEvent(); e; e = path.pollEvent()) changed = e;
    if (!changed) {
      // Same path, but another relay: report it, and resend what is in flight through it.
      if (!this.#announced || path.route() || this.#ctx.relayVia(this.id) === this.#via) return;
      this.#channel.expedite(now);
      for (const d of this.#channel.pollData(now)) {
        this.#sendFrame(now, { kind: InnerKind.Data, ...d });
      }
      return this.#announce("relay", null);
    }
    if (changed.path === "direct") {
      this.wasDirect = true;
      this.#search.onDirect(now, path.routeVia());
    }
    this.#announced = true;
    if (changed.rtt !== null) this.#channel.seedRtt(changed.rtt);
    // Resend whatever is in flight over the new path right away.
    this.#channel.expedite(now);
    for (const d of this.#channel.pollData(now)) {
      this.#sendFrame(now, { kind: InnerKind.Data, ...d });
    }
    this.#announce(changed.path, changed.addr, changed.rtt);
  }

  #announce(path: "direct" | "relay", addr: Endpoint | null, rtt: number | null = null): void {
    this.#announced = true;
    const via = path === "relay" ? this.#ctx.relayVia(this.id) : null;
    this.#via = via;
    this.#ctx.event({
      type: "peer",
      name: this.name,
      fingerprint: this.fingerprint!,
      path,
      addr,
      rtt,
      ...(path === "relay" ? { via } : {}),
    });
  }
  /**
   * True when a birthday search cannot act: it is idle with nothing queued, and either the path
   * is direct or we are not the hard side (only the hard side proposes; the easy side answers
   * BIRTHDAY frames, which build their own view).
   */
  #searchQuiet(path: PathMachine): boolean {
    return this.#search.quiet &&
      (path.state === "direct" ||
        BirthdaySearch.roleOf(this.#ctx.nat(), this.#peerNat) !== "hard");
  }

  /** What a birthday search looks at (none without a path or when punching is off). */
  #searchView(): BirthdayView | null {
    const path = this.#path;
    if (!path || this.#ctx.relayOnly || this.#intro.relayOnly) return null;
    return {
      self: this.#ctx.nat(),
      peer: this.#peerNat,
      peerPublic: this.#intro.candidates.find((c) => c.kind === "public")?.addr ?? null,
      direct: path.state === "direct",
      via: path.routeVia(),
      pathStart: path.startedAt,
    };
  }

  /** Runs the birthday search: its agreement frames go relayed, its probes through the path. */
  #drive(now: number, path: PathMachine): void {
    // No search can run (e.g. the peer is relay-only now): give back what one holds.
    if (this.#ctx.relayOnly || this.#intro.relayOnly) return this.#search.close();
    // The common case, on every datagram: nothing a search could do; build no view.
    if (this.#searchQuiet(path)) return;
    const view = this.#searchView()!;
    this.#search.tick(now, view);
    for (let b = this.#search.pollFrame(); b; b = this.#search.pollFrame()) {
      this.#sendFrame(now, { kind: InnerKind.Birthday, ...b }, null);
    }
    for (let p = this.#search.pollProbe(); p; p = this.#search.pollProbe()) {
      path.searchProbe(now, p.to, p.via);
    }
    path.forgetSockets((via) => this.#search.holds(via));
  }

  /** How long the oldest unacknowledged message has waited (0: none). */
  #stalledFor(now: number): number {
    const oldest = this.#channel.oldestSentAt();
    return oldest === undefined ? 0 : now - oldest;
  }

  /**
   * Seals `f` and sends it to `to` from our socket `slot`, or along the path (direct or relay)
   * when `to` is absent.
   */
  #sendFrame(now: number, f: InnerFrame, to?: Endpoint | null, slot = 0): void {
    const frame = this.#link.seal(encodeInner(f));
    if (!frame) return;
    const dest = to === undefined ? this.#path?.route() ?? null : to;
    if (dest && !this.#ctx.relayOnly) {
      if (to === undefined) {
        this.#path?.onSentDirect(now);
        slot = this.#path?.routeVia() ?? 0;
      }
      this.#ctx.direct(dest, frame, slot);
    } else {
      this.#ctx.server(
        { type: MsgType.Relay, from: this.#ctx.id, to: this.id, payload: frame },
        this.key,
      );
    }
  }
}
