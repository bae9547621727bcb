/**
 * The registry's members and rooms: who is registered (by id), which rooms exist and their
 * roster digests, the name tags taken in each room, how many registrations and rooms each source
 * address holds (admission, `docs/protocol.md` 6.10), and the least-recently-heard list that
 * makes expiry O(1) per member. Removing a member tells the rest of its room (LEFT). Pure.
 *
 * @module
 */
import { networkKey, SourceCounts, sourceKey } from "../core/limits.ts";
import type { Endpoint } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import { LeftReason, RefuseCode } from "../wire/server_msg.ts";
import { forgetRelays, idOf, type Member, nameOf, type Room, tokenOf } from "./member.ts";
import type { RegistryOptions } from "./options.ts";
import type { Outbox } from "./outbox.ts";
import { Lonely } from "./pressure.ts";

/** Why a registration or a move is refused: the REFUSED code and message. */
export interface Refusal {
  code: number;
  message: string;
}

/**
 * Why a member left its room: it said goodbye, it went silent, or its identity registered the
 * same name again (a new process: this registration was a ghost).
 */
export type LeaveReason = "bye" | "expired" | "replaced" | "evicted";

/** The LEFT reason code of each {@link LeaveReason}. */
const LEFT_CODE: Record<LeaveReason, number> = {
  bye: LeftReason.Bye,
  expired: LeftReason.Expired,
  replaced: LeftReason.Replaced,
  // A lonely registration that gave way on a full server (6.11): nobody is told anyway.
  evicted: LeftReason.Expired,
};

/**
 * Who hears of local members' changes (the cluster, `lib/server/cluster.ts`): a member added,
 * readdressed or made a supernode ({@link changed}), removed ({@link removed}).
 */
export interface MemberWatch {
  changed(p: Member): void;
  removed(p: Member, reason: LeaveReason | "quiet"): void;
}

/**
 * Members by id, rooms by id, per-source counts and the least-recently-heard list. Call order:
 * {@link touch} whenever a member is heard from (time only moves forward); {@link expire} on the
 * registry's timer; {@link add} only after {@link admit} and the name check passed.
 */
export class Members {
  #o: RegistryOptions;
  #out: Outbox;
  /** Members by id (read as a big-endian 64-bit number: no string built per lookup). */
  #peers = new Map<bigint, Member>();
  /** Members as a doubly-linked list, least recently heard first (kept so by {@link touch}). */
  #oldest: Member | undefined;
  #newest: Member | undefined;
  #rooms = new Map<string, Room>();
  #sources = new SourceCounts();
  /** Registrations alone in rooms they made: the first to give way on a full server. */
  #lonely = new Lonely<Member>();
  #networks = new SourceCounts();
  /** Members registered at other servers of the cluster (in {@link #peers}, not counted). */
  #remote = 0;
  /** Told of local members' changes, when the server is in a cluster. */
  watch: MemberWatch | undefined;

  /** Members under the limits of `o`; LEFT messages and events go to `out`. */
  constructor(o: RegistryOptions, out: Outbox) {
    this.#o = o;
    this.#out = out;
  }

  /** Number of registered peers. */
  get size(): number {
    return this.#peers.size - this.#remote;
  }

  /** Number of members registered at other servers of the cluster, in rooms known here. */
  get remoteSize(): number {
    return this.#remote;
  }

  /** Number of non-empty rooms. */
  get roomCount(): number {
    return this.#rooms.size;
  }

  /** The member with id number `num`, if registered. */
  get(num: bigint): Member | undefined {
    return this.#peers.get(num);
  }

  /** The room with id `hex`, if it has members. */
  room(hex: string): Room | undefined {
    return this.#rooms.get(hex);
  }

  /** The member of `room` whose name tag is `tag`, if any. */
  holder(room: Room, tag: bigint): Member | undefined {
    for (const other of room.members.values()) if (other.nameTag === tag) return other;
    return undefined;
  }

  /** When the least recently heard member expires, if any. O(1). */
  expiry(): number | undefined {
    return this.#oldest && this.#oldest.lastSeen + this.#o.expireAfter;
  }

