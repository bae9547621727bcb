/**
 * Return-routability cookies (`docs/protocol.md` 6.2): the server acts on a HELLO, or on a PING
 * from a new address, only when it carries the cookie issued for that peer id and source
 * endpoint, an HMAC under a secret of the current minute or the one before. Without it the
 * request is answered with a COOKIE, never larger than the request. Pure: time comes from the
 * caller, the master secret from the registry's constructor. The servers of a cluster with a
 * shared secret also issue shared cookies (`docs/protocol.md` 23): under a second master derived
 * from that secret, in periods of the wall clock the I/O layer passes in ({@link Cookies.share},
 * {@link Cookies.wallClock}); members get them unasked ({@link Cookies.refresh}), and a PING, or a
 * HELLO that takes over a silent server's member, may carry one: a peer that fails over keeps its
 * cookie.
 *
 * @module
 */
import { createHmac } from "node:crypto";
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { addressCookie } from "../crypto/cookie.ts";
import { type Endpoint, endpointKey } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import type { Outbox } from "./outbox.ts";

/** How often the cookie secret changes, in ms (a cookie stays valid one to two periods). */
export const COOKIE_ROTATION = 60_000;

/**
 * How far a new reading of the wall clock may stray from the last before it moves the periods,
 * in ms: readings jitter by a few ms, and a period that went back and forth at a boundary would
 * fail cookies issued a moment before. A clock that was stepped moves them.
 */
export const WALL_CLOCK_SLACK = 1_000;

/**
 * The cookie secrets and checks. Call order: {@link rotate} with the time of every datagram
 * before {@link routable}; {@link cookieFor} rotates itself when given a time.
 */
export class Cookies {
  /** Keys the per-period cookie secrets: HMAC(master, period number). */
  #master: Uint8Array;
  #period = -1;
  /** Added to the caller's clock for the period: the wall clock's offset once given. */
  #offset = 0;
  /** The secrets of the current period and the one before (cookies live one to two periods). */
  #secrets: [Uint8Array, Uint8Array] = [new Uint8Array(0), new Uint8Array(0)];
  /** The cluster's shared master and its secrets likewise (see {@link share}). */
  #sharedMaster: Uint8Array | undefined;
  #shared: [Uint8Array, Uint8Array] | undefined;
  #out: Outbox;
  /** The puzzle difficulty COOKIEs ask for now (see `./pressure.ts`); set by the registry. */
  difficulty: () => number = () => 0;

  /** Cookies keyed by `master`; COOKIE answers go to `out`. */
  constructor(master: Uint8Array, out: Outbox) {
    this.#master = master;
    this.#out = out;
    this.rotate(0);
  }

  /**
   * Also issues shared cookies under `master` (a cluster's cookie key, `clusterCookieKey` of its
   * shared secret): every server of the cluster makes the same ones, in the periods of the wall
   * clock given to {@link wallClock}.
   */
  share(master: Uint8Array): void {
    this.#sharedMaster = master;
    this.#period = NaN; // the secrets made again on the next rotation
  }

  /** True once {@link share} was called. */
  get shared(): boolean {
    return this.#sharedMaster !== undefined;
  }

