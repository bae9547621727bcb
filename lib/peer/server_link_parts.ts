/**
 * Small parts of a peer's server link (`lib/peer/server_link.ts`): the round-trip time to the
 * server measured by PING and PONG ({@link PingRtt}), the window of sequence numbers of the
 * server's INTRO, LEFT, ROSTER and CHECK that were acted on ({@link SeqWindow}: replays and old
 * duplicates are not), and the name we register under ({@link RegisteredName}: the wanted one,
 * then `-2`, `-3` … while it is taken, or a new one from `/nick`), and the servers it may use
 * ({@link ServerList}: `--server`, the fallbacks, their boot ids, which are the same server over
 * UDP and over TCP or TLS), and the background attempts over UDP of a link registered over TCP
 * ({@link UdpReturn}). Pure.
 *
 * @module
 */
import { bytesEqual } from "../core/bytes.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { MAX_NAME } from "../wire/peer_frame.ts";
import { COOKIE_LEN } from "../wire/server_msg.ts";

/**
 * Registered over TCP or TLS: the first background PING to the same server over UDP this long
 * after, then gaps doubling to {@link UDP_RETRY_MAX}, in ms.
 */
export const UDP_RETRY_FIRST = 5_000;
/** Longest gap between two background PINGs over UDP, in ms (UDP back within 30 s is used). */
export const UDP_RETRY_MAX = 20_000;

/** Sequence numbers accepted behind the newest. */
export const SEQ_WINDOW = 1024;

/** The round-trip time to one server, from PING to PONG. */
export class PingRtt {
  /** When the last PING went out, until its PONG. */
  #pingAt: number | undefined;
  /** Smoothed PING→PONG round-trip time in ms, once measured. */
  #rtt: number | null = null;
  /** The least PING→PONG time seen (a busy moment only ever inflates a sample). */
  #min: number | null = null;
  /** Samples since the server was picked. */
  #samples = 0;

  /** Smoothed round-trip time in ms, or null before the first sample. */
  get rtt(): number | null {
    return this.#rtt;
  }

  /** The least round-trip time seen in ms, or null before the first sample. */
  get min(): number | null {
    return this.#min;
  }

  /** Samples since the server was picked. */
  get samples(): number {
    return this.#samples;
  }

  /** A PING went out at `now`. */
  pinged(now: number): void {
    this.#pingAt = now;
  }

  /** A PONG came at `now`: a sample, if a PING was waiting for it. */
  ponged(now: number): void {
    if (this.#pingAt === undefined) return;
    const sample = now - this.#pingAt;
    this.#rtt = this.#rtt === null ? sample : 0.75 * this.#rtt + 0.25 * sample;
    this.#min = this.#min === null ? sample : Math.min(this.#min, sample);
    this.#samples++;
    this.#pingAt = undefined;
  }

  /** Another server: nothing measured yet. */
  reset(): void {
    this.#rtt = null;
    this.#min = null;
    this.#samples = 0;
    this.#pingAt = undefined;
  }
}

/** The sequence numbers of one registration's server messages that were acted on. */
export class SeqWindow {
  #seen = new Set<number>();
  #highest = 0;

