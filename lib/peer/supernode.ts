/**
 * Supernodes: a member whose address the server found reachable (REACH, see `lib/wire/wire.ts`)
 * serves its own room as rendezvous and relay. Two sides, both sans-IO, both used by
 * `lib/peer/client.ts` on the peer's one socket:
 *
 * - {@link SupernodeHost}: the role itself, the server's {@link Registry} restricted to one room
 *   (`onlyRoom`) with a supernode's smaller limits. The client hands it the datagrams members
 *   send to a server (HELLO, PING, BYE, RELAY, REPUNCH) and sends what it answers.
 * - {@link SupernodeLink}: a member's registration with one supernode besides the server (a
 *   second {@link ServerLink}: same signed HELLO, cookie and token rules), and which peers the
 *   supernode introduced (only those can be relayed to through it).
 * - {@link Supernodes}: the client's whole supernode side: starting the role when the server's
 *   REACH proved us reachable (and registering with it in-process), picking the room's
 *   supernode (lowest id the server named; the next one when it fails), noticing its loss, and
 *   the relay choice per peer (through it unless its RTT sum is clearly worse than the
 *   server's; RTTs exchanged in sealed RELAYS frames).
 *
 * A supernode relays end-to-end sealed frames (it sees ciphertext only) and never learns more
 * than the server would: it is a member itself, and its registry checks every HELLO's room
 * signature.
 *
 * @module
 */
import { bytesEqual } from "../crypto/crypto.ts";
import { Registry, type RegistryOptions, type RegistryStats } from "../server/registry.ts";
import { type LinkEvent, type LinkOptions, ServerLink } from "./server_link.ts";
import {
  encodeServerMsg,
  type Endpoint,
  ID_LEN,
  type InnerFrame,
  InnerKind,
  MsgType,
  RTT_UNKNOWN,
  sameEndpoint,
  type ServerMsg,
  toHex,
  type Transmit,
} from "../wire/wire.ts";

/** What a supernode allows by default: a member's uplink is no server's. */
export const DEFAULT_SUPERNODE: Partial<RegistryOptions> = {
  /** Relayed payload bytes a second one member may send through us (64 KiB/s). */
  relayRate: 64 * 1024,
  relayBurst: 256 * 1024,
  /** Per pair of members (32 KiB/s). */
  pairRate: 32 * 1024,
  /** Members registered with us (our room only). */
  maxRoomSize: 32,
  maxPeers: 32,
  maxPerSource: 8,
  maxRoomsPerSource: 1,
  helloRate: 10,
};

/** Message types members send to a rendezvous point (what a supernode host takes). */
const TO_SERVER: ReadonlySet<number> = new Set([
  MsgType.Hello,
  MsgType.Ping,
  MsgType.Bye,
  MsgType.Relay,
  MsgType.Repunch,
]);

/** The supernode role: a registry for one room inside the join process. */
export class SupernodeHost {
  #registry: Registry;

  /**
   * Serves room `roomId` with `limits` over {@link DEFAULT_SUPERNODE}; `random` keys its
   * cookies and draws incarnations.
   */
  constructor(
    roomId: Uint8Array,
    limits: Partial<RegistryOptions>,
    random: (n: number) => Uint8Array,
  ) {
    const secret = random(32);
    this.#registry = new Registry(
      { ...DEFAULT_SUPERNODE, ...limits, onlyRoom: roomId, reachVia: undefined },
      random,
      secret,
    );
  }

  /** True for a message type members send to a rendezvous point (the host's input). */
  static takes(type: number): boolean {
    return TO_SERVER.has(type);
  }

  /** Members registered with us. */
  get members(): number {
    return this.#registry.peerCount;
  }

  /** Relay and drop counters. */
  get stats(): Readonly<RegistryStats> {
    return this.#registry.stats;
  }

  /** A member's datagram. Never throws on bad input. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.#registry.handleDatagram(now, from, data);
  }

  /** Expires silent members. */
  handleTimeout(now: number): void {
    this.#registry.handleTimeout(now);
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    return this.#registry.nextTimeout();
  }

  /** The next datagram to send (its events are not needed: the counters say enough). */
  pollTransmit(): Transmit | undefined {
    while (this.#registry.pollEvent()) { /* not logged by peers */ }
    return this.#registry.pollTransmit();
  }
}

