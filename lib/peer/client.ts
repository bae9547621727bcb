/**
 * The joining peer's pure core, a router: each datagram goes to the one machine it concerns
 * (`lib/peer/client_inbox.ts`), and what the machines queue goes out through one pair of queues
 * (`lib/peer/client_drain.ts`); typed lines go onto the peers' channels (`lib/peer/client_chat.ts`).
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
import type { PeerTable } from "./peer_table.ts";
import type { ClientEvent, ClientOptions } from "./client_options.ts";
import type { Membership } from "./membership.ts";
import { Farewell } from "./farewell.ts";
import { StallGuard } from "../core/stall.ts";
import type { ChatOut } from "./client_chat.ts";
import type { HttpResult, PortMapHttp } from "../nat/portmap/mapper.ts";
import type { PeerInfo } from "./remote.ts";
import type { ServerLink } from "./server_link.ts";
import type { Supernodes, SupernodeStats } from "./supernodes.ts";
import { makeParts, wireParts } from "./client_parts.ts";
import type { ClientDrain } from "./client_drain.ts";
import type { ClientInbox } from "./client_inbox.ts";
import type { ClientFiles } from "./client_files.ts";
import type { StepEnd } from "./client_step.ts";
import { DriveState, nextDeadline } from "./client_drive.ts";
import type { ClientLeave } from "./client_leave.ts";
import type { Endpoint } from "../wire/address.ts";
import type { Transmit } from "../wire/transmit.ts";

export { MAX_MESSAGE } from "./fragment.ts";
export type { PeerInfo } from "./remote.ts";
export type { Notice, NoticeKind } from "./notices.ts";
export { DEPARTED_KEEP, MAX_DEPARTED } from "./peer_table.ts";
export { UNANSWERED_AFTER } from "./remote.ts";
export type { ClientEvent, ClientOptions } from "./client_options.ts";

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
  #id: Uint8Array;
  #link: ServerLink;
  /** Who is in the room, by the server's (or our supernode's) word. */
  #members: Membership;
  /** The remote peers, present and departed, and their deadlines. */
  #peers: PeerTable;
  /** Where the parts' datagrams and events become ours. */
  #d: ClientDrain;
  /** Where incoming datagrams go. */
  #inbox: ClientInbox;
  /** Chat lines queued but not yet sent (see {@link pollTransmit}). */
  #chat: ChatOut;
  /** STUN probe and router port mapping: our NAT's mapping and extra candidates. */
  #discovery: Discovery;
  #pool: BirthdayPool;
  #fingerprint: string;
  /** The supernode role and our registration with the room's supernode. */
  #sn: Supernodes;
  /** Our own goodbyes, once we leave. */
  #farewell = new Farewell();
  /** Notices late wake-ups (the process was stopped) and holds timers after them. */
  #stall = new StallGuard();
  /** The earliest deadline as last computed (before any hold). */
  #due: number | undefined;
  /** File transfers with the peers. */
  #files: ClientFiles;
  /** The end of every step (server news, the supernode side's traffic, history). */
  #end: StepEnd;
  /** Our goodbyes, once we leave. */
  #leave: ClientLeave;
  /** Dropped datagrams by reason. */
  readonly drops: Record<string, number> = {};
  /** Remote peers woken by timers (each costs a look at that peer only). */
  readonly stats = { remoteWakeups: 0 };

  /** Makes a client; call {@link start} to begin registering. */
  constructor(options: ClientOptions) {
    const p = makeParts(options, this.drops);
    this.#peers = p.peers;
    this.#pool = p.pool;
    this.#id = p.id;
    this.#fingerprint = p.fingerprint;
    this.#link = p.link;
    this.#discovery = p.discovery;
    this.#sn = p.supernodes;
    this.#members = p.members;
    const w = wireParts(options, p, new DriveState(), this.#farewell);
    this.#files = w.files;
    this.#d = w.drain;
    this.#inbox = w.inbox;
    this.#chat = w.chat;
    this.#end = w.end;
    this.#leave = w.leave;
  }

  /**
   * File transfers: offers, decisions and disk answers go here; then `fileStep`. Internal (the
   * `join` role's), not part of the library's surface yet.
   *
   * @ignore
   */
  get files(): ClientFiles {
    return this.#files;
  }

  /**
   * Runs `fn` on the file transfers at `now` (an offer, a decision, a disk answer), then steps.
   *
   * @ignore
   */
  fileStep(now: number, fn: (files: ClientFiles) => void): void {
    fn(this.#files);
    this.#end.run(now);
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
   * Message parts waiting for departed peers still kept: not given up while they may come back,
   * but given up if we leave now.
   */
  get departedOutstanding(): number {
    return this.#peers.departedOutstanding;
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
    if (this.#chat.pending) this.#end.run(this.#chat.flush());
    return this.#d.out.shift();
  }

  /** The next auxiliary socket (of a birthday search) the driver should close. */
  pollRelease(): number | undefined {
    return this.#pool.pollRelease();
  }

  /** Our NAT's mapping as peers are told it (a `NatMapping` value), and how it is known. */
  get mapping(): { mapping: number; basis: string } {
    return { mapping: this.#discovery.nat.mapping, basis: this.#discovery.mappingBasis };
  }

  /** Birthday search counters summed over the peers known (for diagnostics and tests). */
  birthdayStats(): { searches: number; hits: number; probes: number; kept: number } {
    return { ...this.#peers.birthdayStats(), kept: this.#pool.kept };
  }

  /** Takes the next event for the user, if any. */
  pollEvent(): ClientEvent | undefined {
    return this.#d.events.shift();
  }

  /** Starts registering. */
  start(now: number): void {
    this.#link.start(now);
    this.#d.link();
    this.#sn.start(now);
    this.#discovery.start(now);
    this.#d.discovery(now);
  }

  /** The port mapper's next HTTP request (UPnP), to be made and answered via {@link handleHttp}. */
  pollHttp(): PortMapHttp | undefined {
    return this.#discovery.pollHttp();
  }

  /** The answer to the port mapper's HTTP request `id`. */
  handleHttp(now: number, id: number, res: HttpResult): void {
    this.#discovery.handleHttp(now, id, res);
    this.#d.discovery(now);
  }

  /** True when the port mapper has nothing pending (after leave: its deletions are done). */
  get portmapIdle(): boolean {
    return this.#discovery.mapperIdle;
  }

  /**
   * Says goodbye, after sending the ACKs still delayed (so the peers do not resend what was
   * delivered): a sealed GOODBYE to each established peer along its path, repeated to those
   * reached directly until they answer (see `lib/peer/farewell.ts`), and BYE to the server, sent
   * three times. Keep driving the client (datagrams and timers) until {@link farewellDone} and
   * {@link portmapIdle}; then close the socket.
   */
  leave(now: number): void {
    this.#leave.start(now);
  }

  /** True once the goodbyes of {@link leave} are answered or given up on (at most a second). */
  get farewellDone(): boolean {
    return this.#farewell.done;
  }

  /**
   * Sends a chat line to every peer present (kept for peers that join later, see
   * `lib/peer/chat_log.ts`). Returns how many peers it was queued for.
   */
  send(now: number, text: string): number {
    const n = this.#chat.line(now, text);
    this.#end.run(now);
    return n;
  }

  /** Sends `text` to the peer called `name` alone (`/msg`). Returns 1 if queued, else 0. */
  sendPrivate(now: number, name: string, text: string): number {
    const n = this.#chat.privately(now, name, text);
    this.#end.run(now);
    return n;
  }

  /**
   * Renames us (`/nick`) to `wanted`: the peers present are told, and later handshakes and
   * registrations carry the new name (our identity stays). Returns why not, or null.
   */
  rename(now: number, wanted: string): string | null {
    const why = this.#chat.rename(now, wanted, this.#link);
    if (why === null) this.#end.run(now);
    return why;
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
      files: this.#files,
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
    this.#d.discovery(now);
    if (this.#link.closed) return this.#leave.handleTimeout(now);
    this.#link.handleTimeout(now);
    this.#d.link();
    this.#sn.handleTimeout(now);
    this.#discovery.handleTimeout(now);
    this.#d.discovery(now);
    for (const r of this.#peers.popDue(now)) {
      this.stats.remoteWakeups++;
      r.handleTimeout(now);
      this.#d.remote(r);
    }
    this.#members.handleTimeout(now);
    this.#d.members();
    this.#sn.relaysCheck();
    this.#files.handleTimeout(now);
    this.#end.run(now);
  }

  /**
   * Handles one datagram received from `from` on our socket `via` (0: the main one; n:
   * auxiliary socket n of a birthday search, where only sealed peer frames are expected).
   * Never throws on bad input.
   */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array, via = 0): void {
    this.#holding(now);
    this.#inbox.handle(now, from, data, via);
    this.#end.run(now);
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
   * Checks our registration now (a PING; a HELLO while registering again), at most every 2 s:
   * the stream to our server closed, so the server may have restarted or dropped it.
   */
  recheckServer(now: number): void {
    this.#link.recheck(now);
    this.#d.link();
  }

  /** True while we serve as our room's supernode. */
  get supernode(): boolean {
    return this.#sn.host !== undefined;
  }

  /** The supernode role's counters (relayed bytes, members), while we serve. */
  supernodeStats(): SupernodeStats | undefined {
    return this.#sn.stats();
  }

  /** The supernode we are registered with (its peer id in hex), if any. */
  get supernodeKey(): string | undefined {
    return this.#sn.link?.key;
  }
}
