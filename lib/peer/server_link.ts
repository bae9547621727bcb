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
import { POW_LEN, solvePuzzle } from "../crypto/puzzle.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { type Endpoint, formatEndpoint, sameEndpoint } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import { PingRtt, RegisteredName, SeqWindow, ServerList, UdpReturn } from "./server_link_parts.ts";
import {
  COOKIE_LEN,
  encodeServerMsg,
  FLAG_RELAY_ONLY,
  FLAG_SUPERNODE,
  helloSigningInput,
  NONCE_LEN,
  RefuseCode,
  type ServerMsg,
  TOKEN_LEN,
} from "../wire/server_msg.ts";
import { type Transmit } from "../wire/transmit.ts";
import { bytesEqual } from "../core/bytes.ts";

/** RTT samples taken a second apart after registering, before PINGs settle to the keepalive. */
export const EARLY_SAMPLES = 3;
/** How long PONGs may be missing before the server counts as lost, in ms. */
export const SERVER_LOST_AFTER = 10_000;

/**
 * Once a cluster told us its other servers (SERVERS): how long PONGs may be missing before we
 * register with the next one, in ms (`docs/protocol.md` 5.18).
 */
export const CLUSTER_FAILOVER_AFTER = 3_000;

/** Most rendezvous points a link keeps (given ones and a cluster's). */
const MAX_LINK_SERVERS = 16;

/** With fallback servers: how long one is tried (HELLOs unanswered) before the next, in ms. */
export const FAILOVER_AFTER = 2_000;

/** Least time between two checks of the registration a peer's SERVER_HINT asks for, in ms. */
export const RECHECK_INTERVAL = 2_000;

/** Where the link is in its lifecycle. */
export type ServerLinkState =
  | {
    kind: "registering";
    /** HELLOs sent in this attempt. */
    tries: number;
    /** When this attempt started. */
    since: number;
    nextHello: number;
    /** Registered before (the server forgot us); the first registration has a deadline. */
    again: boolean;
    /** "Lost" was reported and "back" is still owed. */
    lost: boolean;
  }
  | {
    kind: "registered";
    nextPing: number;
    /** When the oldest unanswered PING went out. */
    awaitingSince: number | undefined;
    lost: boolean;
  }
  | { kind: "closed" };

/** What the link reports. */
export type ServerLinkEvent =
  | { type: "ready"; name: string; public: Endpoint }
  | { type: "renamed"; wanted: string; name: string }
  | { type: "server-lost" }
  | {
    /**
     * Registered again after the server was lost (no PONG for {@link SERVER_LOST_AFTER}), or
     * after it restarted (`restarted`), whichever came first: reported once per return.
     */
    type: "server-back";
    public: Endpoint;
    /**
     * The WELCOME's boot id differs from the one this server gave our previous registration:
     * it restarted, so it forgot the room, and its first ROSTER lists only who has registered
     * again since. False when it was only unreachable (or forgot us by expiry).
     */
    restarted: boolean;
  }
  | { type: "refused"; message: string }
  | { type: "fatal"; message: string };

