/**
 * The rendezvous server's state machine: registrations, rooms, introductions, relay and
 * expiry. Pure and sans-IO: feed it `(now, from, datagram)` and timer ticks, drain the
 * datagrams it wants sent and the events it wants logged.
 *
 * @module
 */
import { addressCookie, bytesEqual, randomId } from "./crypto.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  type Endpoint,
  EPOCH_LEN,
  FLAG_RELAY_ONLY,
  hasControlChars,
  idHex,
  isUsableCandidate,
  LeftReason,
  MAX_NAME,
  MAX_PRIVATE_ENDPOINTS,
  MAX_ROOM_SIZE,
  type MsgOf,
  MsgType,
  RefuseCode,
  rosterDigest,
  sameEndpoint,
  type ServerMsg,
  type Transmit,
} from "./wire.ts";

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
}

/** Defaults: expire after 75 s (three missed 25 s keepalives). */
export const DEFAULT_REGISTRY: RegistryOptions = {
  expireAfter: 75_000,
  maxRoomSize: 128,
  maxPeers: 10_000,
  repunchInterval: 1_000,
  resyncInterval: 1_000,
};

/** Something worth a log line. */
export type RegistryEvent =
  | { type: "registered"; room: string; name: string; addr: Endpoint; relayOnly: boolean }
  | { type: "moved"; room: string; name: string; addr: Endpoint }
  | { type: "introduced"; room: string; a: string; b: string; repunch: boolean }
  | { type: "relaying"; room: string; from: string; to: string }
  | { type: "left"; room: string; name: string; reason: "bye" | "expired" }
  | { type: "refused"; addr: Endpoint; why: string };

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
}

interface Member {
  id: Uint8Array;
  key: string;
  pubkey: Uint8Array;
  /** Random per registration: a pair's epoch changes whenever either side registers anew. */
  incarnation: Uint8Array;
  flags: number;
  room: string;
  name: string;
  addr: Endpoint;
  privateEndpoints: Endpoint[];
  lastSeen: number;
  lastResync: number;
  /** Members this one has relayed to, and members that relayed to it (for one log line a pair). */
  relayingTo: Set<Member>;
  relayedBy: Set<Member>;
  /** Neighbours in the least-recently-heard list. */
  older: Member | undefined;
  newer: Member | undefined;
}

/** The rendezvous server's pure core. */
export class Registry {
  #o: RegistryOptions;
  #peers = new Map<string, Member>();
  /** Members as a doubly-linked list, least recently heard first (kept so by #touch). */
  #oldest: Member | undefined;
  #newest: Member | undefined;
  #rooms = new Map<string, Map<string, Member>>();
  #repunched = new Map<string, number>();
  #out: Transmit[] = [];
  #events: RegistryEvent[] = [];
  /** Counters. */
  readonly stats: RegistryStats = { relayedPackets: 0, relayedBytes: 0, drops: {}, cookies: 0 };
  #secret: Uint8Array;
  #random: (n: number) => Uint8Array;

  /**
   * Makes a registry; `options` override {@link DEFAULT_REGISTRY}. `secret` keys the
   * return-routability cookies and `random` draws registration incarnations (both
   * cryptographically random by default; tests pass seeded ones for reproducible runs).
   */
  constructor(
    options: Partial<RegistryOptions> = {},
    secret?: Uint8Array,
    random: (n: number) => Uint8Array = randomId,
  ) {
    this.#o = { ...DEFAULT_REGISTRY, ...options };
    this.#o.maxRoomSize = Math.min(this.#o.maxRoomSize, MAX_ROOM_SIZE);
    this.#random = random;
    this.#secret = secret ?? random(32);
  }

  /** The cookie a peer with `id` must echo from `addr` (exposed for tests and tools). */
  cookieFor(id: Uint8Array, addr: Endpoint): Uint8Array {
    return addressCookie(this.#secret, id, addr);
  }

  /** True when `cookie` is the one for `id` at `from`; otherwise answers with the right one. */
  #routable(from: Endpoint, id: Uint8Array, cookie: Uint8Array): boolean {
    const want = this.cookieFor(id, from);
    if (bytesEqual(cookie, want)) return true;
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
    this.#out.push({ to, data: encodeServerMsg(m) });
  }

  /** Handles one datagram received from `from`. Never throws on bad input. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    const d = decodeServerMsg(data);
    if (!d.ok) return this.#drop(d.reason);
    const m = d.value;
    switch (m.type) {
      case MsgType.Hello:
        return this.#hello(now, from, m);
      case MsgType.Ping:
        return this.#ping(now, from, m);
      case MsgType.Bye: {
        const p = this.#peers.get(idHex(m.id));
        if (!p || !sameEndpoint(p.addr, from)) return this.#drop("bye-unknown");
        return this.#remove(p, "bye");
      }
      case MsgType.Relay:
        return this.#relay(now, from, m);
      case MsgType.Repunch:
        return this.#repunch(now, from, m);
      default:
        return this.#drop("unexpected-type");
    }
  }

  /** Expires peers that went silent. */
  handleTimeout(now: number): void {
    while (this.#oldest && now - this.#oldest.lastSeen >= this.#o.expireAfter) {
      this.#remove(this.#oldest, "expired");
    }
    this.#pruneRepunched(now);
  }

