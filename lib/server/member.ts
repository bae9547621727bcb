/**
 * What the registry keeps per registered peer ({@link Member}) and per non-empty room
 * ({@link Room}), and the conversions between a member's compact fields and the bytes messages
 * carry (ids, tokens, name tags, a pair's epoch), and forgetting a leaving member's relay pairs
 * ({@link forgetRelays}). Data and pure functions only; the modules of
 * `lib/server/` that act on members share these.
 *
 * @module
 */
import type { TokenBucket } from "../core/limits.ts";
import { type Endpoint, isUsableCandidate } from "../wire/address.ts";
import { ID_LEN, MAX_PRIVATE_ENDPOINTS } from "../wire/header.ts";
import { EPOCH_LEN, NAME_TAG_LEN, OWNER_TAG_LEN, TOKEN_LEN } from "../wire/server_msg.ts";

/**
 * A non-empty room. Members point at it, so the room id (64 hex digits) is held once per room,
 * not once per member.
 */
export interface Room {
  /** Hex of the opaque room id. */
  hex: string;
  /** Its first 8 hex digits, for logs. */
  short: string;
  /** Members by id number. */
  members: Map<bigint, Member>;
  /** XOR of the members' id digests, kept as members come and go (a PONG's digest is O(1)). */
  digest: number;
}

/**
 * What only a member that relays needs: made on its first RELAY (most members never relay, and
 * each of these costs a few hundred bytes).
 */
export interface RelayState {
  /** Members this one has relayed to, and members that relayed to it (for one log line a pair). */
  to: Set<Member>;
  by: Set<Member>;
  /** Relay budgets: all its relayed bytes, and per destination. */
  budget: TokenBucket;
  pairs: Map<Member, TokenBucket>;
  /** What it may receive through the relay, from all senders together (made on first use). */
  inbound?: TokenBucket;
  lastLimitNotice: number;
  /** When it was last told that a RELAY was too large. */
  lastSizeNotice: number;
}

/**
 * A registered peer, kept small (100k of them should fit in well under 1 KiB each): the id is
 * one bigint, the token, incarnation and id digest are small integers (no typed array per
 * member: each costs a backing store and a view object), the name tag is a number, the room is
 * shared and the relay state is made on demand. Byte forms are made when a message needs them.
 */
export interface Member {
  /** The id as a number: the key of the member map and of its room (cheap to read). */
  num: bigint;
  /** The id's `idDigest`, as an int32. */
  dig: number;
  /**
   * Random per registration: proves later messages come from whoever got the WELCOME. Its two
   * big-endian 32-bit halves, as int32s (small integers are stored in place).
   */
  tok0: number;
  tok1: number;
  /** Sequence number of the last INTRO, LEFT or ROSTER sent to it. */
  seq: number;
  /** The opaque name tag as a number (unique per room). */
  nameTag: bigint;
  /** The HELLO's owner tag, as four big-endian int32s: who may take the name over. */
  own0: number;
  own1: number;
  own2: number;
  own3: number;
  /** Random per registration: a pair's epoch changes whenever either side registers anew. */
  inc0: number;
  inc1: number;
  flags: number;
  /** The nonce of its pending reachability probe (REACH), if one is out. */
  reach: Uint8Array | undefined;
  /** It passed the reachability check: INTROs about it carry `FLAG_SUPERNODE`. */
  supernode: boolean;
  room: Room;
  addr: Endpoint;
  privateEndpoints: Endpoint[];
  lastSeen: number;
  lastResync: number;
  /** When a PING from its address with a wrong token was last told to register again. */
  lastWrongToken: number;
  /**
   * The cookie period of the cookie it holds, as far as we know (its registration's, or the last
   * refresh's): in a cluster that shares cookies it gets a fresh one in every period.
   */
  cookieAt: number;
  /** Made on its first RELAY (or oversize RELAY). */
  relay: RelayState | undefined;
  /** Neighbours in the least-recently-heard list. */
  older: Member | undefined;
  newer: Member | undefined;
  /**
   * Set on a member registered at another server of the cluster (`lib/server/cluster.ts`):
   * introduced and relayed to through that server, never sent to or expired here.
   */
  home?: ClusterHome;
}

