/**
 * The rendezvous server's state machine: registrations, rooms, introductions, relay and
 * expiry. Pure and sans-IO: feed it `(now, from, datagram)` and timer ticks, drain the
 * datagrams it wants sent and the events it wants logged.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { StallGuard } from "../core/stall.ts";
import { createHmac, type KeyObject } from "node:crypto";
import { addressCookie, reachMac } from "../crypto/cookie.ts";
import { bytesEqual } from "../core/bytes.ts";
import { ed25519PublicKey, ed25519Verify } from "../crypto/ed25519.ts";
import { SourceCounts, sourceKey, TokenBucket } from "../core/limits.ts";
import {
  type Endpoint,
  formatEndpoint,
  isUsableCandidate,
  parseIPv4,
  sameEndpoint,
} from "../wire/address.ts";
import {
  hasHeader,
  ID_LEN,
  idHex,
  MAX_DATAGRAM,
  MAX_PRIVATE_ENDPOINTS,
  MsgType,
} from "../wire/header.ts";
import {
  COOKIE_LEN,
  decodeServerMsg,
  encodeServerMsgInto,
  EPOCH_LEN,
  FLAG_RELAY_ONLY,
  FLAG_SUPERNODE,
  helloSigningInput,
  idDigest,
  LeftReason,
  MAX_RELAY_PAYLOAD,
  MAX_ROOM_SIZE,
  type MsgOf,
  NAME_TAG_LEN,
  REACH_NONCE_LEN,
  RefuseCode,
  RELAY_HEADER_LEN,
  RELAYED_HEADER_LEN,
  type ServerMsg,
  TOKEN_LEN,
} from "../wire/server_msg.ts";
import type { Transmit } from "../wire/transmit.ts";

/** Tunables of the registry. */
export interface RegistryOptions {
  /** Forget a peer after this long without hearing from it, in ms. */
  expireAfter: number;
  /** Most peers in one room (at most {@link MAX_ROOM_SIZE}, so a ROSTER fits a datagram). */
  maxRoomSize: number;
  /** Most peers on the whole server. */
  maxPeers: number;
  /** Least time between two forced re-introductions of the same pair, in ms. */
  repunchInterval: number;
  /** Least time between two roster resyncs for one peer, in ms. */
  resyncInterval: number;
  /** Most registrations from one source IP address (CGNAT users share addresses). */
  maxPerSource: number;
  /** Most distinct rooms one source IP address may have registrations in. */
  maxRoomsPerSource: number;
  /** Relayed payload bytes a second one peer may send (token bucket rate). */
  relayRate: number;
  /** Relayed payload bytes one peer may send in a burst. */
  relayBurst: number;
  /** Relayed payload bytes a second one peer may send to one other peer. */
  pairRate: number;
  /** HELLO signature checks one source address may cause per second (burst 4x). */
  helloRate: number;
  /**
   * The socket (a {@link Transmit.via} number) of an address peers never contact, from which
   * reachability probes (REACH) go to peers offering to be supernodes; undefined: no checks,
   * so no supernodes.
   */
  reachVia?: number | undefined;
  /** Reachability probes a second, server-wide (burst 4x). */
  reachRate: number;
  /**
   * Serve only this room (the room id): a supernode's registry. Registrations for any other
   * room are refused. Undefined: every room (`p2p serve`).
   */
  onlyRoom?: Uint8Array | undefined;
  /**
   * Decode every PING (its fast path off). For tests that hold the fast path to the decoding
   * one; never needed otherwise.
   */
  slowPing?: boolean | undefined;
}

/** Size of the slabs RELAYED datagrams are cut from (54 of the largest fit in one). */
const SLAB_SIZE = 65_536;

/** How often the cookie secret changes, in ms (a cookie stays valid one to two periods). */
export const COOKIE_ROTATION = 60_000;

/** Defaults: expire after 75 s (three missed 25 s keepalives). */
export const DEFAULT_REGISTRY: RegistryOptions = {
  expireAfter: 75_000,
  maxRoomSize: 128,
  maxPeers: 10_000,
  repunchInterval: 1_000,
  resyncInterval: 1_000,
  maxPerSource: 64,
  maxRoomsPerSource: 16,
  relayRate: 256 * 1024,
  relayBurst: 1024 * 1024,
  pairRate: 128 * 1024,
  helloRate: 50,
  reachRate: 20,
};

/** Something worth a log line. */
export type RegistryEvent =
  | { type: "registered"; room: string; name: string; addr: Endpoint; relayOnly: boolean }
  | { type: "moved"; room: string; name: string; addr: Endpoint }
  | { type: "introduced"; room: string; a: string; b: string; repunch: boolean }
  | { type: "relaying"; room: string; from: string; to: string }
  | { type: "left"; room: string; name: string; reason: "bye" | "expired" }
  | { type: "refused"; addr: Endpoint; why: string }
  | { type: "limited"; room: string; name: string; what: "relay" | "relay-size" }
  | { type: "supernode"; room: string; name: string; addr: Endpoint };