  #pruneRepunched(now: number): void {
    for (const [k, t] of this.#repunched) {
      if (now - t > this.#o.repunchInterval) this.#repunched.delete(k);
    }
  }

  #refuse(to: Endpoint, code: number, message: string): void {
    this.#events.push({ type: "refused", addr: to, why: message });
    this.#send(to, { type: MsgType.Refused, code, message });
  }

  #hello(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Hello>): void {
    if (m.room === "") return this.#refuse(from, RefuseCode.Invalid, "Room name is empty");
    if (m.name === "") return this.#refuse(from, RefuseCode.Invalid, "Peer name is empty");
    if (!this.#routable(from, m.id, m.cookie)) return;
    if (hasControlChars(m.name) || hasControlChars(m.room)) {
      return this.#refuse(from, RefuseCode.Invalid, "Names must not contain control characters");
    }
    const key = idHex(m.id);
    const known = this.#peers.get(key);
    if (known) {
      if (known.room !== m.room || !bytesEqual(known.pubkey, m.pubkey)) {
        return this.#refuse(from, RefuseCode.Invalid, "Peer id is already in use; restart join");
      }
      this.#touch(known, now);
      known.privateEndpoints = usable(m.privateEndpoints);
      const moved = !sameEndpoint(known.addr, from);
      known.addr = from;
      this.#welcome(known);
      if (moved) {
        this.#events.push({ type: "moved", room: known.room, name: known.name, addr: from });
      }
      // A repeated HELLO means our WELCOME or introductions may have been lost: introduce
      // again. If the peer's address moved, the others must learn it too.
      this.#introduceAll(known, moved);
      this.#roster(known);
      return;
    }
    if (this.#peers.size >= this.#o.maxPeers) {
      return this.#refuse(from, RefuseCode.RoomFull, "Server is full; try again later");
    }
    const room = this.#rooms.get(m.room) ?? new Map<string, Member>();
    if (room.size >= this.#o.maxRoomSize) {
      return this.#refuse(
        from,
        RefuseCode.RoomFull,
        `Room is full (${this.#o.maxRoomSize} peers); try another room`,
      );
    }
    const member: Member = {
      id: m.id,
      key,
      pubkey: m.pubkey,
      incarnation: this.#random(EPOCH_LEN),
      flags: m.flags,
      room: m.room,
      name: uniqueName(m.name, room),
      addr: from,
      privateEndpoints: usable(m.privateEndpoints),
      lastSeen: now,
      lastResync: -Infinity,
      relayingTo: new Set(),
      relayedBy: new Set(),
      older: undefined,
      newer: undefined,
    };
    room.set(key, member);
    this.#rooms.set(m.room, room);
    this.#peers.set(key, member);
    this.#append(member);
    this.#events.push({
      type: "registered",
      room: m.room,
      name: member.name,
      addr: from,
      relayOnly: (m.flags & FLAG_RELAY_ONLY) !== 0,
    });
    this.#welcome(member);
    this.#introduceAll(member, true);
    this.#roster(member);
  }

  /** Tells `p` who else is in its room (after its introductions, so it can tell when it has them all). */
  #roster(p: Member): void {
    const ids = [...this.#rooms.get(p.room)!.values()].filter((o) => o !== p).map((o) => o.id);
    this.#send(p.addr, { type: MsgType.Roster, ids });
  }

  #welcome(p: Member): void {
    this.#send(p.addr, { type: MsgType.Welcome, id: p.id, name: p.name, observed: p.addr });
  }

  /** Introduces every other member of its room to `p` (and, if `both`, `p` to them). */
  #introduceAll(p: Member, both: boolean): void {
    for (const other of this.#rooms.get(p.room)?.values() ?? []) {
      if (other === p) continue;
      this.#introduce(p, other, both);
    }
  }

  /** Sends `a` an introduction of `b`, and (if `both`) `b` one of `a`, back to back. */
  #introduce(a: Member, b: Member, both: boolean, repunch = false): void {
    this.#send(a.addr, this.#intro(b, a));
    if (both) {
      this.#send(b.addr, this.#intro(a, b));
      this.#events.push({ type: "introduced", room: a.room, a: a.name, b: b.name, repunch });
    }
  }

  /** The INTRO that tells `to` about `about`, hiding addresses when either is relay-only. */
  #intro(about: Member, to: Member): ServerMsg {
    const hide = ((about.flags | to.flags) & FLAG_RELAY_ONLY) !== 0;
    return {
      type: MsgType.Intro,
      id: about.id,
      pubkey: about.pubkey,
      epoch: pairEpoch(about, to),
      flags: about.flags,
      name: about.name,
      publicEndpoint: hide ? null : about.addr,
      privateEndpoints: hide ? [] : about.privateEndpoints,
    };
  }

  #ping(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Ping>): void {
    const p = this.#peers.get(idHex(m.id));
    if (!p) {
      return this.#send(from, {
        type: MsgType.Refused,
        code: RefuseCode.Unknown,
        message: "Register again",
      });
    }
    const moved = !sameEndpoint(p.addr, from);
    // A new address must prove it receives there before anything moves.
    if (moved && !this.#routable(from, m.id, m.cookie)) return;
    this.#touch(p, now);
    if (moved) {
      // The peer's NAT gave it a new public mapping: everyone must re-punch to it.
      p.addr = from;
      this.#events.push({ type: "moved", room: p.room, name: p.name, addr: from });
    }
    const room = this.#rooms.get(p.room)!;
    const others = [...room.values()].filter((o) => o !== p);
    const digest = rosterDigest(others.map((o) => o.id));
    this.#send(from, { type: MsgType.Pong, observed: from, digest });
    if (moved) this.#introduceAll(p, true);
    else if (digest !== m.digest && now - p.lastResync >= this.#o.resyncInterval) {
      p.lastResync = now;
      this.#roster(p);
      this.#introduceAll(p, false);
    }
  }

  /**
   * The registered sender (at the address it registered from) and a target in its room, or
   * undefined after counting a drop as `<what>-unknown-sender` or `<what>-unknown-target`.
   */
  #pair(
    now: number,
    from: Endpoint,
    id: Uint8Array,
    target: Uint8Array,
    what: string,
  ): [Member, Member] | undefined {
    const src = this.#peers.get(idHex(id));
    if (!src || !sameEndpoint(src.addr, from)) return void this.#drop(`${what}-unknown-sender`);
    this.#touch(src, now);
    const dst = this.#peers.get(idHex(target));
    if (!dst || dst.room !== src.room || dst === src) {
      return void this.#drop(`${what}-unknown-target`);
    }
    return [src, dst];
  }

  #relay(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Relay>): void {
    const pair = this.#pair(now, from, m.from, m.to, "relay");
    if (!pair) return;
    const [src, dst] = pair;
    if (!src.relayingTo.has(dst)) {
      src.relayingTo.add(dst);
      dst.relayedBy.add(src);
      this.#events.push({ type: "relaying", room: src.room, from: src.name, to: dst.name });
    }
    this.stats.relayedPackets++;
    this.stats.relayedBytes += m.payload.length;
    this.#send(dst.addr, { type: MsgType.Relayed, from: src.id, payload: m.payload });
  }

  #repunch(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Repunch>): void {
    const found = this.#pair(now, from, m.id, m.target, "repunch");
    if (!found) return;
    const [src, dst] = found;
    const pair = src.key < dst.key ? src.key + dst.key : dst.key + src.key;
    const last = this.#repunched.get(pair);
    if (last !== undefined && now - last < this.#o.repunchInterval) {
      return this.#drop("repunch-rate");
    }
    // Entries only matter for repunchInterval; prune when many have piled up.
    if (this.#repunched.size >= 1024) this.#pruneRepunched(now);
    this.#repunched.set(pair, now);
    this.#introduce(src, dst, true, true);
  }

  #remove(p: Member, reason: "bye" | "expired"): void {
    this.#peers.delete(p.key);
    this.#unlink(p);
    // O(partners), not O(all relayed pairs): each member knows its own.
    for (const q of p.relayingTo) q.relayedBy.delete(p);
    for (const q of p.relayedBy) q.relayingTo.delete(p);
    p.relayingTo.clear();
    p.relayedBy.clear();
    const room = this.#rooms.get(p.room);
    room?.delete(p.key);
    if (room && room.size === 0) this.#rooms.delete(p.room);
    this.#events.push({ type: "left", room: p.room, name: p.name, reason });
    for (const other of room?.values() ?? []) {
      this.#send(other.addr, {
        type: MsgType.Left,
        id: p.id,
        reason: reason === "bye" ? LeftReason.Bye : LeftReason.Expired,
      });
    }
  }
}

/** The private endpoints worth passing on: unicast, not loopback, at most a few. */
function usable(list: Endpoint[]): Endpoint[] {
  return list.filter((ep) => isUsableCandidate(ep)).slice(0, MAX_PRIVATE_ENDPOINTS);
}

/** The pair's epoch: the same for both INTROs of a pair, new when either registers anew. */
function pairEpoch(a: Member, b: Member): Uint8Array {
  const e = new Uint8Array(EPOCH_LEN);
  for (let i = 0; i < EPOCH_LEN; i++) e[i] = a.incarnation[i]! ^ b.incarnation[i]!;
  return e;
}

const utf8 = new TextEncoder();

/** `wanted`, or `wanted-N` with the base trimmed so the result still fits in MAX_NAME bytes. */
function uniqueName(wanted: string, room: Map<string, Member>): string {
  const taken = new Set([...room.values()].map((m) => m.name));
  if (!taken.has(wanted)) return wanted;
  for (let i = 2;; i++) {
    const suffix = `-${i}`;
    let base = wanted;
    while (utf8.encode(base + suffix).length > MAX_NAME) base = [...base].slice(0, -1).join("");
    const candidate = base + suffix;
    if (!taken.has(candidate)) return candidate;
  }
}
