/**
 * The members of a cluster's other servers as this server keeps them (`docs/protocol.md` 21):
 * per server (its lease, endpoints, digest, sequence numbers), and as members of their rooms
 * with a `home` (introduced to our members of the room, counted in rosters and digests and
 * under their sources, never sent to) while the room has a member of ours, else compact
 * (`cluster_compact.ts`); a room that gets a member of ours (or a HELLO into it) brings its
 * compact members in, one that loses its last lets them go back. Records add, update or move them between servers (the
 * higher move count wins, also over our own member of the same id); a snapshot's last part
 * removes what it did not list; a GONE or an ended lease removes them with a LEFT; a peer that
 * registers here takes its record over. Pure: their unguessable tokens are drawn from the
 * injected random source.
 *
 * @module
 */
import { ed25519PublicKey } from "../crypto/ed25519.ts";
import type { Endpoint } from "../wire/address.ts";
import { idHex } from "../wire/header.ts";
import { idDigest } from "../wire/server_msg.ts";
import { CompactRecords } from "./cluster_compact.ts";
import type { ClusterMsg, ClusterRecord } from "./cluster_wire.ts";
import { recordDigest } from "./cluster_wire.ts";
import type { Introductions } from "./introductions.ts";
import { type ClusterHome, idNum, type Member, type Room, tagNum, usable, view } from "./member.ts";
import { recordOf } from "./cluster_local.ts";
import type { LeaveReason, Members } from "./members.ts";
import type { RegistryOptions } from "./options.ts";

/**
 * A member of another server as held here: a full member `m` when its room has a member of
 * ours, else only its record's bytes `rec` (`cluster_compact.ts`).
 */
export interface Held {
  m: Member | undefined;
  rec: string | undefined;
  dig: number;
  moves: number;
}

/** What we know of another server. */
export interface Server extends ClusterHome {
  id: Uint8Array;
  lastHeard: number;
  lease: number;
  endpoints: Endpoint[];
  /** Its members known here, with their records' digests and move counts. */
  members: Map<bigint, Held>;
  digest: number;
  lastSeq: number;
  lastRelaySeq: number;
  lastSync: number;
  snap: { n: number; seen: Set<bigint> } | undefined;
}