  /**
   * True the first time `seq` is seen and it is not {@link SEQ_WINDOW} or more behind the
   * newest. At most twice the window is remembered.
   */
  fresh(seq: number): boolean {
    if (seq + SEQ_WINDOW <= this.#highest || this.#seen.has(seq)) return false;
    this.#seen.add(seq);
    if (seq > this.#highest) this.#highest = seq;
    if (this.#seen.size > 2 * SEQ_WINDOW) {
      for (const n of this.#seen) {
        if (n + SEQ_WINDOW <= this.#highest) this.#seen.delete(n);
      }
    }
    return true;
  }

  /** A new registration: its numbers start again. */
  reset(): void {
    this.#seen.clear();
    this.#highest = 0;
  }
}

/** The name we register under. */
export class RegisteredName {
  /** The name wanted (`--name`, or the latest `/nick`). */
  wanted: string;
  /** The name asked for now (the wanted one, or it with a suffix). */
  current: string;
  #suffix = 1;

  /** Starts with `wanted`. */
  constructor(wanted: string) {
    this.wanted = wanted;
    this.current = wanted;
  }

  /** True when the server gave us a suffixed name. */
  get suffixed(): boolean {
    return this.current !== this.wanted;
  }

  /** The name was taken: the next suffix (`-2`, `-3` …, trimmed to fit); false after 100. */
  next(): boolean {
    if (this.#suffix >= 100) return false;
    const suffix = `-${++this.#suffix}`;
    let base = this.wanted;
    const utf8 = new TextEncoder();
    while (utf8.encode(base + suffix).length > MAX_NAME) base = [...base].slice(0, -1).join("");
    this.current = base + suffix;
    return true;
  }

  /** `/nick`: we want `name` now. */
  rename(name: string): void {
    this.wanted = name;
    this.current = name;
    this.#suffix = 1;
  }
}

/**
 * The servers a link may register with: `--server` first, then the fallbacks, the one in use,
 * when it was picked, and the boot id each gave our last registration there (another one on
 * registering again means that server restarted).
 */
export class ServerList {
  #all: Endpoint[];
  #current = 0;
  /** Same-server groups of {@link all} (see `ServerLinkOptions.serverGroups`). */
  #groups: number[] | undefined;
  /** When the server in use was picked (or last answered while registering). */
  pickedAt = 0;
  /** The boot id of the latest WELCOME; null before the first. */
  #boot: Uint8Array | null = null;
  #boots: (Uint8Array | undefined)[] = [];
  /**
   * Entries known as servers of one cluster (the one that named them in its WELCOME or a SERVERS,
   * and those it named).
   */
  #cluster = new Set<number>();

  /**
   * `first`, then `fallbacks`; `groups`, one number per server, says which are the same server
   * over different transports (ignored unless it has one number per server).
   */
  constructor(first: Endpoint, fallbacks: readonly Endpoint[], groups?: readonly number[]) {
    this.#all = [first, ...fallbacks];
    this.#groups = groups && groups.length === this.#all.length ? [...groups] : undefined;
  }

  /** Every server, in order. */
  get all(): readonly Endpoint[] {
    return this.#all;
  }

  /**
   * Adds `servers` we do not know yet (a cluster's, from SERVERS) after the others, up to `max`
   * in all; each is a server of its own.
   */
  learn(servers: readonly Endpoint[], max: number): void {
    if (servers.length > 0) this.#cluster.add(this.#current);
    for (const ep of servers) {
      const known = this.indexOf(ep);
      if (known >= 0) this.#cluster.add(known);
      if (known >= 0 || this.#all.length >= max) continue;
      this.#cluster.add(this.#all.length);
      this.#all.push(ep);
      if (this.#groups) this.#groups.push(Math.max(-1, ...this.#groups) + 1);
    }
  }

  /**
   * True when entries `i` and `j` are servers of one cluster (a server that named others in its
   * WELCOME or a SERVERS, and one it named, over any of their transports): a cookie of one may be
   * valid at the other
   * (`docs/protocol.md` 23).
   */
  clustered(i: number, j: number): boolean {
    return i !== j && this.#inCluster(i) && this.#inCluster(j);
  }

  #inCluster(i: number): boolean {
    if (this.#cluster.has(i)) return true;
    for (const k of this.#cluster) if (this.#same(k, i)) return true;
    return false;
  }

  /** The entry of the server in use. */
  get index(): number {
    return this.#current;
  }

  /** The server in use. */
  get current(): Endpoint {
    return this.all[this.#current]!;
  }

  /** True when there is another server to fail over to. */
  get several(): boolean {
    return this.all.length > 1;
  }

  /** The boot id of our latest registration, or null before the first. */
  get boot(): Uint8Array | null {
    return this.#boot;
  }

  /**
   * Moves on to the next server at `now`, or to entry `to`. True when that is the server in
   * use over another transport.
   */
  next(now: number, to?: number): boolean {
    const from = this.#current;
    this.#current = to ?? (this.#current + 1) % this.all.length;
    this.pickedAt = now;
    return this.#same(from, this.#current);
  }

  /** Uses entry `j` (the server in use over another transport) from now on. */
  use(j: number): void {
    this.#current = j;
  }

  /** The entry that is `ep`, or -1. */
  indexOf(ep: Endpoint): number {
    return this.all.findIndex((s) => sameEndpoint(s, ep));
  }

  /** True when `ep` is the server in use, over any of its transports. */
  isCurrent(ep: Endpoint): boolean {
    if (sameEndpoint(ep, this.current)) return true;
    const j = this.indexOf(ep);
    return j >= 0 && this.#same(j, this.#current);
  }

  /** True when entry `j` is the server in use over another transport (or the same one). */
  sibling(j: number): boolean {
    return j >= 0 && (j === this.#current || this.#same(j, this.#current));
  }

  /** Over a stream: the entry of the server in use over UDP, or -1. */
  udpSibling(): number {
    if (this.current.stream === undefined) return -1;
    return this.all.findIndex((s, j) => s.stream === undefined && this.#same(j, this.#current));
  }

  /** The entry of the server in use over its other kind of transport (UDP, stream), or -1. */
  otherTransport(): number {
    const stream = this.current.stream !== undefined;
    return this.all.findIndex((s, j) =>
      j !== this.#current && (s.stream !== undefined) !== stream && this.#same(j, this.#current)
    );
  }

  #same(i: number, j: number): boolean {
    return this.#groups !== undefined && this.#groups[i] === this.#groups[j];
  }

  /** The server in use welcomed us with `boot`: true when it restarted since it last did. */
  welcomed(boot: Uint8Array): boolean {
    const before = this.#boots[this.#current];
    this.#boot = this.#boots[this.#current] = boot.slice();
    return before !== undefined && !bytesEqual(before, boot);
  }
}

/**
 * A link registered over TCP or TLS trying the same server over UDP in the background: when
 * (first {@link UDP_RETRY_FIRST} after it starts, then gaps doubling to {@link UDP_RETRY_MAX}),
 * and with which cookie (the one the server gave our UDP endpoint; a PING with it moves our
 * registration there).
 */
export class UdpReturn {
  #gap = UDP_RETRY_FIRST;
  #at: number | undefined;
  #cookie: Uint8Array = new Uint8Array(COOKIE_LEN);
  #lastCookie = -Infinity;

  /** When the next attempt is due, if one is planned. */
  get at(): number | undefined {
    return this.#at;
  }

  /** The cookie for our UDP endpoint (zeros until the server gave one). */
  get cookie(): Uint8Array {
    return this.#cookie;
  }

  /** Plans the first attempt from `now`. */
  start(now: number): void {
    this.#gap = UDP_RETRY_FIRST;
    this.#at = now + this.#gap;
  }

  /** No more attempts (UDP works, or the link left the stream). */
  stop(): void {
    this.#at = undefined;
  }

  /** True when an attempt is due at `now`; the next one is planned then. */
  due(now: number): boolean {
    if (this.#at === undefined || now < this.#at) return false;
    this.#gap = Math.min(2 * this.#gap, UDP_RETRY_MAX);
    this.#at = now + this.#gap;
    return true;
  }

  /**
   * The server gave our UDP endpoint `cookie` (a COOKIE that echoed our token): true when the
   * PING should go again with it now (at most once a second, however many COOKIEs come).
   */
  cookied(now: number, cookie: Uint8Array): boolean {
    this.#cookie = cookie;
    if (now - this.#lastCookie < 1_000) return false;
    this.#lastCookie = now;
    return true;
  }
}
