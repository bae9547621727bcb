/**
 * A cluster server's own members as the other servers learn them (`docs/protocol.md` 21): the
 * records of members added, moved or made supernodes since the last step, the departures, the
 * digest a HEARTBEAT carries, how often each id moved between servers, and the full snapshot a
 * SYNC asks for. Told by `Members` ({@link MemberWatch}); drained by the cluster part after each
 * registry step. Pure.
 *
 * @module
 */
import { type ClusterRecord, recordDigest } from "./cluster_wire.ts";
import { idOf, type Member, type Room, view } from "./member.ts";
import type { LeaveReason, Members, MemberWatch } from "./members.ts";

const CODE_OF: Record<LeaveReason, number> = { bye: 1, expired: 2, replaced: 3, evicted: 2 };

/** What changed among our members in one step. */
export interface LocalChanges {
  /** Records of members added or changed. */
  records: ClusterRecord[];
  /** Members removed, with their LEFT reason codes. */
  gone: { id: Uint8Array; reason: number }[];
  /** Members new here (to be told the cluster's servers). */
  added: Member[];
  /** Rooms a member of ours left (they may have none of ours now). */
  left: Set<Room>;
}

/** Our members' records, digest and move counts. */
export class LocalRecords implements MemberWatch {
  #members: Members;
  /** Our members: their records' digests and move counts. */
  #local = new Map<bigint, { dig: number; moves: number }>();
  #digest = 0;
  #dirty = new Set<Member>();
  #gone: { id: Uint8Array; reason: number }[] = [];
  #left = new Set<Room>();
  /** Move counts for registrations that took a remote member over, until they are added. */
  #moving = new Map<bigint, number>();

  /** The records of `members`' own members. */
  constructor(members: Members) {
    this.#members = members;
  }

  /** XOR of the FNV-1a of our members' records (a HEARTBEAT's digest). */
  get digest(): number {
    return this.#digest;
  }

  /** Our members counted. */
  get count(): number {
    return this.#local.size;
  }

  /** Ids of our members. */
  ids(): IterableIterator<bigint> {
    return this.#local.keys();
  }

  /** How often our member `num` moved between servers (0 if not ours). */
  moves(num: bigint): number {
    return this.#local.get(num)?.moves ?? 0;
  }

  /** The registration of `num` in this step takes a member of another server over, moved `moves` times. */
  moving(num: bigint, moves: number): void {
    this.#moving.set(num, moves & 0xffff);
  }

  /** A member of ours was added, moved or became a supernode. */
  changed(p: Member): void {
    this.#dirty.add(p);
  }

  /** A member of ours was removed (`quiet`: it registered at another server). */
  removed(p: Member, reason: LeaveReason | "quiet"): void {
    this.#dirty.delete(p);
    this.#left.add(p.room);
    const l = this.#local.get(p.num);
    if (!l) return;
    this.#local.delete(p.num);
    this.#digest = (this.#digest ^ l.dig) >>> 0;
    if (reason !== "quiet") this.#gone.push({ id: idOf(p), reason: CODE_OF[reason] });
  }

  /** What changed since the last call, or undefined when nothing did (the common case). */
  take(): LocalChanges | undefined {
    if (this.#dirty.size === 0 && this.#gone.length === 0 && this.#left.size === 0) {
      return undefined;
    }
    const records: ClusterRecord[] = [], added: Member[] = [];
    for (const p of this.#dirty) {
      if (this.#members.get(p.num) !== p) continue;
      const before = this.#local.get(p.num);
      const moves = before?.moves ?? this.#moving.get(p.num) ?? 0;
      const r = recordOf(p, moves);
      const dig = recordDigest(r);
      this.#digest = (this.#digest ^ (before?.dig ?? 0) ^ dig) >>> 0;
      this.#local.set(p.num, { dig, moves });
      records.push(r);
      if (!before) added.push(p);
    }
    this.#dirty.clear();
    // A takeover whose registration was refused after all leaves nothing behind.
    this.#moving.clear();
    const gone = this.#gone, left = this.#left;
    this.#gone = [];
    this.#left = new Set();
    return { records, gone, added, left };
  }

  /** Every record of our members (a snapshot). */
  all(): ClusterRecord[] {
    const out: ClusterRecord[] = [];
    for (const [num, l] of this.#local) {
      const p = this.#members.get(num);
      if (p && !p.home) out.push(recordOf(p, l.moves));
    }
    return out;
  }
}

/** The record of our member `p`. */
export function recordOf(p: Member, moves: number): ClusterRecord {
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

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
