/**
 * The joining peer's pure core, a router: each datagram goes to the one machine it concerns,
 * and what the machines queue goes out through one pair of queues.
 *
 * - {@link ServerLink}: our registration with the server (HELLO, PINGs, loss and return).
 * - {@link Supernodes} (`lib/peer/supernodes.ts`): the supernode role and our registration with
 *   the room's supernode; which relay a RELAY goes through.
 * - {@link Discovery} (`lib/peer/discovery.ts`): the STUN probe and the router's port mapping,
 *   and what they yield (our NAT's mapping, extra candidates).
 * - {@link RemotePeer} (`lib/peer/remote.ts`), one per peer in the room, kept with their
 *   deadlines in a {@link PeerTable} (`lib/peer/peer_table.ts`), so a datagram or timer costs
 *   O(log peers), not O(peers × data in flight). Departed peers are kept for a while, then
 *   forgotten; session keys are bound to the pair's introduction epoch, so a forgotten peer's
 *   return never reuses a nonce.
 *
 * Server messages (INTRO, LEFT, ROSTER) from the server, or from our supernode while the server
 * is silent, decide who is in the room, with the peers' own word (GOODBYE) and what we can reach
 * (see `lib/peer/membership.ts`); leaving says goodbye in a way that arrives
 * (`lib/peer/farewell.ts`); registering again after a restart tells the peers (SERVER_HINT), and a
 * late wake-up reads the socket before acting on timers ({@link StallGuard}). HANDSHAKE frames come
 * relayed or directly from a peer
 * (see `lib/peer/handshake/handshake.ts`); only a relayed one from an unknown peer asks the
 * server to resync. What the user is told: peers, messages, warnings, and notices with a
 * `kind` (`lib/peer/notices.ts`).
 *
 * @module
 */
import type { BirthdayPool } from "./path/birthday.ts";
import type { Discovery } from "./discovery.ts";
import { compareBytes } from "../core/bytes.ts";
import type { PeerTable } from "./peer_table.ts";
import type { ClientEvent, ClientOptions } from "./client_options.ts";
import type { Membership } from "./membership.ts";
import { Farewell } from "./farewell.ts";
import { StallGuard } from "../core/stall.ts";
import { notice, type NoticeFact } from "./notices.ts";
import { fragment, MAX_MESSAGE } from "./fragment.ts";
import type { HttpResult, PortMapHttp } from "../nat/portmap/mapper.ts";
import type { PeerInfo, RemotePeer } from "./remote.ts";
import type { ServerLink } from "./server_link.ts";
import type { SupernodeLink } from "./supernode.ts";
import type { Supernodes } from "./supernodes.ts";
import { makeParts } from "./client_parts.ts";
import { serverIntake, serverStep } from "./client_server.ts";
import { DriveState, nextDeadline } from "./client_drive.ts";
import { relayedOf, routeOf } from "./client_routes.ts";
import { byeOf, discoveryNotice, linkEventOf, remoteTransmits } from "./client_outputs.ts";
import type { Endpoint } from "../wire/address.ts";
import { idHex } from "../wire/header.ts";
import { type HandshakeFrame, HINT_BOOT_LEN, type SealedFrame } from "../wire/peer_frame.ts";
import { decodeServerMsg, type ServerMsg } from "../wire/server_msg.ts";
import type { Transmit } from "../wire/transmit.ts";

export { MAX_MESSAGE } from "./fragment.ts";
export type { PeerInfo } from "./remote.ts";
export type { Notice, NoticeKind } from "./notices.ts";
export { DEPARTED_KEEP, MAX_DEPARTED } from "./peer_table.ts";
export { UNANSWERED_AFTER } from "./remote.ts";
export type { ClientEvent, ClientOptions } from "./client_options.ts";

const textEncoder = new TextEncoder();

/** Rounds of in-process traffic with our own supernode role per step, at most. */
const MAX_ROUNDS = 16;

