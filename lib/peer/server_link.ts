/**
 * A peer's link to the rendezvous server: registration (HELLO until WELCOME, with the server's
 * return-routability cookie, a fresh nonce that WELCOME and REFUSED must echo, the owner tag
 * that binds our name to our identity, and the room key's signature), PING keepalives with
 * backoff while a PONG is missing, the server's loss and return, and its restarts (WELCOME's
 * boot id). The whole lifecycle is one {@link ServerLinkState} value, so every fact
 * is reported exactly once ("lost", then "back"; a restart noticed on registering again is
 * "back" with `restarted`, whether or not "lost" came first). Sans-IO: its datagrams and events
 * are polled (see {@link ServerLink} for the call order).
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import { PingSchedule } from "./server_link_keepalive.ts";
import { RegisteredName, SeqWindow, ServerList } from "./server_link_parts.ts";
import { encodeServerMsg, type ServerMsg, TOKEN_LEN } from "../wire/server_msg.ts";
import { type Transmit } from "../wire/transmit.ts";
import { bytesEqual } from "../core/bytes.ts";
import {
  HelloCredentials,
  noAnswer,
  refusal,
  registeringDue,
  welcomeEvents,
} from "./server_link_hello.ts";
import { TransportMoves } from "./server_link_moves.ts";
import {
  MAX_LINK_SERVERS,
  RECHECK_INTERVAL,
  type ServerLinkEvent,
  type ServerLinkOptions,
  type ServerLinkState,
} from "./server_link_types.ts";

export * from "./server_link_types.ts";

/**
 * The peer's side of the server relationship (with the server, or with a supernode).
 *
 * Driving it: after {@link start}, any `handle*` call, {@link resync} or {@link close}, drain
 * {@link pollTransmit} until undefined (each datagram goes to the server in use, which
 * {@link handle} may have just changed), then {@link pollEvent}; then read {@link nextTimeout}.
 */
export class ServerLink {
  #o: ServerLinkOptions;
  #digest: () => number;
  #out: Transmit[] = [];
  #events: ServerLinkEvent[] = [];
  #state: ServerLinkState = { kind: "closed" };
  /**
   * When the first registration last heard from the server (it started then): its deadline
   * counts only time with no answer at all, so a busy server that answers slowly is waited for.
   */
  #heardAt = 0;
  /** The cookie, puzzle and nonce of our requests, and our HELLOs. */
  #hello: HelloCredentials;
  /** The registration's secret from WELCOME; zero until registered. */
  #token: Uint8Array = new Uint8Array(TOKEN_LEN);
  /** The name we register under. */
  #name: RegisteredName;
  /** The sequence numbers of this registration's INTRO, LEFT, ROSTER and CHECK acted on. */
  #seq = new SeqWindow();
  #public: Endpoint | undefined;
  #lastResync = -Infinity;
  /** The server first, then the fallbacks; the one in use; their boot ids. */
  #servers: ServerList;
  /** When to PING, how long a PONG may be missing, the round-trip times. */
  #pings: PingSchedule;
  /** Registrations completed (WELCOMEs that began one). */
  #registrations = 0;
  /** When {@link recheck} last sent something. */
  #lastRecheck = -Infinity;
  /** The moves between the transports of the server in use. */
  #moves = new TransportMoves();

  /** `digest` gives the roster digest of the peers this side knows, sent in every PING. */
  constructor(options: ServerLinkOptions, digest: () => number) {
    this.#o = options;
    this.#digest = digest;
    this.#name = new RegisteredName(options.name);
    this.#hello = new HelloCredentials(options);
    this.#servers = new ServerList(options.server, options.fallbacks ?? [], options.serverGroups);
    this.#pings = new PingSchedule(options.keepalive);
  }

  /**
   * True when `from` is the server in use, or the same server over another transport (it
   * answers our background attempt, or has moved our registration there).
   */
  isServer(from: Endpoint): boolean {
    return this.#servers.isCurrent(from);
  }

  /** The next datagram for the server, if any. */
  pollTransmit(): Transmit | undefined {
    return this.#out.shift();
  }

  /** The next event (registered, renamed, refused, lost, back, fatal), if any. */
  pollEvent(): ServerLinkEvent | undefined {
    return this.#events.shift();
  }