  /**
   * The wall clock read `wallMs` (ms since the Unix epoch) at `now` (the caller's clock): the
   * periods are counted on it from now on, `floor(wallMs / COOKIE_ROTATION)`, the same at every
   * server whose clock is right. Readings within {@link WALL_CLOCK_SLACK} of the last change
   * nothing.
   */
  wallClock(now: number, wallMs: number): void {
    const offset = wallMs - now;
    if (!Number.isFinite(offset) || Math.abs(offset - this.#offset) < WALL_CLOCK_SLACK) return;
    this.#offset = offset;
    this.#period = NaN;
  }

  /** The period of the latest {@link rotate}. */
  get period(): number {
    return this.#period;
  }

  /**
   * The cookie secret belongs to the period `floor(now / COOKIE_ROTATION)` (of the wall clock,
   * once given): a cookie is valid in the period it was made and the next, whatever traffic
   * there was in between.
   */
  rotate(now: number): void {
    const period = Math.floor((now + this.#offset) / COOKIE_ROTATION);
    if (period === this.#period) return;
    // One period on: the current secret becomes the previous one; else both are made anew.
    const next = period === this.#period + 1;
    const pair = (master: Uint8Array, was?: [Uint8Array, Uint8Array]): [Uint8Array, Uint8Array] => [
      periodSecret(master, period),
      next && was ? was[0] : periodSecret(master, period - 1),
    ];
    this.#secrets = pair(this.#master, this.#secrets);
    if (this.#sharedMaster) this.#shared = pair(this.#sharedMaster, this.#shared);
    this.#period = period;
  }

  /** This server's cookie a peer with `id` must echo from `addr` (at `now`, if given). */
  cookieFor(id: Uint8Array, addr: Endpoint, now?: number): Uint8Array {
    if (now !== undefined) this.rotate(now);
    return addressCookie(this.#secrets[0], id, endpointKey(addr));
  }

  /**
   * The cluster's shared cookie for `id` at `addr` (at `now`, if given); this server's own
   * without {@link share}.
   */
  sharedCookieFor(id: Uint8Array, addr: Endpoint, now?: number): Uint8Array {
    if (now !== undefined) this.rotate(now);
    return addressCookie((this.#shared ?? this.#secrets)[0], id, endpointKey(addr));
  }

  /**
   * True when `cookie` is this server's current or previous one for `id` at `from`, or, when
   * `shared` (a PING; a HELLO that takes over a silent server's member), the cluster's;
   * otherwise answers with the current one (the cluster's when `shared`), echoing `echo` (the
   * request's nonce or token, so that a COOKIE nobody asked for is told apart; a COOKIE is never
   * larger than the request that asked for it).
   */
  routable(
    from: Endpoint,
    id: Uint8Array,
    cookie: Uint8Array,
    echo: Uint8Array,
    shared = false,
  ): boolean {
    const key = endpointKey(from);
    // Each current cookie is made once: the comparison's, and the answer's if it fails.
    const check = (s: [Uint8Array, Uint8Array]) => {
      const current = addressCookie(s[0], id, key);
      const good = constantTimeEqual(cookie, current) ||
        constantTimeEqual(cookie, addressCookie(s[1], id, key));
      return good ? undefined : current;
    };
    let answer = check(this.#secrets);
    if (answer && shared && this.#shared) answer = check(this.#shared);
    if (!answer) return true;
    this.#out.stats.cookies++;
    this.#out.send(from, {
      type: MsgType.Cookie,
      echo,
      cookie: answer,
      difficulty: this.difficulty(),
    });
    return false;
  }

  /**
   * Gives registered member `id` at its address `to` this period's cookie unasked, echoing its
   * `token` (only it believes the COOKIE), with no puzzle: in a cluster that shares cookies, the
   * cookie it fails over with to another server is then always valid. Once a period a member.
   */
  refresh(to: Endpoint, id: Uint8Array, token: Uint8Array): void {
    this.#out.stats.cookiesRefreshed++;
    this.#out.send(to, {
      type: MsgType.Cookie,
      echo: token,
      cookie: this.sharedCookieFor(id, to),
      difficulty: 0,
    });
  }

  /**
   * Answers a HELLO whose cookie is good but whose puzzle is not solved (6.11): a COOKIE with
   * the current one and the difficulty, echoing the HELLO's nonce.
   */
  askPuzzle(from: Endpoint, id: Uint8Array, echo: Uint8Array, difficulty: number): void {
    this.#out.stats.cookies++;
    this.#out.send(from, {
      type: MsgType.Cookie,
      echo,
      cookie: this.cookieFor(id, from),
      difficulty,
    });
  }
}

/** The cookie secret of one rotation period. */
function periodSecret(master: Uint8Array, period: number): Uint8Array {
  return new Uint8Array(createHmac("sha256", master).update(String(period)).digest());
}
