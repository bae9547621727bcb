/**
 * A joining peer's supernode side, both ways (the parts are in `lib/peer/supernode.ts`):
 *
 * - As a supernode: the server's REACH proves us reachable (checked with our registration's
 *   token), we answer REACHED and start the role ({@link SupernodeHost}), and register with it
 *   in-process like any member, so peers that come only through us meet us too.
 * - As a member: the server names the room's supernodes; we register with the one whose
 *   relayed path we measure shortest, ties by lowest id (`lib/peer/supernode_choice.ts`), not
 *   failed lately ({@link SupernodeLink}), move to the next when it fails, leaves or goes
 *   silent, or to a clearly closer one, and choose per peer whether a RELAY goes through it or the server (through it
 *   unless its RTT sum is clearly worse; RTTs are exchanged in sealed RELAYS frames).
 *
 * Sans-IO, polled like every machine of the peer (see {@link Supernodes} for the call order).
 *
 * @module
 */
import { bytesEqual } from "../core/bytes.ts";
import { reachMac } from "../crypto/cookie.ts";
import type { RegistryOptions, RegistryStats } from "../server/registry.ts";
import { countDrop, type Drops } from "./drops.ts";
import { chooseSupernode, type SupernodeCandidate } from "./supernode_choice.ts";
import type { ServerLink, ServerLinkOptions } from "./server_link.ts";
import { SupernodeHost, SupernodeLink } from "./supernode.ts";
import { decodeServerMsg, encodeServerMsg, type ServerMsg } from "../wire/server_msg.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { ID_LEN, MsgType } from "../wire/header.ts";
import { type InnerFrame, InnerKind, RTT_UNKNOWN } from "../wire/peer_frame.ts";
import { toHex } from "../wire/codec.ts";
import { type Transmit } from "../wire/transmit.ts";

/** A RELAYS frame: our RTTs to the server and to our supernode. */
export type RelaysFrame = Extract<InnerFrame, { kind: typeof InnerKind.Relays }>;

/** What a peer told us about its relays (RELAYS frame, supernode id in hex). */
export interface PeerRelays {
  /** Its RTT to the server in ms ({@link RTT_UNKNOWN}: not measured). */
  serverRtt: number;
  /** Hex id of its supernode (zeros: none). */
  supernode: string;
  /** Its RTT to that supernode in ms. */
  supernodeRtt: number;
}

/** What {@link Supernodes} reads of the peers the client knows. */
export interface PeerDirectory {
  /** The roster digest of the peers present (for PINGs). */
  readonly digest: number;
  /** The name of peer `key`, if we know it. */
  nameOf(key: string): string | undefined;
  /** What peer `key` told us about its relays, if it did. */
  relaysOf(key: string): PeerRelays | null | undefined;
  /** Our direct path RTT to peer `key` in ms; null: no direct path (or not measured). */
  directRttOf(key: string): number | null;
}

/** What {@link Supernodes} works with. */
export interface SupernodesOptions {
  /** Our peer id. */
  readonly id: Uint8Array;
  /** The options of our registration with the server (reused for a supernode's). */
  readonly linkOptions: ServerLinkOptions;
  /** Our registration with the server (its token, RTT, our public endpoint, our name). */
  readonly server: ServerLink;
  /** We never punch or reveal addresses: no supernodes. */
  readonly relayOnly: boolean;
  /** We can send to IPv6 addresses. */
  readonly ipv6: boolean;
  /** `--supernode`: `ask` also says whether the reachability check passed. */
  readonly mode: "auto" | "ask" | "off";
  /** Limits of the role (over `DEFAULT_SUPERNODE`). */
  readonly limits: Partial<RegistryOptions>;
  /** Randomness for the role's cookies, tokens and incarnations. */
  readonly random: (n: number) => Uint8Array;
  /** The peers the client knows. */
  readonly peers: PeerDirectory;
  /** Where dropped datagrams are counted. */
  readonly drops: Drops;
}

/** What the supernode side reports to the client. */
export type SupernodeEvent =
  /** Our role answered our own registration with it (handle it as from that supernode). */
  | { type: "delivered"; data: Uint8Array; from: SupernodeLink }
  /** The relay that reaches some peers changed: re-settle them. */
  | { type: "routes-changed" }
  /** Our relay RTTs changed enough to tell the peers (see {@link Supernodes.relaysCheck}). */
  | { type: "relays-changed" }
  /** `ask`: the reachability check passed, we serve as the room's supernode. */
  | { type: "serving" }
  /** `ask`: the check did not pass in time. */
  | { type: "not-serving" };