/**
 * The peer's pure core. Sans-IO: it never reads a clock or draws randomness of its own
 * ({@link ClientOptions.random} is injected).
 *
 * Driving it: {@link start} once; then feed {@link handleDatagram}, {@link handleTimeout} when
 * {@link nextTimeout} is due, typed lines through {@link send}, and answers to
 * {@link pollHttp}'s requests through {@link handleHttp}. After any of these, drain
 * {@link pollTransmit} until undefined (sending each datagram from the socket it names), then
 * {@link pollRelease} (auxiliary sockets to close), {@link pollHttp} and {@link pollEvent};
 * then read {@link nextTimeout} again. {@link leave} says goodbye; drain once more, and run
 * timers while the port mapper is not {@link portmapIdle}.
 *
 * Inside, every part is driven the same way: the client calls its `handle*` methods and drains
 * its `poll*` queues right after; the supernode side's in-process traffic with our own role
 * runs in one place, at the end of every step.
 */
export class Client {
  #o: ClientOptions;
  #id: Uint8Array;
  #link: ServerLink;
  /** Who is in the room, by the server's (or our supernode's) word. */
  #members: Membership;
  /** The remote peers, present and departed, and their deadlines. */
  #peers: PeerTable;
  #out: Transmit[] = [];
  /** Remotes with chat lines queued but not yet sent (see {@link pollTransmit}), and when. */
  #unsent = new Set<RemotePeer>();
  #unsentAt = 0;
  #events: ClientEvent[] = [];
  /** STUN probe and router port mapping: our NAT's mapping and extra candidates. */
  #discovery: Discovery;
  #pool: BirthdayPool;
  #fingerprint: string;
  /** Whether we can send to IPv6 addresses ({@link ClientOptions.ipv6}). */
  #ipv6: boolean;
  /** The supernode role and our registration with the room's supernode. */
  #sn: Supernodes;
  /** What this step learned that its end acts on (hints, goodbyes, registrations). */
  #step = new DriveState();
  /** Our own goodbyes, once we leave. */
  #farewell = new Farewell();
  /** Notices late wake-ups (the process was stopped) and holds timers after them. */
  #stall = new StallGuard();
  /** The earliest deadline as last computed (before any hold). */
  #due: number | undefined;
  /** Dropped datagrams by reason. */
  readonly drops: Record<string, number> = {};
  /** Remote peers woken by timers (each costs a look at that peer only). */
  readonly stats = { remoteWakeups: 0 };

  /** Makes a client; call {@link start} to begin registering. */
  constructor(options: ClientOptions) {
    this.#o = options;
    const p = makeParts(options, this.drops);
    this.#peers = p.peers;
    this.#pool = p.pool;
    this.#ipv6 = p.ipv6;
    this.#id = p.id;
    this.#fingerprint = p.fingerprint;
    this.#link = p.link;
    this.#discovery = p.discovery;
    this.#sn = p.supernodes;
    this.#members = p.members;
  }

  /** This peer's id. */
  get id(): Uint8Array {
    return this.#id;
  }

  /** This peer's identity fingerprint (read it aloud to check who is who). */
  get fingerprint(): string {
    return this.#fingerprint;
  }

  /** The name the server assigned (the wanted one until registered). */
  get name(): string {
    return this.#link.name;
  }

  /**
   * True once the server's roster has arrived after registering: the peers present then are
   * known, so a message sent now reaches all of them.
   */
  get synced(): boolean {
    return this.#members.synced;
  }

  /** True while the server has us registered. */
  get registered(): boolean {
    return this.#link.registered;
  }

  /** Messages queued or in flight to present peers; zero means all were acknowledged. */
  get outstanding(): number {
    return this.#peers.outstanding;
  }

  /**
   * Messages queued or in flight to present peers that answer (acknowledged something within
   * `UNANSWERED_AFTER`, or were sent to more recently): what leaving is worth waiting for.
   */
  awaiting(now: number): number {
    return this.#peers.awaiting(now);
  }

  /**
   * The longest backlog of payloads queued behind a window, among the peers taking messages
   * (see {@link RemotePeer.backlog}): a sender of many lines waits while it is high.
   */
  backlog(now: number): number {
    return this.#peers.backlog(now);
  }

  /** The reliable channels' counters summed over the peers known (for diagnostics). */
  channelStats(): Record<string, number> {
    return this.#peers.channelStats();
  }

  /**
   * Message parts never delivered: those waiting for a departed peer when it was forgotten
   * (nothing is given up before; see `lib/peer/membership.ts`).
   */
  get undelivered(): number {
    return this.#peers.undelivered;
  }

  /** The server our registration uses now (it changes on failover to another `--server`). */
  get serverInUse(): Endpoint {
    return this.#link.server;
  }

  /** How many departed peers' state is kept (bounded by {@link MAX_DEPARTED}). */
  get departedKept(): number {
    return this.#peers.departedKept;
  }