/** Server-wide counters. */
export interface RegistryStats {
  /** Datagrams relayed between peers. */
  relayedPackets: number;
  /** Payload bytes relayed between peers. */
  relayedBytes: number;
  /** Dropped datagrams by reason. */
  drops: Record<string, number>;
  /** COOKIE replies sent (first contact, server restarts, address changes, spoofing). */
  cookies: number;
  /** Reachability probes (REACH) sent to peers offering to be supernodes. */
  reachSent: number;
  /** Peers that answered one (REACHED): supernodes. */
  reachPassed: number;
}

/**
 * A non-empty room. Members point at it, so the room id (64 hex digits) is held once per room,
 * not once per member.
 */
interface Room {
  /** Hex of the opaque room id. */
  hex: string;
  /** Its first 8 hex digits, for logs. */
  short: string;
  /** Members by id number. */
  members: Map<bigint, Member>;
  /** The verifying key (the room id is the room's Ed25519 public key). */
  key: KeyObject;
  /** XOR of the members' id digests, kept as members come and go (a PONG's digest is O(1)). */
  digest: number;
}

/**
 * What only a member that relays needs: made on its first RELAY (most members never relay, and
 * each of these costs a few hundred bytes).
 */
interface RelayState {
  /** Members this one has relayed to, and members that relayed to it (for one log line a pair). */
  to: Set<Member>;
  by: Set<Member>;
  /** Relay budgets: all its relayed bytes, and per destination. */
  budget: TokenBucket;
  pairs: Map<Member, TokenBucket>;
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
interface Member {
  /** The id as a number: the key of `Registry.#peers` and of its room (cheap to read). */
  num: bigint;
  /** The id's {@link idDigest}, as an int32. */
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
  /** Random per registration: a pair's epoch changes whenever either side registers anew. */
  inc0: number;
  inc1: number;
  flags: number;
  /** The nonce of its pending reachability probe (REACH), if one is out. */
  reach: Uint8Array | undefined;
  /** It passed the reachability check: INTROs about it carry {@link FLAG_SUPERNODE}. */
  supernode: boolean;
  room: Room;
  addr: Endpoint;
  privateEndpoints: Endpoint[];
  lastSeen: number;
  lastResync: number;
  /** Made on its first RELAY (or oversize RELAY). */
  relay: RelayState | undefined;
  /** Neighbours in the least-recently-heard list. */
  older: Member | undefined;
  newer: Member | undefined;
}

/** Short hex of a member's name tag, for logs (the server never learns names). */
function nameOf(p: Member): string {
  return p.nameTag.toString(16).padStart(2 * NAME_TAG_LEN, "0").slice(0, 8);
}

/** The private endpoints of the many members that have none (never mutated). */
const NO_ENDPOINTS: Endpoint[] = [];

/** A PING's length: header, id, token, cookie, digest. */
const PING_LEN = 4 + ID_LEN + TOKEN_LEN + COOKIE_LEN + 4;

/** A PONG's length to an IPv4 address: header, token, endpoint (family, address, port), digest. */
const PONG4_LEN = 4 + TOKEN_LEN + 1 + 4 + 2 + 4;

/** The rendezvous server's pure core. */
export class Registry {
  #o: RegistryOptions;
  /** Members by id (read as a big-endian 64-bit number: no string built per lookup). */
  #peers = new Map<bigint, Member>();
  /** Members as a doubly-linked list, least recently heard first (kept so by #touch). */
  #oldest: Member | undefined;
  #newest: Member | undefined;
  #rooms = new Map<string, Room>();
  #repunched = new Map<string, number>();
  /** Signature-check budgets per source address. */
  #helloBuckets = new Map<string, TokenBucket>();
  #sources = new SourceCounts();
  #out: Transmit[] = [];
  #events: RegistryEvent[] = [];
  #stall = new StallGuard();
  /** Counters. */
  readonly stats: RegistryStats = {
    relayedPackets: 0,
    relayedBytes: 0,
    drops: {},
    cookies: 0,
    reachSent: 0,
    reachPassed: 0,
  };
  /** Server-wide budget of reachability probes. */
  #reachBudget: TokenBucket;
  /** Keys the per-period cookie secrets: HMAC(master, period number). */
  #master: Uint8Array;
  #period = -1;
  /** The secrets of the current period and the one before (cookies live one to two periods). */
  #secrets: [Uint8Array, Uint8Array] = [new Uint8Array(0), new Uint8Array(0)];
  #random: (n: number) => Uint8Array;
  /** A view of the last receive buffer seen, for reading ids out of RELAYs without copies. */
  #view: DataView = new DataView(new ArrayBuffer(0));
  /** RELAYED datagrams are cut from this slab, front to back, never reused (see `#carve`). */
  #slab = new Uint8Array(0);
  #slabView = new DataView(new ArrayBuffer(0));
  #slabUsed = 0;
  /** `#carve` as a function for the encoder: every datagram the registry sends is cut from the slab. */
  #carver = (n: number): Uint8Array => this.#carve(n);

