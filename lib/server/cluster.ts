/**
 * The registry's cluster part (`docs/protocol.md` 21): servers sharing rooms through an engine
 * (NATS). Each server publishes its members (MEMBERS updates as they register, move, become
 * supernodes; GONE as they leave) and a HEARTBEAT with a digest of them; every other server keeps
 * them as members with a `home` (introduced to its own members of the same room, listed in
 * rosters and digests, relayed to through their server, never sent to) for as long as the home
 * server's lease runs. A digest that disagrees asks for a snapshot (SYNC), so state converges
 * after lost messages or an engine outage. A peer whose server died registers with another one,
 * which takes its record over with the same incarnation (no new epoch, so no new handshakes).
 * Pure: the serve role carries the published bytes to the engine and back; randomness
 * (remote members' unguessable tokens) is injected.
 *
 * Call order: the registry calls {@link Cluster.flush} after every input it handles;
 * {@link Cluster.handleMessage} for a message from the engine, {@link Cluster.engine} when the
 * engine connection comes or goes; then drain {@link Cluster.pollPublish} and
 * {@link Cluster.pollEvent}.
 *
 * @module
 */
import { ed25519PublicKey } from "../crypto/ed25519.ts";
import { bytesEqual } from "../core/bytes.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { idHex, MsgType } from "../wire/header.ts";
import { idDigest, LeftReason, MAX_CLUSTER_SERVERS } from "../wire/server_msg.ts";
import {
  type ClusterEnvelope,
  type ClusterMsg,
  type ClusterRecord,
  ClusterType,
  decodeCluster,
  encodeCluster,
  MAX_RECORDS,
  recordDigest,
  SERVER_ID_LEN,
} from "./cluster_wire.ts";
import type { Introductions } from "./introductions.ts";
import {
  type ClusterHome,
  idNum,
  idOf,
  type Member,
  type Room,
  tagNum,
  tokenOf,
  usable,
  view,
} from "./member.ts";
import type { LeaveReason, Members, MemberWatch } from "./members.ts";
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
}

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
  /** Members of other servers known here. */
  remoteMembers: number;
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

/** What we know of another server. */
interface Server extends ClusterHome {
  id: Uint8Array;
  lastHeard: number;
  lease: number;
  endpoints: Endpoint[];
  /** Its members known here, with their records' digests and move counts. */
  members: Map<bigint, { m: Member; dig: number; moves: number }>;
  digest: number;
  lastSeq: number;
  lastRelaySeq: number;
  lastSync: number;
  snap: { n: number; seen: Set<bigint> } | undefined;
}

/** Most other servers remembered. */
const MAX_SERVERS = 64;
/** Least time between two SYNCs to one server, and between two snapshots we publish, ms. */
const SYNC_INTERVAL = 2_000;
const LEAVE_OF: Record<number, LeaveReason> = {
  [LeftReason.Bye]: "bye",
  [LeftReason.Expired]: "expired",
  [LeftReason.Replaced]: "replaced",
};
const CODE_OF: Record<LeaveReason, number> = { bye: 1, expired: 2, replaced: 3 };

/** What a cluster member shows its owner (the serve role): counters, log events, its id. */
export interface ClusterView {
  /** Counters. */
  readonly stats: ClusterStats;
  /** This server's id in hex. */
  readonly serverHex: string;
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
export class Cluster implements MemberWatch, ClusterView {
  #o: ClusterOptions;
  #p: ClusterParts;
  #hex: string;
  #seq = 0;
  #servers = new Map<string, Server>();
  /** Our members: their records' digests and move counts. */
  #local = new Map<bigint, { dig: number; moves: number }>();
  #digest = 0;
  #dirty = new Set<Member>();
  #gone: { id: Uint8Array; reason: number }[] = [];
  /** Move counts for registrations that took a remote member over, until they are added. */
  #moving = new Map<bigint, number>();
  #publish: ClusterPublish[] = [];
  #events: ClusterEvent[] = [];
  #up = false;
  #nextBeat = 0;
  #snapshots = 0;
  #lastSnapshot = -Infinity;
  /** The servers' endpoints peers were last told (SERVERS), to tell them again on a change. */
  #told = "";
  /** Counters. */
  readonly stats: ClusterStats = {
    engineUp: false,
    servers: 0,
    remoteMembers: 0,
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
  }

