/**
 * The rendezvous server's state machine: registrations, rooms, introductions, relay and
 * expiry. Pure and sans-IO: feed it `(now, from, datagram)` and timer ticks, drain the
 * datagrams it wants sent and the events it wants logged.
 *
 * {@link Registry} is the coordinator; each concern is a module of its own: `cookies.ts`
 * (return routability), `members.ts` (members, rooms, name tags, expiry), `registration.ts`
 * (HELLO), `introductions.ts` (WELCOME, INTRO, ROSTER, REPUNCH), `keepalive.ts` (PING, with its
 * fast path), `relay.ts` (RELAY, the fast path and the budgets), `reach.ts` (REACH/REACHED),
 * `outbox.ts` (what it sends and logs, and its counters).
 *
 * @module
 */
import { StallGuard } from "../core/stall.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { hasHeader, MsgType } from "../wire/header.ts";
import { decodeServerMsg, type MsgOf } from "../wire/server_msg.ts";
import type { Transmit } from "../wire/transmit.ts";
import { COOKIE_ROTATION, Cookies } from "./cookies.ts";
import { difficultyFor } from "./pressure.ts";
import { Introductions } from "./introductions.ts";
import { Keepalive, PING_LEN } from "./keepalive.ts";
import { idNum, tokenIs } from "./member.ts";
import { Members } from "./members.ts";
import { DEFAULT_REGISTRY, type RegistryOptions } from "./options.ts";
import { Outbox, type RegistryEvent, type RegistryStats } from "./outbox.ts";
import { Reach } from "./reach.ts";
import { Registration, REPLACED_KEEP } from "./registration.ts";
import { Relay } from "./relay.ts";
import { BOOT_LEN, MAX_ROOM_SIZE } from "../wire/server_msg.ts";
import {
  Cluster,
  type ClusterEvent,
  type ClusterOptions,
  type ClusterPublish,
  type ClusterStats,
  type ClusterView,
} from "./cluster.ts";
import type { RegistrationParts } from "./registration.ts";

export {
  COOKIE_ROTATION,
  DEFAULT_REGISTRY,
  type RegistryEvent,
  type RegistryOptions,
  REPLACED_KEEP,
};
export type {
  ClusterEvent,
  ClusterOptions,
  ClusterPublish,
  ClusterStats,
  ClusterView,
  RegistryStats,
};

/**
 * The rendezvous server's pure core.
 *
 * Driving it: for every datagram received call {@link handleDatagram}, and when the time
 * {@link nextTimeout} named comes, {@link handleTimeout}; after either, drain
 * {@link pollTransmit} until undefined (send each datagram; `via` names the socket for REACH),
 * then {@link pollEvent} (log each), then read {@link nextTimeout} again. Times are ms on one
 * monotonic clock and never go backwards.
 */
export class Registry {
  #o: RegistryOptions;
  #out = new Outbox();
  #members: Members;
  #cookies: Cookies;
  #introductions: Introductions;
  #registration: Registration;
  #keepalive: Keepalive;
  #relay: Relay;
  #reach: Reach;
  #stall = new StallGuard();
  #boot: Uint8Array;
  #random: (n: number) => Uint8Array;
  #parts: RegistrationParts;
  #cluster: Cluster | undefined;