/** The cluster server a remote member is registered at (opaque outside the cluster module). */
export interface ClusterHome {
  /** The server's id in hex. */
  hex: string;
}

/** Short hex of a member's name tag, for logs (the server never learns names). */
export function nameOf(p: Member): string {
  return p.nameTag.toString(16).padStart(2 * NAME_TAG_LEN, "0").slice(0, 8);
}

/** A peer id as a big-endian 64-bit number (the key of the registry's member map). */
export function idNum(id: Uint8Array): bigint {
  return new DataView(id.buffer, id.byteOffset, ID_LEN).getBigUint64(0);
}

/** A DataView of all of `b`. */
export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A member's id as bytes (made when a message carries it). */
export function idOf(p: Member): Uint8Array {
  const b = new Uint8Array(ID_LEN);
  view(b).setBigUint64(0, p.num);
  return b;
}

/** A member's token as bytes (made when a message carries it). */
export function tokenOf(p: Member): Uint8Array {
  const b = new Uint8Array(TOKEN_LEN);
  const v = view(b);
  v.setInt32(0, p.tok0);
  v.setInt32(4, p.tok1);
  return b;
}

/** True when `token` (TOKEN_LEN bytes) is `p`'s, compared without an early exit. */
export function tokenIs(p: Member, token: Uint8Array): boolean {
  if (token.length !== TOKEN_LEN) return false;
  const v = view(token);
  return ((v.getInt32(0) ^ p.tok0) | (v.getInt32(4) ^ p.tok1)) === 0;
}

/** True when `owner` (OWNER_TAG_LEN bytes) is `p`'s owner tag, compared without an early exit. */
export function ownerIs(p: Member, owner: Uint8Array): boolean {
  if (owner.length !== OWNER_TAG_LEN) return false;
  const v = view(owner);
  return ((v.getInt32(0) ^ p.own0) | (v.getInt32(4) ^ p.own1) | (v.getInt32(8) ^ p.own2) |
    (v.getInt32(12) ^ p.own3)) === 0;
}

/** A name tag as a big-endian 64-bit number. */
export function tagNum(tag: Uint8Array): bigint {
  return new DataView(tag.buffer, tag.byteOffset, NAME_TAG_LEN).getBigUint64(0);
}

/** The private endpoints of the many members that have none (never mutated). */
const NO_ENDPOINTS: Endpoint[] = [];

/** The private endpoints worth passing on: unicast, not loopback, at most a few. */
export function usable(list: Endpoint[]): Endpoint[] {
  if (list.length === 0) return NO_ENDPOINTS;
  const out = list.filter((ep) => isUsableCandidate(ep)).slice(0, MAX_PRIVATE_ENDPOINTS);
  return out.length === 0 ? NO_ENDPOINTS : out;
}

/** The pair's epoch: the same for both INTROs of a pair, new when either registers anew. */
export function pairEpoch(a: Member, b: Member): Uint8Array {
  const e = new Uint8Array(EPOCH_LEN);
  const v = view(e);
  v.setInt32(0, a.inc0 ^ b.inc0);
  v.setInt32(4, a.inc1 ^ b.inc1);
  return e;
}

/**
 * Forgets what the relay keeps about `p` and its partners about it (`p` is leaving): O(its
 * partners), not O(all relayed pairs), since each member knows its own.
 */
export function forgetRelays(p: Member): void {
  const rs = p.relay;
  if (!rs) return;
  for (const q of rs.by) q.relay?.pairs.delete(p);
  for (const q of rs.to) q.relay?.by.delete(p);
  for (const q of rs.by) q.relay?.to.delete(p);
  rs.to.clear();
  rs.by.clear();
}
