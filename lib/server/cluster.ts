/**
 * The registry's cluster part (`docs/protocol.md` 21): servers sharing rooms through an engine
 * (NATS). Each server publishes its members (MEMBERS updates as they register, move, become
 * supernodes; GONE as they leave) and a HEARTBEAT with a digest of them; every other server keeps
 * them for as long as the home server's lease runs: as members with a `home` (introduced to its
 * own members of the same room, listed in rosters and digests, relayed to through their server,
 * never sent to) in rooms with a member of its own, compact in the others (`cluster_compact.ts`:
 * memory and work per server grow with its own rooms, not with the cluster). A digest that disagrees asks for a snapshot (SYNC), so state converges
 * after lost messages or an engine outage. A peer whose server died registers with another one,
 * which takes its record over with the same incarnation (no new epoch, so no new handshakes).
 * Pure: the serve role carries the published bytes to the engine and back; randomness
 * (remote members' unguessable tokens) is injected.
 *
 * The coordinator of `cluster_local.ts` (our members' records) and `cluster_remote.ts` (the
 * other servers and their members): messages in and out, heartbeats and leases, the engine's
 * coming and going, SERVERS to our members, relay across servers.
 *
 * Call order: the registry calls {@link Cluster.flush} after every input it handles;
 * {@link Cluster.handleMessage} for a message from the engine, {@link Cluster.engine} when the
 * engine connection comes or goes; then drain {@link Cluster.pollPublish} and
 * {@link Cluster.pollEvent}.
 *
 * @module
 */
import { bytesEqual } from "../core/bytes.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { idHex, MsgType } from "../wire/header.ts";
import { MAX_CLUSTER_SERVERS } from "../wire/server_msg.ts";
import { LocalRecords } from "./cluster_local.ts";
import { newServer, RemoteMembers, type Server } from "./cluster_remote.ts";
import {
  type ClusterEnvelope,
  type ClusterMsg,
  ClusterType,
  decodeCluster,
  encodeCluster,
  MAX_RECORDS,
  SERVER_ID_LEN,
} from "./cluster_wire.ts";
import type { Introductions } from "./introductions.ts";
import { idNum, idOf, type Member, tokenOf } from "./member.ts";
import type { Members, MemberWatch } from "./members.ts";
import type { RegistryOptions } from "./options.ts";
import type { Outbox } from "./outbox.ts";
import type { Relay } from "./relay.ts";

/** Tunables of a cluster member. */
export interface ClusterOptions {
  /** This server's id (8 random bytes, new each run). */
  server: Uint8Array;
  /** The MAC key (`clusterKey` of the shared secret), or null: the engine's access control. */
  key: Uint8Array | null;
  /** Interval of HEARTBEATs, ms. */
  heartbeat: number;
  /** How long other servers keep our members after our last heartbeat, ms. */
  lease: number;
  /** Where peers reach this server, told to the other servers (SERVERS lists them). */
  endpoints: Endpoint[];
  /** The keepalive interval peers are asked to keep at most, s (fast failover). */
  keepalive: number;
  /**
   * The cluster's cookie key (`clusterCookieKey` of the shared secret), or null/absent: this
   * server's own cookies. With it, every server issues and accepts the same cookies (in the
   * periods of the wall clock given to `Registry.handleWallClock`).
   */
  cookieKey?: Uint8Array | null;
}

/**
 * How many heartbeat intervals without a word from a server make its members' HELLOs here
 * failovers (their shared cookies are accepted; `docs/protocol.md` 23).
 */
export const SILENT_BEATS = 2.5;

/** Defaults of {@link ClusterOptions}' timers. */
export const DEFAULT_CLUSTER = { heartbeat: 1_000, lease: 10_000, keepalive: 4 };

/** A message for the engine: to every server (`to` null) or to one (its id in hex). */
export interface ClusterPublish {
  /** The target server's id in hex, or null for every server. */
  to: string | null;
  /** The message's bytes. */
  data: Uint8Array;
}

/** Something worth a log line. */
export type ClusterEvent =
  | { type: "server-up"; server: string }
  | { type: "server-gone"; server: string; members: number }
  | { type: "engine"; up: boolean }
  | { type: "sync"; server: string };

