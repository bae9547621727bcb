/**
 * One remote peer as a joining peer sees it, the per-peer coordinator of: the encrypted link
 * ({@link SecureLink}: the two room-secret handshakes and their keys), how handshake messages
 * travel ({@link HandshakeTransport}), the path machine, the reliable channel and the reassembly
 * of its messages, the birthday search, the control frames (`lib/peer/control_frames.ts`) and
 * what the identity policy makes of it (`lib/peer/identity_policy.ts`).
 *
 * Nothing but handshake messages is sent before our handshake completes; the path machine
 * starts once it has. Handshake messages go through the relay and directly to the peer's
 * candidates (each direct copy of message 1 with a fresh cookie, within the client's handshake
 * budget); a message 2 that comes back directly with a copy's cookie starts the path machine on
 * that endpoint, already direct. Sans-IO: it reads the rest of the client through a
 * {@link RemoteContext}, its datagrams and events are polled, and it answers
 * {@link RemotePeer.nextTimeout} from its own state only, so a datagram or timer for one peer
 * costs nothing for the others.
 *
 * @module
 */
import { idHex } from "../wire/header.ts";
import { type Endpoint } from "../wire/address.ts";
import type { BirthdayStats } from "./path/birthday.ts";
import { PairSearch } from "./path/pair_search.ts";
import type { Half } from "./handshake/handshake.ts";
import { HandshakeTransport, type Proof } from "./handshake/transport.ts";
import { type HandshakePlace, RemoteHandshake } from "./remote_handshake.ts";
import { RemoteOutbox } from "./remote_outbox.ts";
import {
  type AckFrame,
  type DataFrame,
  departedFrame,
  type FrameStep,
  presentFrame,
} from "./remote_frames.ts";
import { PathReport } from "./remote_path_report.ts";
import { PathMachine } from "./path/path.ts";
import type { ReliableStats } from "./reliable.ts";
import { RemoteChannel } from "./remote_channel.ts";
import { SecureLink } from "./handshake/secure_link.ts";
import { ControlFrames, type OurFacts } from "./control_frames.ts";
import { countDrop } from "./drops.ts";
import { judgeHandshake, PeerWarnings, twoIdentities, type Warning } from "./identity_policy.ts";
import { notice } from "./notices.ts";
import { NOT_RESPONDING_AFTER, Responsiveness } from "./responsiveness.ts";
import { ShownPath } from "./shown_path.ts";
import { IntroEpochs } from "./remote_epochs.ts";
import { ProbeGate, STALLED_AFTER } from "./remote_probe_gate.ts";
import { RelayWatch } from "./relay_watch.ts";
import type { PeerRelays } from "./supernodes.ts";
import type {
  Introduction,
  PeerInfo,
  RemoteContext,
  RemoteOutput,
  RemoteTransmit,
} from "./remote_context.ts";
import {
  decodeInner,
  type HandshakeFrame,
  type InnerFrame,
  InnerKind,
  RTT_UNKNOWN,
  type SealedFrame,
} from "../wire/peer_frame.ts";

export type { Warning, WarningKind } from "./identity_policy.ts";
export type {
  ClientView,
  Introduction,
  LocalPeer,
  PeerInfo,
  RemoteContext,
  RemoteEvent,
  RemoteOutput,
  RemoteSettings,
  RemoteTransmit,
  SharedResources,
} from "./remote_context.ts";

export { NOT_RESPONDING_AFTER, UNANSWERED_AFTER } from "./responsiveness.ts";
export { QUIET_PROBE_GAP, STALLED_AFTER } from "./remote_probe_gate.ts";

/** The u32 a fresh channel to this peer sends on: taken from the pair's epoch. */
function streamOf(epoch: Uint8Array): number {
  return ((epoch[0]! << 24) | (epoch[1]! << 16) | (epoch[2]! << 8) | epoch[3]!) >>> 0;
}

