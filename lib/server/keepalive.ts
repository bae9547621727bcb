/**
 * PING, the keepalive (`docs/protocol.md` 6.5 and 6.6): a registered member's PING is answered
 * with a PONG carrying the room's roster digest without it; a digest that differs from the
 * member's earns it a ROSTER and introductions (at most once per `resyncInterval`); a PING from
 * a new address moves the member once a cookie proves it receives there. PINGs are the rest of
 * a server's traffic (100k peers every 25 s), so one from a member at its registered address is
 * checked in place and answered without decoding ({@link Keepalive.fast};
 * `tests/server/ping_fast_test.ts` holds it to the decoding path). Pure.
 *
 * @module
 */
import { sourceKey } from "../core/limits.ts";
import { type Endpoint, parseIPv4, sameEndpoint } from "../wire/address.ts";
import { ID_LEN, MsgType } from "../wire/header.ts";
import { COOKIE_LEN, type MsgOf, RefuseCode, TOKEN_LEN } from "../wire/server_msg.ts";
import type { Cookies } from "./cookies.ts";
import type { Introductions } from "./introductions.ts";
import { idNum, idOf, type Member, nameOf, tokenIs, tokenOf } from "./member.ts";
import type { Members } from "./members.ts";
import type { RegistryOptions } from "./options.ts";
import type { Outbox } from "./outbox.ts";

/** Least time between two REFUSEDs to one member's wrong-token PINGs (ms). */
export const WRONG_TOKEN_GAP = 1_000;

/** A PING's length: header, id, token, cookie, digest. */
export const PING_LEN = 4 + ID_LEN + TOKEN_LEN + COOKIE_LEN + 4;

/** A PONG's length to an IPv4 address: header, token, endpoint (family, address, port), digest. */
const PONG4_LEN = 4 + TOKEN_LEN + 1 + 4 + 2 + 4;

/** The parts of the registry a PING touches. */
export interface KeepaliveParts {
  members: Members;
  cookies: Cookies;
  introductions: Introductions;
  out: Outbox;
}

/**
 * Answers PINGs. Call {@link fast} first for a datagram of {@link PING_LEN} bytes with a PING
 * header; when it returns false, decode it and call {@link ping}.
 */
export class Keepalive {
  #o: RegistryOptions;
  #p: KeepaliveParts;
  #members: Members;
  #out: Outbox;
  /** A view of the last receive buffer seen, for reading PINGs without copies. */
  #view: DataView = new DataView(new ArrayBuffer(0));

  /** PINGs answered with the parts `p`, under the options `o`. */
  constructor(o: RegistryOptions, p: KeepaliveParts) {
    this.#o = o;
    this.#p = p;
    this.#members = p.members;
    this.#out = p.out;
  }

