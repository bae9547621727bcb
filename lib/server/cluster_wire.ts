/**
 * The messages servers of a cluster publish to each other through the engine
 * (`docs/protocol.md` 21): HEARTBEAT (alive, with a digest of its members), MEMBERS (member
 * records: an update, or a part of a full snapshot), GONE (members removed), SYNC (asks for a
 * snapshot) and RELAY (a peer frame for a member of the target server). Each starts with its
 * sender's server id and a sequence number, and ends with a MAC when the cluster shares a
 * secret; the MAC is checked before anything else is read. Pure; decoders never throw.
 *
 * @module
 */
import { CLUSTER_MAC_LEN, clusterMac } from "../crypto/cluster_mac.ts";
import { constantTimeEqual } from "../crypto/constant_time.ts";
import type { Endpoint } from "../wire/address.ts";
import { type Decoded, Reader, ShortRead, Writer } from "../wire/codec.ts";
import { ID_LEN } from "../wire/header.ts";
import { EPOCH_LEN, NAME_TAG_LEN, OWNER_TAG_LEN, ROOM_ID_LEN } from "../wire/server_msg.ts";

/** The first four bytes of every cluster message: `p2C` and the cluster protocol's version. */
export const CLUSTER_MAGIC: readonly number[] = [0x70, 0x32, 0x43, 1];

/** Size of a server id. */
export const SERVER_ID_LEN = 8;

/** Cluster message types. */
export const ClusterType = {
  Heartbeat: 1,
  Members: 2,
  Gone: 3,
  Sync: 4,
  Relay: 5,
  Repunch: 6,
} as const;

/** Most records in one MEMBERS message (about 30 KB). */
export const MAX_RECORDS = 256;

/** What a server publishes about one of its members. */
export interface ClusterRecord {
  id: Uint8Array;
  room: Uint8Array;
  nameTag: Uint8Array;
  owner: Uint8Array;
  /** The registration's incarnation (epochs are computed from it on every server). */
  inc: Uint8Array;
  /** Bit 0: relay-only; bit 1: passed the reachability check (a supernode). */
  flags: number;
  /** How often this id moved between servers: a higher count wins a conflict. */
  moves: number;
  addr: Endpoint;
  privateEndpoints: Endpoint[];
}

/** The bytes of decoded records (views into their messages), kept beside them. */
const RAW = new WeakMap<ClusterRecord, Uint8Array>();

/** A record's bytes: as decoded (a view into its message), or encoded now. */
export function recordBytes(r: ClusterRecord): Uint8Array {
  return RAW.get(r) ?? writeRecord(new Writer(), r).finish();
}

/** One cluster message's body. */
export type ClusterMsg =
  | {
    type: typeof ClusterType.Heartbeat;
    /** How long the receivers keep this server's members without another heartbeat, ms. */
    lease: number;
    /** XOR of the FNV-1a of each member record's bytes. */
    digest: number;
    count: number;
    /** Where peers reach this server (for SERVERS). */
    endpoints: Endpoint[];
  }
  | {
    type: typeof ClusterType.Members;
    /** 0 for an update; else the snapshot's number, the same in all its parts. */
    snapshot: number;
    /** The snapshot's last part (its receivers forget the sender's members it did not list). */
    last: boolean;
    records: ClusterRecord[];
  }
  | { type: typeof ClusterType.Gone; gone: { id: Uint8Array; reason: number }[] }
  | { type: typeof ClusterType.Sync; target: Uint8Array }
  | {
    type: typeof ClusterType.Relay;
    target: Uint8Array;
    from: Uint8Array;
    to: Uint8Array;
    payload: Uint8Array;
  }
  | { type: typeof ClusterType.Repunch; target: Uint8Array; from: Uint8Array; to: Uint8Array };

/** A cluster message with its sender and sequence number. */
export interface ClusterEnvelope {
  server: Uint8Array;
  seq: number;
  msg: ClusterMsg;
}

/** Encodes `e`, with a MAC under `key` when given. Throws RangeError on values built wrong. */
export function encodeCluster(e: ClusterEnvelope, key: Uint8Array | null): Uint8Array {
  const w = new Writer();
  for (const b of CLUSTER_MAGIC) w.u8(b);
  w.u8(e.msg.type).fixed(e.server, SERVER_ID_LEN).u32(e.seq);
  const m = e.msg;
  switch (m.type) {
    case ClusterType.Heartbeat:
      w.u32(m.lease).u32(m.digest).u32(m.count).endpoints(m.endpoints);
      break;
    case ClusterType.Members:
      if (m.records.length > MAX_RECORDS) throw new RangeError("Too many records");
      w.u32(m.snapshot).u8(m.last ? 1 : 0).u16(m.records.length);
      for (const r of m.records) writeRecord(w, r);
      break;
    case ClusterType.Gone:
      w.u16(m.gone.length);
      for (const g of m.gone) w.fixed(g.id, ID_LEN).u8(g.reason);
      break;
    case ClusterType.Sync:
      w.fixed(m.target, SERVER_ID_LEN);
      break;
    case ClusterType.Relay:
      w.fixed(m.target, SERVER_ID_LEN).fixed(m.from, ID_LEN).fixed(m.to, ID_LEN).bytes(m.payload);
      break;
    case ClusterType.Repunch:
      w.fixed(m.target, SERVER_ID_LEN).fixed(m.from, ID_LEN).fixed(m.to, ID_LEN);
      break;
  }
  const body = w.finish();
  if (!key) return body;
  const out = new Uint8Array(body.length + CLUSTER_MAC_LEN);
  out.set(body);
  out.set(clusterMac(key, body), body.length);
  return out;
}