  /** Records contact with `p`; time only moves forward, so `p` becomes the newest. */
  touch(p: Member, now: number): void {
    p.lastSeen = now;
    if (this.#newest === p) return;
    this.#unlink(p);
    this.#append(p);
  }

  /** Removes every member not heard from for `expireAfter`, oldest first. */
  expire(now: number): void {
    while (this.#oldest && now - this.#oldest.lastSeen >= this.#o.expireAfter) {
      this.remove(this.#oldest, "expired");
    }
  }

  /** Registers `p` (its room is made when it is the first member). */
  add(p: Member): void {
    const r = p.room;
    if (r.members.size === 0) {
      this.#rooms.set(r.hex, r);
      this.#lonely.add(p);
    }
    r.members.set(p.num, p);
    r.digest = (r.digest ^ p.dig) >>> 0;
    this.#peers.set(p.num, p);
    // Members of other cluster servers count under their sources too: per-source limits hold
    // cluster-wide.
    this.#count(p.addr, r.hex, 1);
    if (p.home) return void this.#remote++;
    this.#append(p);
    this.watch?.changed(p);
  }

  /** Makes `to` the address of `p`, counting it under its new source. */
  readdress(p: Member, to: Endpoint): void {
    this.#count(p.addr, p.room.hex, -1);
    this.#count(to, p.room.hex, 1);
    p.addr = to;
    if (!p.home) this.watch?.changed(p);
  }

  /**
   * Forgets `p` (its token with it, so later messages carrying it are dropped) and tells every
   * remaining member of its room with a LEFT; `quiet`: nobody is told (it registered at another
   * server of the cluster, which introduces it anew).
   */
  remove(p: Member, reason: LeaveReason | "quiet"): void {
    this.#peers.delete(p.num);
    this.#lonely.remove(p);
    this.#count(p.addr, p.room.hex, -1);
    if (p.home) this.#remote--;
    else {
      this.#unlink(p);
      this.watch?.removed(p, reason);
    }
    forgetRelays(p);
    const room = p.room;
    room.members.delete(p.num);
    room.digest = (room.digest ^ p.dig) >>> 0;
    if (room.members.size === 0) this.#rooms.delete(room.hex);
    if (reason === "quiet") return;
    this.#out.event({ type: "left", room: room.short, name: nameOf(p), reason });
    const code = LEFT_CODE[reason];
    for (const other of room.members.values()) {
      if (other.home) continue;
      this.#out.send(other.addr, {
        type: MsgType.Left,
        token: tokenOf(other),
        seq: ++other.seq,
        id: idOf(p),
        reason: code,
      });
    }
  }

  /** Why a new member from `from` cannot join the room `roomHex` now, if it cannot. */
  admit(from: Endpoint, roomHex: string, room: Room | undefined): Refusal | undefined {
    const bySource = this.admitSource(from, roomHex);
    if (bySource) return bySource;
    if ((room?.members.size ?? 0) >= this.#o.maxRoomSize) {
      return { code: RefuseCode.RoomFull, message: `Room is full (${this.#o.maxRoomSize} peers)` };
    }
    if (this.#peers.size >= this.#o.maxPeers && !this.#makeRoom(room)) {
      return { code: RefuseCode.Limit, message: "Server is full; try again later" };
    }
    return undefined;
  }

  /**
   * The server is full: a lonely registration gives way (6.11), the newest for a HELLO into
   * `room` (an existing room), the oldest for one that makes a new room. False when none can.
   */
  #makeRoom(room: Room | undefined): boolean {
    const victim = room ? this.#lonely.newest(room) : this.#lonely.oldest();
    if (!victim) return false;
    this.remove(victim, "evicted");
    return true;
  }

  /**
   * Counts (`+1`) or forgets (`-1`) a member of another cluster server kept outside the members
   * (compact: its room has none of ours), so that the per-source limits hold cluster-wide.
   */
  countElsewhere(addr: Endpoint, roomHex: string, d: 1 | -1): void {
    this.#count(addr, roomHex, d);
  }

  /** Counts (`+1`) or forgets (`-1`) a registration from `addr` in `roomHex`. */
  #count(addr: Endpoint, roomHex: string, d: 1 | -1): void {
    const ip = sourceKey(addr.hostname), net = networkKey(addr.hostname);
    if (d > 0) {
      this.#sources.add(ip, roomHex);
      this.#networks.add(net, roomHex);
    } else {
      this.#sources.remove(ip, roomHex);
      this.#networks.remove(net, roomHex);
    }
  }

  /**
   * Why one more registration in `roomHex` from `from`'s IP address (or its network: an IPv4
   * /24, an IPv6 /48) is refused, if it is.
   */
  admitSource(from: Endpoint, roomHex: string): Refusal | undefined {
    const net = networkKey(from.hostname);
    if (this.#networks.peers(net) >= this.#o.maxPerNetwork) {
      return {
        code: RefuseCode.Limit,
        message: `Too many peers from your network (${this.#o.maxPerNetwork})`,
      };
    }
    if (
      !this.#networks.inRoom(net, roomHex) &&
      this.#networks.rooms(net) >= this.#o.maxRoomsPerNetwork
    ) {
      return {
        code: RefuseCode.Limit,
        message: `Too many rooms from your network (${this.#o.maxRoomsPerNetwork})`,
      };
    }
    const ip = sourceKey(from.hostname);
    if (this.#sources.peers(ip) >= this.#o.maxPerSource) {
      return {
        code: RefuseCode.Limit,
        message: `Too many peers from your address (${this.#o.maxPerSource})`,
      };
    }
    if (
      !this.#sources.inRoom(ip, roomHex) && this.#sources.rooms(ip) >= this.#o.maxRoomsPerSource
    ) {
      return {
        code: RefuseCode.Limit,
        message: `Too many rooms from your address (${this.#o.maxRoomsPerSource})`,
      };
    }
    return undefined;
  }

  #append(p: Member): void {
    p.older = this.#newest;
    p.newer = undefined;
    if (this.#newest) this.#newest.newer = p;
    else this.#oldest = p;
    this.#newest = p;
  }

  #unlink(p: Member): void {
    if (p.older) p.older.newer = p.newer;
    else this.#oldest = p.newer;
    if (p.newer) p.newer.older = p.older;
    else this.#newest = p.older;
    p.older = p.newer = undefined;
  }
}