/** Counters of the cluster part. */
export interface ClusterStats {
  /** Whether the engine is connected now. */
  engineUp: boolean;
  /** Other servers heard within their lease. */
  servers: number;
  /** Members of other servers known here (held in full or compact). */
  remoteMembers: number;
  /** Members of other servers held in full (in rooms with members of ours). */
  remoteRecords: number;
  /** INTROs sent to our members about members of other servers. */
  remoteIntroductions: number;
  /** Relayed payload bytes sent to members of other servers. */
  relayBytesOut: number;
  /** Relayed payload bytes from members of other servers delivered here. */
  relayBytesIn: number;
  /** Relayed datagrams sent to members of other servers. */
  relayPacketsOut: number;
  /** Relayed datagrams from members of other servers delivered here. */
  relayPacketsIn: number;
  /** Snapshots asked for (SYNC sent). */
  syncs: number;
  /** Messages taken over from other servers (a peer failed over to us). */
  takeovers: number;
  /** Dropped cluster messages by reason. */
  drops: Record<string, number>;
}

/** Most departures in one GONE. */
const MAX_GONE = 4096;
/** Most other servers remembered. */
const MAX_SERVERS = 64;
/** Least time between two SYNCs to one server, and between two snapshots we publish, ms. */
const SYNC_INTERVAL = 2_000;

/** What a cluster member shows its owner (the serve role): counters, log events, its id. */
export interface ClusterView {
  /** Counters. */
  readonly stats: ClusterStats;
  /** This server's id in hex. */
  readonly serverHex: string;
  /** What waits for the engine (see {@link Cluster.pending}). */
  readonly pending: "urgent" | "batch" | undefined;
  /** The next event to log, if any. */
  pollEvent(): ClusterEvent | undefined;
}

/** The registry parts the cluster acts on. */
export interface ClusterParts {
  members: Members;
  introductions: Introductions;
  relay: Relay;
  out: Outbox;
  options: RegistryOptions;
  random: (n: number) => Uint8Array;
}

