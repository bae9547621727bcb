/**
 * One remote peer as a joining peer sees it: the per-peer coordinator of its parts
 * (`lib/peer/remote_parts.ts`): who it is (its admission), the encrypted link
 * ({@link SecureLink}) and its handshake traffic, the reliable channel, the control frames, the
 * route (path machine, relay, birthday search, path news), its inbox and outbox, its signs of
 * life.
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
import type { Half } from "./handshake/handshake.ts";
import type { Proof } from "./handshake/transport.ts";
import type { ReliableStats } from "./reliable.ts";
import type { RemoteTell } from "./remote_tell.ts";
import { countDrop } from "./drops.ts";
import { notice } from "./notices.ts";
import { NOT_RESPONDING_AFTER } from "./responsiveness.ts";
import { STALLED_AFTER } from "./remote_probe_gate.ts";
import { type RemoteParts, remoteParts } from "./remote_parts.ts";
import { admissionFacts } from "./remote_admission.ts";
import type { PeerRelays } from "./supernodes.ts";
import type {
  Introduction,
  PeerInfo,
  RemoteContext,
  RemoteOutput,
  RemoteTransmit,
} from "./remote_context.ts";
import { decodeInner, type HandshakeFrame, type SealedFrame } from "../wire/peer_frame.ts";
import type { FileFrame } from "../wire/file_frame.ts";

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
  #ctx: RemoteContext;
  #intro: Introduction;
  /** Its parts (see {@link RemoteParts}). */
  #p: RemoteParts;
  #events: RemoteOutput[] = [];
  /** When it left the room, if it has. */
  goneAt: number | undefined;

  /** Makes the remote for a first introduction and starts (or awaits) the handshake. */
  constructor(ctx: RemoteContext, now: number, intro: Introduction) {
    this.#ctx = ctx;
    this.id = intro.id;
    this.key = idHex(intro.id);
    this.#intro = intro;
    this.#p = remoteParts(ctx, now, intro, {
      intro: () => this.#intro,
      sendable: () => this.#sendable,
    });
    this.#p.secure.rekey(now);
    this.#events.push({ type: "introduced" });
    this.#settle(now);
  }

  /** What the peer is told of us: candidates, NAT, relay RTTs, SERVER_HINT (sealed). */
  get tell(): RemoteTell {
    return this.#p.tell;
  }

  /** A direct path to it has worked (since it was last introduced). */
  get wasDirect(): boolean {
    return this.#p.route.wasDirect;
  }

  /** Its name in the room, as its accepted handshake told it ("" until then). */
  get name(): string {
    return this.#p.admission.name;
  }

  /** Its identity's fingerprint, once a handshake was accepted. */
  get fingerprint(): string | undefined {
    return this.#p.admission.fingerprint;
  }

  /** The next datagram to send, if any. */
  pollTransmit(): RemoteTransmit | undefined {
    return this.#p.tx.pollTransmit();
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
    return this.#p.secure.established && this.fingerprint !== undefined &&
      !this.#p.admission.blocked;
  }

  /** The peer's RTTs to the server and to its supernode (RELAYS frame), once told. */
  get peerRelays(): PeerRelays | null {
    return this.#p.control.peerRelays;
  }

  /** Counters of the reliable channel with it. */
  get channelStats(): Readonly<ReliableStats> {
    return this.#p.channel.stats;
  }

  /** Messages queued or in flight to it. */
  get outstanding(): number {
    return this.#p.channel.outstanding;
  }

  /**
   * Payloads queued behind the window while it is taking messages (present, established, and
   * acknowledging: nothing in flight is older than {@link STALLED_AFTER}); else 0. Input can
   * wait on this without a silent peer holding it up.
   */
  backlog(now: number): number {
    const oldest = this.#p.channel.oldestSentAt();
    if (oldest === undefined || now - oldest > STALLED_AFTER || !this.present) return 0;
    return this.established ? this.#p.channel.queued : 0;
  }

  /**
   * A repeated or new introduction. A new epoch (either side registered anew) means a new
   * handshake; the reliable channel carries on (its streams resynchronise by themselves).
   */
  reintroduce(now: number, intro: Introduction): void {
    const news = this.#p.epochs.judge(intro, this.#intro, this.present);
    if (news === "ignore") return this.#settle(now);
    this.#intro = intro;
    if (news === "rekey") this.#p.secure.rekey(now);
    if (!this.present) {
      // Back after leaving: a fresh path once the link is up; sequence numbers continue.
      this.goneAt = undefined;
      this.#p.route.returned();
    } else {
      this.#p.route.updateCandidates(now, intro);
    }
    this.#settle(now);
  }

  /** Sends a delayed ACK now, if one is pending (before leaving: it would never go out). */
  flushAck(now: number): void {
    if (!this.established) return;
    const ack = this.#p.channel.takeAckOut();
    if (ack) this.#p.route.send(now, ack.frame, ack.to, ack.via);
  }

  /**
   * Marks it gone from the room: no timers, no sends until it is introduced again (what waits
   * for it stays queued meanwhile).
   */
  depart(now: number): boolean {
    if (!this.present) return false;
    this.goneAt = now;
    this.#p.route.depart();
    return true;
  }

  /** True while a direct path to it is selected (present and established). */
  get direct(): boolean {
    return this.present && this.established && this.#p.route.routed;
  }

  /** The supernode whose relay reaches it (when not direct), or null for the server's. */
  get relayedBy(): string | null {
    return this.#p.route.relayName;
  }

  /**
   * True while a path to it works without the server: a direct one, or a supernode's relay that
   * answers (see {@link ClientView.supernodeFor}).
   */
  get reachable(): boolean {
    if (this.direct) return true;
    return this.present && this.established && this.#p.route.bySupernode;
  }

  /**
   * True when it said GOODBYE under introduction epoch `epoch` (hex): an INTRO with that epoch
   * (a server that did not get its BYE yet) does not bring it back; only a new registration does.
   */
  saidGoodbye(epoch: string): boolean {
    return this.#p.epochs.saidGoodbye(epoch);
  }

  /** True once a `peer` event showed it since it was last introduced (and until it left). */
  get shown(): boolean {
    return this.#p.route.shown;
  }

  /** It will not be shown as leaving (its `left` was told, or a newer instance replaced it). */
  hide(): void {
    this.#p.route.hide();
  }

  /**
   * Queues the fragments of one message. False (nothing queued) when its queue is full. With
   * `settle` false nothing goes out until {@link flush}, so the messages of one step can share
   * DATA frames.
   */
  send(now: number, parts: Uint8Array[], settle = true): boolean {
    if (!this.present || this.#p.channel.queueRoom < parts.length) return false;
    parts.forEach((p, i) => this.#p.channel.push(p, i < parts.length - 1));
    if (settle) this.#settle(now);
    return true;
  }

  /** Sends what is due, such as messages queued by {@link send} without settling. */
  flush(now: number): void {
    this.#settle(now);
  }

  /**
   * Says goodbye (GOODBYE, along the path); false when nothing could be sent. On the relay, a
   * copy also goes to the direct endpoint that worked last: a peer that stopped answering may
   * have been stopped, and reads it from its socket when it runs again.
   */
  goodbye(now: number): boolean {
    if (!this.#sendable) return false;
    this.#p.route.goodbye(now);
    return true;
  }

  /** Sends a file-transfer frame along the path; false when it cannot take frames now. */
  sendFile(now: number, f: FileFrame): boolean {
    if (!this.#sendable) return false;
    this.#p.route.send(now, f);
    return true;
  }

  /** When something from it last authenticated (or when it was first introduced). */
  get heardAt(): number {
    return this.#p.alive.heardAt;
  }

  /**
   * We were not running until `now` (the process was stopped): its silence meanwhile says
   * nothing about it, so it is not told "not responding" for it.
   */
  stalled(now: number): void {
    this.#p.alive.stalled(now);
  }

  /** True when control frames can go out now (established and present). */
  get #sendable(): boolean {
    return this.established && this.present;
  }

  /** Birthday search counters with this peer. */
  get birthday(): Readonly<BirthdayStats> {
    return this.#p.route.birthday;
  }

  /** The row for `/peers`, once established. */
  info(): PeerInfo | undefined {
    return this.established ? this.#p.route.info() : undefined;
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
    const t = Math.min(
      this.#p.secure.nextTimeout() ?? Infinity,
      this.#p.route.nextTimeout() ?? Infinity,
      this.#p.alive.nextTimeout(this.#p.channel.oldestSentAt()) ?? Infinity,
    );
    return t === Infinity ? undefined : t;
  }

  /**
   * True unless messages wait for it and it acknowledged nothing for `UNANSWERED_AFTER`
   * (counted from the later of its last ACK and the oldest message's first sending).
   */
  answering(now: number): boolean {
    return this.#p.alive.answering(now, this.#p.channel.oldestSentAt());
  }

  /** Advances its timers. */
  handleTimeout(now: number): void {
    if (!this.present) return;
    if (this.#p.alive.check(now, this.#p.channel.oldestSentAt(), this.established)) {
      this.#events.push(notice({
        kind: "not-responding",
        name: this.name,
        seconds: NOT_RESPONDING_AFTER / 1000,
        waiting: this.#p.channel.outstanding,
      }));
    }
    this.#p.secure.handleTimeout(now);
    this.#p.route.path?.handleTimeout(now);
    this.#settle(now);
  }

  /**
   * Handles a HANDSHAKE frame from this peer, relayed (`from` null) or sent directly from
   * `from` to our socket `via`.
   */
  handleHandshake(now: number, f: HandshakeFrame, from: Endpoint | null = null, via = 0): void {
    if (!this.present || this.#p.admission.blocked) return this.#drop("departed-peer");
    const shared = this.#ctx.shared;
    const { step, heard } = this.#p.hs.handle(now, f, from, via, shared.uncookied, shared.failures);
    if (step.kind === "dropped") return this.#drop(step.reason);
    if (heard) this.#p.alive.heard(now);
    switch (step.kind) {
      case "failed":
        this.#failed(now, "handshake");
        break;
      case "mismatch":
        this.#p.admission.mismatch(now, step.first, step.second);
        this.#p.admission.drainInto(this.#events);
        this.#p.route.close();
        break;
      case "established":
        this.#established(now, step.half, step.proven);
        break;
      case "owe":
        this.#p.control.owe(step.attempt);
        break;
    }
    this.#settle(now);
  }

  /** Our handshake completed with `e`: the identity policy judges it, then a path starts. */
  #established(now: number, e: Half, proven: Proof | null): void {
    const verdict = this.#p.admission.admit(now, e, admissionFacts(this.#ctx, this));
    this.#p.admission.drainInto(this.#events);
    if (verdict === "refused") return this.#p.route.close();
    this.#p.route.heard();
    // Another remote with this identity (its earlier instance) gives way to this one.
    if (verdict === "first") this.#events.push({ type: "identified" });
    if (!this.present) return;
    // The path starts now, on the proven direct path if the handshake found one.
    this.#p.route.start(now, proven, () => this.#p.hs.takeSeen());
  }

  /**
   * Handles a sealed frame addressed to us from this peer (`from` null: it came relayed), that
   * arrived on our socket `via` (0: the main one). A departed peer's frames still count while we
   * keep it: its DATA is delivered and acknowledged, its ACKs clear what waits for it.
   */
  handleSealed(now: number, s: SealedFrame, from: Endpoint | null, via = 0): void {
    if (this.#p.admission.blocked) return this.#drop("refused-peer");
    const plain = this.#p.secure.open(s);
    if (plain === "replay") return this.#drop("replayed");
    if (plain === "unkeyed") return this.#drop("unkeyed");
    if (plain === "failed") return this.#failed(now, "frame");
    this.#p.admission.authenticated();
    this.#p.route.heard();
    this.#p.alive.heard(now);
    // Its frames can overtake the message 2 of our handshake: nothing to do with them yet.
    if (!this.established) return this.#drop("not-established");
    const inner = decodeInner(plain);
    if (!inner.ok) return this.#drop(inner.reason);
    const settle = this.#p.inbox.handle(now, inner.value, from, via, this.present);
    for (let e = this.#p.inbox.pollEvent(); e; e = this.#p.inbox.pollEvent()) {
      if (e.type === "nick") this.#renamed(now, e.name);
      else this.#events.push(e);
    }
    if (settle) this.#settle(now);
  }

  /** The peer says it is called `name` now: shown when the name is allowed. */
  #renamed(now: number, name: string): void {
    const was = this.name;
    if (name === was) return;
    if (!this.#p.admission.rename(now, name, this.#ctx.view.nameHolder(name, this))) {
      return this.#drop("chat-bad-nick");
    }
    this.#p.admission.drainInto(this.#events);
    this.#events.push(notice({ kind: "nick", name: was, to: name }));
  }

  /** Our own name changed (`/nick`): handshakes from now on carry `name`. */
  renameSelf(name: string): void {
    this.#p.secure.rename(name);
  }

  /** Counts a frame that did not authenticate; many in a row are worth telling the user. */
  #failed(now: number, what: "handshake" | "frame"): void {
    this.#drop(what === "handshake" ? "handshake-failed" : "auth-failed");
    this.#p.admission.failed(now, what);
    this.#p.admission.drainInto(this.#events);
  }

  /** Sends what is due: handshake messages, channel data, path actions; reports path changes. */
  #settle(now: number): void {
    this.#p.hs.sendPending(now);
    if (!this.present || this.#p.admission.blocked || !this.established) {
      // A refused pair's search would never run again: its sockets go back now.
      if (this.#p.admission.blocked) this.#p.route.close();
      return;
    }
    this.#p.route.start(now, null, () => this.#p.hs.takeSeen());
    // ANNOUNCE first: we completed the peer's handshake, so it stops repeating message 3 and
    // seals with its new key.
    this.tell.owed(now);
    this.#p.route.drive(now);
    this.#routeEvents();
  }

  /** Moves the path news into our own events. */
  #routeEvents(): void {
    for (let e = this.#p.route.pollEvent(); e; e = this.#p.route.pollEvent()) this.#events.push(e);
  }

  #drop(reason: string): void {
    countDrop(this.#ctx.shared.drops, reason);
  }
}