  /**
   * Makes a registry; `options` override {@link DEFAULT_REGISTRY}. `random` draws tokens,
   * incarnations and REACH nonces (the roles pass node:crypto's, tests seeded bytes); `secret`
   * keys the return-routability cookies (32 bytes drawn from `random` when not given).
   */
  constructor(
    options: Partial<RegistryOptions>,
    random: (n: number) => Uint8Array,
    secret?: Uint8Array,
  ) {
    this.#o = { ...DEFAULT_REGISTRY, ...options };
    this.#o.maxRoomSize = Math.min(this.#o.maxRoomSize, MAX_ROOM_SIZE);
    this.#random = random;
    this.#master = secret ?? random(32);
    this.#reachBudget = new TokenBucket(this.#o.reachRate, 4 * this.#o.reachRate, 0);
    this.#rotate(0);
  }

  /** The cookie a peer with `id` must echo from `addr` at `now` (exposed for tests and tools). */
  cookieFor(id: Uint8Array, addr: Endpoint, now?: number): Uint8Array {
    if (now !== undefined) this.#rotate(now);
    return addressCookie(this.#secrets[0], id, formatEndpoint(addr));
  }

  /**
   * The cookie secret belongs to the period `floor(now / COOKIE_ROTATION)`: a cookie is valid in
   * the period it was made and the next, whatever traffic there was in between.
   */
  #rotate(now: number): void {
    const period = Math.floor(now / COOKIE_ROTATION);
    if (period === this.#period) return;
    const secret = (k: number) => periodSecret(this.#master, k);
    this.#secrets = [
      secret(period),
      period === this.#period + 1 ? this.#secrets[0] : secret(period - 1),
    ];
    this.#period = period;
  }

  /**
   * True when `cookie` is the current or previous one for `id` at `from`; otherwise answers
   * with the current one (a COOKIE is never larger than the request that asked for it).
   */
  #routable(from: Endpoint, id: Uint8Array, cookie: Uint8Array): boolean {
    const want = this.cookieFor(id, from);
    if (constantTimeEqual(cookie, want)) return true;
    if (constantTimeEqual(cookie, addressCookie(this.#secrets[1], id, formatEndpoint(from)))) {
      return true;
    }
    this.stats.cookies++;
    this.#send(from, { type: MsgType.Cookie, cookie: want });
    return false;
  }

  /** Number of registered peers. */
  get peerCount(): number {
    return this.#peers.size;
  }

  /** Number of non-empty rooms. */
  get roomCount(): number {
    return this.#rooms.size;
  }

  /** Takes the next datagram to send, if any. */
  pollTransmit(): Transmit | undefined {
    return this.#out.shift();
  }

  /** Takes the next event to log, if any. */
  pollEvent(): RegistryEvent | undefined {
    return this.#events.shift();
  }

  /** When {@link handleTimeout} next has work (the earliest expiry), if ever. O(1). */
  nextTimeout(): number | undefined {
    return this.#stall.wake(this.#expiry());
  }

  /** When the least recently heard member expires, if any. */
  #expiry(): number | undefined {
    return this.#oldest && this.#oldest.lastSeen + this.#o.expireAfter;
  }

  /** Records contact with `p`; time only moves forward, so `p` becomes the newest. */
  #touch(p: Member, now: number): void {
    p.lastSeen = now;
    if (this.#newest === p) return;
    this.#unlink(p);
    this.#append(p);
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

  #drop(reason: string): void {
    this.stats.drops[reason] = (this.stats.drops[reason] ?? 0) + 1;
  }

  #send(to: Endpoint, m: ServerMsg): void {
    this.#out.push({ to, data: encodeServerMsgInto(m, this.#carver) });
  }