/**
 * One remote peer.
 *
 * Driving it: after it is made, and after any `handle*` call, {@link reintroduce},
 * {@link send}, {@link flush}, `offer*`, {@link refreshRoute} or {@link flushAck}, drain
 * {@link pollTransmit} until undefined, then {@link pollEvent}; then read {@link nextTimeout}.
 */
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
  #secure: SecureLink;
  #path: PathMachine | null = null;
  /** The reliable channel, where its ACKs go back, the reassembly of its messages. */
  #channel: RemoteChannel;
  /** ANNOUNCE, CANDIDATES, NAT, RELAYS: what we owe the peer, what it told us. */
  #control = new ControlFrames();
  /** What {@link ControlFrames} tells the peer about us. */
  #ours: OurFacts;
  #search: PairSearch;
  /** What the user was shown of it, and whether a path change is news. */
  #shown = new ShownPath();
  /** What the user is told of its path, on top of {@link ShownPath}. */
  #news = new PathReport(this.#shown);
  /** The supernode (its key) that let frames to this peer stall: not used for it any more. */
  #stalledOn: string | null = null;
  /** What this pair sees of the supernode relaying it (see `lib/peer/relay_watch.ts`). */
  #watch = new RelayWatch();
  /** The last epoch from each source of introductions, and the one it said GOODBYE under. */
  #epochs: IntroEpochs;
  #warnings = new PeerWarnings();
  /** Refused for good (it turned out to use our own identity). */
  #blocked = false;
  /** Handshake messages in and out: relayed, and directly with cookies that prove paths. */
  #hs: RemoteHandshake;
  /** What we send it, sealed, direct or relayed. */
  #tx: RemoteOutbox;
  #events: RemoteOutput[] = [];
  /** A direct path to it has worked (since it was last introduced). */
  get wasDirect(): boolean {
    return this.#news.wasDirect;
  }

  /** When it left the room, if it has. */
  goneAt: number | undefined;
  /** Its signs of life: when it was heard from, when it acknowledged, "not responding". */
  #alive: Responsiveness;
  /** Probes to it while it does not answer: one every `QUIET_PROBE_GAP` at most. */
  #probes = new ProbeGate();

  /** Makes the remote for a first introduction and starts (or awaits) the handshake. */
  constructor(ctx: RemoteContext, now: number, intro: Introduction) {
    this.#ctx = ctx;
    this.#alive = new Responsiveness(now);
    this.id = intro.id;
    this.key = idHex(intro.id);
    this.#intro = intro;
    this.#epochs = new IntroEpochs(intro);
    this.#channel = new RemoteChannel(ctx.settings.reliable, streamOf(intro.epoch));
    this.#search = new PairSearch(ctx.shared.birthday, ctx.shared.random, {
      relayOnly: () => ctx.settings.relayOnly || this.#intro.relayOnly,
      ourNat: () => ctx.view.nat(),
      peerNat: () => this.#control.peerNat,
      peerPublic: () => this.#intro.candidates.find((c) => c.kind === "public")?.addr ?? null,
    });
    const view = ctx.view;
    this.#ours = {
      candidates: () => view.extraCandidates(),
      nat: () => view.nat(),
      relays: () => view.relays(),
    };
    this.#secure = this.#newSecureLink(now);
    this.#tx = new RemoteOutbox(ctx, this.#secure, this.key);
    this.#hs = new RemoteHandshake(
      this.#secure,
      new HandshakeTransport({
        id: ctx.self.id,
        random: ctx.shared.random,
        budget: ctx.shared.handshakeBudget,
      }, this.id),
    );
    this.#secure.rekey(now);
    this.#settle(now);
  }

  #newSecureLink(now: number): SecureLink {
    const s = this.#ctx.self;
    return new SecureLink({
      now,
      myId: s.id,
      theirId: this.id,
      roomId: s.roomId,
      myName: s.name(),
      noise: s.noise,
    });
  }

  /** The next datagram to send, if any. */
  pollTransmit(): RemoteTransmit | undefined {
    return this.#tx.pollTransmit();
  }

  /** The next event, if any. */
  pollEvent(): RemoteOutput | undefined {
    return this.#events.shift();
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
    return this.#secure.established && this.fingerprint !== undefined && !this.#blocked;
  }

  /** The peer's RTTs to the server and to its supernode (RELAYS frame), once told. */
  get peerRelays(): PeerRelays | null {
    return this.#control.peerRelays;
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
    const rekey = this.#epochs.see(intro);
    const source = intro.source ?? "server";
    // The server's view of a present peer's endpoints wins; a supernode's counts when it is the
    // one that introduced the peer (the server gone), or with a new epoch.
    const current = source === "server" || source === (this.#intro.source ?? "server");
    if (!current && this.present && !rekey) return this.#settle(now);
    this.#intro = intro;
    if (rekey) this.#secure.rekey(now);
    if (!this.present) {
      // Back after leaving: a fresh path once the link is up; sequence numbers continue.
      this.goneAt = undefined;
      this.#shown.returned();
    } else if (this.#path) {
      this.#path.updateCandidates(now, intro.candidates);
    }
    this.#settle(now);
  }

  /** Sends a delayed ACK now, if one is pending (before leaving: it would never go out). */
  flushAck(now: number): void {
    if (!this.established) return;
    const ack = this.#channel.takeAckOut();
    if (ack) this.#sendFrame(now, ack.frame, ack.to, ack.via);
  }

  /**
   * Marks it gone from the room: no timers, no sends until it is introduced again (what waits
   * for it stays queued meanwhile).
   */
  depart(now: number): boolean {
    if (!this.present) return false;
    this.goneAt = now;
    this.#path = null;
    this.#shown.hide();
    this.#search.close();
    return true;
  }

  /** True while a direct path to it is selected (present and established). */
  get direct(): boolean {
    return this.present && this.established && (this.#path?.route() ?? null) !== null;
  }

  /**
   * True while a path to it works without the server: a direct one, or a supernode's relay that
   * answers (see {@link ClientView.supernodeFor}).
   */
  get reachable(): boolean {
    if (this.direct) return true;
    return this.present && this.established &&
      this.#ctx.view.supernodeFor(this.key, this.#stalledOn) !== null;
  }

  /**
   * True when it said GOODBYE under introduction epoch `epoch` (hex): an INTRO with that epoch
   * (a server that did not get its BYE yet) does not bring it back; only a new registration does.
   */
  saidGoodbye(epoch: string): boolean {
    return this.#epochs.saidGoodbye(epoch);
  }

  /** True once a `peer` event showed it since it was last introduced (and until it left). */
  get shown(): boolean {
    return this.#shown.shown;
  }

  /** It will not be shown as leaving (its `left` was told, or a newer instance replaced it). */
  hide(): void {
    this.#shown.hide();
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
    this.#sendOwed(now, this.#control.candidates(this.#ours, this.#sendable));
  }

  /** Tells the peer what we know of our NAT's mapping (sealed; for birthday searches). */
  offerNat(now: number): void {
    this.#sendOwed(now, this.#control.nat(this.#ours, this.#sendable));
  }

  /**
   * Tells the peer we just registered with the server again (SERVER_HINT, along the path), so it
   * checks its own registration at once; `boot` is the server's boot id, or zeros.
   */
  hint(now: number, boot: Uint8Array): void {
    if (this.#sendable) this.#sendFrame(now, { kind: InnerKind.ServerHint, boot });
  }

  /**
   * Says goodbye (GOODBYE, along the path); false when nothing could be sent. On the relay, a
   * copy also goes to the direct endpoint that worked last: a peer that stopped answering may
   * have been stopped, and reads it from its socket when it runs again.
   */
  goodbye(now: number): boolean {
    if (!this.#sendable) return false;
    this.#sendFrame(now, { kind: InnerKind.Goodbye });
    const last = this.#news.lastDirect;
    if (last && !this.#path?.route() && !this.#ctx.settings.relayOnly) {
      this.#sendFrame(now, { kind: InnerKind.Goodbye }, last.addr, last.via);
    }
    return true;
  }

  /** When something from it last authenticated (or when it was first introduced). */
  get heardAt(): number {
    return this.#alive.heardAt;
  }

  /**
   * We were not running until `now` (the process was stopped): its silence meanwhile says
   * nothing about it, so it is not told "not responding" for it.
   */
  stalled(now: number): void {
    this.#alive.stalled(now);
  }

  /** Tells the peer our RTTs to the server and our supernode (sealed; for the relay choice). */
  offerRelays(now: number): void {
    this.#sendOwed(now, this.#control.relays(this.#ours, this.#sendable));
  }

  /** True when control frames can go out now (established and present). */
  get #sendable(): boolean {
    return this.established && this.present;
  }

  /** Birthday search counters with this peer. */
  get birthday(): Readonly<BirthdayStats> {
    return this.#search.stats;
  }

  /** The row for `/peers`, once established. */
  info(): PeerInfo | undefined {
    if (!this.established) return undefined;
    const route = this.#path?.route() ?? null;
    const rtt = this.#path?.rtt ?? null;
    const relay = route ? null : this.#relayName();
    return this.#news.row(this, route, rtt, relay, this.#channel.outstanding);
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
    let t = this.#secure.nextTimeout() ?? Infinity;
    if (this.#path) {
      t = Math.min(t, this.#path.nextTimeout() ?? Infinity);
      t = Math.min(t, this.#channel.nextTimeout() ?? Infinity);
      t = Math.min(t, this.#search.nextTimeout(this.#path) ?? Infinity);
    }
    t = Math.min(t, this.#alive.nextTimeout(this.#channel.oldestSentAt()) ?? Infinity);
    return t === Infinity ? undefined : t;
  }

  /**
   * True unless messages wait for it and it acknowledged nothing for `UNANSWERED_AFTER`
   * (counted from the later of its last ACK and the oldest message's first sending).
   */
  answering(now: number): boolean {
    return this.#alive.answering(now, this.#channel.oldestSentAt());
  }

  /** Advances its timers. */
  handleTimeout(now: number): void {
    if (!this.present) return;
    if (this.#alive.check(now, this.#channel.oldestSentAt(), this.established)) {
      this.#events.push(notice({
        kind: "not-responding",
        name: this.name,
        seconds: NOT_RESPONDING_AFTER / 1000,
        waiting: this.#channel.outstanding,
      }));
    }
    this.#secure.handleTimeout(now);
    this.#path?.handleTimeout(now);
    this.#settle(now);
  }

  /**
   * Handles a HANDSHAKE frame from this peer, relayed (`from` null) or sent directly from
   * `from` to our socket `via`.
   */
  handleHandshake(now: number, f: HandshakeFrame, from: Endpoint | null = null, via = 0): void {
    if (!this.present || this.#blocked) return this.#drop("departed-peer");
    const { step, heard } = this.#hs.handle(
      now,
      f,
      from,
      via,
      this.#place(),
      this.#ctx.shared.uncookied,
      this.#ctx.shared.failures,
    );
    if (step.kind === "dropped") return this.#drop(step.reason);
    if (heard) this.#alive.heard(now);
    this.#routeOut();
    switch (step.kind) {
      case "failed":
        this.#failed(now, "handshake");
        break;
      case "mismatch":
        this.#warn(now, twoIdentities(this, step.first, step.second));
        this.#refuse();
        break;
      case "established":
        this.#established(now, step.half, step.proven);
        break;
      case "owe":
        this.#control.owe(step.attempt);
        break;
    }
    this.#settle(now);
  }

  /** Where the peer is, as its handshake messages need it. */
  #place(): HandshakePlace {
    return {
      relayOnly: this.#ctx.settings.relayOnly || this.#intro.relayOnly,
      candidates: this.#intro.candidates,
      path: this.#path,
    };
  }

  /** Moves what the handshake queued into our own output. */
  #routeOut(): void {
    for (let t = this.#hs.pollTransmit(); t; t = this.#hs.pollTransmit()) {
      if (t.to) this.#tx.direct(t.to, t.data, t.via);
      else this.#tx.relay(t.data, this.#stalledOn);
    }
  }

  /** Refuses the peer for good: no path, no search, nothing but drops from now on. */
  #refuse(): void {
    this.#blocked = true;
    this.#path = null;
  }

  /** Our handshake completed with `e`: the identity policy judges it, then a path starts. */
  #established(now: number, e: Half, proven: Proof | null): void {
    const verdict = judgeHandshake({
      name: e.name,
      key: e.remoteStatic,
      ourKey: this.#ctx.self.identityKey,
      known: this.#ctx.self.knownPeers.get(e.name),
      previous: this.fingerprint,
      holder: this.#ctx.view.nameHolder(e.name, this),
    });
    for (const w of verdict.warnings) this.#warn(now, w);
    if (!verdict.accept) return this.#refuse();
    this.name = e.name;
    this.#shown.heard();
    const first = this.fingerprint === undefined;
    this.fingerprint = verdict.fingerprint;
    // Another remote with this identity (its earlier instance) gives way to this one.
    if (first) this.#events.push({ type: "identified" });
    this.#warnings.authenticated();
    if (!this.present) return;
    // The path starts now, on the proven direct path if the handshake found one.
    if (!this.#path) this.#path = this.#newPath(now, proven);
    else if (proven) this.#path.onHandshakeDirect(now, proven.addr, proven.via, proven.rtt);
  }

  /**
   * Handles a sealed frame addressed to us from this peer (`from` null: it came relayed), that
   * arrived on our socket `via` (0: the main one). A departed peer's frames still count while we
   * keep it: its DATA is delivered and acknowledged, its ACKs clear what waits for it.
   */
  handleSealed(now: number, s: SealedFrame, from: Endpoint | null, via = 0): void {
    if (this.#blocked) return this.#drop("refused-peer");
    const plain = this.#secure.open(s);
    if (plain === "replay") return this.#drop("replayed");
    if (plain === "unkeyed") return this.#drop("unkeyed");
    if (plain === "failed") return this.#failed(now, "frame");
    this.#warnings.authenticated();
    this.#shown.heard();
    this.#alive.heard(now);
    // Its frames can overtake the message 2 of our handshake: nothing to do with them yet.
    if (!this.established) return this.#drop("not-established");
    const inner = decodeInner(plain);
    if (!inner.ok) return this.#drop(inner.reason);
    if (!this.present) return this.#departedFrame(now, departedFrame(inner.value), from, via);
    const path = this.#path!;
    if (from) path.onDirectTraffic(now, from, via);
    const step = presentFrame(now, inner.value, from, via, {
      path,
      control: this.#control,
      secure: this.#secure,
      search: this.#search,
    });
    if (step.kind === "goodbye") {
      this.#sendFrame(now, { kind: InnerKind.GoodbyeAck }, from, via);
      this.#epochs.goodbye(this.#intro.epoch);
      this.#events.push({ type: "goodbye" });
      return;
    }
    if (!this.#take(now, step, from, via)) return;
    if (!from) this.#heardRelayed();
    this.#settle(now);
  }

  /** Does what is left of a frame's `step` in the remote; false when it was dropped. */
  #take(now: number, step: FrameStep, from: Endpoint | null, via: number): boolean {
    switch (step.kind) {
      case "drop":
        this.#drop(step.reason);
        return false;
      case "reply":
        this.#sendFrame(now, step.frame, from, via);
        break;
      case "data":
        this.#data(now, step.frame, from, via);
        break;
      case "ack":
        this.#ack(now, step.frame);
        break;
      case "server-hint":
        this.#events.push({ type: "server-hint", boot: step.boot });
        break;
      case "goodbye-ack":
        this.#events.push({ type: "goodbye-ack" });
        break;
    }
    return true;
  }

  /** A departed peer's frame (see {@link departedFrame}); what is owed goes now. */
  #departedFrame(now: number, step: FrameStep, from: Endpoint | null, via: number): void {
    if (!this.#take(now, step, from, via) || step.kind === "reply") return;
    // No timers run while it is departed: what is owed goes now.
    const ack = this.#channel.takeAckOut();
    if (ack) this.#sendFrame(now, ack.frame, ack.to, ack.via);
  }

  /** An ACK from the peer: it clears what it acknowledges, and the peer is responding. */
  #ack(now: number, f: AckFrame): void {
    const oldest = this.#channel.oldestSentAt();
    this.#channel.onAck(now, f);
    // How long the oldest payload waited for its acknowledgement, if this ACK covered it.
    if (oldest !== undefined && this.#channel.oldestSentAt() !== oldest) {
      this.#watch.acked(now - oldest);
    }
    if (this.#alive.acked(now)) this.#events.push(notice({ kind: "responding", name: this.name }));
  }

  /** Counts a frame that did not authenticate; many in a row are worth telling the user. */
  #failed(now: number, what: "handshake" | "frame"): void {
    this.#drop(what === "handshake" ? "handshake-failed" : "auth-failed");
    const w = this.#warnings.failed(now, what, this);
    if (w) this.#events.push(w);
  }

  /** Shows `w` unless the warning budget holds it back. */
  #warn(now: number, w: Warning): void {
    const shown = this.#warnings.pass(now, w);
    if (shown) this.#events.push(shown);
  }

  /** A DATA frame from the peer: delivered, acknowledged, its messages shown. */
  #data(now: number, f: DataFrame, from: Endpoint | null, via: number): void {
    const got = this.#channel.receive(now, f, from, via);
    for (const reason of got.drops) this.#drop(reason);
    // The peer gave lines up that never reached us: say so rather than skip them silently.
    if (got.missed > 0) {
      this.#events.push(notice({ kind: "missed", name: this.name, frames: got.missed }));
    }
    // Data proves the peer reachable: say so before its first message, even if the path
    // machine has not decided yet (it reports again when it does).
    if (!this.#shown.announced && got.delivered && this.present) {
      this.#news.announce(from ? "direct" : "relay", from, null, true, this.#relayName(), this);
      this.#newsOut();
    }
    // A delayed ACK goes out from #settle when due.
    if (got.ack) this.#sendFrame(now, got.ack, from, via);
    for (const text of got.messages) this.#events.push({ type: "message", from: this.name, text });
  }

  #newPath(now: number, proven: Proof | null = null): PathMachine {
    this.#control.pathStarted(this.#ctx.view.extraCandidates().length > 0);
    const path = new PathMachine(now, this.#intro.candidates, {
      relayOnly: this.#ctx.settings.relayOnly || this.#intro.relayOnly,
      initiator: this.#secure.leader,
      options: this.#ctx.settings.path,
      budget: this.#ctx.shared.probeBudget,
      ...(proven ? { proven } : {}),
    });
    const seen = this.#hs.takeSeen();
    if (seen) path.onPeerSeen(now, seen.addr, seen.via);
    return path;
  }

  /** Sends what is due: handshake messages, channel data, path actions; reports path changes. */
  #settle(now: number): void {
    this.#hs.sendPending(now, this.#place());
    this.#routeOut();
    if (!this.present || this.#blocked || !this.established) {
      // A refused pair's search would never run again: its sockets go back now.
      if (this.#blocked) this.#search.close();
      return;
    }
    this.#path ??= this.#newPath(now);
    const path = this.#path;
    // ANNOUNCE first: we completed the peer's handshake, so it stops repeating message 3 and
    // seals with its new key.
    for (const owed of this.#control.takeOwed(this.#ours)) this.#sendOwed(now, owed);
    this.#sendData(now, path);
    const ack = this.#channel.pollAckOut(now);
    if (ack) this.#sendFrame(now, ack.frame, ack.to, ack.via);
    // The birthday search: its agreement frames go relayed, its probes through the path.
    for (const b of this.#search.drive(now, path)) {
      this.#sendFrame(now, { kind: InnerKind.Birthday, ...b }, null);
    }
    for (let a = path.pollAction(); a; a = path.pollAction()) {
      if (a.type === "probe") {
        // Queued before the search let that socket go: sending would open it again.
        if (a.via && !this.#search.holds(a.via)) continue;
        if (!this.#probes.mayProbe(now, path.route() !== null, this.#channel.stalledFor(now))) {
          continue;
        }
        this.#sendFrame(now, { kind: InnerKind.Probe, txid: a.txid }, a.to, a.via);
      } else {
        this.#tx.repunch();
      }
    }
    this.#report(now, path);
  }

  /** Sends the DATA due; a timed-out resend makes the path (or the relay) suspect. */
  #sendData(now: number, path: PathMachine): void {
    this.#watch.through(
      path.route() ? null : this.#ctx.view.supernodeFor(this.key, this.#stalledOn),
    );
    for (const d of this.#channel.pollData(now)) {
      this.#sendFrame(now, { kind: InnerKind.Data, ...d });
      this.#watch.sent(d.reason === "timeout");
      // Only a timed-out resend says something about the path; a path change's resends don't.
      if (d.reason !== "timeout") continue;
      if (path.route()) path.suspect(now);
      else if (this.#news.relayedBy !== null && this.#channel.stalledFor(now) >= STALLED_AFTER) {
        // Relayed by a supernode and nothing acknowledged for a while: the server relays.
        const sup = this.#ctx.view.supernodeFor(this.key, this.#stalledOn);
        if (sup !== null) {
          this.#stalledOn = sup;
          this.#events.push({ type: "relay-worse", supernode: sup });
        }
      }
    }
    // Relayed by a supernode that holds back or loses what it relays: the server relays, and
    // the client leaves that supernode (every pair it relays would fare the same).
    const worse = this.#watch.key;
    if (worse !== null && this.#watch.worse(this.#serverSum())) {
      this.#stalledOn = worse;
      this.#events.push({ type: "relay-worse", supernode: worse });
    }
  }

  /** Both sides' RTTs to the server, summed, when both are known (see `relay_watch.ts`). */
  #serverSum(): number | null {
    const mine = this.#ctx.view.relays()?.serverRtt, theirs = this.peerRelays?.serverRtt;
    if (mine === undefined || theirs === undefined) return null;
    if (mine === RTT_UNKNOWN || theirs === RTT_UNKNOWN) return null;
    return mine + theirs;
  }

  /**
   * Reports what the path machine decided (or, on the same relayed path, another relay), and
   * resends what is in flight the new way at once (see {@link PathReport.report}).
   */
  #report(now: number, path: PathMachine): void {
    let changed;
    for (let e = path.pollEvent(); e; e = path.pollEvent()) changed = e;
    if (changed?.path === "direct") {
      this.#news.directWorked(changed.addr!, path.routeVia());
      this.#search.onDirect(now, path.routeVia());
    }
    if (changed && changed.rtt !== null) this.#channel.seedRtt(changed.rtt);
    if (this.#news.report(changed, path.route() != null, this.#relayName(), this)) {
      this.#resend(now);
    }
    this.#newsOut();
  }

  /** A frame came from the peer through the relay: a relayed path held back is shown now. */
  #heardRelayed(): void {
    this.#news.heardRelayed(this.#path?.route() != null, this.#relayName(), this);
    this.#newsOut();
  }

  /** Moves the path news into our own events. */
  #newsOut(): void {
    for (let e = this.#news.pollEvent(); e; e = this.#news.pollEvent()) this.#events.push(e);
  }

  /** Resends whatever is in flight, now, along the current path. */
  #resend(now: number): void {
    this.#channel.expedite(now);
    for (const d of this.#channel.pollData(now)) {
      this.#sendFrame(now, { kind: InnerKind.Data, ...d });
    }
  }

  /** The name of the supernode relaying to this peer now, or null for the server. */
  #relayName(): string | null {
    const sup = this.#ctx.view.supernodeFor(this.key, this.#stalledOn);
    return sup === null ? null : this.#ctx.view.supernodeName(sup);
  }

  /** Sends a control frame we owed, the way it goes. */
  #sendOwed(now: number, owed: { frame: InnerFrame; relayed: boolean } | null): void {
    if (owed) this.#sendFrame(now, owed.frame, owed.relayed ? null : undefined);
  }

  /**
   * Seals `f` and sends it to `to` from our socket `via`, or along the path (direct or
   * relay) when `to` is absent.
   */
  #sendFrame(now: number, f: InnerFrame, to?: Endpoint | null, via = 0): void {
    this.#tx.frame(now, f, this.#path, this.#stalledOn, to, via);
  }

  #drop(reason: string): void {
    countDrop(this.#ctx.shared.drops, reason);
  }
}
