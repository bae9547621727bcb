/**
 * What a peer's HELLO to the server proves (`lib/peer/server_link.ts` sends it): the server's
 * return-routability cookie and the puzzle its COOKIE asked for (solved once per cookie and
 * nonce), this attempt's fresh nonce (WELCOME, REFUSED and COOKIE must echo it), and the HELLO
 * itself, signed with the room key and our id key. {@link HelloCredentials} holds them, and
 * judges the server's COOKIEs ({@link CookieAnswer}). And what a registration attempt's timer, a
 * REFUSED and a WELCOME ask of the link ({@link registeringDue}, {@link refusal},
 * {@link welcomeEvents}). Pure: randomness comes in through the options.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { POW_LEN, solvePuzzle } from "../crypto/puzzle.ts";
import {
  COOKIE_LEN,
  FLAG_RELAY_ONLY,
  FLAG_SUPERNODE,
  helloSigningInput,
  type MsgOf,
  NONCE_LEN,
  type ServerMsg,
} from "../wire/server_msg.ts";
import { MsgType } from "../wire/header.ts";
import { type Endpoint, formatEndpoint } from "../wire/address.ts";
import { RefuseCode } from "../wire/server_msg.ts";
import type { RegisteredName } from "./server_link_parts.ts";
import {
  FAILOVER_AFTER,
  SERVER_LOST_AFTER,
  type ServerLinkEvent,
  type ServerLinkOptions,
  type ServerLinkState,
} from "./server_link_types.ts";

/** The least gap between two requests repeated with a new cookie, in ms: HELLOs, PINGs. */
const COOKIE_HELLO_GAP = 250;
const COOKIE_PING_GAP = 1_000;

/**
 * What a COOKIE from the server in use asks of the link: nothing (`forged`: it did not echo our
 * request), only noting that the server answers (`heard`: the request was repeated with a new
 * cookie too recently), or repeating the request with the new cookie now (`repeat`).
 */
export type CookieAnswer = "forged" | "heard" | "repeat";

/**
 * The cookie, puzzle solution and nonce of one server link's requests, and its HELLOs.
 *
 * Call order: {@link newNonce} before the first {@link hello}; {@link answerCookie} for each
 * COOKIE from the server in use; {@link forget} when the link moves to another server.
 */
export class HelloCredentials {
  #o: ServerLinkOptions;
  #cookie: Uint8Array = new Uint8Array(COOKIE_LEN);
  /** The puzzle difficulty the last COOKIE asked for (0: none). */
  #difficulty = 0;
  /** The last puzzle solved, for which cookie and nonce. */
  #solved: { d: number; cookie: Uint8Array; nonce: Uint8Array; pow: Uint8Array } | undefined;
  /** This registration attempt's nonce: WELCOME and HELLO refusals must echo it. */
  #nonce: Uint8Array = new Uint8Array(NONCE_LEN);
  #lastCookieHello = -Infinity;
  #lastCookiePing = -Infinity;

  /** HELLOs for the link configured by `options`. */
  constructor(options: ServerLinkOptions) {
    this.#o = options;
  }

  /** The cookie the server in use gave us (zeros until one did). */
  get cookie(): Uint8Array {
    return this.#cookie;
  }

  /** This registration attempt's nonce. */
  get nonce(): Uint8Array {
    return this.#nonce;
  }

  /** A fresh nonce for a new registration attempt (an old attempt's answers no longer count). */
  newNonce(): void {
    const nonce = this.#o.random(NONCE_LEN);
    if (nonce.length !== NONCE_LEN) throw new Error(`ServerLink: needs ${NONCE_LEN} random bytes`);
    this.#nonce = nonce;
  }

  /**
   * Another server (or transport): no puzzle, and no cookie unless `keepCookie` (a server of the
   * same cluster, which may honour it).
   */
  forget(keepCookie = false): void {
    if (!keepCookie) this.#cookie = new Uint8Array(COOKIE_LEN);
    this.#difficulty = 0;
  }

  /** Uses `cookie` from now on (the one the server gave the endpoint we moved to). */
  use(cookie: Uint8Array): void {
    this.#cookie = cookie;
  }