  /** Handles one datagram received from `from`. Never throws on bad input. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.#stall.holding(now, this.#expiry());
    this.#rotate(now);
    // RELAY is most of the traffic: forwarded without decoding it into a message.
    if (hasHeader(data, MsgType.Relay)) return this.#relay(now, from, data);
    // PING is the rest of it (100k peers every 25 s): checked in place, decoded only if it moved.
    if (
      !this.#o.slowPing && data.length === PING_LEN && hasHeader(data, MsgType.Ping) &&
      this.#fastPing(now, from, data)
    ) {
      return;
    }
    const d = decodeServerMsg(data);
    if (!d.ok) return this.#drop(d.reason);
    const m = d.value;
    switch (m.type) {
      case MsgType.Hello:
        return this.#hello(now, from, m);
      case MsgType.Ping:
        return this.#ping(now, from, m);
      case MsgType.Bye: {
        const p = this.#peers.get(idNum(m.id));
        if (!p || !sameEndpoint(p.addr, from)) return this.#drop("bye-unknown");
        if (!tokenIs(p, m.token)) return this.#drop("bye-bad-token");
        return this.#remove(p, "bye");
      }
      case MsgType.Repunch:
        return this.#repunch(now, from, m);
      case MsgType.Reached:
        return this.#reached(now, from, m);
      default:
        return this.#drop("unexpected-type");
    }
  }

  /**
   * Expires peers that went silent. Not right after the server itself was stopped (a late
   * wake-up, see {@link StallGuard}): the PINGs that arrived meanwhile are read first.
   */
  handleTimeout(now: number): void {
    if (this.#stall.holding(now, this.#expiry())) return;
    while (this.#oldest && now - this.#oldest.lastSeen >= this.#o.expireAfter) {
      this.#remove(this.#oldest, "expired");
    }
    this.#pruneRepunched(now);
  }

  /** Drops expired re-punch entries: they sit in insertion (= time) order, so O(expired). */
  #pruneRepunched(now: number): void {
    for (const [k, t] of this.#repunched) {
      if (now - t <= this.#o.repunchInterval) break;
      this.#repunched.delete(k);
    }
  }

  /** One signature check for a HELLO from `ip`: at most `helloRate` a second (burst 4x). */
  #helloBudget(now: number, ip: string): boolean {
    let b = this.#helloBuckets.get(ip);
    if (!b) {
      // Bounded memory: forgetting every address at worst grants each a fresh burst.
      if (this.#helloBuckets.size >= 10_000) this.#helloBuckets.clear();
      b = new TokenBucket(this.#o.helloRate, 4 * this.#o.helloRate, now);
      this.#helloBuckets.set(ip, b);
    }
    return b.take(now, 1);
  }

  /** Refuses a request; `echo` is its token or nonce, so the peer knows the answer is real. */
  #refuse(to: Endpoint, echo: Uint8Array, code: number, message: string): void {
    this.#events.push({ type: "refused", addr: to, why: message });
    this.#send(to, { type: MsgType.Refused, echo, code, message });
  }

  #hello(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Hello>): void {
    // The cookie first: a HELLO from a spoofed address costs no signature check; and one
    // address gets a bounded number of checks a second (they are the costly part).
    if (!this.#routable(from, m.id, m.cookie)) return;
    if (!this.#helloBudget(now, sourceKey(from.hostname))) return this.#drop("hello-rate");
    const room = idHex(m.room), nameTag = tagNum(m.nameTag);
    const only = this.#o.onlyRoom;
    if (only && !bytesEqual(only, m.room)) {
      this.#drop("hello-other-room");
      return this.#refuse(from, m.nonce, RefuseCode.Invalid, "This supernode serves only its room");
    }
    const existing = this.#rooms.get(room);
    // Only a holder of the room key may register into the room (the id is its public key).
    const roomKey = existing?.key ?? ed25519PublicKey(m.room);
    if (!roomKey || !ed25519Verify(roomKey, helloSigningInput(m), m.signature)) {
      this.#drop("hello-bad-signature");
      return this.#refuse(from, m.nonce, RefuseCode.Invalid, "Bad room signature");
    }
    const known = this.#peers.get(idNum(m.id));
    if (known) {
      // Only the address it registered from may repeat a HELLO (a move needs the token).
      if (
        known.room.hex !== room || known.nameTag !== nameTag || !sameEndpoint(known.addr, from)
      ) {
        return this.#refuse(from, m.nonce, RefuseCode.Invalid, "Peer id in use; restart join");
      }
      // A repeated HELLO (our WELCOME was lost): answer with the WELCOME only, never more than
      // was asked; the peer's next PING resyncs what else it missed.
      this.#touch(known, now);
      known.privateEndpoints = usable(m.privateEndpoints);
      return this.#welcome(known, m.nonce);
    }
    const members = existing?.members;
    const refusal = this.#admit(from, room, members);
    if (refusal) return this.#refuse(from, m.nonce, refusal.code, refusal.message);
    for (const other of members?.values() ?? []) {
      if (other.nameTag === nameTag) {
        return this.#refuse(from, m.nonce, RefuseCode.NameTaken, "Name taken in this room");
      }
    }
    let r = existing;
    if (!r) {
      r = { hex: room, short: room.slice(0, 8), members: new Map(), key: roomKey, digest: 0 };
      this.#rooms.set(room, r);
    }
    const member = this.#newMember(now, from, m, r, nameTag);
    r.members.set(member.num, member);
    r.digest = (r.digest ^ member.dig) >>> 0;
    this.#peers.set(member.num, member);
    this.#sources.add(sourceKey(from.hostname), r.hex);
    this.#append(member);
    this.#events.push({
      type: "registered",
      room: r.short,
      name: nameOf(member),
      addr: from,
      relayOnly: (m.flags & FLAG_RELAY_ONLY) !== 0,
    });
    this.#welcome(member, m.nonce);
    this.#introduceAll(member, true);
    this.#roster(member);
    this.#checkReach(now, member);
  }