  /** Queues `m` for the server in use. */
  #send(m: ServerMsg): void {
    this.#out.push({ to: this.server, data: encodeServerMsg(m) });
  }

  /** The lifecycle state (read-only view). */
  get state(): Readonly<ServerLinkState> {
    return this.#state;
  }

  /** True while the server has us registered. */
  get registered(): boolean {
    return this.#state.kind === "registered";
  }

  /** True while registered and answering (no PONG has been missing for long). */
  get healthy(): boolean {
    return this.#state.kind === "registered" && !this.#state.lost;
  }

  /** Smoothed round-trip time to the server (PING to PONG) in ms, or null before the first. */
  get rtt(): number | null {
    return this.#pings.rtt.rtt;
  }

  /**
   * The least round-trip time seen to this server in ms, or null before the first: what to
   * compare relays by, since load on either end only ever adds to a sample. The first
   * {@link EARLY_SAMPLES} PINGs after registering go a second apart, so it settles early.
   */
  get minRtt(): number | null {
    return this.#pings.rtt.min;
  }

  /** The server this link registers (or tries to register) with now. */
  get server(): Endpoint {
    return this.#servers.current;
  }

  /**
   * Moves on to the next server (a fallback) or to entry `to`, with a fresh nonce, and without
   * the cookie unless both are servers of one cluster (which may share cookies: then the HELLO
   * needs no COOKIE round trip; if not, it gets a COOKIE as it would without one).
   */
  #next(now: number, to?: number): void {
    const from = this.#servers.index;
    const sibling = this.#servers.next(now, to);
    this.#moves.stop();
    this.#pings.rtt.reset();
    this.#hello.forget(this.#servers.clustered(from, this.#servers.index));
    // The same server over another transport: the same attempt, so that a slow stream's late
    // WELCOME still counts (see handle).
    if (!sibling) this.#hello.newNonce();
  }

  /** The name the server assigned (the wanted one until then). */
  get name(): string {
    return this.#name.current;
  }

  /**
   * The boot id of the server we registered with last (from its WELCOME), or null before the
   * first registration. Another value after a re-registration means the server restarted
   * (reported as `server-back` with `restarted: true`).
   */
  get bootId(): Uint8Array | null {
    return this.#servers.boot;
  }

  /** The registration's token (carried by every message after WELCOME, both ways). */
  get token(): Uint8Array {
    return this.#token;
  }

  /**
   * True the first time sequence number `seq` of this registration is seen and it is not far
   * behind the newest (a replayed or duplicated old INTRO, LEFT or ROSTER is not acted on).
   */
  fresh(seq: number): boolean {
    return this.#seq.fresh(seq);
  }

  /** True when `token` is this registration's (a server message we can believe). */
  authentic(token: Uint8Array): boolean {
    return this.#state.kind === "registered" && constantTimeEqual(token, this.#token);
  }

  /**
   * Our public UDP endpoint as the server last saw it; undefined while we reach the server over
   * TCP or TLS (it sees that connection's port, which says nothing of our UDP mapping).
   */
  get public(): Endpoint | undefined {
    return this.server.stream === undefined ? this.#public : undefined;
  }

  /** Starts the first registration. */
  start(now: number): void {
    this.#heardAt = now;
    this.#servers.pickedAt = now;
    this.#hello.newNonce();
    this.#state = {
      kind: "registering",
      tries: 0,
      since: now,
      nextHello: now,
      again: false,
      lost: false,
    };
    this.#sendHello(now);
  }

  /** Says goodbye (if registered) and stops. */
  close(): void {
    if (this.#state.kind === "registered") {
      this.#send({ type: MsgType.Bye, id: this.#o.id, token: this.#token });
    }
    this.#state = { kind: "closed" };
  }

  /** True once closed (by {@link close}, a fatal refusal or the registration deadline). */
  get closed(): boolean {
    return this.#state.kind === "closed";
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    const s = this.#state;
    if (s.kind === "closed") return undefined;
    if (s.kind === "registered") return Math.min(s.nextPing, this.#moves.at ?? Infinity);
    return s.again ? s.nextHello : Math.min(s.nextHello, this.#heardAt + this.#o.registerTimeout);
  }

  /** Advances timers. */
  handleTimeout(now: number): void {
    const s = this.#state;
    if (s.kind === "registering") {
      const { pickedAt, several } = this.#servers;
      const timeout = this.#o.registerTimeout;
      const due = registeringDue(now, s, { heardAt: this.#heardAt, pickedAt, several, timeout });
      if (due.fatal) {
        this.#state = { kind: "closed" };
        this.#events.push({ type: "fatal", message: noAnswer(this.#servers.all, timeout) });
        return;
      }
      if (due.failover) {
        this.#next(now);
        s.tries = 0;
        s.nextHello = now;
      }
      if (due.lost) {
        s.lost = true;
        this.#events.push({ type: "server-lost" });
      }
      if (now >= s.nextHello) this.#sendHello(now);
    } else if (s.kind === "registered") {
      if (now >= s.nextPing) this.#ping(now, s);
      if (this.#moves.due(now)) this.#tryUdp();
    }
  }

  /** Registered over a stream: a PING to the same server over UDP (see {@link TransportMoves}). */
  #tryUdp(): void {
    const ping = { id: this.#o.id, token: this.#token, digest: this.#digest() };
    const t = this.#moves.udpPing(this.#servers, this.registered, ping);
    if (t) this.#out.push(t);
  }

  /**
   * Asks the server to resync our view of the room (a PING with our digest), at most once a
   * second: a frame from a peer we do not know suggests a lost introduction.
   */
  resync(now: number): void {
    if (this.#state.kind !== "registered" || now - this.#lastResync < 1_000) return;
    this.#lastResync = now;
    this.#sendPing(now);
  }

  /** Registrations completed so far: more than one means we registered again (restart, loss). */
  get registrations(): number {
    return this.#registrations;
  }

  /**
   * A peer told us it just registered again (a SERVER_HINT: the server restarted, or forgot it):
   * checks our registration now rather than at the next keepalive. Registered, a PING (a
   * restarted server refuses it as unknown, and we register again); registering again, a HELLO.
   * At most once per {@link RECHECK_INTERVAL}.
   */
  recheck(now: number): void {
    const s = this.#state;
    if (now - this.#lastRecheck < RECHECK_INTERVAL) return;
    if (s.kind === "registered") this.#sendPing(now);
    else if (s.kind === "registering" && s.again) this.#sendHello(now);
    else return;
    this.#lastRecheck = now;
  }

  /**
   * Handles the server messages about the link itself (WELCOME, REFUSED, PONG, COOKIE).
   * Returns false for anything else, which the caller routes to the peers it concerns.
   */
  handle(now: number, m: ServerMsg, from?: Endpoint): boolean {
    if (this.#state.kind === "closed") return true;
    if (from && !sameEndpoint(from, this.server)) {
      if (this.registered) return this.#fromSibling(now, m, from);
      // Registering, the same server over the transport tried before: its WELCOME (a slow
      // stream's) registers us there; its COOKIE or REFUSED concerns an address we left.
      const j = this.#servers.indexOf(from);
      if (m.type === MsgType.Welcome && this.#servers.sibling(j)) this.#servers.use(j);
      else if (m.type === MsgType.Cookie || m.type === MsgType.Refused) return true;
    }
    switch (m.type) {
      case MsgType.Welcome:
        // Only an answer to our own HELLO (it echoes this attempt's nonce) is believed: the
        // nonce never leaves us in anything but HELLOs to the server (a COOKIE must echo it too).
        if (bytesEqual(m.id, this.#o.id) && constantTimeEqual(m.nonce, this.#hello.nonce)) {
          this.#welcome(now, m.token, m.boot, m.observed);
        }
        return true;
      case MsgType.Refused:
        if (constantTimeEqual(m.echo, this.registered ? this.#token : this.#hello.nonce)) {
          this.#heardAt = now;
          this.#refused(now, m.code, m.message);
        }
        return true;
      case MsgType.Pong:
        if (this.authentic(m.token)) {
          // Where the server sees us now (a NAT may have given us another port since WELCOME).
          this.#public = m.observed;
          this.#pings.rtt.ponged(now);
          this.#alive(now);
        }
        return true;
      case MsgType.Servers:
        if (this.authentic(m.token) && this.fresh(m.seq)) {
          this.#learnServers(m.servers, m.keepalive);
        }
        return true;
      case MsgType.Cookie:
        // The server wants proof that we receive at our address: repeat the request with it
        // (a HELLO at most every 250 ms, a PING at most once a second). Only a COOKIE that echoes
        // our request's nonce (or our token) is believed: forged ones, however many, neither
        // replace the cookie nor keep a registration waiting.
        if (!constantTimeEqual(m.echo, this.registered ? this.#token : this.#hello.nonce)) {
          return true;
        }
        if (this.#state.kind === "registering") {
          // The server answers (slowly, maybe): keep trying it, and for as long as it does.
          this.#heardAt = now;
          this.#servers.pickedAt = now;
        }
        if (!this.#hello.cookied(now, m.cookie, m.difficulty, !this.registered)) return true;
        if (this.registered) this.#sendPing(now);
        else this.#sendHello(now);
        return true;
      default:
        return false;
    }
  }

  /**
   * A message from the server in use over another transport (our background UDP attempt's
   * answers): its COOKIE is for that endpoint, and a PONG there means the server moved our
   * registration there, so we use it from now on. Everything else is the server's as usual.
   */
  #fromSibling(now: number, m: ServerMsg, from: Endpoint): boolean {
    const j = this.#servers.indexOf(from);
    const answer = this.#moves.answer(now, m, j, this.#servers, this.#token);
    if (answer === "ping-udp") this.#tryUdp();
    if (answer === "as-usual") return this.handle(now, m);
    if (answer !== "moved" || m.type !== MsgType.Pong) return true;
    // The server has us at `from` now: use it (keeping the registration).
    this.#hello.use(this.#moves.cookie);
    this.#pings.rtt.reset();
    this.#public = m.observed;
    this.#alive(now);
    const s = this.#state;
    if (s.kind === "registered") s.nextPing = Math.min(s.nextPing, now + 1_000);
    return true;
  }

  /** A cluster's other servers (SERVERS): where to go when ours is lost, sooner than alone. */
  #learnServers(servers: Endpoint[], keepalive: number): void {
    this.#servers.learn(servers, MAX_LINK_SERVERS);
    this.#pings.advise(servers.length > 0, keepalive);
  }

  #welcome(now: number, token: Uint8Array, boot: Uint8Array, observed: Endpoint): void {
    const s = this.#state;
    if (s.kind === "registered") return this.#alive(now);
    if (s.kind !== "registering") return;
    this.#public = observed;
    const restarted = this.#servers.welcomed(boot);
    if (!constantTimeEqual(token, this.#token)) {
      // A new registration: the server numbers its messages from 1 again.
      this.#seq.reset();
    }
    this.#token = token;
    this.#registrations++;
    this.#state = {
      kind: "registered",
      nextPing: this.#pings.first(now),
      awaitingSince: undefined,
      lost: false,
    };
    this.#moves.answered();
    this.#moves.start(now, this.#servers);
    this.#events.push(...welcomeEvents(s, this.#name, observed, restarted));
  }

  /**
   * We are called `name` now (`/nick`): the next registration (after a restart or a loss) asks
   * for it; the current one keeps the old name's tag at the server.
   */
  rename(name: string): void {
    this.#name.rename(name);
  }

  #refused(now: number, code: number, message: string): void {
    const s = this.#state;
    const again = s.kind === "registering" && s.again;
    switch (refusal(code, s.kind, again, this.#name)) {
      case "next-name": // Another member has this name: try the next suffix (unique per room).
        this.#hello.newNonce();
        if (s.kind === "registering") s.tries = 0;
        return this.#sendHello(now);
      case "again": // The server forgot us (restart or expiry): register again with the same id.
        this.#hello.newNonce();
        return this.#registerAgain(now, s.kind === "registered" && s.lost);
      case "fatal":
        this.#state = { kind: "closed" };
        this.#events.push({
          type: "fatal",
          message: `The server refused to register us: ${message}`,
        });
        return;
      case "report":
        this.#events.push({ type: "refused", message });
    }
  }

  #alive(now: number): void {
    const s = this.#state;
    if (s.kind !== "registered") return;
    if (s.awaitingSince !== undefined) s.nextPing = this.#pings.answered(now);
    s.awaitingSince = undefined;
    this.#moves.answered();
    if (s.lost) {
      s.lost = false;
      this.#events.push({ type: "server-back", public: this.#public!, restarted: false });
    }
  }

  #sendHello(now: number): void {
    const s = this.#state;
    if (s.kind !== "registering") return;
    this.#send(this.#hello.hello(this.#name.current));
    s.tries++;
    s.nextHello = now + Math.min(250 * 2 ** (s.tries - 1), 2_000);
  }

  /** Registers again with the same id: the server forgot us, or the next server is tried. */
  #registerAgain(now: number, lost: boolean): void {
    this.#state = { kind: "registering", tries: 0, since: now, nextHello: now, again: true, lost };
    this.#sendHello(now);
  }

  #ping(now: number, s: Extract<ServerLinkState, { kind: "registered" }>): void {
    if (s.awaitingSince === undefined) s.awaitingSince = now;
    const waited = now - s.awaitingSince;
    const giveUp = this.#moves.movedInLoss ? this.#pings.moveGiveUp : this.#pings.giveUp;
    if (waited >= giveUp && (!s.lost || this.#moves.movedInLoss)) {
      if (!s.lost) this.#events.push({ type: "server-lost" });
      s.lost = true;
      const other = this.#moves.lossMove(this.#servers);
      if (other >= 0) {
        // The same server over its other transport (UDP blocked now, or back): our
        // registration moves with a PING (the server asks for a cookie there first).
        this.#next(now, other);
        s.awaitingSince = now;
        this.#moves.start(now, this.#servers);
        this.#sendPing(now);
        s.nextPing = this.#pings.moved(now);
        return;
      }
      if (this.#servers.several) {
        // Register with the next server (or supernode), the same id; "back" once one answers.
        this.#next(now);
        return this.#registerAgain(now, true);
      }
    }
    this.#sendPing(now);
    s.nextPing = this.#pings.retry(now, waited, s.awaitingSince + giveUp);
  }

  #sendPing(now: number): void {
    this.#pings.rtt.pinged(now);
    this.#send({
      type: MsgType.Ping,
      id: this.#o.id,
      token: this.#token,
      cookie: this.#hello.cookie,
      digest: this.#digest(),
    });
  }
}