/** Where a {@link SupernodeLink}'s output goes. */
export interface SupernodeSink {
  /** Sends a datagram to the supernode. */
  send(data: Uint8Array): void;
  /** The link registered, failed or lost the supernode. */
  event(e: LinkEvent): void;
}

/** A member's registration with one supernode of its room. */
export class SupernodeLink {
  /** Hex id of the supernode (a member of the room). */
  readonly key: string;
  /** Its peer id. */
  readonly id: Uint8Array;
  /** Its public endpoint (as the server introduced it). */
  readonly host: Endpoint;
  /** The registration. */
  readonly link: ServerLink;
  /** Hex ids of the peers the supernode introduced to us (reachable through its relay). */
  readonly introduced: Set<string> = new Set();
  #sink: SupernodeSink;

  /** Registers (once {@link start}ed) with the supernode `key` at `host`. */
  constructor(
    key: string,
    host: Endpoint,
    options: LinkOptions,
    sink: SupernodeSink,
    digest: () => number,
  ) {
    this.key = key;
    this.id = new Uint8Array(key.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
    this.host = host;
    this.#sink = sink;
    this.link = new ServerLink({ ...options, server: host, offerSupernode: false }, digest);
  }

  /** Moves what the registration queued to the sink: its datagrams, then its events. */
  flush(): void {
    for (let t = this.link.pollTransmit(); t; t = this.link.pollTransmit()) this.#sink.send(t.data);
    for (let e = this.link.pollEvent(); e; e = this.link.pollEvent()) this.#sink.event(e);
  }

  /** True when frames to peer `key` can be relayed through this supernode now. */
  relays(key: string): boolean {
    return key !== this.key && this.link.healthy && this.introduced.has(key);
  }
}

/** A RELAYS frame: our RTTs to the server and to our supernode. */
export type RelaysFrame = Extract<InnerFrame, { kind: typeof InnerKind.Relays }>;

/** What a peer told us about its relays (RELAYS frame, supernode id in hex). */
export interface PeerRelays {
  /** Its RTT to the server in ms ({@link RTT_UNKNOWN}: not measured). */
  serverRtt: number;
  /** Hex id of its supernode (zeros: none). */
  supernode: string;
  /** Its RTT to that supernode in ms. */
  supernodeRtt: number;
}

/** What {@link Supernodes} needs from the client that owns it. */
export interface SupernodeContext {
  /** Our peer id. */
  readonly id: Uint8Array;
  /** The options of our registration with the server (reused for a supernode). */
  readonly linkOptions: LinkOptions;
  /** Our registration with the server (its RTT, our public endpoint). */
  readonly server: ServerLink;
  /** We never punch or reveal addresses: no supernodes. */
  readonly relayOnly: boolean;
  /** We can send to IPv6 addresses. */
  readonly ipv6: boolean;
  /** The roster digest for PINGs. */
  digest(): number;
  /** Sends a datagram. */
  send(t: Transmit): void;
  /** A datagram from supernode `sup` (our own role's answers to us arrive this way). */
  deliver(now: number, data: Uint8Array, sup: SupernodeLink): void;
  /** The relay that reaches some peers changed: re-settle them. */
  routesChanged(now: number): void;
  /** Tell every established peer our relay RTTs (they changed). */
  offerRelays(now: number): void;
  /** The name of peer `key`, if we know it. */
  peerName(key: string): string | undefined;
  /** What peer `key` told us about its relays, if it did. */
  peerRelays(key: string): PeerRelays | null | undefined;
  /** Our own name. */
  name(): string;
}

/** A supernode that has not welcomed us after this long is given up on, in ms. */
const REGISTER_TIMEOUT = 5_000;
/** A supernode we stopped using is not tried again for this long, in ms. */
const RETRY_AFTER = 60_000;
/** Keepalive to our supernode, at most (its loss shows sooner than the server's), in ms. */
const KEEPALIVE = 5_000;
/** Most supernodes of the room remembered. */
const MAX_KNOWN = 8;
/** The supernode's RTT sum may exceed the server's by half and this many ms, and still win. */
export const RTT_SLACK = 20;
/** Most supernodes remembered as failed. */
const MAX_FAILED = 16;
/** Most pairs remembered as stalled by our supernode. */
const MAX_STALLED = 256;

/**
 * A peer's supernode side, both ways: the role once the server found us reachable
 * ({@link SupernodeHost}, plus our own in-process registration with it), and as a member our
 * registration with the room's best supernode (the lowest id the server named), which peers it
 * relays to, and the relay choice by RTT sum. Sans-IO, driven by the client's datagrams and
 * timers; the client calls {@link pump} at the end of every step.
 */
export class Supernodes {
  #c: SupernodeContext;
  #host: SupernodeHost | undefined;
  #link: SupernodeLink | undefined;
  /** Supernodes of the room the server told us about: id hex → public endpoint. */
  #known = new Map<string, Endpoint>();
  /** Supernodes whose registration failed or that we left, with when. */
  #failed = new Map<string, number>();
  /** Our supernode link failed or went silent: dropped at the end of the current step. */
  #pendingDrop = false;
  /** Our own registration's datagrams to our role (delivered in-process). */
  #selfQueue: Uint8Array[] = [];
  /** The relay RTTs last told to peers. */
  #relaysSent: RelaysFrame | undefined;
  /** Peers whose relayed frames our supernode let stall: peer key → that supernode's key. */
  #stalled = new Map<string, string>();
  #selfKey: string;