/** One record's bytes (also what its digest is computed over). */
export function writeRecord(w: Writer, r: ClusterRecord): Writer {
  return w.fixed(r.id, ID_LEN).fixed(r.room, ROOM_ID_LEN).fixed(r.nameTag, NAME_TAG_LEN)
    .fixed(r.owner, OWNER_TAG_LEN).fixed(r.inc, EPOCH_LEN).u8(r.flags).u16(r.moves)
    .endpoint(r.addr).endpoints(r.privateEndpoints);
}

/** FNV-1a (32 bits) of a record's bytes: a HEARTBEAT's digest XORs these. */
export function recordDigest(r: ClusterRecord): number {
  const b = recordBytes(r);
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193) >>> 0;
  return h;
}

/**
 * Decodes a cluster message; with `key`, only one whose MAC is right (checked first). Any
 * other input yields `{ ok: false, reason }` (`cluster-mac`, `cluster-magic`, `malformed`).
 */
export function decodeCluster(b: Uint8Array, key: Uint8Array | null): Decoded<ClusterEnvelope> {
  let body = b;
  if (key) {
    if (b.length < CLUSTER_MAC_LEN) return { ok: false, reason: "cluster-mac" };
    body = b.subarray(0, b.length - CLUSTER_MAC_LEN);
    const mac = b.subarray(b.length - CLUSTER_MAC_LEN);
    if (!constantTimeEqual(clusterMac(key, body), mac)) return { ok: false, reason: "cluster-mac" };
  }
  if (body.length < 4 || CLUSTER_MAGIC.some((x, i) => body[i] !== x)) {
    return { ok: false, reason: "cluster-magic" };
  }
  const r = new Reader(body, 4);
  try {
    const type = r.u8(), server = r.bytes(SERVER_ID_LEN), seq = r.u32();
    const msg = readBody(type, r, body);
    if (!msg) return { ok: false, reason: "cluster-type" };
    r.end();
    return { ok: true, value: { server, seq, msg } };
  } catch (e) {
    if (e instanceof ShortRead) return { ok: false, reason: "malformed" };
    throw e;
  }
}

function readBody(type: number, r: Reader, body: Uint8Array): ClusterMsg | undefined {
  switch (type) {
    case ClusterType.Heartbeat:
      return {
        type,
        lease: r.u32(),
        digest: r.u32(),
        count: r.u32(),
        endpoints: r.endpoints(),
      };
    case ClusterType.Members: {
      const snapshot = r.u32(), last = r.u8(), n = r.u16();
      if (last > 1 || n > MAX_RECORDS) throw new ShortRead("Bad MEMBERS");
      const records: ClusterRecord[] = [];
      for (let i = 0; i < n; i++) records.push(readRecord(r, body));
      return { type, snapshot, last: last === 1, records };
    }
    case ClusterType.Gone: {
      const n = r.u16(), gone: { id: Uint8Array; reason: number }[] = [];
      for (let i = 0; i < n; i++) gone.push({ id: r.bytes(ID_LEN), reason: r.u8() });
      return { type, gone };
    }
    case ClusterType.Sync:
      return { type, target: r.bytes(SERVER_ID_LEN) };
    case ClusterType.Relay:
      return {
        type,
        target: r.bytes(SERVER_ID_LEN),
        from: r.bytes(ID_LEN),
        to: r.bytes(ID_LEN),
        payload: r.rest(),
      };
    case ClusterType.Repunch:
      return { type, target: r.bytes(SERVER_ID_LEN), from: r.bytes(ID_LEN), to: r.bytes(ID_LEN) };
    default:
      return undefined;
  }
}

/**
 * A record read from `r`, which reads `body` (its bytes kept for {@link recordBytes}). Its byte
 * fields are views of `body` (a copy each is an allocation outside the heap, per record): a
 * receiver copies what it keeps.
 */
export function readRecord(r: Reader, body: Uint8Array): ClusterRecord {
  const start = body.length - r.remaining;
  const rec: ClusterRecord = {
    id: r.view(ID_LEN),
    room: r.view(ROOM_ID_LEN),
    nameTag: r.view(NAME_TAG_LEN),
    owner: r.view(OWNER_TAG_LEN),
    inc: r.view(EPOCH_LEN),
    flags: r.u8(),
    moves: r.u16(),
    addr: r.endpoint(),
    privateEndpoints: r.endpoints(),
  };
  RAW.set(rec, body.subarray(start, body.length - r.remaining));
  return rec;
}