  /**
   * True when `echo` is what our request carried: our registration's `token` while registered,
   * this attempt's nonce otherwise (`token` undefined). The nonce never leaves us in anything but
   * HELLOs to the server, so only the server can echo it.
   */
  echoes(echo: Uint8Array, token: Uint8Array | undefined): boolean {
    return constantTimeEqual(echo, token ?? this.#nonce);
  }

  /**
   * The server wants proof that we receive at our address: COOKIE `m` at `now`, while registered
   * with `token` (undefined while registering). Only a COOKIE that echoes our request's nonce (or
   * our token) is believed: forged ones, however many, neither replace the cookie nor keep a
   * registration waiting. A believed one is used from now on, and the request repeated with it
   * (a HELLO at most every 250 ms, a PING at most once a second).
   */
  answerCookie(now: number, m: MsgOf<typeof MsgType.Cookie>, token?: Uint8Array): CookieAnswer {
    if (!this.echoes(m.echo, token)) return "forged";
    return this.#cookied(now, m.cookie, m.difficulty, token === undefined) ? "repeat" : "heard";
  }

  /** A cluster server's WELCOME gave us its shared `cookie` (no puzzle; nothing to repeat). */
  keep(cookie: Uint8Array): void {
    this.#cookie = cookie;
    this.#difficulty = 0;
  }

  /**
   * A believed COOKIE gave us `cookie` and `difficulty`: true when the request should be repeated
   * with it now (a HELLO while `registering`, at most every 250 ms; a PING otherwise, at most
   * once a second).
   */
  #cookied(now: number, cookie: Uint8Array, difficulty: number, registering: boolean): boolean {
    this.#cookie = cookie;
    this.#difficulty = difficulty;
    if (registering) {
      if (now - this.#lastCookieHello < COOKIE_HELLO_GAP) return false;
      this.#lastCookieHello = now;
    } else {
      if (now - this.#lastCookiePing < COOKIE_PING_GAP) return false;
      this.#lastCookiePing = now;
    }
    return true;
  }

  /** A HELLO asking for `name`, signed with the room key and our id key. */
  hello(name: string): ServerMsg {
    const o = this.#o;
    const signed = {
      id: o.id,
      cookie: this.#cookie,
      nonce: this.#nonce,
      flags: o.relayOnly ? FLAG_RELAY_ONLY : o.offerSupernode ? FLAG_SUPERNODE : 0,
      room: o.roomId,
      nameTag: o.nameTag(name),
      owner: o.owner,
      idKey: o.idKey.publicKey,
    };
    const input = helloSigningInput(signed);
    return {
      type: MsgType.Hello,
      ...signed,
      signature: o.sign(input),
      idSignature: o.idKey.sign(input),
      pow: this.#pow(),
      privateEndpoints: o.relayOnly ? [] : o.privateEndpoints,
    };
  }

  /**
   * The solution of the puzzle the last COOKIE asked for, for this cookie and nonce (solved once:
   * about 2^difficulty hashes; `lib/crypto/puzzle.ts`); zeros when none was asked.
   */
  #pow(): Uint8Array {
    const d = this.#difficulty;
    if (d === 0) return new Uint8Array(POW_LEN);
    const c = this.#solved;
    if (c && c.d === d && c.cookie === this.#cookie && c.nonce === this.#nonce) return c.pow;
    const pow = solvePuzzle(d, this.#cookie, this.#o.id, this.#nonce) ?? new Uint8Array(POW_LEN);
    this.#solved = { d, cookie: this.#cookie, nonce: this.#nonce, pow };
    return pow;
  }
}

/** A registration attempt, as the link's state has it. */
export type Registering = Extract<ServerLinkState, { kind: "registering" }>;

/** What a registering link's timer asks for (see {@link registeringDue}). */
export interface RegisteringDue {
  /** The first registration's deadline passed with no answer at all: give up. */
  fatal: boolean;
  /** Another server to try: this one left HELLOs unanswered for {@link FAILOVER_AFTER}. */
  failover: boolean;
  /** Registering again for {@link SERVER_LOST_AFTER} without success: the server is lost. */
  lost: boolean;
}

/**
 * What attempt `s` asks for at `now`: the server last answered at `heardAt`, the server in use
 * was picked at `pickedAt`, `several` says whether there is another to fail over to, and the
 * first registration fails after `timeout` ms without an answer.
 */
export function registeringDue(
  now: number,
  s: Registering,
  heard: { heardAt: number; pickedAt: number; several: boolean; timeout: number },
): RegisteringDue {
  return {
    fatal: !s.again && now - heard.heardAt >= heard.timeout,
    failover: heard.several && now - heard.pickedAt >= FAILOVER_AFTER,
    lost: s.again && !s.lost && now - s.since >= SERVER_LOST_AFTER,
  };
}

/** What the first registration's failure says: no answer from `servers` after `timeout` ms. */
export function noAnswer(servers: readonly Endpoint[], timeout: number): string {
  const at = servers.map(formatEndpoint).join(", ");
  const secs = Math.round(timeout / 1000);
  return `No answer from the server at ${at} after ${secs} s; check the address and that "p2p serve" runs there`;
}

/**
 * What a believed REFUSED with `code` asks of a link in state `kind` (`again`: registered
 * before): the next name suffix (`next-name`, when `name` has one left), registering
 * again with the same id (`again`: the server forgot us), nothing (`ignore`), giving up
 * (`fatal`: the first registration was refused), or telling the user (`report`).
 */
export function refusal(
  code: number,
  kind: ServerLinkState["kind"],
  again: boolean,
  name: RegisteredName,
): "next-name" | "again" | "ignore" | "fatal" | "report" {
  if (code === RefuseCode.NameTaken && kind === "registering" && name.next()) return "next-name";
  if (code === RefuseCode.Unknown) return kind === "registered" ? "again" : "ignore";
  return kind === "registering" && !again ? "fatal" : "report";
}

/**
 * What a WELCOME ending attempt `s` tells the user (under `name`, seen at `observed`; the server
 * `restarted` since our last registration there): "renamed" (a suffix was needed) and "ready"
 * for the first registration; "server-back" for a later one after a loss or a restart.
 */
export function welcomeEvents(
  s: Registering,
  name: RegisteredName,
  observed: Endpoint,
  restarted: boolean,
): ServerLinkEvent[] {
  if (!s.again) {
    const ready: ServerLinkEvent = { type: "ready", name: name.current, public: observed };
    if (!name.suffixed) return [ready];
    return [{ type: "renamed", wanted: name.wanted, name: name.current }, ready];
  }
  return s.lost || restarted ? [{ type: "server-back", public: observed, restarted }] : [];
}