/** The supernode role's counters. */
export interface SupernodeStats {
  /** Members registered with us. */
  members: number;
  /** Relayed payload bytes. */
  relayedBytes: number;
  /** Relayed datagrams. */
  relayedPackets: number;
  /** The role's dropped datagrams by reason. */
  drops: Record<string, number>;
}

/** A supernode that has not welcomed us after this long is given up on, in ms. */
const REGISTER_TIMEOUT = 5_000;
/** A supernode we stopped using is not tried again for this long, in ms. */
const RETRY_AFTER = 60_000;
/** Keepalive to our supernode, at most (its loss shows sooner than the server's), in ms. */
const KEEPALIVE = 5_000;
/** Most supernodes of the room remembered. */
const MAX_KNOWN = 8;
/** The supernode's RTT sum may exceed the server's by half and this many ms, and still win. */
export const RTT_SLACK = 20;
/** Most supernodes remembered as failed. */
const MAX_FAILED = 16;
/** `--supernode`: how long after starting to say the reachability check did not pass. */
const ASK_WAIT = 6_000;
/**
 * How long the first choice waits for RTTs to the supernodes the server named, at most, in ms
 * (a pair goes to the relay only after seconds of failed punching anyway).
 */
export const FIRST_CHOICE_WAIT = 2_000;
/** How often the supernode in use is weighed against the others again, at most, in ms. */
export const RECHOOSE_GAP = 10_000;

/**
 * A peer's supernode side: the role once the server found us reachable (plus our own
 * in-process registration with it), our registration with the room's best supernode, which
 * peers it relays to, and the relay choice by RTT sum.
 *
 * Driving it: after {@link start}, any `handle*` call, {@link serve}, {@link send},
 * {@link handleTimeout}, {@link relaysCheck} or {@link close}, drain {@link pollTransmit}
 * until undefined, then {@link pollEvent}; then read {@link nextTimeout}. Once per step, at its
 * end, {@link pump} runs the in-process exchange with our own role: what our registration sent
 * it goes in, its answers to us come out as `delivered` events, whose handling may send it more;
 * so pump and drain again while pump finds anything (a bounded number of rounds).
 */
export class Supernodes {
  #o: SupernodesOptions;
  #host: SupernodeHost | undefined;
  #link: SupernodeLink | undefined;
  /** Supernodes of the room the server told us about: id hex → public endpoint. */
  #known = new Map<string, Endpoint>();
  /** Supernodes whose registration failed or that we left, with when. */
  #failed = new Map<string, number>();
  /** The relay RTTs last told to peers. */
  #relaysSent: RelaysFrame | undefined;
  #selfKey: string;
  /** `ask`: when to say that the reachability check did not pass, if it did not. */
  #askAt: number | undefined;
  /**
   * While the first choice waits for RTTs: when it is made at the latest (set when the first
   * supernode is named; undefined once made).
   */
  #chooseAt: number | undefined;
  /** The first choice was made: later ones (after a failure) do not wait. */
  #chosen = false;
  /** When the supernode in use may next be weighed against the others. */
  #rechooseAt = 0;
  #out: Transmit[] = [];
  #events: SupernodeEvent[] = [];
  /** What our own registration sent our role, until {@link pump} hands it over. */
  #selfQueue: Uint8Array[] = [];

  /** The supernode side of the client described by `options`. */
  constructor(options: SupernodesOptions) {
    this.#o = options;
    this.#selfKey = toHex(options.id);
  }