  /**
   * Probes a new member that offers to be a supernode: one REACH, from the address it never
   * contacted, to its observed endpoint (once per registration, within the server-wide rate).
   */
  #checkReach(now: number, p: Member): void {
    const via = this.#o.reachVia;
    if (via === undefined || (p.flags & FLAG_SUPERNODE) === 0) return;
    if ((p.flags & FLAG_RELAY_ONLY) !== 0) return;
    if (!this.#reachBudget.take(now, 1)) return this.#drop("reach-rate");
    const nonce = this.#random(REACH_NONCE_LEN);
    p.reach = nonce;
    this.stats.reachSent++;
    this.#out.push({
      to: p.addr,
      via,
      data: encodeServerMsgInto(
        { type: MsgType.Reach, nonce, mac: reachMac(tokenOf(p), nonce) },
        this.#carver,
      ),
    });
  }

  /** A member's answer to its REACH: it is reachable, so it becomes a supernode of its room. */
  #reached(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Reached>): void {
    const p = this.#peers.get(idNum(m.id));
    if (!p || !sameEndpoint(p.addr, from)) return this.#drop("reached-unknown");
    if (!tokenIs(p, m.token)) return this.#drop("reached-bad-token");
    if (!p.reach || !constantTimeEqual(p.reach, m.nonce)) return this.#drop("reached-bad-nonce");
    p.reach = undefined;
    this.#touch(p, now);
    p.supernode = true;
    this.stats.reachPassed++;
    this.#events.push({ type: "supernode", room: p.room.short, name: nameOf(p), addr: p.addr });
    // Its room learns it (INTROs are per member and token-authenticated; nobody else does).
    for (const other of p.room.members.values()) {
      if (other !== p) this.#send(other.addr, this.#intro(p, other));
    }
  }

  /** Why a new member cannot join `room` now, if it cannot. */
  #admit(
    from: Endpoint,
    roomKey: string,
    room: Map<bigint, Member> | undefined,
  ): { code: number; message: string } | undefined {
    if (this.#peers.size >= this.#o.maxPeers) {
      return { code: RefuseCode.Limit, message: "Server is full; try again later" };
    }
    return this.#admitSource(from, roomKey) ?? this.#admitRoom(room);
  }

  /** Why one more registration in `roomKey` from `from`'s IP address is refused, if it is. */
  #admitSource(from: Endpoint, roomKey: string): { code: number; message: string } | undefined {
    const ip = sourceKey(from.hostname);
    if (this.#sources.peers(ip) >= this.#o.maxPerSource) {
      return {
        code: RefuseCode.Limit,
        message: `Too many peers from your address (${this.#o.maxPerSource})`,
      };
    }
    if (
      !this.#sources.inRoom(ip, roomKey) && this.#sources.rooms(ip) >= this.#o.maxRoomsPerSource
    ) {
      return {
        code: RefuseCode.Limit,
        message: `Too many rooms from your address (${this.#o.maxRoomsPerSource})`,
      };
    }
    return undefined;
  }

  #admitRoom(room: Map<bigint, Member> | undefined): { code: number; message: string } | undefined {
    if ((room?.size ?? 0) >= this.#o.maxRoomSize) {
      return { code: RefuseCode.RoomFull, message: `Room is full (${this.#o.maxRoomSize} peers)` };
    }
    return undefined;
  }

  #newMember(
    now: number,
    from: Endpoint,
    m: MsgOf<typeof MsgType.Hello>,
    room: Room,
    nameTag: bigint,
  ): Member {
    const token = view(this.#random(TOKEN_LEN)), inc = view(this.#random(EPOCH_LEN));
    return {
      num: idNum(m.id),
      dig: idDigest(m.id) | 0,
      tok0: token.getInt32(0),
      tok1: token.getInt32(4),
      seq: 0,
      nameTag,
      inc0: inc.getInt32(0),
      inc1: inc.getInt32(4),
      flags: m.flags,
      reach: undefined,
      supernode: false,
      room,
      addr: from,
      privateEndpoints: usable(m.privateEndpoints),
      lastSeen: now,
      lastResync: -Infinity,
      relay: undefined,
      older: undefined,
      newer: undefined,
    };
  }

  /** The relay state of `p`, made on first use. */
  #relayState(p: Member, now: number): RelayState {
    return p.relay ??= {
      to: new Set(),
      by: new Set(),
      budget: new TokenBucket(this.#o.relayRate, this.#o.relayBurst, now),
      pairs: new Map(),
      lastLimitNotice: -Infinity,
      lastSizeNotice: -Infinity,
    };
  }

  /** The peer's NAT gave it a new public mapping (proven by a cookie): everyone re-punches. */
  #move(p: Member, to: Endpoint): void {
    this.#sources.remove(sourceKey(p.addr.hostname), p.room.hex);
    this.#sources.add(sourceKey(to.hostname), p.room.hex);
    p.addr = to;
    // Its reachability was checked at the old address only.
    p.supernode = false;
    p.reach = undefined;
    this.#events.push({ type: "moved", room: p.room.short, name: nameOf(p), addr: to });
    this.#introduceAll(p, true);
  }

  /** Tells `p` who else is in its room (after its introductions, so it can tell when it has them all). */
  #roster(p: Member): void {
    const ids = [...p.room.members.values()].filter((o) => o !== p).map(idOf);
    this.#send(p.addr, { type: MsgType.Roster, token: tokenOf(p), seq: ++p.seq, ids });
  }

  #welcome(p: Member, nonce: Uint8Array): void {
    this.#send(p.addr, {
      type: MsgType.Welcome,
      id: idOf(p),
      nonce,
      token: tokenOf(p),
      observed: p.addr,
    });
  }

  /** Introduces every other member of its room to `p` (and, if `both`, `p` to them). */
  #introduceAll(p: Member, both: boolean): void {
    for (const other of p.room.members.values()) {
      if (other === p) continue;
      this.#introduce(p, other, both);
    }
  }

  /** Sends `a` an introduction of `b`, and (if `both`) `b` one of `a`, back to back. */
  #introduce(a: Member, b: Member, both: boolean, repunch = false): void {
    this.#send(a.addr, this.#intro(b, a));
    if (both) {
      this.#send(b.addr, this.#intro(a, b));
      this.#events.push({
        type: "introduced",
        room: a.room.short,
        a: nameOf(a),
        b: nameOf(b),
        repunch,
      });
    }
  }

  /** The INTRO that tells `to` about `about`, hiding addresses when either is relay-only. */
  #intro(about: Member, to: Member): ServerMsg {
    const hide = ((about.flags | to.flags) & FLAG_RELAY_ONLY) !== 0;
    return {
      type: MsgType.Intro,
      token: tokenOf(to),
      seq: ++to.seq,
      id: idOf(about),
      epoch: pairEpoch(about, to),
      // Only the server's own check makes a supernode; a HELLO's bit is never passed on.
      flags: (about.flags & FLAG_RELAY_ONLY) | (about.supernode ? FLAG_SUPERNODE : 0),
      publicEndpoint: hide ? null : about.addr,
      privateEndpoints: hide ? [] : about.privateEndpoints,
    };
  }

  #ping(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Ping>): void {
    const p = this.#peers.get(idNum(m.id));
    if (!p) {
      // Echo the token, so only the peer that sent it can believe it was forgotten.
      return this.#refuse(from, m.token, RefuseCode.Unknown, "Register again");
    }
    // Only the holder of the registration's token may keep it alive, move it or resync it.
    if (!tokenIs(p, m.token)) return this.#drop("ping-bad-token");
    const moved = !sameEndpoint(p.addr, from);
    // A new address must prove it receives there before anything moves, and the move must
    // respect the new address's limits (else moving would launder registrations).
    if (moved && !this.#routable(from, m.id, m.cookie)) return;
    if (moved && sourceKey(from.hostname) !== sourceKey(p.addr.hostname)) {
      const refusal = this.#admitSource(from, p.room.hex);
      if (refusal) return this.#refuse(from, m.token, refusal.code, refusal.message);
    }
    this.#touch(p, now);
    if (moved) this.#move(p, from);
    this.#pong(now, from, p, moved, m.digest);
  }

  /** Answers a PING of `p` (checked, touched, moved if it had to be). */
  #pong(now: number, from: Endpoint, p: Member, moved: boolean, theirs: number): void {
    // The digest of the room without `p`: its own digest XORed out of the room's.
    const digest = (p.room.digest ^ p.dig) >>> 0;
    this.#send(from, { type: MsgType.Pong, token: tokenOf(p), observed: from, digest });
    if (!moved) this.#resyncIfStale(now, p, digest, theirs);
  }

  /** After a PONG: a roster and introductions when the peer's digest is not the room's. */
  #resyncIfStale(now: number, p: Member, digest: number, theirs: number): void {
    if (digest !== theirs && now - p.lastResync >= this.#o.resyncInterval) {
      p.lastResync = now;
      this.#roster(p);
      this.#introduceAll(p, false);
    }
  }

  /**
   * `#pong` for the fast path, at the address `p` registered from: the PONG written straight
   * into the slab (header bytes of the PING, which are checked), no message object, no token
   * copy. IPv6 sources take `#pong`.
   */
  #fastPong(now: number, from: Endpoint, p: Member, data: Uint8Array, theirs: number): void {
    const ip = parseIPv4(from.hostname);
    if (!ip) return this.#pong(now, from, p, false, theirs);
    const digest = (p.room.digest ^ p.dig) >>> 0;
    const out = this.#carve(PONG4_LEN);
    const v = this.#slabView, o = out.byteOffset;
    out[0] = data[0]!;
    out[1] = data[1]!;
    out[2] = data[2]!;
    out[3] = MsgType.Pong;
    v.setInt32(o + 4, p.tok0);
    v.setInt32(o + 8, p.tok1);
    out[4 + TOKEN_LEN] = 4;
    out.set(ip, 5 + TOKEN_LEN);
    v.setUint16(o + 9 + TOKEN_LEN, from.port);
    v.setUint32(o + 11 + TOKEN_LEN, digest);
    this.#out.push({ to: from, data: out });
    this.#resyncIfStale(now, p, digest, theirs);
  }

  /**
   * A well-formed PING from a registered peer at its registered address, handled without
   * decoding it (ids read and the token compared in place), as `#ping` would. False when it
   * needs `#ping` (unknown peer, or one that moved).
   */
  #fastPing(now: number, from: Endpoint, data: Uint8Array): boolean {
    if (this.#view.buffer !== data.buffer) this.#view = new DataView(data.buffer);
    const at = data.byteOffset;
    const p = this.#peers.get(this.#view.getBigUint64(at + 4));
    if (!p || p.addr.port !== from.port || p.addr.hostname !== from.hostname) return false;
    const v = this.#view;
    if (((v.getInt32(at + 4 + ID_LEN) ^ p.tok0) | (v.getInt32(at + 8 + ID_LEN) ^ p.tok1)) !== 0) {
      this.#drop("ping-bad-token");
      return true;
    }
    this.#touch(p, now);
    this.#fastPong(now, from, p, data, v.getUint32(at + PING_LEN - 4));
    return true;
  }

  /**
   * The registered sender (at the address it registered from) and a target in its room, or
   * undefined after counting a drop as `<what>-unknown-sender` or `<what>-unknown-target`.
   */
  #pair(
    now: number,
    from: Endpoint,
    id: Uint8Array,
    token: Uint8Array,
    target: Uint8Array,
    what: string,
  ): [Member, Member] | undefined {
    const src = this.#peers.get(idNum(id));
    if (!src || !sameEndpoint(src.addr, from)) return void this.#drop(`${what}-unknown-sender`);
    if (!tokenIs(src, token)) return void this.#drop(`${what}-bad-token`);
    this.#touch(src, now);
    const dst = this.#peers.get(idNum(target));
    if (!dst || dst.room !== src.room || dst === src) {
      return void this.#drop(`${what}-unknown-target`);
    }
    return [src, dst];
  }

  /**
   * Forwards a RELAY (`data`, whose header says RELAY) as a RELAYED, with the checks and effects
   * of `#pair` (the same drop reasons) but without decoding it: ids are read in place, the token
   * compared in place, and the RELAYED is built with one allocation and one copy of the payload.
   */
  #relay(now: number, from: Endpoint, data: Uint8Array): void {
    const len = data.length;
    if (len < RELAY_HEADER_LEN) return this.#drop("malformed");
    const oversize = len > MAX_DATAGRAM;
    if (oversize) this.#drop("relay-oversize");
    if (this.#view.buffer !== data.buffer) this.#view = new DataView(data.buffer);
    const at = data.byteOffset;
    const src = this.#peers.get(this.#view.getBigUint64(at + 4));
    if (!src || src.addr.port !== from.port || src.addr.hostname !== from.hostname) {
      return oversize ? undefined : this.#drop("relay-unknown-sender");
    }
    // The token (bytes 12..20), without an early exit.
    const v = this.#view;
    if (((v.getInt32(at + 12) ^ src.tok0) | (v.getInt32(at + 16) ^ src.tok1)) !== 0) {
      return oversize ? undefined : this.#drop("relay-bad-token");
    }
    if (oversize) return this.#relayTooLarge(now, src);
    this.#touch(src, now);
    const dst = this.#peers.get(this.#view.getBigUint64(at + 20));
    if (!dst || dst.room !== src.room || dst === src) return this.#drop("relay-unknown-target");
    const rs = this.#relayState(src, now);
    if (!rs.to.has(dst)) {
      rs.to.add(dst);
      this.#relayState(dst, now).by.add(src);
      this.#events.push({
        type: "relaying",
        room: src.room.short,
        from: nameOf(src),
        to: nameOf(dst),
      });
    }
    const bytes = len - RELAY_HEADER_LEN;
    if (!this.#withinBudget(now, src, rs, dst, bytes)) return;
    this.stats.relayedPackets++;
    this.stats.relayedBytes += bytes;
    // RELAYED: the same header but the type, the recipient's token, the sender's id, the payload.
    const out = this.#carve(RELAYED_HEADER_LEN + bytes);
    out[0] = data[0]!;
    out[1] = data[1]!;
    out[2] = data[2]!;
    out[3] = MsgType.Relayed;
    const ov = this.#slabView;
    const o = out.byteOffset;
    ov.setInt32(o + 4, dst.tok0);
    ov.setInt32(o + 8, dst.tok1);
    ov.setBigUint64(o + 4 + TOKEN_LEN, src.num);
    out.set(data.subarray(RELAY_HEADER_LEN), RELAYED_HEADER_LEN);
    this.#out.push({ to: dst.addr, data: out });
  }

  /**
   * `n` fresh bytes for an outgoing datagram, cut from a shared slab: a typed array of its own
   * costs a backing-store allocation each, several times the copy into it. A slab's bytes are
   * handed out once, so no two datagrams share any; it is freed when none of them is referenced.
   */
  #carve(n: number): Uint8Array {
    if (this.#slabUsed + n > this.#slab.length) {
      this.#slab = new Uint8Array(SLAB_SIZE);
      this.#slabView = new DataView(this.#slab.buffer);
      this.#slabUsed = 0;
    }
    return this.#slab.subarray(this.#slabUsed, this.#slabUsed += n);
  }

  /** A verified sender's RELAY was larger than {@link MAX_DATAGRAM}: tell it, at most every 5 s. */
  #relayTooLarge(now: number, src: Member): void {
    const rs = this.#relayState(src, now);
    if (now - rs.lastSizeNotice < 5_000) return;
    rs.lastSizeNotice = now;
    this.#tellLimited(
      src,
      "relay-size",
      `Relay payload too large (at most ${MAX_RELAY_PAYLOAD} bytes)`,
    );
  }

  /** Logs that verified sender `src` hit a limit and tells it why (REFUSED Limit, its token). */
  #tellLimited(src: Member, what: "relay" | "relay-size", message: string): void {
    this.#events.push({ type: "limited", room: src.room.short, name: nameOf(src), what });
    this.#send(src.addr, {
      type: MsgType.Refused,
      echo: tokenOf(src),
      code: RefuseCode.Limit,
      message,
    });
  }

  /** Charges a relayed payload to the sender's budgets; over budget it is dropped, visibly. */
  #withinBudget(now: number, src: Member, rs: RelayState, dst: Member, bytes: number): boolean {
    let pair = rs.pairs.get(dst);
    if (!pair) {
      pair = new TokenBucket(this.#o.pairRate, this.#o.relayBurst, now);
      rs.pairs.set(dst, pair);
    }
    if (pair.take(now, bytes) && rs.budget.take(now, bytes)) return true;
    this.#drop("relay-limit");
    // Tell the sender (it proved its address and token), at most every 5 s.
    if (now - rs.lastLimitNotice >= 5_000) {
      rs.lastLimitNotice = now;
      const kib = Math.round(this.#o.relayRate / 1024);
      this.#tellLimited(src, "relay", `Relay limit reached (${kib} KiB/s)`);
    }
    return false;
  }

  #repunch(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Repunch>): void {
    const found = this.#pair(now, from, m.id, m.token, m.target, "repunch");
    if (!found) return;
    const [src, dst] = found;
    const a = idHex(idOf(src)), b = idHex(idOf(dst));
    const pair = a < b ? a + b : b + a;
    const last = this.#repunched.get(pair);
    if (last !== undefined && now - last < this.#o.repunchInterval) {
      return this.#drop("repunch-rate");
    }
    // Entries only matter for repunchInterval; keep them in time order (delete, then set).
    this.#pruneRepunched(now);
    this.#repunched.delete(pair);
    this.#repunched.set(pair, now);
    this.#introduce(src, dst, true, true);
  }

  #remove(p: Member, reason: "bye" | "expired"): void {
    this.#peers.delete(p.num);
    this.#sources.remove(sourceKey(p.addr.hostname), p.room.hex);
    this.#unlink(p);
    const rs = p.relay;
    if (rs) {
      // O(partners), not O(all relayed pairs): each member knows its own.
      for (const q of rs.by) q.relay?.pairs.delete(p);
      for (const q of rs.to) q.relay?.by.delete(p);
      for (const q of rs.by) q.relay?.to.delete(p);
      rs.to.clear();
      rs.by.clear();
    }
    const room = p.room;
    room.members.delete(p.num);
    room.digest = (room.digest ^ p.dig) >>> 0;
    if (room.members.size === 0) this.#rooms.delete(room.hex);
    this.#events.push({ type: "left", room: room.short, name: nameOf(p), reason });
    for (const other of room.members.values()) {
      this.#send(other.addr, {
        type: MsgType.Left,
        token: tokenOf(other),
        seq: ++other.seq,
        id: idOf(p),
        reason: reason === "bye" ? LeftReason.Bye : LeftReason.Expired,
      });
    }
  }
}