  /** The peers present in the room. */
  peers(): PeerInfo[] {
    return this.#peers.infos();
  }

  /** Takes the next datagram to send, if any. */
  pollTransmit(): Transmit | undefined {
    if (this.#unsent.size > 0) {
      this.#flushSends();
      this.#drive(this.#unsentAt);
    }
    return this.#out.shift();
  }

  /** The next auxiliary socket (of a birthday search) the driver should close. */
  pollRelease(): number | undefined {
    return this.#pool.pollRelease();
  }

  /** Birthday search counters summed over the peers known (for diagnostics and tests). */
  birthdayStats(): { searches: number; hits: number; probes: number; kept: number } {
    return { ...this.#peers.birthdayStats(), kept: this.#pool.kept };
  }

  /** Sends the chat lines queued since the last poll: one step's lines share DATA frames. */
  #flushSends(): void {
    for (const r of this.#unsent) {
      r.flush(this.#unsentAt);
      this.#after(r);
    }
    this.#unsent.clear();
  }

  /** Takes the next event for the user, if any. */
  pollEvent(): ClientEvent | undefined {
    return this.#events.shift();
  }

  /** Starts registering. */
  start(now: number): void {
    this.#link.start(now);
    this.#linkOut();
    this.#sn.start(now);
    this.#discovery.start(now);
    this.#discoveryOut(now);
  }

  /** The port mapper's next HTTP request (UPnP), to be made and answered via {@link handleHttp}. */
  pollHttp(): PortMapHttp | undefined {
    return this.#discovery.pollHttp();
  }

  /** The answer to the port mapper's HTTP request `id`. */
  handleHttp(now: number, id: number, res: HttpResult): void {
    this.#discovery.handleHttp(now, id, res);
    this.#discoveryOut(now);
  }

  /** True when the port mapper has nothing pending (after leave: its deletions are done). */
  get portmapIdle(): boolean {
    return this.#discovery.mapperIdle;
  }

  /** Moves what discovery queued out and tells the peers what it found. */
  #discoveryOut(now: number): void {
    const d = this.#discovery;
    for (let t = d.pollTransmit(); t; t = d.pollTransmit()) this.#out.push(t);
    for (let e = d.pollEvent(); e; e = d.pollEvent()) {
      if (e.type !== "nat" && e.type !== "candidates") {
        this.#notice(discoveryNotice(e));
        continue;
      }
      for (const r of this.#peers.values()) {
        if (e.type === "nat") r.offerNat(now);
        else r.offerCandidates(now);
        this.#after(r);
      }
    }
  }

  /**
   * Says goodbye, after sending the ACKs still delayed (so the peers do not resend what was
   * delivered): a sealed GOODBYE to each established peer along its path, repeated to those
   * reached directly until they answer (see `lib/peer/farewell.ts`), and BYE to the server, sent
   * three times. Keep driving the client (datagrams and timers) until {@link farewellDone} and
   * {@link portmapIdle}; then close the socket.
   */
  leave(now: number): void {
    const awaiting: string[] = [];
    for (const r of this.#peers.values()) {
      r.flushAck(now);
      if (r.goodbye(now) && r.direct) awaiting.push(r.key);
      this.#after(r);
    }
    this.#sn.close(now);
    this.#drive(now);
    const bye = byeOf(this.#link, this.#id);
    this.#link.close();
    this.#linkOut();
    this.#farewell.start(now, awaiting, bye);
    this.#discovery.stop(now);
    this.#discoveryOut(now);
  }

  /** True once the goodbyes of {@link leave} are answered or given up on (at most a second). */
  get farewellDone(): boolean {
    return this.#farewell.done;
  }

  /** Repeats the goodbyes and the BYE that are due (after {@link leave}). */
  #farewellTimeout(now: number): void {
    const due = this.#farewell.handleTimeout(now);
    if (due.bye) this.#out.push(due.bye);
    for (const key of due.goodbyes) {
      const r = this.#peers.get(key);
      if (!r) continue;
      r.goodbye(now);
      this.#after(r);
    }
  }