  /** Starts the clock of the `ask` mode's verdict. */
  start(now: number): void {
    if (this.#o.mode === "ask") this.#askAt = now + ASK_WAIT;
  }

  /** The next datagram to send: to our supernode, or from our role to a member. */
  pollTransmit(): Transmit | undefined {
    const t = this.#out.shift();
    if (t || !this.#host) return t;
    const self = this.#self();
    for (let t = this.#host.pollTransmit(); t; t = this.#host.pollTransmit()) {
      if (!self || !sameEndpoint(t.to, self.host)) return t;
      this.#events.push({ type: "delivered", data: t.data, from: self });
    }
    return undefined;
  }

  /** The next event, if any. */
  pollEvent(): SupernodeEvent | undefined {
    return this.#events.shift();
  }

  /** The role, while we serve as a supernode. */
  get host(): SupernodeHost | undefined {
    return this.#host;
  }

  /** Our registration with a supernode (our own, while we are one), if any. */
  get link(): SupernodeLink | undefined {
    return this.#link;
  }

  /** The role's counters (relayed bytes, members), while we serve. */
  stats(): SupernodeStats | undefined {
    const h = this.#host;
    if (!h) return undefined;
    const { relayedBytes, relayedPackets, drops }: Readonly<RegistryStats> = h.stats;
    return { members: h.members, relayedBytes, relayedPackets, drops: { ...drops } };
  }

  /** True when `sup` is our own registration with our own role. */
  isSelf(sup: SupernodeLink): boolean {
    return this.#host !== undefined && sup.key === this.#selfKey;
  }

  /** The supernode we use, when datagrams from `from` come from it (never our own role). */
  linkFrom(from: Endpoint): SupernodeLink | undefined {
    const sup = this.#link;
    return sup && !this.isSelf(sup) && sameEndpoint(from, sup.host) ? sup : undefined;
  }

  /**
   * A REACH: the server probing, from an address we never contacted, whether we are reachable.
   * Believed only with the MAC of our registration's token; answered (REACHED) to the server's
   * main address. True when it proved us reachable: then {@link serve}.
   */
  handleReach(data: Uint8Array): boolean {
    const server = this.#o.server;
    if (!this.#o.linkOptions.offerSupernode) return this.#drop("reach-unwanted");
    const d = decodeServerMsg(data);
    if (!d.ok || d.value.type !== MsgType.Reach) return this.#drop("malformed");
    const { nonce, mac } = d.value;
    if (!server.registered || !bytesEqual(mac, reachMac(server.token, nonce))) {
      return this.#drop("reach-forged");
    }
    const reached = { type: MsgType.Reached, id: this.#o.id, token: server.token, nonce };
    this.#out.push({ to: server.server, data: encodeServerMsg(reached) });
    return true;
  }

  /**
   * The server found us reachable: serve our room (once), and register with our own role
   * in-process, so peers that come only through us meet us too.
   */
  serve(now: number): void {
    if (this.#host) return;
    const o = this.#o;
    this.#host = new SupernodeHost(o.linkOptions.roomId, o.limits, o.random);
    // A supernode relays for others; it needs no other supernode.
    this.#stop(now, true);
    this.#failed.delete(this.#selfKey);
    const at = o.server.public;
    if (at) this.#use(now, this.#selfKey, at, true);
    if (o.mode === "ask") {
      this.#askAt = undefined;
      this.#events.push({ type: "serving" });
    }
  }

  /**
   * The server's word on member `key`: a supernode at `at`, or (null) not, or no longer, one.
   * Members use the known supernode they measure closest (ties by lowest id, so a room whose
   * members see about the same RTTs converges on one).
   */
  handleServerWord(now: number, key: string, at: Endpoint | null): void {
    const known = this.#known;
    if (at) {
      if (known.size >= MAX_KNOWN && !known.has(key)) return;
      known.set(key, at);
    } else {
      if (!known.delete(key)) return;
      if (this.#link?.key === key && !this.isSelf(this.#link)) this.#stop(now, true);
    }
    this.#pick(now);
  }

  /** A message our supernode `sup` sent about the registration itself (see {@link ServerLink.handle}). */
  handleRegistration(now: number, sup: SupernodeLink, m: ServerMsg): boolean {
    const mine = sup.link.handle(now, m);
    this.#flush(now, sup);
    return mine;
  }

  /** Our path to peer `key` fell back to the relay; if it is our supernode, it is gone. */
  pathFailed(now: number, key: string): void {
    const sup = this.#link;
    if (sup && !this.isSelf(sup) && sup.key === key) this.#stop(now, false);
  }

  /** A member's datagram to our role; false when we are no supernode or it is no such type. */
  handleMember(now: number, from: Endpoint, type: number, data: Uint8Array): boolean {
    if (!this.#host || !SupernodeHost.takes(type)) return false;
    this.#host.handleDatagram(now, from, data);
    return true;
  }

  /** Sends `m` to our supernode `sup` (to our own role, in-process, when it is us). */
  send(sup: SupernodeLink, m: ServerMsg): void {
    this.#sendData(sup, encodeServerMsg(m));
  }

  #sendData(sup: SupernodeLink, data: Uint8Array): void {
    if (this.isSelf(sup)) this.#selfQueue.push(data);
    else this.#out.push({ to: sup.host, data });
  }

  /**
   * Hands what our own registration sent to our role (its answers to us come out as
   * `delivered` events). True when there was anything to hand over.
   */
  pump(now: number): boolean {
    const self = this.#self();
    const mine = this.#selfQueue.splice(0);
    if (self) { for (const d of mine) this.#host!.handleDatagram(now, self.host, d); }
    return mine.length > 0;
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    const a = this.#link?.link.nextTimeout() ?? Infinity;
    const b = this.#host?.nextTimeout() ?? Infinity;
    const t = Math.min(a, b, this.#askAt ?? Infinity, this.#chooseAt ?? Infinity);
    return t === Infinity ? undefined : t;
  }

  /**
   * Keepalives to our supernode, expiry of our role's members, the `ask` verdict, the first
   * choice of a supernode and, now and then, whether a clearly closer one is known.
   */
  handleTimeout(now: number): void {
    const sup = this.#link;
    if (sup) {
      sup.link.handleTimeout(now);
      this.#flush(now, sup);
    }
    if (this.#link ? now >= this.#rechooseAt : now >= (this.#chooseAt ?? Infinity)) {
      this.#chooseAt = undefined;
      this.#chosen = true;
      this.#pick(now);
    }
    this.#host?.handleTimeout(now);
    if (this.#askAt !== undefined && now >= this.#askAt) {
      this.#askAt = undefined;
      if (!this.#host) this.#events.push({ type: "not-serving" });
    }
  }

  /** Says goodbye to our supernode (leaving). */
  close(now: number): void {
    const sup = this.#link;
    if (!sup) return;
    sup.link.close();
    this.#flush(now, sup);
  }

  /**
   * The supernode (its key) that frames to peer `key` go through, or null for the server's
   * relay: our supernode, when it introduced the peer (both are registered there), did not let
   * this pair stall (`stalledOn`: a supernode that stays up but drops what it should relay,
   * broken or hostile, must not hold a pair hostage) and, once both sides' RTTs are known
   * (RELAYS frames), the sum of their RTTs to it is not clearly worse than the sum to the
   * server (at most half again plus {@link RTT_SLACK} ms: a supernode saves the server's
   * bandwidth, and a few ms of noise must not flip the choice).
   */
  relayFor(key: string, stalledOn: string | null): string | null {
    const sup = this.#link;
    if (!sup || !sup.relays(key) || stalledOn === sup.key) return null;
    const theirs = this.#o.peers.relaysOf(key);
    const mine = this.relaysFrame();
    if (!theirs || !mine || theirs.supernode !== sup.key) return sup.key;
    const rtts = [mine.serverRtt, mine.supernodeRtt, theirs.serverRtt, theirs.supernodeRtt];
    if (rtts.includes(RTT_UNKNOWN)) return sup.key;
    const viaServer = mine.serverRtt + theirs.serverRtt;
    const fine = mine.supernodeRtt + theirs.supernodeRtt <= 1.5 * viaServer + RTT_SLACK;
    return fine ? sup.key : null;
  }

  /** The name supernode `key` is shown by: ours when it is us, else the member's. */
  nameOf(key: string): string {
    if (key === this.#selfKey && this.#host) return this.#o.server.name;
    return this.#o.peers.nameOf(key) || "supernode";
  }

  /** Our RTTs to the server and our supernode, as a RELAYS frame (null: none measured). */
  relaysFrame(): RelaysFrame | null {
    const sup = this.#link;
    const server = this.#o.server.minRtt, mine = sup ? sup.link.minRtt : null;
    if (server === null && mine === null) return null;
    const ms = (r: number | null) =>
      r === null ? RTT_UNKNOWN : Math.min(Math.round(r), RTT_UNKNOWN - 1);
    return {
      kind: InnerKind.Relays,
      serverRtt: ms(server),
      supernode: sup ? sup.id : new Uint8Array(ID_LEN),
      supernodeRtt: !sup ? RTT_UNKNOWN : this.isSelf(sup) ? 0 : ms(mine),
    };
  }

  /**
   * Queues `relays-changed` when our relay RTTs changed enough to tell the peers (the first
   * measurements, another supernode, or a change of more than a fifth and 5 ms).
   */
  relaysCheck(): void {
    const f = this.relaysFrame();
    if (!f) return;
    const last = this.#relaysSent;
    const moved = (a: number, b: number) =>
      (a === RTT_UNKNOWN) !== (b === RTT_UNKNOWN) ||
      (Math.abs(a - b) > 5 && Math.abs(a - b) > 0.2 * Math.min(a, b));
    if (
      last && bytesEqual(last.supernode, f.supernode) && !moved(last.serverRtt, f.serverRtt) &&
      !moved(last.supernodeRtt, f.supernodeRtt)
    ) return;
    this.#relaysSent = f;
    this.#events.push({ type: "relays-changed" });
  }

  /** Our own registration with our own role, while we are a supernode. */
  #self(): SupernodeLink | undefined {
    const sup = this.#link;
    return sup && this.isSelf(sup) ? sup : undefined;
  }

  /** Moves what registration `sup` queued: its datagrams out, its events acted on. */
  #flush(now: number, sup: SupernodeLink): void {
    const link = sup.link;
    for (let t = link.pollTransmit(); t; t = link.pollTransmit()) this.#sendData(sup, t.data);
    for (let e = link.pollEvent(); e; e = link.pollEvent()) {
      if (this.#link === sup && (e.type === "fatal" || e.type === "server-lost")) {
        this.#stop(now, false);
      }
    }
  }

  /**
   * Registers with the best known supernode (see `./supernode_choice.ts`; not failed lately),
   * if it is another than ours. The first choice waits until every named supernode is measured
   * or {@link FIRST_CHOICE_WAIT} has passed.
   */
  #pick(now: number): void {
    if (this.#host || this.#o.relayOnly) return;
    const cur = this.#link;
    const candidates: SupernodeCandidate[] = [];
    for (const [key, at] of this.#known) {
      const failed = this.#failed.get(key);
      if (failed !== undefined && now - failed < RETRY_AFTER) continue;
      if (!this.#o.ipv6 && at.hostname.includes(":")) continue;
      let rtt = this.#o.peers.directRttOf(key);
      if (rtt === null && cur?.key === key) rtt = cur.link.minRtt;
      candidates.push({ key, rtt });
    }
    if (!this.#chosen && candidates.length > 0) {
      this.#chooseAt ??= now + FIRST_CHOICE_WAIT;
      if (now < this.#chooseAt && candidates.some((c) => c.rtt === null)) return;
      this.#chooseAt = undefined;
      this.#chosen = true;
    }
    this.#rechooseAt = now + RECHOOSE_GAP;
    const best = chooseSupernode(candidates, cur?.key);
    if (best === undefined || best === cur?.key) return;
    if (cur) {
      // A better one: move (relayed pairs use the server meanwhile).
      this.#link = undefined;
      cur.link.close();
      this.#flush(now, cur);
      this.#events.push({ type: "routes-changed" });
    }
    this.#use(now, best, this.#known.get(best)!);
  }

  #use(now: number, key: string, at: Endpoint, self = false): void {
    if (this.#link || (this.#host && !self) || this.#o.relayOnly) return;
    const failed = this.#failed.get(key);
    if (failed !== undefined && now - failed < RETRY_AFTER) return;
    if (!this.#o.ipv6 && at.hostname.includes(":")) return;
    const o = this.#o.linkOptions;
    const peers = this.#o.peers;
    const sup = new SupernodeLink(key, at, {
      ...o,
      fallbacks: [],
      registerTimeout: REGISTER_TIMEOUT,
      keepalive: Math.min(o.keepalive, KEEPALIVE),
    }, () => peers.digest);
    this.#link = sup;
    sup.link.start(now);
    this.#flush(now, sup);
  }

  /**
   * Stops using our supernode (it left, failed or went silent): BYE when `bye`; every peer
   * relayed through it moves to the server's relay (the reliable channels resend), and the
   * next best supernode is tried.
   */
  #stop(now: number, bye: boolean): void {
    const sup = this.#link;
    if (!sup) return;
    this.#link = undefined;
    if (bye) {
      sup.link.close();
      this.#flush(now, sup);
    }
    if (this.#failed.size >= MAX_FAILED) this.#failed.clear();
    this.#failed.set(sup.key, now);
    this.#events.push({ type: "routes-changed" });
    this.#pick(now);
  }

  #drop(reason: string): false {
    countDrop(this.#o.drops, reason);
    return false;
  }
}