  /**
   * Makes a registry; `options` override {@link DEFAULT_REGISTRY}. `random` draws tokens,
   * incarnations and REACH nonces (the roles pass node:crypto's, tests seeded bytes); `secret`
   * keys the return-routability cookies (32 bytes drawn from `random` when not given); then the
   * {@link bootId} is drawn from `random`.
   */
  constructor(
    options: Partial<RegistryOptions>,
    random: (n: number) => Uint8Array,
    secret?: Uint8Array,
  ) {
    const o = this.#o = { ...DEFAULT_REGISTRY, ...options };
    o.maxRoomSize = Math.min(o.maxRoomSize, MAX_ROOM_SIZE);
    const out = this.#out;
    const cookies = this.#cookies = new Cookies(secret ?? random(32), out);
    const boot = this.#boot = random(BOOT_LEN).slice();
    if (boot.length !== BOOT_LEN) throw new RangeError(`Registry: needs ${BOOT_LEN} random bytes`);
    const members = this.#members = new Members(o, out);
    cookies.difficulty = () => difficultyFor(members.size, o.maxPeers, o.pressureAt);
    const introductions = this.#introductions = new Introductions(o, members, out, boot);
    const reach = this.#reach = new Reach(o, members, introductions, out, random);
    this.#random = random;
    this.#registration = new Registration(
      o,
      this.#parts = {
        members,
        cookies,
        introductions,
        reach,
        out,
        random,
      },
    );
    this.#keepalive = new Keepalive(o, { members, cookies, introductions, out });
    this.#relay = new Relay(o, members, out);
  }

  /**
   * Makes this registry one server of a cluster (`lib/server/cluster.ts`): its members are
   * published, other servers' members of its rooms introduced and relayed to. Call once, before
   * any datagram; then feed engine messages to {@link handleCluster} and drain
   * {@link pollPublish} after every input.
   */
  joinCluster(o: ClusterOptions): void {
    if (this.#cluster) throw new Error("Registry: already in a cluster");
    const c = this.#cluster = new Cluster(o, {
      members: this.#members,
      introductions: this.#introductions,
      relay: this.#relay,
      out: this.#out,
      options: this.#o,
      random: this.#random,
    });
    this.#members.watch = c.watch;
    this.#relay.remote = (src, dst, payload) => c.relayOut(src, dst, payload);
    this.#introductions.remoteRepunch = (src, dst) => c.repunch(src, dst);
    this.#parts.takeOver = (stub, room, tag, owner) => c.takeOver(stub, room, tag, owner);
    this.#parts.interest = (now, room, num) => c.interest(now, room, num);
    this.#parts.clusterServers = () => c.welcomeServers();
    if (o.cookieKey) {
      this.#cookies.share(o.cookieKey);
      this.#parts.sharedCookie = (num, now) => c.sharedCookieOk(num, now);
    }
  }

  /**
   * The wall clock read `wallMs` (ms since the Unix epoch) at `now`: cookie periods count on it
   * from now on, so that the servers of a cluster that shares cookies agree on them. The role
   * calls it when it joins the cluster and every few seconds after (a stepped clock is
   * followed; jitter under a second is ignored).
   */
  handleWallClock(now: number, wallMs: number): void {
    this.#cookies.wallClock(now, wallMs);
  }

  /** The cluster part, when {@link joinCluster} was called. */
  get cluster(): ClusterView | undefined {
    return this.#cluster;
  }

  /** A message from the cluster's engine. Never throws on bad input. */
  handleCluster(now: number, data: Uint8Array): void {
    this.#cluster?.handleMessage(now, data);
  }

  /** The engine connection came or went. */
  handleEngine(now: number, up: boolean): void {
    this.#cluster?.engine(now, up);
    this.#cluster?.flush();
  }

  /** Takes the next message for the cluster's engine, if any. */
  pollPublish(): ClusterPublish | undefined {
    return this.#cluster?.pollPublish();
  }

  /**
   * This registry's boot id (a copy), in every WELCOME: a peer that registers again and sees
   * another one knows the server restarted (or is another one).
   */
  get bootId(): Uint8Array {
    return this.#boot.slice();
  }

  /** Counters. */
  get stats(): RegistryStats {
    return this.#out.stats;
  }

  /** The cookie a peer with `id` must echo from `addr` at `now` (exposed for tests and tools). */
  cookieFor(id: Uint8Array, addr: Endpoint, now?: number): Uint8Array {
    return this.#cookies.cookieFor(id, addr, now);
  }

  /**
   * The cluster's shared cookie for `id` at `addr` at `now` (this server's own outside a cluster
   * that shares cookies; exposed for tests and tools).
   */
  sharedCookieFor(id: Uint8Array, addr: Endpoint, now?: number): Uint8Array {
    return this.#cookies.sharedCookieFor(id, addr, now);
  }

  /** Number of registered peers. */
  get peerCount(): number {
    return this.#members.size;
  }

  /** Number of non-empty rooms. */
  get roomCount(): number {
    return this.#members.roomCount;
  }

  /** Takes the next datagram to send, if any. */
  pollTransmit(): Transmit | undefined {
    return this.#out.pollTransmit();
  }

  /** Takes the next event to log, if any. */
  pollEvent(): RegistryEvent | undefined {
    return this.#out.pollEvent();
  }

  /** When {@link handleTimeout} next has work (the earliest expiry), if ever. O(1). */
  nextTimeout(): number | undefined {
    const t = this.#stall.wake(this.#members.expiry());
    const c = this.#cluster?.nextTimeout();
    return c === undefined ? t : t === undefined ? c : Math.min(t, c);
  }

  /** Handles one datagram received from `from`. Never throws on bad input. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.#datagram(now, from, data);
    this.#cluster?.flush();
  }

  #datagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.#stall.holding(now, this.#members.expiry());
    this.#cookies.rotate(now);
    // RELAY is most of the traffic: forwarded without decoding it into a message.
    if (hasHeader(data, MsgType.Relay)) return this.#relay.handle(now, from, data);
    // PING is the rest of it (100k peers every 25 s): checked in place, decoded only if it moved.
    if (
      !this.#o.slowPing && data.length === PING_LEN && hasHeader(data, MsgType.Ping) &&
      this.#keepalive.fast(now, from, data)
    ) {
      return;
    }
    const d = decodeServerMsg(data);
    if (!d.ok) return this.#out.drop(d.reason);
    const m = d.value;
    switch (m.type) {
      case MsgType.Hello:
        return this.#registration.hello(now, from, m);
      case MsgType.Ping:
        return this.#keepalive.ping(now, from, m);
      case MsgType.Bye:
        return this.#bye(from, m);
      case MsgType.Repunch:
        return this.#introductions.repunch(now, from, m);
      case MsgType.Reached:
        return this.#reach.reached(now, from, m);
      default:
        return this.#out.drop("unexpected-type");
    }
  }

  /**
   * Expires peers that went silent. Not right after the server itself was stopped (a late
   * wake-up, see {@link StallGuard}): the PINGs that arrived meanwhile are read first.
   */
  handleTimeout(now: number): void {
    if (this.#stall.holding(now, this.#members.expiry())) return;
    this.#cluster?.handleTimeout(now);
    this.#members.expire(now);
    this.#introductions.prune(now);
    this.#registration.prune(now);
    this.#cluster?.flush();
  }

  /** A BYE from a member's address with its token removes it. */
  #bye(from: Endpoint, m: MsgOf<typeof MsgType.Bye>): void {
    const p = this.#members.get(idNum(m.id));
    if (!p || !sameEndpoint(p.addr, from)) return this.#out.drop("bye-unknown");
    if (!tokenIs(p, m.token)) return this.#out.drop("bye-bad-token");
    this.#members.remove(p, "bye");
  }
}