/** What the link registers with. */
export interface ServerLinkOptions {
  /** The rendezvous server. */
  server: Endpoint;
  /**
   * More servers (or supernodes of the room) to fail over to, in order: tried in turn while
   * registering, and when the current one is lost.
   */
  fallbacks?: Endpoint[];
  /** Our peer id. */
  id: Uint8Array;
  /** The room id: the room's Ed25519 public key (from the room name and passphrase). */
  roomId: Uint8Array;
  /** Signs a HELLO's signing input with the room key (64 bytes; see `roomSign`). */
  sign: (data: Uint8Array) => Uint8Array;
  /**
   * Our id key for this run (`id` is its id; `peerIdKey` of `lib/crypto/peer_id.ts`): its public
   * half goes in every HELLO, and it signs every HELLO too.
   */
  idKey: {
    readonly id: Uint8Array;
    readonly publicKey: Uint8Array;
    sign(data: Uint8Array): Uint8Array;
  };
  /** `n` random bytes, for registration nonces (node:crypto's from the roles, seeded in tests). */
  random: (n: number) => Uint8Array;
  /** The opaque tag of a name (the server checks uniqueness on tags, never sees names). */
  nameTag: (name: string) => Uint8Array;
  /**
   * Our owner tag in this room (`ownerTag` of `lib/crypto/owner.ts`, 16 bytes): a HELLO for a
   * name held by a registration with the same tag replaces it (we came back after a lost BYE).
   */
  owner: Uint8Array;
  /** Wanted name. */
  name: string;
  /** Never reveal our endpoints. */
  relayOnly: boolean;
  /** Offer to be the room's supernode (HELLO flag; the server checks reachability). */
  offerSupernode?: boolean;
  /** Our private endpoints (sent unless relay-only). */
  privateEndpoints: Endpoint[];
  /** PING interval while the server answers, in ms. */
  keepalive: number;
  /** The first registration fails after this long without a WELCOME, in ms. */
  registerTimeout: number;
  /**
   * One number per server (`server`, then `fallbacks`): equal numbers name the same server
   * reached over different transports (UDP, and TCP or TLS: an endpoint with `stream`).
   * Registered over a stream, the link PINGs the same server's UDP endpoint in the background
   * and moves there once a PONG comes back over UDP; a lost server is first tried over its
   * other transport with the same registration (a PING, which moves it). Ignored unless it has
   * one number per server.
   */
  serverGroups?: number[];
}

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
  #cookie: Uint8Array = new Uint8Array(COOKIE_LEN);
  /** The puzzle difficulty the last COOKIE asked for (0: none). */
  #difficulty = 0;
  /** The last puzzle solved, for which cookie and nonce. */
  #solved: { d: number; cookie: Uint8Array; nonce: Uint8Array; pow: Uint8Array } | undefined;
  /** This registration attempt's nonce: WELCOME and HELLO refusals must echo it. */
  #nonce: Uint8Array = new Uint8Array(NONCE_LEN);
  #lastCookieHello = -Infinity;
  #lastCookiePing = -Infinity;
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
  /** PING→PONG round trips to the server in use: the first few samples come a second apart. */
  #rtt = new PingRtt();
  /** Registrations completed (WELCOMEs that began one). */
  #registrations = 0;
  /** When {@link recheck} last sent something. */
  #lastRecheck = -Infinity;
  /** Registered over a stream: the background attempts over UDP (see {@link UdpReturn}). */
  #udp = new UdpReturn();
  /** The current loss was already met by moving to the same server's other transport. */
  #movedInLoss = false;
  /** The PING interval: the option's, or less when a cluster asks for less. */
  #keepalive: number;
  /** A cluster told us its other servers: fail over after {@link CLUSTER_FAILOVER_AFTER}. */
  #cluster = false;

  /** `digest` gives the roster digest of the peers this side knows, sent in every PING. */
  constructor(options: ServerLinkOptions, digest: () => number) {
    this.#o = options;
    this.#digest = digest;
    this.#name = new RegisteredName(options.name);
    this.#servers = new ServerList(
      options.server,
      options.fallbacks ?? [],
      options.serverGroups,
    );
    this.#keepalive = options.keepalive;
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
    return this.#rtt.rtt;
  }

  /**
   * The least round-trip time seen to this server in ms, or null before the first: what to
   * compare relays by, since load on either end only ever adds to a sample. The first
   * {@link EARLY_SAMPLES} PINGs after registering go a second apart, so it settles early.
   */
  get minRtt(): number | null {
    return this.#rtt.min;
  }

  /** The server this link registers (or tries to register) with now. */
  get server(): Endpoint {
    return this.#servers.current;
  }

  /** Moves on to the next server (a fallback) or to entry `to`, with a fresh cookie and nonce. */
  #next(now: number, to?: number): void {
    const sibling = this.#servers.next(now, to);
    this.#udp.stop();
    this.#rtt.reset();
    this.#cookie = new Uint8Array(COOKIE_LEN);
    this.#difficulty = 0;
    // The same server over another transport: the same attempt, so that a slow stream's late
    // WELCOME still counts (see handle).
    if (!sibling) this.#newNonce();
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

  /** A fresh nonce for a new registration attempt (an old attempt's answers no longer count). */
  #newNonce(): void {
    const nonce = this.#o.random(NONCE_LEN);
    if (nonce.length !== NONCE_LEN) throw new Error(`ServerLink: needs ${NONCE_LEN} random bytes`);
    this.#nonce = nonce;
  }

  /** Starts the first registration. */
  start(now: number): void {
    this.#heardAt = now;
    this.#servers.pickedAt = now;
    this.#newNonce();
    this.#state = {
      kind: "registering",
      tries: 0,
      since: now,
      nextHello: now,
      again: false,
      lost: false,
    };
    this.#hello(now);
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
    if (s.kind === "registered") return Math.min(s.nextPing, this.#udp.at ?? Infinity);
    return s.again ? s.nextHello : Math.min(s.nextHello, this.#heardAt + this.#o.registerTimeout);
  }

  /** Advances timers. */
  handleTimeout(now: number): void {
    const s = this.#state;
    if (s.kind === "registering") {
      if (!s.again && now - this.#heardAt >= this.#o.registerTimeout) {
        this.#state = { kind: "closed" };
        const secs = Math.round(this.#o.registerTimeout / 1000);
        const at = this.#servers.all.map(formatEndpoint).join(", ");
        this.#events.push({
          type: "fatal",
          message:
            `No answer from the server at ${at} after ${secs} s; check the address and that "p2p serve" runs there`,
        });
        return;
      }
      if (this.#servers.several && now - this.#servers.pickedAt >= FAILOVER_AFTER) {
        this.#next(now);
        s.tries = 0;
        s.nextHello = now;
      }
      if (s.again && !s.lost && now - s.since >= SERVER_LOST_AFTER) {
        s.lost = true;
        this.#events.push({ type: "server-lost" });
      }
      if (now >= s.nextHello) this.#hello(now);
    } else if (s.kind === "registered") {
      if (now >= s.nextPing) this.#ping(now, s);
      if (this.#udp.due(now)) this.#tryUdp();
    }
  }

  /** Registered over a stream: a PING to the same server over UDP (see {@link UdpRetry}). */
  #tryUdp(): void {
    const j = this.#servers.udpSibling();
    if (j < 0 || this.#state.kind !== "registered") return this.#udp.stop();
    this.#out.push({
      to: this.#servers.all[j]!,
      data: encodeServerMsg({
        type: MsgType.Ping,
        id: this.#o.id,
        token: this.#token,
        cookie: this.#udp.cookie,
        digest: this.#digest(),
      }),
    });
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
    else if (s.kind === "registering" && s.again) this.#hello(now);
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
        if (bytesEqual(m.id, this.#o.id) && constantTimeEqual(m.nonce, this.#nonce)) {
          this.#welcome(now, m.token, m.boot, m.observed);
        }
        return true;
      case MsgType.Refused:
        if (constantTimeEqual(m.echo, this.registered ? this.#token : this.#nonce)) {
          this.#heardAt = now;
          this.#refused(now, m.code, m.message);
        }
        return true;
      case MsgType.Pong:
        if (this.authentic(m.token)) {
          // Where the server sees us now (a NAT may have given us another port since WELCOME).
          this.#public = m.observed;
          this.#rtt.ponged(now);
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
        if (!constantTimeEqual(m.echo, this.registered ? this.#token : this.#nonce)) return true;
        this.#cookie = m.cookie;
        this.#difficulty = m.difficulty;
        if (this.#state.kind === "registering") {
          // The server answers (slowly, maybe): keep trying it, and for as long as it does.
          this.#heardAt = now;
          this.#servers.pickedAt = now;
          if (now - this.#lastCookieHello < 250) return true;
          this.#lastCookieHello = now;
          this.#hello(now);
        } else {
          if (now - this.#lastCookiePing < 1_000) return true;
          this.#lastCookiePing = now;
          this.#sendPing(now);
        }
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
    if (m.type === MsgType.Cookie) {
      if (j < 0 || !constantTimeEqual(m.echo, this.#token)) return true;
      if (this.#udp.cookied(now, m.cookie)) this.#tryUdp();
      return true;
    }
    if (m.type === MsgType.Pong && this.#servers.sibling(j) && this.authentic(m.token)) {
      // The server has us at `from` now: use it (keeping the registration).
      this.#servers.use(j);
      this.#cookie = this.#udp.cookie;
      this.#udp.stop();
      this.#rtt.reset();
      this.#public = m.observed;
      this.#alive(now);
      const s = this.#state;
      if (s.kind === "registered") s.nextPing = Math.min(s.nextPing, now + 1_000);
      return true;
    }
    return this.handle(now, m);
  }

  /** A cluster's other servers (SERVERS): where to go when ours is lost, sooner than alone. */
  #learnServers(servers: Endpoint[], keepalive: number): void {
    this.#servers.learn(servers, MAX_LINK_SERVERS);
    if (keepalive > 0) this.#keepalive = Math.min(this.#o.keepalive, keepalive * 1_000);
    this.#cluster ||= servers.length > 0;
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
    // A first PING soon after registering checks that no introduction was lost on the way.
    this.#state = {
      kind: "registered",
      nextPing: now + Math.min(1_000, this.#keepalive),
      awaitingSince: undefined,
      lost: false,
    };
    this.#movedInLoss = false;
    if (this.#servers.udpSibling() >= 0) this.#udp.start(now);
    if (!s.again) {
      const name = this.#name;
      if (name.suffixed) {
        this.#events.push({ type: "renamed", wanted: name.wanted, name: name.current });
      }
      this.#events.push({ type: "ready", name: name.current, public: observed });
      return;
    }
    if (s.lost || restarted) {
      this.#events.push({ type: "server-back", public: observed, restarted });
    }
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
    if (code === RefuseCode.NameTaken && s.kind === "registering") {
      // Another member has this name: try the next suffix (names are unique per room).
      if (this.#name.next()) {
        this.#newNonce();
        s.tries = 0;
        this.#hello(now);
        return;
      }
    }
    if (code === RefuseCode.Unknown) {
      // The server forgot us (restart or expiry): register again with the same id.
      if (s.kind === "registered") {
        this.#newNonce();
        this.#registerAgain(now, s.lost);
      }
      return;
    }
    if (s.kind === "registering" && !s.again) {
      this.#state = { kind: "closed" };
      this.#events.push({
        type: "fatal",
        message: `The server refused to register us: ${message}`,
      });
      return;
    }
    this.#events.push({ type: "refused", message });
  }

  #alive(now: number): void {
    const s = this.#state;
    if (s.kind !== "registered") return;
    if (s.awaitingSince !== undefined) {
      const k = this.#keepalive;
      s.nextPing = now + (this.#rtt.samples < EARLY_SAMPLES ? Math.min(1_000, k) : k);
    }
    s.awaitingSince = undefined;
    this.#movedInLoss = false;
    if (s.lost) {
      s.lost = false;
      this.#events.push({ type: "server-back", public: this.#public!, restarted: false });
    }
  }

  #hello(now: number): void {
    const s = this.#state;
    if (s.kind !== "registering") return;
    const o = this.#o;
    const signed = {
      id: o.id,
      cookie: this.#cookie,
      nonce: this.#nonce,
      flags: o.relayOnly ? FLAG_RELAY_ONLY : o.offerSupernode ? FLAG_SUPERNODE : 0,
      room: o.roomId,
      nameTag: o.nameTag(this.#name.current),
      owner: o.owner,
      idKey: o.idKey.publicKey,
    };
    const input = helloSigningInput(signed);
    this.#send({
      type: MsgType.Hello,
      ...signed,
      signature: o.sign(input),
      idSignature: o.idKey.sign(input),
      pow: this.#pow(),
      privateEndpoints: o.relayOnly ? [] : o.privateEndpoints,
    });
    s.tries++;
    s.nextHello = now + Math.min(250 * 2 ** (s.tries - 1), 2_000);
  }

  /**
   * The solution of the puzzle the last COOKIE asked for, for this cookie and nonce (solved once:
   * about 2^difficulty hashes; `lib/crypto/puzzle.ts`); zeros when none was asked.
   */
  #pow(): Uint8Array {
    const d = this.#difficulty;
    if (d === 0) return new Uint8Array(POW_LEN);
    const c = this.#solved;
    if (c && c.d === d && c.cookie === this.#cookie && c.nonce === this.#nonce) return c.pow;
    const pow = solvePuzzle(d, this.#cookie, this.#o.id, this.#nonce) ?? new Uint8Array(POW_LEN);
    this.#solved = { d, cookie: this.#cookie, nonce: this.#nonce, pow };
    return pow;
  }

  /** Registers again with the same id: the server forgot us, or the next server is tried. */
  #registerAgain(now: number, lost: boolean): void {
    this.#state = { kind: "registering", tries: 0, since: now, nextHello: now, again: true, lost };
    this.#hello(now);
  }

  #ping(now: number, s: Extract<ServerLinkState, { kind: "registered" }>): void {
    if (s.awaitingSince === undefined) s.awaitingSince = now;
    const waited = now - s.awaitingSince;
    const giveUp = this.#cluster ? CLUSTER_FAILOVER_AFTER : SERVER_LOST_AFTER;
    if (waited >= giveUp && (!s.lost || this.#movedInLoss)) {
      if (!s.lost) this.#events.push({ type: "server-lost" });
      s.lost = true;
      const other = this.#movedInLoss ? -1 : this.#servers.otherTransport();
      if (other >= 0) {
        // The same server over its other transport (UDP blocked now, or back): our
        // registration moves with a PING (the server asks for a cookie there first).
        this.#next(now, other);
        this.#movedInLoss = true;
        s.awaitingSince = now;
        if (this.#servers.udpSibling() >= 0) this.#udp.start(now);
        this.#sendPing(now);
        s.nextPing = now + Math.min(1_000, this.#o.keepalive);
        return;
      }
      this.#movedInLoss = false;
      if (this.#servers.several) {
        // Register with the next server (or supernode), the same id; "back" once one answers.
        this.#next(now);
        return this.#registerAgain(now, true);
      }
    }
    this.#sendPing(now);
    // While awaiting a PONG, retry sooner (1 s, 2 s, 4 s …) up to the keepalive interval.
    const k = this.#keepalive;
    s.nextPing = now + (waited === 0 ? Math.min(1_000, k) : Math.min(Math.max(waited, 1_000), k));
  }

  #sendPing(now: number): void {
    this.#rtt.pinged(now);
    this.#send({
      type: MsgType.Ping,
      id: this.#o.id,
      token: this.#token,
      cookie: this.#cookie,
      digest: this.#digest(),
    });
  }
}