  /** Sends a chat line to every peer present. Returns how many peers it was queued for. */
  send(now: number, text: string): number {
    const bytes = textEncoder.encode(text);
    if (bytes.length > MAX_MESSAGE) {
      this.#notice({ kind: "too-long", bytes: bytes.length, limit: MAX_MESSAGE });
      return 0;
    }
    const parts = fragment(bytes);
    let n = 0;
    const behind: string[] = [];
    for (const r of this.#peers.values()) {
      if (!r.present) continue;
      if (r.send(now, parts, false)) (n++, this.#unsent.add(r), this.#unsentAt = now);
      else behind.push(r.name || "a peer still connecting");
      this.#after(r);
    }
    if (behind.length > 0) {
      this.#notice({ kind: "queue-full", names: behind });
    }
    this.#drive(now);
    return n;
  }

  /**
   * Earliest time {@link handleTimeout} has work. Right after a late wake-up (see
   * {@link StallGuard}) it is the end of the hold.
   */
  nextTimeout(): number | undefined {
    this.#due = nextDeadline({
      link: this.#link,
      discovery: this.#discovery,
      sn: this.#sn,
      peers: this.#peers,
      farewell: this.#farewell,
    });
    return this.#stall.defer(this.#due);
  }

  /**
   * Advances timers: the server link, the remotes that are due, and forgetting old departures.
   * Not right after the process was stopped (a late wake-up, see {@link StallGuard}): the
   * datagrams that arrived meanwhile are read first, so a path is not declared dead, nor the
   * server lost, for silence that was our own.
   */
  handleTimeout(now: number): void {
    if (this.#holding(now)) return;
    this.#discovery.handleMapperTimeout(now);
    this.#discoveryOut(now);
    if (this.#link.closed) return this.#farewellTimeout(now);
    this.#link.handleTimeout(now);
    this.#linkOut();
    this.#sn.handleTimeout(now);
    this.#discovery.handleTimeout(now);
    this.#discoveryOut(now);
    for (const r of this.#peers.popDue(now)) {
      this.stats.remoteWakeups++;
      r.handleTimeout(now);
      this.#after(r);
    }
    this.#members.handleTimeout(now);
    this.#membersOut();
    this.#sn.relaysCheck();
    this.#drive(now);
  }

  /**
   * Handles one datagram received from `from` on our socket `via` (0: the main one; n:
   * auxiliary socket n of a birthday search, where only sealed peer frames are expected).
   * Never throws on bad input.
   */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array, via = 0): void {
    this.#holding(now);
    this.#route(now, from, data, via);
    this.#drive(now);
  }

  /**
   * True while timers wait after a late wake-up. When one is first noticed, silence during our
   * own absence is not held against anyone: not-responding clocks and unlisted peers' graces
   * start again from now.
   */
  #holding(now: number): boolean {
    const before = this.#stall.stalls;
    const held = this.#stall.holding(now, this.#due);
    if (this.#stall.stalls === before) return held;
    for (const r of this.#peers.values()) r.stalled(now);
    this.#members.stalled(now);
    return held;
  }

  /**
   * Ends every step: the supernode side's output goes out and its events are acted on; our own
   * registration's traffic with our own role runs to quiescence (in bounded rounds).
   */
  #drive(now: number): void {
    this.#serverNews(now);
    const failed = this.#step.takeSupernodeFailed();
    if (failed !== undefined) this.#sn.pathFailed(now, failed);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const fed = this.#sn.pump(now);
      if (!this.#snOut(now) && !fed) return;
    }
  }

  /**
   * Restarts learned at once: when our link registered again (the server refused us as unknown,
   * or was lost), each established peer gets a SERVER_HINT along its path; a peer's hint makes
   * us check our own registration (see {@link ServerLink.recheck}).
   */
  #serverNews(now: number): void {
    const goodbyes = this.#step.takeGoodbyes();
    if (goodbyes.length > 0) {
      for (const r of goodbyes) this.#members.goodbye(now, r);
      this.#membersOut();
    }
    if (this.#step.takeHint()) {
      this.#link.recheck(now);
      this.#linkOut();
    }
    if (!this.#step.registeredAgain(this.#link.registrations) || this.#link.closed) return;
    // The boot id of the server instance we registered with (zeros when it gave none).
    const boot = this.#link.bootId ?? new Uint8Array(HINT_BOOT_LEN);
    for (const r of this.#peers.values()) {
      if (!r.present) continue;
      r.hint(now, boot);
      this.#after(r);
    }
  }

  /** Moves what the supernode side queued out and acts on its events; true if there was any. */
  #snOut(now: number): boolean {
    let any = false;
    for (let t = this.#sn.pollTransmit(); t; t = this.#sn.pollTransmit()) {
      any = true;
      this.#out.push(t);
    }
    for (let e = this.#sn.pollEvent(); e; e = this.#sn.pollEvent()) {
      any = true;
      switch (e.type) {
        case "delivered":
          this.#fromLink(now, e.data, e.from);
          break;
        case "routes-changed":
          for (const r of this.#peers.values()) this.#members.refresh(now, r);
          this.#membersOut();
          break;
        case "relays-changed":
          for (const r of this.#peers.values()) {
            if (!r.present) continue;
            r.offerRelays(now);
            this.#members.refresh(now, r);
          }
          this.#membersOut();
          break;
        case "serving":
          this.#notice({ kind: "supernode" });
          break;
        case "not-serving":
          this.#notice({ kind: "not-supernode" });
          break;
      }
    }
    return any;
  }

  /** Routes one datagram to the machine it concerns (see {@link handleDatagram}). */
  #route(now: number, from: Endpoint, data: Uint8Array, via: number): void {
    // NAT-PMP, PCP and SSDP answers (never starting with p2p's magic "p2") go to the mapper.
    if (
      via === 0 && !(data[0] === 0x70 && data[1] === 0x32) &&
      this.#discovery.handleMapper(now, from, data)
    ) {
      return this.#discoveryOut(now);
    }
    const sup = this.#sn.linkFrom(from);
    const r = routeOf(data, {
      via,
      closed: this.#link.closed,
      farewellDone: this.#farewell.done,
      relayOnly: this.#o.relayOnly,
      fromServer: this.#link.isServer(from),
      fromSupernode: sup !== undefined,
    });
    switch (r.kind) {
      case "drop":
        return this.#drop(r.reason);
      case "ignore":
        return;
      case "sealed":
        return this.#sealed(now, r.frame, from, r.via);
      case "stun":
        if (!this.#discovery.handleStun(now, from, data)) this.#drop("stun-unsolicited");
        return this.#discoveryOut(now);
      case "reach":
        return this.#reach(now, data);
      case "handshake":
        return this.#handshake(now, r.frame, from);
      case "server":
        return this.#fromLink(now, data, undefined, from);
      case "supernode":
        return this.#fromLink(now, data, sup);
      case "member":
        // Members of our room talking to us as their supernode.
        if (!this.#sn.handleMember(now, from, r.type, data)) this.#drop("unexpected-source");
    }
  }

  /** A datagram from the server (`sup` absent) or from our supernode `sup`. */
  #fromLink(now: number, data: Uint8Array, sup?: SupernodeLink, from?: Endpoint): void {
    const link = sup ? sup.link : this.#link;
    const d = decodeServerMsg(data);
    if (!d.ok) return this.#drop(d.reason);
    const got = serverIntake(now, d.value, link, sup, this.#sn, from);
    if (!sup) this.#linkOut();
    if (got.kind === "drop") return this.#drop(got.reason);
    // A PONG may have changed an RTT.
    if (got.kind === "mine") {
      if (!sup && link.registered) this.#discovery.handleRegistered(now);
      return this.#sn.relaysCheck();
    }
    this.#serverMsg(now, got.msg, sup);
  }

  /** Acts on a server message that passed the checks (see {@link serverStep}). */
  #serverMsg(now: number, m: ServerMsg, sup?: SupernodeLink): void {
    const at = { id: this.#id, ipv6: this.#ipv6, serverHealthy: this.#link.healthy };
    const step = serverStep(m, at, sup);
    switch (step.kind) {
      case "drop":
        return this.#drop(step.reason);
      case "intro":
        // Only peers a supernode introduced can be relayed to through it.
        if (sup) sup.introduce(step.key);
        else this.#sn.handleServerWord(now, step.key, step.supernodeAt);
        this.#members.intro(now, step.intro, sup !== undefined);
        return this.#membersOut();
      case "left":
        sup?.introduced.delete(step.key);
        this.#members.left(now, step.key, step.reason, sup !== undefined, step.inCharge);
        this.#membersOut();
        if (!sup) this.#sn.handleServerWord(now, step.key, null);
        return;
      case "roster":
        this.#members.roster(now, step.ids, step.inCharge, this.#link.registered);
        return this.#membersOut();
      case "relayed":
        return this.#relayed(now, step.from, step.payload);
    }
  }

  /** A peer frame the server relayed: a HANDSHAKE or a SEALED frame. */
  #relayed(now: number, from: Uint8Array, payload: Uint8Array): void {
    const r = relayedOf(from, payload);
    if (r.kind === "drop") return this.#drop(r.reason);
    if (r.kind === "sealed") return this.#sealed(now, r.frame, null);
    this.#handshake(now, r.frame, null);
  }

  /** Routes a HANDSHAKE frame, relayed (`from` null) or direct, to the remote it comes from. */
  #handshake(now: number, f: HandshakeFrame, from: Endpoint | null): void {
    if (compareBytes(f.to, this.#id) !== 0) return this.#drop("not-for-us");
    const r = this.#peers.get(idHex(f.from));
    if (!r || !r.present) {
      this.#drop("unknown-peer");
      // A relayed handshake from someone we were never introduced to: our INTRO may have been
      // lost (a direct one may come from anyone, so it asks nothing of the server).
      if (!from) this.#resync(now);
      return;
    }
    r.handleHandshake(now, f, from);
    this.#after(r);
  }

  /** Routes a sealed frame to the remote it comes from (`from` null: relayed), on socket `via`. */
  #sealed(now: number, s: SealedFrame, from: Endpoint | null, via = 0): void {
    if (compareBytes(s.to, this.#id) !== 0) return this.#drop("not-for-us");
    const r = this.#peers.sealedFrom(s.from);
    // Our view of the room may be stale (a lost INTRO): ask the server to resync.
    if (!r || !r.present) this.#resync(now);
    if (!r) return this.#drop("unknown-peer");
    r.handleSealed(now, s, from, via);
    this.#after(r);
  }

  /** Moves what membership queued: the remotes it touched are drained, its events shown. */
  #membersOut(): void {
    for (let r = this.#members.pollTouched(); r; r = this.#members.pollTouched()) this.#after(r);
    for (let e = this.#members.pollEvent(); e; e = this.#members.pollEvent()) this.#events.push(e);
  }

  /**
   * A REACH: the server found us reachable (see {@link Supernodes.handleReach}); the STUN
   * probe may ask the server's other address now, and we serve our room as its supernode.
   */
  #reach(now: number, data: Uint8Array): void {
    if (!this.#sn.handleReach(data)) return;
    this.#discovery.releaseOther(now);
    this.#discoveryOut(now);
    this.#sn.serve(now);
  }

  /** True while we serve as our room's supernode. */
  get supernode(): boolean {
    return this.#sn.host !== undefined;
  }

  /** The supernode role's counters (relayed bytes, members), while we serve. */
  supernodeStats():
    | {
      members: number;
      relayedBytes: number;
      relayedPackets: number;
      drops: Record<string, number>;
    }
    | undefined {
    return this.#sn.stats();
  }

  /** The supernode we are registered with (its peer id in hex), if any. */
  get supernodeKey(): string | undefined {
    return this.#sn.link?.key;
  }

  /**
   * After anything touched remote `r`: its datagrams go out (RELAYs through the relay it chose:
   * our supernode, or the server), its events to the user, and its deadline is filed again.
   */
  #after(r: RemotePeer): void {
    remoteTransmits(r, this.#id, this.#link, this.#sn, this.#out);
    for (let e = r.pollEvent(); e; e = r.pollEvent()) {
      if (this.#step.noteEvent(r, e, this.#sn.link?.key, this.#link.bootId)) continue;
      if (e.type === "identified") {
        this.#members.identified(r);
        this.#membersOut();
      } else if (e.type === "goodbye-ack") this.#farewell.handleAck(r.key);
      else this.#events.push(e);
    }
    this.#peers.track(r);
  }

  /** Asks the server to resync our view of the room (see {@link ServerLink.resync}). */
  #resync(now: number): void {
    this.#link.resync(now);
    this.#linkOut();
  }

  /** Moves what the server link queued out: its datagrams, then its events. */
  #linkOut(): void {
    for (let t = this.#link.pollTransmit(); t; t = this.#link.pollTransmit()) this.#out.push(t);
    for (let e = this.#link.pollEvent(); e; e = this.#link.pollEvent()) {
      this.#events.push(linkEventOf(e, this.#fingerprint));
    }
  }

  #notice(f: NoticeFact): void {
    this.#events.push(notice(f));
  }

  #drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }
}
