/**
 * Members of other servers in rooms without a member of ours, kept compact
 * (`docs/protocol.md` 23, "Interest"): only their records' bytes (as a one-byte string, about
 * 100 bytes each, instead of a full member with its room and room key), indexed by room so that
 * the first member of ours in a room brings the others' members of it in at once, and counted
 * under their sources and networks so that the cluster-wide limits hold. Pure.
 *
 * @module
 */
import { Reader } from "../wire/codec.ts";
import { idHex } from "../wire/header.ts";
import type { ClusterRecord } from "./cluster_wire.ts";
import { readRecord, recordBytes } from "./cluster_wire.ts";
import type { Members } from "./members.ts";

/** A compact member's room index entry: which server it belongs to (by id in hex). */
type RoomIndex = Map<bigint, string>;

/** Compact records of other servers' members, by room, counted under their sources. */
export class CompactRecords {
  #members: Members;
  #rooms = new Map<string, RoomIndex>();
  #size = 0;

  /** Compact records counted in `members`' source and network limits. */
  constructor(members: Members) {
    this.#members = members;
  }

  /** Members kept compact. */
  get size(): number {
    return this.#size;
  }

  /**
   * Keeps `r` (member `num` of server `server`, in room `roomHex`) compact: indexed, counted;
   * returns what to store for it.
   */
  keep(server: string, num: bigint, r: ClusterRecord, roomHex: string): string {
    let idx = this.#rooms.get(roomHex);
    if (!idx) this.#rooms.set(roomHex, idx = new Map());
    idx.set(num, server);
    this.#members.countElsewhere(r.addr, roomHex, 1);
    this.#size++;
    return pack(recordBytes(r));
  }

  /** Forgets the compact member `num` stored as `rec`; returns its record. */
  forget(num: bigint, rec: string): ClusterRecord {
    const b = unpack(rec), r = readRecord(new Reader(b, 0), b);
    const roomHex = idHex(r.room);
    const idx = this.#rooms.get(roomHex);
    if (idx?.delete(num) && idx.size === 0) this.#rooms.delete(roomHex);
    this.#members.countElsewhere(r.addr, roomHex, -1);
    this.#size--;
    return r;
  }

  /** The compact members of room `roomHex`: ids and their servers (hex). */
  inRoom(roomHex: string): [bigint, string][] {
    const idx = this.#rooms.get(roomHex);
    return idx ? [...idx] : [];
  }
}

/** Bytes as a one-byte string (V8 keeps it on the heap at one byte per character). */
function pack(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 4096) {
    s += String.fromCharCode(...b.subarray(i, i + 4096));
  }
  return s;
}

function unpack(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}