/** A server first heard at `now`, kept `lease` ms after its last message until it says more. */
export function newServer(id: Uint8Array, hex: string, now: number, lease: number): Server {
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

const LEAVE_OF: Record<number, LeaveReason> = { 1: "bye", 2: "expired", 3: "replaced" };

/** The parts of the registry the other servers' members live in. */
export interface RemoteParts {
  members: Members;
  introductions: Introductions;
  options: RegistryOptions;
  random: (n: number) => Uint8Array;
  /** How often our own member `num` moved between servers. */
  localMoves: (num: bigint) => number;
  /** Counts a dropped record or message under `reason`. */
  drop: (reason: string) => void;
  /** Counts an INTRO sent to our member about another server's. */
  introduced: () => void;
}

/** The other servers and their members. */
export class RemoteMembers {
  #p: RemoteParts;
  /** The other servers by id in hex. */
  readonly servers = new Map<string, Server>();

  #compact: CompactRecords;

  /** Other servers' members kept in `p`'s registry parts. */
  constructor(p: RemoteParts) {
    this.#p = p;
    this.#compact = new CompactRecords(p.members);
  }

  /** Members of other servers known here (full and compact). */
  get size(): number {
    return this.#p.members.remoteSize + this.#compact.size;
  }

  /** Members of other servers held in full (their rooms have members of ours). */
  get full(): number {
    return this.#p.members.remoteSize;
  }

  /** The server whose member `num` is (held in full or compact), if any. */
  homeOf(num: bigint): Server | undefined {
    const m = this.#p.members.get(num);
    if (m) return m.home ? this.servers.get(m.home.hex) : undefined;
    for (const s of this.servers.values()) if (s.members.has(num)) return s;
    return undefined;
  }

  /**
   * The member `num` of another server, held in full: a compact one is made full first (a HELLO
   * with its id may take it over). Undefined when no other server has it.
   */
  materialize(now: number, num: bigint): Member | undefined {
    const m = this.#p.members.get(num);
    if (m) return m.home ? m : undefined;
    for (const s of this.servers.values()) {
      const h = s.members.get(num);
      if (h && !h.m) return this.#unpack(now, s, num, h);
    }
    return undefined;
  }

  /**
   * Room `roomHex` has (or is about to have) a member of ours: the other servers' members of it
   * kept compact are held in full (and introduced to ours).
   */
  interestIn(now: number, roomHex: string): void {
    for (const [num, hex] of this.#compact.inRoom(roomHex)) {
      const s = this.servers.get(hex), h = s?.members.get(num);
      if (s && h && !h.m) this.#unpack(now, s, num, h);
    }
  }

  /**
   * A member of ours left room `room`: when none is left, the other servers' members of it are
   * kept compact again (quietly: ours are gone).
   */
  release(room: Room): void {
    if (this.#p.members.room(room.hex) !== room || hasOurs(room)) return;
    for (const stub of [...room.members.values()]) {
      const s = this.servers.get(stub.home!.hex), h = s?.members.get(stub.num);
      if (!s || !h?.m) continue;
      const r = recordOf(stub, h.moves);
      this.#p.members.remove(stub, "quiet");
      h.m = undefined;
      h.rec = this.#compact.keep(s.hex, stub.num, r, room.hex);
    }
  }

  /** Compact `h` (member `num` of `s`) held in full. */
  #unpack(now: number, s: Server, num: bigint, h: Held): Member | undefined {
    const r = this.#compact.forget(num, h.rec!);
    s.members.delete(num);
    s.digest = (s.digest ^ h.dig) >>> 0;
    return this.#full(now, s, r, h.dig);
  }

  /** A MEMBERS message of server `s`: an update, or a part of a snapshot. */
  records(now: number, s: Server, m: Extract<ClusterMsg, { type: 2 }>): void {
    if (m.snapshot !== 0 && s.snap?.n !== m.snapshot) s.snap = { n: m.snapshot, seen: new Set() };
    for (const r of m.records) {
      this.#upsert(now, s, r);
      if (m.snapshot !== 0) s.snap?.seen.add(idNum(r.id));
    }
    if (m.snapshot !== 0 && m.last && s.snap) {
      const seen = s.snap.seen;
      s.snap = undefined;
      for (const [num, h] of [...s.members]) {
        if (!seen.has(num)) this.#dropHeld(s, num, h, "expired");
      }
    }
  }

  /** A GONE of server `s`: those of its members leave with their reasons. */
  gone(s: Server, gone: { id: Uint8Array; reason: number }[]): void {
    for (const g of gone) {
      const num = idNum(g.id), h = s.members.get(num);
      if (h) this.#dropHeld(s, num, h, LEAVE_OF[g.reason] ?? "bye");
    }
  }

  /**
   * A HELLO with the id of `stub`, a member of another server: the peer failed over to us. The
   * same room, name tag and owner tag take it over (`stub` removed without a LEFT; returned with
   * its move count, so the registration keeps its incarnation); otherwise undefined.
   */
  takeOver(
    stub: Member,
    roomHex: string,
    nameTag: bigint,
    owner: Uint8Array,
  ): { stub: Member; moves: number } | undefined {
    if (stub.room.hex !== roomHex || stub.nameTag !== nameTag) return undefined;
    const o = view(owner);
    if (
      ((o.getInt32(0) ^ stub.own0) | (o.getInt32(4) ^ stub.own1) | (o.getInt32(8) ^ stub.own2) |
        (o.getInt32(12) ^ stub.own3)) !== 0
    ) return undefined;
    const moves = this.servers.get(stub.home!.hex)?.members.get(stub.num)?.moves ?? 0;
    this.drop(stub, "quiet");
    return { stub, moves };
  }

  /** Removes a member of another server (LEFT to ours unless `quiet`). */
  drop(stub: Member, reason: LeaveReason | "quiet"): void {
    const s = this.servers.get(stub.home!.hex);
    const e = s?.members.get(stub.num);
    if (s && e) {
      s.members.delete(stub.num);
      s.digest = (s.digest ^ e.dig) >>> 0;
    }
    this.#p.members.remove(stub, reason);
  }

  /** A server whose lease ran out: forgotten, its members leave (Expired); how many they were. */
  forget(s: Server): number {
    const n = s.members.size;
    for (const [num, h] of [...s.members]) this.#dropHeld(s, num, h, "expired");
    this.servers.delete(s.hex);
    return n;
  }

  /** Removes member `num` of `s` held as `h`, full (with a LEFT unless `quiet`) or compact. */
  #dropHeld(s: Server, num: bigint, h: Held, reason: LeaveReason | "quiet"): void {
    if (h.m) {
      if (h.m.home === s) this.drop(h.m, reason);
      return;
    }
    s.members.delete(num);
    s.digest = (s.digest ^ h.dig) >>> 0;
    this.#compact.forget(num, h.rec!);
  }

  /** A record of server `s`: a member of another server added, updated or taken from another. */
  #upsert(now: number, s: Server, r: ClusterRecord): void {
    const members = this.#p.members, num = idNum(r.id);
    const dig = recordDigest(r);
    const known = members.get(num);
    if (known && !known.home) {
      // Ours, and registered there later (it failed over, or moved): the higher move count wins.
      if (r.moves <= this.#p.localMoves(num)) return this.#p.drop("cluster-stale");
      members.remove(known, "quiet");
    } else if (known) {
      const from = this.servers.get(known.home!.hex);
      const e = from?.members.get(num);
      if (from !== s && e && r.moves < e.moves) return this.#p.drop("cluster-stale");
      if (known.room.hex !== idHex(r.room)) this.drop(known, "expired");
      else return this.#update(s, known, r, dig);
    } else {
      const from = this.homeOf(num), h = from?.members.get(num);
      if (from && h) {
        if (from !== s && r.moves < h.moves) return this.#p.drop("cluster-stale");
        if (from === s && h.dig === dig) return;
        this.#dropHeld(from, num, h, "quiet");
      }
    }
    this.#add(now, s, r, dig);
  }

  /**
   * A new member of server `s` from its record: held in full and introduced to ours when its
   * room has members of ours, else kept compact.
   */
  #add(now: number, s: Server, r: ClusterRecord, dig: number): void {
    const { members, options } = this.#p;
    const hex = idHex(r.room), room = members.room(hex);
    if (room && hasOurs(room)) return void this.#full(now, s, r, dig);
    if (this.size >= 4 * options.maxPeers) return this.#p.drop("cluster-full");
    const num = idNum(r.id);
    const rec = this.#compact.keep(s.hex, num, r, hex);
    s.members.set(num, { m: undefined, rec, dig, moves: r.moves });
    s.digest = (s.digest ^ dig) >>> 0;
  }

  /** Member `r` of server `s` held in full, introduced to ours in its room; undefined if refused. */
  #full(now: number, s: Server, r: ClusterRecord, dig: number): Member | undefined {
    const { members, options } = this.#p;
    const hex = idHex(r.room);
    let room = members.room(hex);
    if (!room) {
      if (!ed25519PublicKey(r.room)) return void this.#p.drop("cluster-bad-room");
      room = { hex, short: hex.slice(0, 8), members: new Map(), digest: 0 };
    }
    if (room.members.size >= options.maxRoomSize) return void this.#p.drop("cluster-room-full");
    if (members.remoteSize >= 4 * options.maxPeers) return void this.#p.drop("cluster-full");
    const stub = stubOf(now, s, r, room, this.#p.random(8));
    members.add(stub);
    s.members.set(stub.num, { m: stub, rec: undefined, dig, moves: r.moves });
    s.digest = (s.digest ^ dig) >>> 0;
    this.#introduceToOurs(stub);
    return stub;
  }

  /** A known member's new record (moved, supernode, another server): ours hear of it again. */
  #update(s: Server, stub: Member, r: ClusterRecord, dig: number): void {
    const from = this.servers.get(stub.home!.hex);
    const e = from?.members.get(stub.num);
    if (from && e) {
      from.members.delete(stub.num);
      from.digest = (from.digest ^ e.dig) >>> 0;
    }
    s.members.set(stub.num, { m: stub, rec: undefined, dig, moves: r.moves });
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
      this.#p.introduced();
    }
  }
}

/** True when `room` has a member of ours (not of another server). */
function hasOurs(room: Room): boolean {
  for (const m of room.members.values()) if (!m.home) return true;
  return false;
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
    cookieAt: -Infinity,
    relay: undefined,
    older: undefined,
    newer: undefined,
    home: s,
  };
}
