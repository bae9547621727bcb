/**
 * Bounds the server keeps on what one source may cost it: a token bucket for rates (relayed
 * bytes per peer and per pair) and counts of registrations and rooms per source address. Pure;
 * time is supplied by the caller in ms.
 *
 * A "source address" is what one customer holds: an IPv4 address, or an IPv6 /64 (one host or
 * one home network gets a whole /64 and picks addresses from it at will, so a limit per /128
 * would be no limit). {@link sourceKey} maps an address to its source.
 *
 * @module
 */
import { parseIPv6 } from "./ip.ts";

/**
 * The key limits are counted under for `hostname`: an IPv4 address as it is, an IPv6 address
 * as its /64 prefix (`2001:db8:1:2::/64`), an IPv4-mapped IPv6 address as the IPv4 address.
 */
export function sourceKey(hostname: string): string {
  if (!hostname.includes(":")) return hostname;
  const b = parseIPv6(hostname);
  if (!b) return hostname;
  if (hostname.startsWith("::ffff:") && hostname.includes(".")) return hostname.slice(7);
  const groups: string[] = [];
  for (let i = 0; i < 8; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return `${groups.join(":")}::/64`;
}

/**
 * The network `hostname` belongs to, for limits one level above {@link sourceKey}: an IPv4
 * address's /24, an IPv6 address's /48 (a site's usual delegation; a home's /56 is inside it),
 * an IPv4-mapped address's IPv4 /24. Whoever holds many addresses usually holds them in few
 * networks.
 */
export function networkKey(hostname: string): string {
  if (!hostname.includes(":") || (hostname.startsWith("::ffff:") && hostname.includes("."))) {
    const v4 = hostname.startsWith("::ffff:") ? hostname.slice(7) : hostname;
    const parts = v4.split(".");
    return parts.length === 4 ? `${parts[0]}.${parts[1]}.${parts[2]}.0/24` : v4;
  }
  const b = parseIPv6(hostname);
  if (!b) return hostname;
  const groups: string[] = [];
  for (let i = 0; i < 6; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return `${groups.join(":")}::/48`;
}

/** A token bucket: `rate` units a second, at most `burst` saved up. */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #at: number;

  /** A full bucket at `now`. */
  constructor(rate: number, burst: number, now: number) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes `n` units if there are enough at `now`; false (and nothing taken) otherwise. */
  take(now: number, n: number): boolean {
    if (!this.has(now, n)) return false;
    this.#tokens -= n;
    return true;
  }

  /** True when `n` units are there at `now` (nothing taken). */
  has(now: number, n: number): boolean {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate / 1000);
      this.#at = now;
    }
    return this.#tokens >= n;
  }
}

interface Source {
  peers: number;
  rooms: Map<string, number>;
}

/** Registrations and rooms per source IP address (memory: one entry per address in use). */
export class SourceCounts {
  #sources = new Map<string, Source>();

  /** Registrations from `ip` now. */
  peers(ip: string): number {
    return this.#sources.get(ip)?.peers ?? 0;
  }

  /** Distinct rooms `ip` has registrations in now. */
  rooms(ip: string): number {
    return this.#sources.get(ip)?.rooms.size ?? 0;
  }

  /** True when `ip` already has a registration in `room`. */
  inRoom(ip: string, room: string): boolean {
    return this.#sources.get(ip)?.rooms.has(room) ?? false;
  }

  /** Counts a registration of `ip` in `room`. */
  add(ip: string, room: string): void {
    let s = this.#sources.get(ip);
    if (!s) this.#sources.set(ip, s = { peers: 0, rooms: new Map() });
    s.peers++;
    s.rooms.set(room, (s.rooms.get(room) ?? 0) + 1);
  }

  /** Forgets a registration of `ip` in `room`. */
  remove(ip: string, room: string): void {
    const s = this.#sources.get(ip);
    if (!s) return;
    s.peers--;
    const n = (s.rooms.get(room) ?? 1) - 1;
    if (n > 0) s.rooms.set(room, n);
    else s.rooms.delete(room);
    if (s.peers <= 0) this.#sources.delete(ip);
  }

  /** Number of source addresses with registrations. */
  get size(): number {
    return this.#sources.size;
  }
}