/** A peer id as a big-endian 64-bit number (the key of the registry's member map). */
function idNum(id: Uint8Array): bigint {
  return new DataView(id.buffer, id.byteOffset, ID_LEN).getBigUint64(0);
}

/** A DataView of all of `b`. */
function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** A member's id as bytes (made when a message carries it). */
function idOf(p: Member): Uint8Array {
  const b = new Uint8Array(ID_LEN);
  view(b).setBigUint64(0, p.num);
  return b;
}

/** A member's token as bytes (made when a message carries it). */
function tokenOf(p: Member): Uint8Array {
  const b = new Uint8Array(TOKEN_LEN);
  const v = view(b);
  v.setInt32(0, p.tok0);
  v.setInt32(4, p.tok1);
  return b;
}

/** True when `token` (TOKEN_LEN bytes) is `p`'s, compared without an early exit. */
function tokenIs(p: Member, token: Uint8Array): boolean {
  if (token.length !== TOKEN_LEN) return false;
  const v = view(token);
  return ((v.getInt32(0) ^ p.tok0) | (v.getInt32(4) ^ p.tok1)) === 0;
}

/** A name tag as a big-endian 64-bit number. */
function tagNum(tag: Uint8Array): bigint {
  return new DataView(tag.buffer, tag.byteOffset, NAME_TAG_LEN).getBigUint64(0);
}

/** The private endpoints worth passing on: unicast, not loopback, at most a few. */
function usable(list: Endpoint[]): Endpoint[] {
  if (list.length === 0) return NO_ENDPOINTS;
  const out = list.filter((ep) => isUsableCandidate(ep)).slice(0, MAX_PRIVATE_ENDPOINTS);
  return out.length === 0 ? NO_ENDPOINTS : out;
}

/** The cookie secret of one rotation period. */
function periodSecret(master: Uint8Array, period: number): Uint8Array {
  return new Uint8Array(createHmac("sha256", master).update(String(period)).digest());
}

/** The pair's epoch: the same for both INTROs of a pair, new when either registers anew. */
function pairEpoch(a: Member, b: Member): Uint8Array {
  const e = new Uint8Array(EPOCH_LEN);
  const v = view(e);
  v.setInt32(0, a.inc0 ^ b.inc0);
  v.setInt32(4, a.inc1 ^ b.inc1);
  return e;
}