  /**
   * A well-formed PING from a registered peer at its registered address, handled without
   * decoding it (ids read and the token compared in place), as {@link ping} would. False when it
   * needs {@link ping} (unknown peer, or one that moved).
   */
  fast(now: number, from: Endpoint, data: Uint8Array): boolean {
    if (this.#view.buffer !== data.buffer) this.#view = new DataView(data.buffer);
    const v = this.#view, at = data.byteOffset;
    const p = this.#members.get(v.getBigUint64(at + 4));
    if (!p || p.addr.port !== from.port || p.addr.hostname !== from.hostname) return false;
    if (p.addr.stream !== from.stream) return false;
    if (((v.getInt32(at + 4 + ID_LEN) ^ p.tok0) | (v.getInt32(at + 8 + ID_LEN) ^ p.tok1)) !== 0) {
      return false; // the decoding path tells it to register again
    }
    this.#members.touch(p, now);
    this.#fastPong(now, from, p, data, v.getUint32(at + PING_LEN - 4));
    this.#refreshCookie(from, p);
    return true;
  }

  /** A decoded PING: answered, a move made first if it comes from a new address. */
  ping(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Ping>): void {
    const p = this.#members.get(idNum(m.id));
    const out = this.#out;
    if (!p) {
      // Echo the token, so only the peer that sent it can believe it was forgotten.
      return out.refuse(from, m.token, RefuseCode.Unknown, "Register again");
    }
    // Only the holder of the registration's token may keep it alive, move it or resync it.
    if (!tokenIs(p, m.token)) return this.#wrongToken(now, from, p, m.token);
    const moved = !sameEndpoint(p.addr, from);
    // A new address must prove it receives there before anything moves, and the move must
    // respect the new address's limits (else moving would launder registrations).
    // The cluster's shared cookie will do (the token is this server's: a PING is no use elsewhere).
    if (moved && !this.#p.cookies.routable(from, m.id, m.cookie, m.token, true)) return;
    if (moved && sourceKey(from.hostname) !== sourceKey(p.addr.hostname)) {
      const refusal = this.#members.admitSource(from, p.room.hex);
      if (refusal) return out.refuse(from, m.token, refusal.code, refusal.message);
    }
    this.#members.touch(p, now);
    if (moved) this.#move(p, from);
    this.#pong(now, from, p, moved, m.digest);
    this.#refreshCookie(from, p);
  }

  /**
   * In a cluster that shares cookies: after the PONG, a COOKIE with this period's cookie when
   * `p` has none of it yet (once a period a member), so that it can fail over to another server
   * of the cluster without a COOKIE round trip.
   */
  #refreshCookie(from: Endpoint, p: Member): void {
    const cookies = this.#p.cookies;
    if (!cookies.shared || p.cookieAt === cookies.period) return;
    p.cookieAt = cookies.period;
    cookies.refresh(from, idOf(p), tokenOf(p));
  }

  /**
   * A PING with `p`'s id but not its token. From `p`'s own address it is `p` that lost its token
   * (the id is its id key's, so nobody else registered it): REFUSED Unknown echoing the PING's
   * token tells it to register again, and its HELLO from that address gets the registration's
   * WELCOME (6.3 step 5). At most once a second per member, never larger than the PING; an
   * off-path sender spoofing the address learns nothing, and the REFUSED echoes a token that is
   * not the member's, so the member ignores it (7.3). From elsewhere: dropped.
   */
  #wrongToken(now: number, from: Endpoint, p: Member, token: Uint8Array): void {
    const out = this.#out;
    if (!sameEndpoint(p.addr, from) || now - p.lastWrongToken < WRONG_TOKEN_GAP) {
      return out.drop("ping-bad-token");
    }
    p.lastWrongToken = now;
    out.refuse(from, token, RefuseCode.Unknown, "Register again");
  }

  /** The peer's NAT gave it a new public mapping (proven by a cookie): everyone re-punches. */
  #move(p: Member, to: Endpoint): void {
    this.#members.readdress(p, to);
    // Its reachability was checked at the old address only.
    p.supernode = false;
    p.reach = undefined;
    this.#out.event({ type: "moved", room: p.room.short, name: nameOf(p), addr: to });
    this.#p.introductions.introduceAll(p, true);
  }

  /** Answers a PING of `p` (checked, touched, moved if it had to be). */
  #pong(now: number, from: Endpoint, p: Member, moved: boolean, theirs: number): void {
    // The digest of the room without `p`: its own digest XORed out of the room's.
    const digest = (p.room.digest ^ p.dig) >>> 0;
    this.#out.send(from, { type: MsgType.Pong, token: tokenOf(p), observed: from, digest });
    if (!moved) this.#resyncIfStale(now, p, digest, theirs);
  }

  /** After a PONG: a roster and introductions when the peer's digest is not the room's. */
  #resyncIfStale(now: number, p: Member, digest: number, theirs: number): void {
    if (digest !== theirs && now - p.lastResync >= this.#o.resyncInterval) {
      p.lastResync = now;
      this.#p.introductions.roster(p);
      this.#p.introductions.introduceAll(p, false);
    }
  }

  /**
   * {@link #pong} for the fast path, at the address `p` registered from: the PONG written
   * straight into the slab (header bytes of the PING, which are checked), no message object, no
   * token copy. IPv6 sources take {@link #pong}.
   */
  #fastPong(now: number, from: Endpoint, p: Member, data: Uint8Array, theirs: number): void {
    const ip = parseIPv4(from.hostname);
    if (!ip) return this.#pong(now, from, p, false, theirs);
    const digest = (p.room.digest ^ p.dig) >>> 0;
    const out = this.#out.carve(PONG4_LEN);
    const v = this.#out.slabView, o = out.byteOffset;
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
}