  /** This server's id in hex (its subject for relayed frames). */
  get serverHex(): string {
    return this.#hex;
  }

  /** The next message for the engine, if any. */
  pollPublish(): ClusterPublish | undefined {
    return this.#publish.shift();
  }

  /** The next event to log, if any. */
  pollEvent(): ClusterEvent | undefined {
    return this.#events.shift();
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    let t = this.#up ? this.#nextBeat : Infinity;
    for (const s of this.#servers.values()) t = Math.min(t, s.lastHeard + s.lease);
    return t === Infinity ? undefined : t;
  }

  /** Heartbeats, and the members of servers whose lease ran out removed (LEFT Expired). */
  handleTimeout(now: number): void {
    if (this.#up && now >= this.#nextBeat) {
      this.#nextBeat = now + this.#o.heartbeat;
      this.#heartbeat();
    }
    for (const s of [...this.#servers.values()]) {
      if (now - s.lastHeard >= s.lease) this.#forget(s);
    }
    this.flush();
  }

  /** The engine connection came (`up`) or went. Coming back: a snapshot and a SYNC of all. */
  engine(now: number, up: boolean): void {
    if (up === this.#up) return;
    this.#up = this.stats.engineUp = up;
    this.#events.push({ type: "engine", up });
    if (!up) return;
    this.#nextBeat = now + this.#o.heartbeat;
    this.#heartbeat();
    this.#snapshot(now);
    this.#send(null, { type: ClusterType.Sync, target: new Uint8Array(SERVER_ID_LEN) });
  }

  // ------------------------------------------------------------------------------------------
  // Our members (MemberWatch, called by Members)

  /** A member of ours was added, moved or became a supernode. */
  changed(p: Member): void {
    this.#dirty.add(p);
  }

  /** A member of ours was removed (`quiet`: it registered at another server). */
  removed(p: Member, reason: LeaveReason | "quiet"): void {
    this.#dirty.delete(p);
    const l = this.#local.get(p.num);
    if (!l) return;
    this.#local.delete(p.num);
    this.#digest = (this.#digest ^ l.dig) >>> 0;
    if (reason !== "quiet") this.#gone.push({ id: idOf(p), reason: CODE_OF[reason] });
  }

  /**
   * After each registry step: what changed among our members is published, and a member new
   * here is told the cluster's other servers (after its WELCOME, which went out in the step).
   */
  flush(): void {
    // Called after every datagram (PINGs and RELAYs too): nothing to do is the common case.
    if (this.#dirty.size === 0 && this.#gone.length === 0) return;
    const records: ClusterRecord[] = [];
    for (const p of this.#dirty) {
      if (this.#p.members.get(p.num) !== p) continue;
      const before = this.#local.get(p.num);
      const moves = before?.moves ?? this.#moving.get(p.num) ?? 0;
      this.#moving.delete(p.num);
      const r = recordOf(p, moves);
      const dig = recordDigest(r);
      this.#digest = (this.#digest ^ (before?.dig ?? 0) ^ dig) >>> 0;
      this.#local.set(p.num, { dig, moves });
      records.push(r);
      if (!before) this.#tellServers(p);
    }
    this.#dirty.clear();
    // A takeover whose registration was refused after all leaves nothing behind.
    this.#moving.clear();
    for (let i = 0; i < records.length; i += MAX_RECORDS) {
      const part = records.slice(i, i + MAX_RECORDS);
      this.#send(null, { type: ClusterType.Members, snapshot: 0, last: false, records: part });
    }
    for (let i = 0; i < this.#gone.length; i += 4096) {
      this.#send(null, { type: ClusterType.Gone, gone: this.#gone.slice(i, i + 4096) });
    }
    this.#gone = [];
  }

  // ------------------------------------------------------------------------------------------
  // Registry hooks

  /**
   * A HELLO with the id of `stub`, a member of another server: the peer failed over to us. The
   * same room, name tag and owner tag take it over (`stub` removed without a LEFT; the
   * registration keeps its incarnation, returned); anything else is refused (undefined).
   */
  takeOver(stub: Member, roomHex: string, nameTag: bigint, owner: Uint8Array): Member | undefined {
    if (stub.room.hex !== roomHex || stub.nameTag !== nameTag) return undefined;
    const o = view(owner);
    if (
      ((o.getInt32(0) ^ stub.own0) | (o.getInt32(4) ^ stub.own1) | (o.getInt32(8) ^ stub.own2) |
        (o.getInt32(12) ^ stub.own3)) !== 0
    ) return undefined;
    const s = this.#servers.get(stub.home!.hex);
    const moves = s?.members.get(stub.num)?.moves ?? 0;
    this.#dropStub(stub, "quiet");
    this.#moving.set(stub.num, (moves + 1) & 0xffff);
    this.stats.takeovers++;
    return stub;
  }

  /** A RELAY from our member `src` to `dst` of another server: through the engine to it. */
  relayOut(src: Member, dst: Member, payload: Uint8Array): void {
    const s = this.#servers.get(dst.home!.hex);
    if (!s || !this.#up) return this.#p.out.drop("relay-cluster-down");
    this.stats.relayBytesOut += payload.length;
    this.stats.relayPacketsOut++;
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
    const s = this.#servers.get(dst.home!.hex);
    if (!s) return;
    this.#send(s.hex, { type: ClusterType.Repunch, target: s.id, from: idOf(src), to: idOf(dst) });
  }

  // ------------------------------------------------------------------------------------------
  // From the engine

  /** A message from the engine. Never throws on bad input. */
  handleMessage(now: number, data: Uint8Array): void {
    const d = decodeCluster(data, this.#o.key);
    if (!d.ok) return this.#drop(d.reason);
    const { server, seq, msg } = d.value;
    const hex = idHex(server);
    if (hex === this.#hex) return;
    let s = this.#servers.get(hex);
    if (!s) {
      if (this.#servers.size >= MAX_SERVERS) return this.#drop("cluster-servers-full");
      s = newServer(server, hex, now, this.#o.lease);
      this.#servers.set(hex, s);
      this.stats.servers = this.#servers.size;
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
        return this.#members(now, s, m);
      case ClusterType.Gone:
        for (const g of m.gone) {
          const stub = this.#p.members.get(idNum(g.id));
          if (stub?.home === s) this.#dropStub(stub, LEAVE_OF[g.reason] ?? "bye");
        }
        return;
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
      for (const num of this.#local.keys()) {
        const p = this.#p.members.get(num);
        if (p && !p.home) this.#tellServers(p);
      }
    }
    if (
      (m.digest !== s.digest || m.count !== s.members.size) && now - s.lastSync >= SYNC_INTERVAL
    ) {
      s.lastSync = now;
      this.stats.syncs++;
      this.#events.push({ type: "sync", server: s.hex });
      this.#send(null, { type: ClusterType.Sync, target: s.id });
    }
  }

  #members(now: number, s: Server, m: Extract<ClusterMsg, { type: 2 }>): void {
    if (m.snapshot !== 0 && s.snap?.n !== m.snapshot) s.snap = { n: m.snapshot, seen: new Set() };
    for (const r of m.records) {
      this.#upsert(now, s, r);
      if (m.snapshot !== 0) s.snap?.seen.add(idNum(r.id));
    }
    if (m.snapshot !== 0 && m.last && s.snap) {
      const seen = s.snap.seen;
      s.snap = undefined;
      for (const [num, e] of [...s.members]) if (!seen.has(num)) this.#dropStub(e.m, "expired");
    }
  }

  /** A record of server `s`: a member of another server added, updated or taken from another. */
  #upsert(now: number, s: Server, r: ClusterRecord): void {
    const members = this.#p.members, num = idNum(r.id);
    const dig = recordDigest(r);
    const known = members.get(num);
    if (known && !known.home) {
      // Ours, and registered there later (it failed over, or moved): the higher move count wins.
      if (r.moves <= (this.#local.get(num)?.moves ?? 0)) return this.#drop("cluster-stale");
      members.remove(known, "quiet");
    } else if (known) {
      const from = this.#servers.get(known.home!.hex);
      const e = from?.members.get(num);
      if (from !== s && e && r.moves < e.moves) return this.#drop("cluster-stale");
      if (known.room.hex !== idHex(r.room)) this.#dropStub(known, "expired");
      else return this.#update(s, known, r, dig);
    }
    this.#add(now, s, r, dig);
  }

  /** A new member of server `s` from its record: kept, and introduced to ours in its room. */
  #add(now: number, s: Server, r: ClusterRecord, dig: number): void {
    const { members, options } = this.#p;
    const hex = idHex(r.room);
    let room = members.room(hex);
    if (!room) {
      const key = ed25519PublicKey(r.room);
      if (!key) return this.#drop("cluster-bad-room");
      room = { hex, short: hex.slice(0, 8), members: new Map(), key, digest: 0 };
    }
    if (room.members.size >= options.maxRoomSize) return this.#drop("cluster-room-full");
    if (members.remoteSize >= 4 * options.maxPeers) return this.#drop("cluster-full");
    const stub = stubOf(now, s, r, room, this.#p.random(8));
    members.add(stub);
    s.members.set(stub.num, { m: stub, dig, moves: r.moves });
    s.digest = (s.digest ^ dig) >>> 0;
    this.stats.remoteMembers = members.remoteSize;
    this.#introduceToOurs(stub);
  }

  /** A known member's new record (moved, supernode, another server): ours hear of it again. */
  #update(s: Server, stub: Member, r: ClusterRecord, dig: number): void {
    const from = this.#servers.get(stub.home!.hex);
    const e = from?.members.get(stub.num);
    if (from && e) {
      from.members.delete(stub.num);
      from.digest = (from.digest ^ e.dig) >>> 0;
    }
    s.members.set(stub.num, { m: stub, dig, moves: r.moves });
    s.digest = (s.digest ^ dig) >>> 0;
    if (e?.dig === dig && from === s) return;
    stub.home = s;
    const inc = view(r.inc);
    stub.inc0 = inc.getInt32(0);
    stub.inc1 = inc.getInt32(4);
    stub.flags = r.flags & 1;
    stub.supernode = (r.flags & 2) !== 0;
    this.#p.members.readdress(stub, r.addr);
    stub.privateEndpoints = usable(r.privateEndpoints);
    this.#introduceToOurs(stub);
  }

  #introduceToOurs(stub: Member): void {
    for (const other of stub.room.members.values()) {
      if (other.home) continue;
      this.#p.introductions.introduce(other, stub, false);
      this.stats.remoteIntroductions++;
    }
  }

  /** Removes a member of another server (LEFT to ours unless `quiet`). */
  #dropStub(stub: Member, reason: LeaveReason | "quiet"): void {
    const s = this.#servers.get(stub.home!.hex);
    const e = s?.members.get(stub.num);
    if (s && e) {
      s.members.delete(stub.num);
      s.digest = (s.digest ^ e.dig) >>> 0;
    }
    this.#p.members.remove(stub, reason);
    this.stats.remoteMembers = this.#p.members.remoteSize;
  }

  /** A server whose lease ran out: its members leave (Expired). */
  #forget(s: Server): void {
    const n = s.members.size;
    for (const e of [...s.members.values()]) this.#dropStub(e.m, "expired");
    this.#servers.delete(s.hex);
    this.stats.servers = this.#servers.size;
    this.#events.push({ type: "server-gone", server: s.hex, members: n });
  }

  #relayIn(now: number, s: Server, m: Extract<ClusterMsg, { type: 5 }>): void {
    if (!bytesEqual(m.target, this.#o.server)) return;
    const members = this.#p.members;
    const to = members.get(idNum(m.to)), from = members.get(idNum(m.from));
    if (!to || to.home || from?.home !== s || from.room !== to.room) {
      return this.#drop("cluster-relay-unknown");
    }
    this.stats.relayBytesIn += m.payload.length;
    this.stats.relayPacketsIn++;
    this.#p.relay.deliver(now, from, to, m.payload);
  }

  // ------------------------------------------------------------------------------------------
  // Publishing

  #send(to: string | null, msg: ClusterMsg): void {
    if (!this.#up) return;
    const e: ClusterEnvelope = { server: this.#o.server, seq: ++this.#seq, msg };
    this.#publish.push({ to, data: encodeCluster(e, this.#o.key) });
  }

  #heartbeat(): void {
    this.#send(null, {
      type: ClusterType.Heartbeat,
      lease: this.#o.lease,
      digest: this.#digest,
      count: this.#local.size,
      endpoints: this.#o.endpoints,
    });
  }

  /** All our members, in parts, numbered as one snapshot (at most one per SYNC_INTERVAL / 4). */
  #snapshot(now: number): void {
    if (now - this.#lastSnapshot < SYNC_INTERVAL / 4) return;
    this.#lastSnapshot = now;
    const n = ++this.#snapshots;
    const all: ClusterRecord[] = [];
    for (const [num, l] of this.#local) {
      const p = this.#p.members.get(num);
      if (p && !p.home) all.push(recordOf(p, l.moves));
    }
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
    for (const s of this.#servers.values()) {
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

  /** SERVERS to our member `p`: where to go when we are lost. */
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
    const d = this.stats.drops;
    d[reason] = (d[reason] ?? 0) + 1;
  }
}

function newServer(id: Uint8Array, hex: string, now: number, lease: number): Server {
  return {
    id,
    hex,
    lastHeard: now,
    lease,
    endpoints: [],
    members: new Map(),
    digest: 0,
    lastSeq: 0,
    lastRelaySeq: 0,
    lastSync: -Infinity,
    snap: undefined,
  };
}

/** The record of our member `p`. */
function recordOf(p: Member, moves: number): ClusterRecord {
  const owner = new Uint8Array(16), ov = view(owner);
  ov.setInt32(0, p.own0);
  ov.setInt32(4, p.own1);
  ov.setInt32(8, p.own2);
  ov.setInt32(12, p.own3);
  const inc = new Uint8Array(8), iv = view(inc);
  iv.setInt32(0, p.inc0);
  iv.setInt32(4, p.inc1);
  const tag = new Uint8Array(8);
  view(tag).setBigUint64(0, p.nameTag);
  return {
    id: idOf(p),
    room: hexBytes(p.room.hex),
    nameTag: tag,
    owner,
    inc,
    flags: (p.flags & 1) | (p.supernode ? 2 : 0),
    moves,
    addr: p.addr,
    privateEndpoints: p.privateEndpoints,
  };
}

/** A member of server `s` from its record; its token is random (nobody can speak as it here). */
function stubOf(now: number, s: Server, r: ClusterRecord, room: Room, token: Uint8Array): Member {
  const tv = view(token), ov = view(r.owner), iv = view(r.inc);
  return {
    num: idNum(r.id),
    dig: idDigest(r.id) | 0,
    tok0: tv.getInt32(0),
    tok1: tv.getInt32(4),
    seq: 0,
    nameTag: tagNum(r.nameTag),
    own0: ov.getInt32(0),
    own1: ov.getInt32(4),
    own2: ov.getInt32(8),
    own3: ov.getInt32(12),
    inc0: iv.getInt32(0),
    inc1: iv.getInt32(4),
    flags: r.flags & 1,
    reach: undefined,
    supernode: (r.flags & 2) !== 0,
    room,
    addr: r.addr,
    privateEndpoints: usable(r.privateEndpoints),
    lastSeen: now,
    lastResync: -Infinity,
    lastWrongToken: -Infinity,
    relay: undefined,
    older: undefined,
    newer: undefined,
    home: s,
  };
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