  /** The supernode side of the client described by `ctx`. */
  constructor(ctx: SupernodeContext) {
    this.#c = ctx;
    this.#selfKey = toHex(ctx.id);
  }

  /** The role, while we serve as a supernode. */
  get host(): SupernodeHost | undefined {
    return this.#host;
  }

  /** Our registration with a supernode (our own, while we are one), if any. */
  get link(): SupernodeLink | undefined {
    return this.#link;
  }

  /** True when `sup` is our own registration with our own role. */
  isSelf(sup: SupernodeLink): boolean {
    return this.#host !== undefined && sup.key === this.#selfKey;
  }

  /** The supernode we use, when datagrams from `from` come from it (never our own role). */
  linkFrom(from: Endpoint): SupernodeLink | undefined {
    const sup = this.#link;
    return sup && !this.isSelf(sup) && sameEndpoint(from, sup.host) ? sup : undefined;
  }

  /**
   * The server found us reachable: serve room `roomId` (once), and register with our own role
   * in-process, so peers that come only through us meet us too.
   */
  serve(
    now: number,
    roomId: Uint8Array,
    limits: Partial<RegistryOptions>,
    random: (n: number) => Uint8Array,
  ): boolean {
    if (this.#host) return false;
    this.#host = new SupernodeHost(roomId, limits, random);
    // A supernode relays for others; it needs no other supernode.
    this.#drop(now, true);
    this.#failed.delete(this.#selfKey);
    const at = this.#c.server.public;
    if (at) this.#use(now, this.#selfKey, at, true);
    return true;
  }

  /**
   * The server's word on member `key`: a supernode at `at`, or (null) not, or no longer, one.
   * Members use the known supernode with the lowest id, so a room converges on one.
   */
  fromServer(now: number, key: string, at: Endpoint | null): void {
    const known = this.#known;
    if (at) {
      if (known.size >= MAX_KNOWN && !known.has(key)) return;
      known.set(key, at);
    } else {
      if (!known.delete(key)) return;
      if (this.#link?.key === key && !this.isSelf(this.#link)) this.#drop(now, true);
    }
    this.#pick(now);
  }

  /** Our path to peer `key` fell back to the relay; if it is our supernode, it is gone. */
  pathFailed(key: string): void {
    const sup = this.#link;
    if (sup && !this.isSelf(sup) && sup.key === key) this.#pendingDrop = true;
  }

  /** A member's datagram to our role; false when we are no supernode or it is no such type. */
  handleMember(now: number, from: Endpoint, type: number, data: Uint8Array): boolean {
    if (!this.#host || !SupernodeHost.takes(type)) return false;
    this.#host.handleDatagram(now, from, data);
    return true;
  }

  /** Sends `m` to our supernode `sup` (to our own role, in-process, when it is us). */
  send(sup: SupernodeLink, m: ServerMsg): void {
    this.#sendData(sup, encodeServerMsg(m));
  }

  #sendData(sup: SupernodeLink, data: Uint8Array): void {
    if (this.isSelf(sup)) this.#selfQueue.push(data);
    else this.#c.send({ to: sup.host, data });
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    const a = this.#link?.link.nextTimeout() ?? Infinity;
    const b = this.#host?.nextTimeout() ?? Infinity;
    const t = Math.min(a, b);
    return t === Infinity ? undefined : t;
  }

  /** Keepalives to our supernode, expiry of our role's members. */
  handleTimeout(now: number): void {
    this.#link?.link.handleTimeout(now);
    this.#link?.flush();
    this.#host?.handleTimeout(now);
  }

  /** Says goodbye to our supernode (leaving). */
  close(now: number): void {
    this.#link?.link.close();
    this.#link?.flush();
    this.pump(now);
  }

  /**
   * Ends a step: drops a supernode that failed in it, then runs our role's in-process traffic
   * (our own registration's messages go to it, its answers to us come back to us, the rest
   * goes out), in bounded rounds.
   */
  pump(now: number): void {
    if (this.#pendingDrop) {
      this.#pendingDrop = false;
      this.#drop(now, false);
    }
    const h = this.#host;
    if (!h) return;
    const self = this.#link && this.isSelf(this.#link) ? this.#link : undefined;
    for (let round = 0; round < 16; round++) {
      const mine = this.#selfQueue.splice(0);
      for (const d of mine) if (self) h.handleDatagram(now, self.host, d);
      let any = mine.length > 0;
      for (let t = h.pollTransmit(); t; t = h.pollTransmit()) {
        any = true;
        if (self && sameEndpoint(t.to, self.host)) this.#c.deliver(now, t.data, self);
        else this.#c.send(t);
      }
      if (!any) return;
    }
  }

  /**
   * True when frames to peer `key` go through our supernode: it introduced them (both are
   * registered there) and, once both sides' RTTs are known (RELAYS frames), the sum of their
   * RTTs to it is not clearly worse than the sum to the server (at most half again plus
   * {@link RTT_SLACK} ms: a supernode saves the server's bandwidth, and a few ms of noise
   * must not flip the choice).
   */
  relaysTo(key: string): boolean {
    const sup = this.#link;
    if (!sup || !sup.relays(key) || this.#stalled.get(key) === sup.key) return false;
    const theirs = this.#c.peerRelays(key);
    const mine = this.relaysFrame();
    if (!theirs || !mine || theirs.supernode !== sup.key) return true;
    const rtts = [mine.serverRtt, mine.supernodeRtt, theirs.serverRtt, theirs.supernodeRtt];
    if (rtts.includes(RTT_UNKNOWN)) return true;
    const viaServer = mine.serverRtt + theirs.serverRtt;
    return mine.supernodeRtt + theirs.supernodeRtt <= 1.5 * viaServer + RTT_SLACK;
  }

  /**
   * Frames to peer `key` through our supernode went unacknowledged for long: a supernode that
   * stays up but drops what it should relay (broken or hostile) must not hold a pair hostage.
   * That pair uses the server's relay from now on, as long as this supernode is ours. Returns
   * true when the route changed.
   */
  stalled(key: string): boolean {
    const sup = this.#link;
    if (!sup || !this.relaysTo(key)) return false;
    if (this.#stalled.size >= MAX_STALLED) this.#stalled.clear();
    this.#stalled.set(key, sup.key);
    return true;
  }

  /** The name of the supernode relaying to peer `key`, or null for the server's relay. */
  relayVia(key: string): string | null {
    const sup = this.#link;
    if (!sup || !this.relaysTo(key)) return null;
    if (this.isSelf(sup)) return this.#c.name();
    return this.#c.peerName(sup.key) || "supernode";
  }

  /** Our RTTs to the server and our supernode, as a RELAYS frame (null: none measured). */
  relaysFrame(): RelaysFrame | null {
    const sup = this.#link;
    const server = this.#c.server.minRtt, mine = sup ? sup.link.minRtt : null;
    if (server === null && mine === null) return null;
    const ms = (r: number | null) =>
      r === null ? RTT_UNKNOWN : Math.min(Math.round(r), RTT_UNKNOWN - 1);
    return {
      kind: InnerKind.Relays,
      serverRtt: ms(server),
      supernode: sup ? sup.id : new Uint8Array(ID_LEN),
      supernodeRtt: !sup ? RTT_UNKNOWN : this.isSelf(sup) ? 0 : ms(mine),
    };
  }

  /**
   * Tells established peers our relay RTTs when they changed enough to matter (the first
   * measurements, another supernode, or a change of more than a fifth and 5 ms).
   */
  relaysCheck(now: number): void {
    const f = this.relaysFrame();
    if (!f) return;
    const last = this.#relaysSent;
    const moved = (a: number, b: number) =>
      (a === RTT_UNKNOWN) !== (b === RTT_UNKNOWN) ||
      (Math.abs(a - b) > 5 && Math.abs(a - b) > 0.2 * Math.min(a, b));
    if (
      last && bytesEqual(last.supernode, f.supernode) && !moved(last.serverRtt, f.serverRtt) &&
      !moved(last.supernodeRtt, f.supernodeRtt)
    ) return;
    this.#relaysSent = f;
    this.#c.offerRelays(now);
  }

  /** Registers with the best known supernode (lowest id, not failed lately), if it is new. */
  #pick(now: number): void {
    if (this.#host || this.#c.relayOnly) return;
    let best: string | undefined;
    for (const key of this.#known.keys()) {
      const failed = this.#failed.get(key);
      if (failed !== undefined && now - failed < RETRY_AFTER) continue;
      if (best === undefined || key < best) best = key;
    }
    const cur = this.#link;
    if (best === undefined || (cur && cur.key <= best)) return;
    if (cur) {
      // A better one: move (relayed pairs use the server meanwhile).
      this.#link = undefined;
      cur.link.close();
      cur.flush();
      this.#c.routesChanged(now);
    }
    this.#use(now, best, this.#known.get(best)!);
  }

  #use(now: number, key: string, at: Endpoint, self = false): void {
    if (this.#link || (this.#host && !self) || this.#c.relayOnly) return;
    const failed = this.#failed.get(key);
    if (failed !== undefined && now - failed < RETRY_AFTER) return;
    if (!this.#c.ipv6 && at.hostname.includes(":")) return;
    const o = this.#c.linkOptions;
    const sup: SupernodeLink = new SupernodeLink(
      key,
      at,
      {
        ...o,
        fallbacks: [],
        registerTimeout: REGISTER_TIMEOUT,
        keepalive: Math.min(o.keepalive, KEEPALIVE),
      },
      {
        send: (data) => this.#sendData(sup, data),
        event: (e) => {
          if (this.#link === sup && (e.type === "fatal" || e.type === "server-lost")) {
            this.#pendingDrop = true;
          }
        },
      },
      () => this.#c.digest(),
    );
    this.#link = sup;
    sup.link.start(now);
    sup.flush();
  }

  /**
   * Stops using our supernode (it left, failed or went silent): BYE when `bye`; every peer
   * relayed through it moves to the server's relay (the reliable channels resend), and the
   * next best supernode is tried.
   */
  #drop(now: number, bye: boolean): void {
    const sup = this.#link;
    if (!sup) return;
    this.#link = undefined;
    if (bye) {
      sup.link.close();
      sup.flush();
    }
    if (this.#failed.size >= MAX_FAILED) this.#failed.clear();
    this.#failed.set(sup.key, now);
    this.#c.routesChanged(now);
    this.#pick(now);
  }
}