/** One server's part of a cluster. */
export class Cluster implements ClusterView {
  #o: ClusterOptions;
  #p: ClusterParts;
  #hex: string;
  #seq = 0;
  /** The latest time an input carried. */
  #now = 0;
  #local: LocalRecords;
  #remote: RemoteMembers;
  #publish: { to: string | null; msg: ClusterMsg }[] = [];
  /** Rooms a HELLO made hold their members in full in this step (released if it failed). */
  #interested = new Set<string>();
  /** Something other than member updates waits in {@link #publish}. */
  #urgent = false;
  #events: ClusterEvent[] = [];
  #up = false;
  #nextBeat = 0;
  #snapshots = 0;
  #lastSnapshot = -Infinity;
  /** The servers' endpoints peers were last told (SERVERS), to tell them again on a change. */
  #told = "";
  readonly #stats: ClusterStats = {
    engineUp: false,
    servers: 0,
    remoteMembers: 0,
    remoteRecords: 0,
    remoteIntroductions: 0,
    relayBytesOut: 0,
    relayBytesIn: 0,
    relayPacketsOut: 0,
    relayPacketsIn: 0,
    syncs: 0,
    takeovers: 0,
    drops: {},
  };

  /** A cluster member with options `o`, acting on the registry's parts `p`. */
  constructor(o: ClusterOptions, p: ClusterParts) {
    if (o.server.length !== SERVER_ID_LEN) throw new RangeError("Cluster: server id length");
    this.#o = o;
    this.#p = p;
    this.#hex = idHex(o.server);
    this.#local = new LocalRecords(p.members);
    this.#remote = new RemoteMembers({
      members: p.members,
      introductions: p.introductions,
      options: p.options,
      random: p.random,
      localMoves: (num) => this.#local.moves(num),
      drop: (reason) => this.#drop(reason),
      introduced: () => void this.#stats.remoteIntroductions++,
    });
  }

  /**
   * True when a HELLO with id `num` may carry the cluster's shared cookie at `now`: the id is our
   * member, or a member of a server not heard for {@link SILENT_BEATS} heartbeats (its peer fails
   * over). A HELLO replayed at this server while the peer's own server runs needs our cookie.
   */
  sharedCookieOk(num: bigint, now: number): boolean {
    const m = this.#p.members.get(num);
    if (m && !m.home) return true;
    const s = this.#remote.homeOf(num);
    if (!s) return m !== undefined;
    return now - s.lastHeard >= SILENT_BEATS * this.#o.heartbeat;
  }

  /** Counters. */
  get stats(): ClusterStats {
    this.#stats.servers = this.#remote.servers.size;
    this.#stats.remoteMembers = this.#remote.size;
    this.#stats.remoteRecords = this.#remote.full;
    return this.#stats;
  }

  /** Told by `Members` of our members' changes. */
  get watch(): MemberWatch {
    return this.#local;
  }

  /** This server's id in hex (its subject for relayed frames). */
  get serverHex(): string {
    return this.#hex;
  }

  /** The next message for the engine, if any. */
  pollPublish(): ClusterPublish | undefined {
    const p = this.#publish.shift();
    if (!p) return void (this.#urgent = false);
    const e: ClusterEnvelope = { server: this.#o.server, seq: ++this.#seq, msg: p.msg };
    return { to: p.to, data: encodeCluster(e, this.#o.key) };
  }

  /**
   * What waits for the engine: `urgent` (a relayed frame, a SYNC, a snapshot, a heartbeat: take
   * it now), `batch` (member updates only: they may wait a moment for more to join them), or
   * undefined (nothing).
   */
  get pending(): "urgent" | "batch" | undefined {
    if (this.#publish.length === 0) return undefined;
    return this.#urgent ? "urgent" : "batch";
  }

  /** The next event to log, if any. */
  pollEvent(): ClusterEvent | undefined {
    return this.#events.shift();
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    let t = this.#up ? this.#nextBeat : Infinity;
    for (const s of this.#remote.servers.values()) t = Math.min(t, s.lastHeard + s.lease);
    return t === Infinity ? undefined : t;
  }

  /** Heartbeats, and the members of servers whose lease ran out removed (LEFT Expired). */
  handleTimeout(now: number): void {
    this.#now = now;
    if (this.#up && now >= this.#nextBeat) {
      this.#nextBeat = now + this.#o.heartbeat;
      this.#heartbeat();
    }
    for (const s of [...this.#remote.servers.values()]) {
      if (now - s.lastHeard < s.lease) continue;
      const members = this.#remote.forget(s);
      this.#events.push({ type: "server-gone", server: s.hex, members });
    }
    this.flush();
  }

  /** The engine connection came (`up`) or went. Coming back: a snapshot and a SYNC of all. */
  engine(now: number, up: boolean): void {
    if (up === this.#up) return;
    this.#up = this.#stats.engineUp = up;
    this.#events.push({ type: "engine", up });
    if (!up) return;
    this.#nextBeat = now + this.#o.heartbeat;
    this.#heartbeat();
    this.#snapshot(now);
    this.#send(null, { type: ClusterType.Sync, target: new Uint8Array(SERVER_ID_LEN) });
  }

  /**
   * After each registry step: what changed among our members is published, and a member new
   * here is told the cluster's other servers (after its WELCOME, which went out in the step).
   */
  flush(): void {
    // A HELLO that registered nobody: its room's members of other servers go back to compact.
    if (this.#interested.size > 0) {
      for (const hex of this.#interested) {
        const room = this.#p.members.room(hex);
        if (room) this.#remote.release(room);
      }
      this.#interested.clear();
    }
    // Called after every datagram (PINGs and RELAYs too): nothing to do is the common case.
    const c = this.#local.take();
    if (!c) return;
    // Interest: rooms with members of ours hold the other servers' members of them in full.
    for (const room of c.left) this.#remote.release(room);
    // (A member new here was told the other servers in its WELCOME.)
    for (const p of c.added) this.#remote.interestIn(this.#now, p.room.hex);
    for (let i = 0; i < c.records.length; i += MAX_RECORDS) {
      const records = c.records.slice(i, i + MAX_RECORDS);
      this.#send(null, { type: ClusterType.Members, snapshot: 0, last: false, records });
    }
    for (let i = 0; i < c.gone.length; i += MAX_GONE) {
      this.#send(null, { type: ClusterType.Gone, gone: c.gone.slice(i, i + MAX_GONE) });
    }
  }

  // ------------------------------------------------------------------------------------------
  // Registry hooks

  /**
   * A signed HELLO with id `num` into room `roomHex`: the other servers' members of the room
   * kept compact, and `num` if it is one of theirs, are held in full from now on (so the HELLO
   * sees them: a failover takes its member over, a name is checked against theirs).
   */
  interest(now: number, roomHex: string, num: bigint): void {
    this.#now = now;
    this.#remote.materialize(now, num);
    this.#remote.interestIn(now, roomHex);
    this.#interested.add(roomHex);
  }

  /**
   * A HELLO with the id of `stub`, a member of another server: the peer failed over to us. The
   * same room, name tag and owner tag take it over (`stub` removed without a LEFT; the
   * registration keeps its incarnation, returned); anything else is refused (undefined).
   */
  takeOver(stub: Member, roomHex: string, nameTag: bigint, owner: Uint8Array): Member | undefined {
    const t = this.#remote.takeOver(stub, roomHex, nameTag, owner);
    if (!t) return undefined;
    this.#local.moving(stub.num, t.moves + 1);
    this.#stats.takeovers++;
    return t.stub;
  }

  /** A RELAY from our member `src` to `dst` of another server: through the engine to it. */
  relayOut(src: Member, dst: Member, payload: Uint8Array): void {
    const s = this.#remote.servers.get(dst.home!.hex);
    if (!s || !this.#up) return this.#p.out.drop("relay-cluster-down");
    this.#stats.relayBytesOut += payload.length;
    this.#stats.relayPacketsOut++;
    this.#send(s.hex, {
      type: ClusterType.Relay,
      target: s.id,
      from: idOf(src),
      to: idOf(dst),
      payload: payload.slice(),
    });
  }

  /** A REPUNCH between our `src` and `dst` of another server: its server introduces `dst`. */
  repunch(src: Member, dst: Member): void {
    const s = this.#remote.servers.get(dst.home!.hex);
    if (!s) return;
    this.#send(s.hex, { type: ClusterType.Repunch, target: s.id, from: idOf(src), to: idOf(dst) });
  }

  // ------------------------------------------------------------------------------------------
  // From the engine

  /** A message from the engine. Never throws on bad input. */
  handleMessage(now: number, data: Uint8Array): void {
    this.#now = now;
    const d = decodeCluster(data, this.#o.key);
    if (!d.ok) return this.#drop(d.reason);
    const { server, seq, msg } = d.value;
    const hex = idHex(server);
    if (hex === this.#hex) return;
    const servers = this.#remote.servers;
    let s = servers.get(hex);
    if (!s) {
      if (servers.size >= MAX_SERVERS) return this.#drop("cluster-servers-full");
      s = newServer(server, hex, now, this.#o.lease);
      servers.set(hex, s);
      this.#events.push({ type: "server-up", server: hex });
    }
    const relayed = msg.type === ClusterType.Relay || msg.type === ClusterType.Repunch;
    if (seq <= (relayed ? s.lastRelaySeq : s.lastSeq)) return this.#drop("cluster-replay");
    if (relayed) s.lastRelaySeq = seq;
    else s.lastSeq = seq;
    s.lastHeard = now;
    this.#dispatch(now, s, msg);
    this.flush();
  }

  #dispatch(now: number, s: Server, m: ClusterMsg): void {
    switch (m.type) {
      case ClusterType.Heartbeat:
        return this.#heard(now, s, m);
      case ClusterType.Members:
        return this.#remote.records(now, s, m);
      case ClusterType.Gone:
        return this.#remote.gone(s, m.gone);
      case ClusterType.Sync:
        if (m.target.every((b) => b === 0) || bytesEqual(m.target, this.#o.server)) {
          this.#snapshot(now);
        }
        return;
      case ClusterType.Relay:
        return this.#relayIn(now, s, m);
      case ClusterType.Repunch: {
        if (!bytesEqual(m.target, this.#o.server)) return;
        const to = this.#p.members.get(idNum(m.to)), from = this.#p.members.get(idNum(m.from));
        if (!to || to.home || from?.home !== s || from.room !== to.room) {
          return this.#drop("cluster-repunch-unknown");
        }
        this.#p.introductions.introduce(to, from, false, true);
        return;
      }
    }
  }

  #heard(now: number, s: Server, m: Extract<ClusterMsg, { type: 1 }>): void {
    s.lease = Math.min(Math.max(m.lease, 1_000), 600_000);
    s.endpoints = m.endpoints.slice(0, MAX_CLUSTER_SERVERS);
    const told = this.#toldNow();
    if (told !== this.#told) {
      this.#told = told;
      for (const num of this.#local.ids()) {
        const p = this.#p.members.get(num);
        if (p && !p.home) this.#tellServers(p);
      }
    }
    if (
      (m.digest !== s.digest || m.count !== s.members.size) && now - s.lastSync >= SYNC_INTERVAL
    ) {
      s.lastSync = now;
      this.#stats.syncs++;
      this.#events.push({ type: "sync", server: s.hex });
      this.#send(null, { type: ClusterType.Sync, target: s.id });
    }
  }

  #relayIn(now: number, s: Server, m: Extract<ClusterMsg, { type: 5 }>): void {
    if (!bytesEqual(m.target, this.#o.server)) return;
    const members = this.#p.members;
    const to = members.get(idNum(m.to)), from = members.get(idNum(m.from));
    if (!to || to.home || from?.home !== s || from.room !== to.room) {
      return this.#drop("cluster-relay-unknown");
    }
    this.#stats.relayBytesIn += m.payload.length;
    this.#stats.relayPacketsIn++;
    this.#p.relay.deliver(now, from, to, m.payload);
  }

  // ------------------------------------------------------------------------------------------
  // Publishing

  /**
   * Queues `msg` for the engine; a MEMBERS update or a GONE right behind one of its kind joins it
   * (encoded when taken: one message for a burst of registrations, in order).
   */
  #send(to: string | null, msg: ClusterMsg): void {
    if (!this.#up) return;
    const last = this.#publish.at(-1)?.msg;
    if (last?.type === ClusterType.Members && msg.type === ClusterType.Members) {
      if (
        last.snapshot === 0 && msg.snapshot === 0 &&
        last.records.length + msg.records.length <= MAX_RECORDS
      ) return void last.records.push(...msg.records);
    } else if (last?.type === ClusterType.Gone && msg.type === ClusterType.Gone) {
      if (last.gone.length + msg.gone.length <= MAX_GONE) return void last.gone.push(...msg.gone);
    }
    if (msg.type !== ClusterType.Members && msg.type !== ClusterType.Gone) this.#urgent = true;
    this.#publish.push({ to, msg });
  }

  #heartbeat(): void {
    this.#send(null, {
      type: ClusterType.Heartbeat,
      lease: this.#o.lease,
      digest: this.#local.digest,
      count: this.#local.count,
      endpoints: this.#o.endpoints,
    });
  }

  /** All our members, in parts, numbered as one snapshot (at most one per SYNC_INTERVAL / 4). */
  #snapshot(now: number): void {
    if (now - this.#lastSnapshot < SYNC_INTERVAL / 4) return;
    this.#lastSnapshot = now;
    const n = ++this.#snapshots;
    const all = this.#local.all();
    let i = 0;
    do {
      const records = all.slice(i, i + MAX_RECORDS);
      i += MAX_RECORDS;
      this.#send(null, { type: ClusterType.Members, snapshot: n, last: i >= all.length, records });
    } while (i < all.length);
  }

  /** The endpoints of the other live servers, as a peer is told them. */
  #others(): Endpoint[] {
    const out: Endpoint[] = [];
    for (const s of this.#remote.servers.values()) {
      for (const ep of s.endpoints) {
        if (out.length < MAX_CLUSTER_SERVERS && !out.some((o) => sameEndpoint(o, ep))) {
          out.push(ep);
        }
      }
    }
    return out;
  }

  #toldNow(): string {
    return this.#others().map((e) => `${e.hostname}|${e.port}`).sort().join(",");
  }

  /** What a WELCOME tells a member: the other servers and the keepalive (none known: undefined). */
  welcomeServers(): { keepalive: number; servers: Endpoint[] } | undefined {
    const servers = this.#others();
    return servers.length > 0 ? { keepalive: this.#o.keepalive, servers } : undefined;
  }

  /** SERVERS to our member `p` (the servers changed): where to go when we are lost. */
  #tellServers(p: Member): void {
    const servers = this.#others();
    if (servers.length === 0) return;
    this.#p.out.send(p.addr, {
      type: MsgType.Servers,
      token: tokenOf(p),
      seq: ++p.seq,
      keepalive: this.#o.keepalive,
      servers,
    });
  }

  #drop(reason: string): void {
    const d = this.#stats.drops;
    d[reason] = (d[reason] ?? 0) + 1;
  }
}
