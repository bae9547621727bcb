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
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import type { ServerMsg } from "../wire/server_msg.ts";
import { type Transmit } from "../wire/transmit.ts";
import { bytesEqual } from "../core/bytes.ts";
import { noAnswer, refusal, registeringDue, welcomeEvents } from "./server_link_hello.ts";
import { LinkCore, type Registered } from "./server_link_core.ts";
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
  /** The state, parts and outputs, and the steps every path takes. */
  #c: LinkCore;
  #lastResync = -Infinity;
  /** When {@link recheck} last sent something. */
  #lastRecheck = -Infinity;

  /** `digest` gives the roster digest of the peers this side knows, sent in every PING. */
  constructor(options: ServerLinkOptions, digest: () => number) {
    this.#c = new LinkCore(options, digest);
  }

  /**
   * True when `from` is the server in use, or the same server over another transport (it
   * answers our background attempt, or has moved our registration there).
   */
  isServer(from: Endpoint): boolean {
    return this.#c.servers.isCurrent(from);
  }

  /** The next datagram for the server, if any. */
  pollTransmit(): Transmit | undefined {
    return this.#c.out.shift();
  }

  /** The next event (registered, renamed, refused, lost, back, fatal), if any. */
  pollEvent(): ServerLinkEvent | undefined {
    return this.#c.events.shift();
  }

  /** The lifecycle state (read-only view). */
  get state(): Readonly<ServerLinkState> {
    return this.#c.state;
  }

  /** True while the server has us registered. */
  get registered(): boolean {
    return this.#c.state.kind === "registered";
  }

  /** True while registered and answering (no PONG has been missing for long). */
  get healthy(): boolean {
    return this.#c.state.kind === "registered" && !this.#c.state.lost;
  }

  /** Smoothed round-trip time to the server (PING to PONG) in ms, or null before the first. */
  get rtt(): number | null {
    return this.#c.pings.rtt.rtt;
  }

  /**
   * The least round-trip time seen to this server in ms, or null before the first: what to
   * compare relays by, since load on either end only ever adds to a sample. The first
   * {@link EARLY_SAMPLES} PINGs after registering go a second apart, so it settles early.
   */
  get minRtt(): number | null {
    return this.#c.pings.rtt.min;
  }

  /** The server this link registers (or tries to register) with now. */
  get server(): Endpoint {
    return this.#c.servers.current;
  }

  /** The name the server assigned (the wanted one until then). */
  get name(): string {
    return this.#c.name.current;
  }

  /**
   * The boot id of the server we registered with last (from its WELCOME), or null before the
   * first registration. Another value after a re-registration means the server restarted
   * (reported as `server-back` with `restarted: true`).
   */
  get bootId(): Uint8Array | null {
    return this.#c.servers.boot;
  }

  /** The registration's token (carried by every message after WELCOME, both ways). */
  get token(): Uint8Array {
    return this.#c.reg.token;
  }

  /**
   * True the first time sequence number `seq` of this registration is seen and it is not far
   * behind the newest (a replayed or duplicated old INTRO, LEFT or ROSTER is not acted on).
   */
  fresh(seq: number): boolean {
    return this.#c.reg.fresh(seq);
  }

  /** True when `token` is this registration's (a server message we can believe). */
  authentic(token: Uint8Array): boolean {
    return this.#c.state.kind === "registered" && this.#c.reg.matches(token);
  }

  /**
   * Our public UDP endpoint as the server last saw it; undefined while we reach the server over
   * TCP or TLS (it sees that connection's port, which says nothing of our UDP mapping).
   */
  get public(): Endpoint | undefined {
    return this.server.stream === undefined ? this.#c.reg.public : undefined;
  }

  /** Starts the first registration. */
  start(now: number): void {
    this.#c.heardAt = now;
    this.#c.servers.pickedAt = now;
    this.#c.hello.newNonce();
    this.#c.state = {
      kind: "registering",
      tries: 0,
      since: now,
      nextHello: now,
      again: false,
      lost: false,
    };
    this.#c.sendHello(now);
  }

  /** Says goodbye (if registered) and stops. */
  close(): void {
    if (this.#c.state.kind === "registered") {
      this.#c.send({ type: MsgType.Bye, id: this.#c.o.id, token: this.#c.reg.token });
    }
    this.#c.state = { kind: "closed" };
  }

  /** True once closed (by {@link close}, a fatal refusal or the registration deadline). */
  get closed(): boolean {
    return this.#c.state.kind === "closed";
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    const s = this.#c.state;
    if (s.kind === "closed") return undefined;
    if (s.kind === "registered") return Math.min(s.nextPing, this.#c.moves.at ?? Infinity);
    return s.again
      ? s.nextHello
      : Math.min(s.nextHello, this.#c.heardAt + this.#c.o.registerTimeout);
  }

  /** Advances timers. */
  handleTimeout(now: number): void {
    const s = this.#c.state;
    if (s.kind === "registering") {
      const { pickedAt, several } = this.#c.servers;
      const timeout = this.#c.o.registerTimeout;
      const due = registeringDue(now, s, { heardAt: this.#c.heardAt, pickedAt, several, timeout });
      if (due.fatal) {
        this.#c.state = { kind: "closed" };
        this.#c.events.push({ type: "fatal", message: noAnswer(this.#c.servers.all, timeout) });
        return;
      }
      if (due.failover) {
        this.#c.next(now);
        s.tries = 0;
        s.nextHello = now;
      }
      if (due.lost) {
        s.lost = true;
        this.#c.events.push({ type: "server-lost" });
      }
      if (now >= s.nextHello) this.#c.sendHello(now);
    } else if (s.kind === "registered") {
      if (now >= s.nextPing) this.#ping(now, s);
      if (this.#c.moves.due(now)) this.#c.tryUdp();
    }
  }

  /**
   * Asks the server to resync our view of the room (a PING with our digest), at most once a
   * second: a frame from a peer we do not know suggests a lost introduction.
   */
  resync(now: number): void {
    if (this.#c.state.kind !== "registered" || now - this.#lastResync < 1_000) return;
    this.#lastResync = now;
    this.#c.sendPing(now);
  }

  /** Registrations completed so far: more than one means we registered again (restart, loss). */
  get registrations(): number {
    return this.#c.reg.count;
  }

  /**
   * A peer told us it just registered again (a SERVER_HINT: the server restarted, or forgot it):
   * checks our registration now rather than at the next keepalive. Registered, a PING (a
   * restarted server refuses it as unknown, and we register again); registering again, a HELLO.
   * At most once per {@link RECHECK_INTERVAL}.
   */
  recheck(now: number): void {
    const s = this.#c.state;
    if (now - this.#lastRecheck < RECHECK_INTERVAL) return;
    if (s.kind === "registered") this.#c.sendPing(now);
    else if (s.kind === "registering" && s.again) this.#c.sendHello(now);
    else return;
    this.#lastRecheck = now;
  }

  /**
   * Handles the server messages about the link itself (WELCOME, REFUSED, PONG, COOKIE).
   * Returns false for anything else, which the caller routes to the peers it concerns.
   */
  handle(now: number, m: ServerMsg, from?: Endpoint): boolean {
    if (this.#c.state.kind === "closed") return true;
    if (from && !sameEndpoint(from, this.server)) {
      if (this.registered) return this.#fromSibling(now, m, from);
      // Registering, the same server over the transport tried before: its WELCOME (a slow
      // stream's) registers us there; its COOKIE or REFUSED concerns an address we left.
      const j = this.#c.servers.indexOf(from);
      if (m.type === MsgType.Welcome && this.#c.servers.sibling(j)) this.#c.servers.use(j);
      else if (m.type === MsgType.Cookie || m.type === MsgType.Refused) return true;
    }
    switch (m.type) {
      case MsgType.Welcome:
        // Only an answer to our own HELLO (it echoes this attempt's nonce) is believed: the
        // nonce never leaves us in anything but HELLOs to the server (a COOKIE must echo it too).
        if (bytesEqual(m.id, this.#c.o.id) && this.#c.hello.echoes(m.nonce, undefined)) {
          const registering = this.#c.state.kind === "registering";
          this.#welcome(now, m.token, m.boot, m.observed);
          // A cluster server's (protocol 8): its shared cookie and where to go when it is lost;
          // a duplicate WELCOME only counts as an answer (a later SERVERS or COOKIE stands).
          if (registering && m.sharedCookie) this.#c.hello.keep(m.sharedCookie);
          if (registering && m.cluster) this.#learnServers(m.cluster.servers, m.cluster.keepalive);
        }
        return true;
      case MsgType.Refused:
        if (this.#c.hello.echoes(m.echo, this.#believedToken)) {
          this.#c.heardAt = now;
          this.#refused(now, m.code, m.message);
        }
        return true;
      case MsgType.Pong:
        if (this.authentic(m.token)) {
          this.#c.reg.seen(m.observed);
          this.#c.pings.rtt.ponged(now);
          this.#c.alive(now);
        }
        return true;
      case MsgType.Servers:
        if (this.authentic(m.token) && this.fresh(m.seq)) {
          this.#learnServers(m.servers, m.keepalive);
        }
        return true;
      case MsgType.Cookie: {
        // The server wants proof that we receive at our address (see answerCookie).
        const answer = this.#c.hello.answerCookie(now, m, this.#believedToken);
        if (answer !== "forged" && this.#c.state.kind === "registering") {
          // The server answers (slowly, maybe): keep trying it, and for as long as it does.
          this.#c.heardAt = this.#c.servers.pickedAt = now;
        }
        if (answer !== "repeat") return true;
        if (this.registered) this.#c.sendPing(now);
        else this.#c.sendHello(now);
        return true;
      }
      default:
        return false;
    }
  }

  /** What the server's REFUSED and COOKIE echo: our token while registered, else our nonce. */
  get #believedToken(): Uint8Array | undefined {
    return this.registered ? this.#c.reg.token : undefined;
  }

  /**
   * A message from the server in use over another transport (our background UDP attempt's
   * answers): its COOKIE is for that endpoint, and a PONG there means the server moved our
   * registration there, so we use it from now on. Everything else is the server's as usual.
   */
  #fromSibling(now: number, m: ServerMsg, from: Endpoint): boolean {
    const j = this.#c.servers.indexOf(from);
    const answer = this.#c.moves.answer(now, m, j, this.#c.servers, this.#c.reg.token);
    if (answer === "ping-udp") this.#c.tryUdp();
    if (answer === "as-usual") return this.handle(now, m);
    if (answer !== "moved" || m.type !== MsgType.Pong) return true;
    // The server has us at `from` now: use it (keeping the registration).
    this.#c.hello.use(this.#c.moves.cookie);
    this.#c.pings.rtt.reset();
    this.#c.reg.seen(m.observed);
    this.#c.alive(now);
    const s = this.#c.state;
    if (s.kind === "registered") s.nextPing = Math.min(s.nextPing, now + 1_000);
    return true;
  }

  /** A cluster's other servers (SERVERS): where to go when ours is lost, sooner than alone. */
  #learnServers(servers: Endpoint[], keepalive: number): void {
    this.#c.servers.learn(servers, MAX_LINK_SERVERS);
    this.#c.pings.advise(servers.length > 0, keepalive);
  }

  #welcome(now: number, token: Uint8Array, boot: Uint8Array, observed: Endpoint): void {
    const s = this.#c.state;
    if (s.kind === "registered") return this.#c.alive(now);
    if (s.kind !== "registering") return;
    const restarted = this.#c.servers.welcomed(boot);
    this.#c.reg.welcomed(token, observed);
    this.#c.state = {
      kind: "registered",
      nextPing: this.#c.pings.first(now),
      awaitingSince: undefined,
      lost: false,
    };
    this.#c.moves.answered();
    this.#c.moves.start(now, this.#c.servers);
    this.#c.events.push(...welcomeEvents(s, this.#c.name, observed, restarted));
  }

  /**
   * We are called `name` now (`/nick`): the next registration (after a restart or a loss) asks
   * for it; the current one keeps the old name's tag at the server.
   */
  rename(name: string): void {
    this.#c.name.rename(name);
  }

  #refused(now: number, code: number, message: string): void {
    const s = this.#c.state;
    const again = s.kind === "registering" && s.again;
    switch (refusal(code, s.kind, again, this.#c.name)) {
      case "next-name": // Another member has this name: try the next suffix (unique per room).
        this.#c.hello.newNonce();
        if (s.kind === "registering") s.tries = 0;
        return this.#c.sendHello(now);
      case "again": // The server forgot us (restart or expiry): register again with the same id.
        this.#c.hello.newNonce();
        return this.#c.registerAgain(now, s.kind === "registered" && s.lost);
      case "fatal":
        this.#c.state = { kind: "closed" };
        this.#c.events.push({
          type: "fatal",
          message: `The server refused to register us: ${message}`,
        });
        return;
      case "report":
        this.#c.events.push({ type: "refused", message });
    }
  }

  #ping(now: number, s: Registered): void {
    if (s.awaitingSince === undefined) s.awaitingSince = now;
    const waited = now - s.awaitingSince;
    const giveUp = this.#c.moves.movedInLoss ? this.#c.pings.moveGiveUp : this.#c.pings.giveUp;
    if (waited >= giveUp && (!s.lost || this.#c.moves.movedInLoss)) {
      if (!s.lost) this.#c.events.push({ type: "server-lost" });
      s.lost = true;
      const other = this.#c.moves.lossMove(this.#c.servers);
      if (other >= 0) {
        // The same server over its other transport (UDP blocked now, or back): our
        // registration moves with a PING (the server asks for a cookie there first).
        this.#c.next(now, other);
        s.awaitingSince = now;
        this.#c.moves.start(now, this.#c.servers);
        this.#c.sendPing(now);
        s.nextPing = this.#c.pings.moved(now);
        return;
      }
      if (this.#c.servers.several) {
        // Register with the next server (or supernode), the same id; "back" once one answers.
        this.#c.next(now);
        return this.#c.registerAgain(now, true);
      }
    }
    this.#c.sendPing(now);
    s.nextPing = this.#c.pings.retry(now, waited, s.awaitingSince + giveUp);
  }
}
