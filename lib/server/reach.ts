/**
 * Reachability checks (`docs/protocol.md` 6.8): a new member that offers to be its room's
 * supernode gets one REACH, from an address it never contacted, within a server-wide budget;
 * when its REACHED comes back with the nonce, it is a supernode and its room is introduced to it
 * anew (INTROs with the supernode flag). Only a server with a second socket checks
 * (`reachVia`). Pure: nonces come from the registry's injected random source.
 *
 * With a second address the REACH comes from an IP address the member never sent to: only an
 * open address (no NAT, no stateful firewall) or a NAT that filters endpoint-independently lets
 * it in. With one address and a second port (`reachNoNatOnly`) the REACH comes from the member's
 * server address on a port it never sent to, which an address-restricted NAT lets in although
 * strangers cannot get through it. So then only a member without a NAT is probed: one whose
 * observed endpoint is one of its own interface endpoints (its HELLO's private list); a
 * stateful firewall (filtering per address and port, as conntrack does) still fails the probe.
 * A NATted member is checked by a helper instead: the server asks (CHECK) a proven supernode of
 * another room, at an IP address no member of the candidate's room has, to send the REACH
 * itself. The candidate never sent anything to that address, so only a NAT
 * that lets anyone in (a full cone) passes; with no such helper registered, nobody is probed.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { reachMac } from "../crypto/cookie.ts";
import { TokenBucket } from "../core/limits.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import {
  encodeServerMsgInto,
  FLAG_RELAY_ONLY,
  FLAG_SUPERNODE,
  type MsgOf,
  REACH_NONCE_LEN,
} from "../wire/server_msg.ts";
import type { Introductions } from "./introductions.ts";
import { idNum, type Member, nameOf, tokenIs, tokenOf } from "./member.ts";
import type { Members } from "./members.ts";
import type { RegistryOptions } from "./options.ts";
import type { Outbox } from "./outbox.ts";

/** Most recent supernodes remembered as helpers of one-address checks. */
export const MAX_HELPERS = 16;
/** CHECKs one helper is sent, a second at most (what a helper sends, `lib/peer/reach_helper.ts`)… */
export const HELPER_RATE = 1;
/** … and in a burst. */
export const HELPER_BURST = 8;

/** Sends REACH probes and takes REACHED answers. */
export class Reach {
  #via: number | undefined;
  #noNatOnly: boolean;
  /** Ids of recent supernodes (helpers of one-address checks), newest last. */
  #helpers: bigint[] = [];
  /** What each helper may still be asked (never more than it will send). */
  #helperBudget = new Map<bigint, TokenBucket>();
  #members: Members;
  #introductions: Introductions;
  #out: Outbox;
  #random: (n: number) => Uint8Array;
  /** Server-wide budget of reachability probes. */
  #budget: TokenBucket;

  /** Checks from the socket `o.reachVia` (none when undefined), nonces from `random`. */
  constructor(
    o: RegistryOptions,
    members: Members,
    introductions: Introductions,
    out: Outbox,
    random: (n: number) => Uint8Array,
  ) {
    this.#via = o.reachVia;
    this.#noNatOnly = o.reachNoNatOnly ?? false;
    this.#members = members;
    this.#introductions = introductions;
    this.#out = out;
    this.#random = random;
    this.#budget = new TokenBucket(o.reachRate, 4 * o.reachRate, 0);
  }

  /**
   * Probes a new member that offers to be a supernode: one REACH, from the address it never
   * contacted, to its observed endpoint (once per registration, within the server-wide rate).
   */
  check(now: number, p: Member): void {
    const via = this.#via;
    if (via === undefined || (p.flags & FLAG_SUPERNODE) === 0) return;
    if ((p.flags & FLAG_RELAY_ONLY) !== 0) return;
    // Over TCP or TLS it has no UDP address to check.
    if (p.addr.stream !== undefined) return;
    // The server's other sockets are IPv4 (`--alt-host`, `--alt-port`): no probe reaches IPv6.
    if (p.addr.hostname.includes(":")) return;
    const helper = this.#noNatOnly && !withoutNat(p) ? this.#helperFor(now, p) : undefined;
    if (this.#noNatOnly && !withoutNat(p) && !helper) return;
    if (!this.#budget.take(now, 1)) return this.#out.drop("reach-rate");
    const nonce = this.#random(REACH_NONCE_LEN);
    const mac = reachMac(tokenOf(p), nonce);
    p.reach = nonce;
    this.#out.stats.reachSent++;
    if (helper) {
      // The helper sends the REACH from its own address, which the candidate never contacted.
      const check = { type: MsgType.Check, token: tokenOf(helper), seq: ++helper.seq };
      this.#out.send(helper.addr, { ...check, target: p.addr, nonce, mac });
      return;
    }
    this.#out.push({
      to: p.addr,
      via,
      data: encodeServerMsgInto({ type: MsgType.Reach, nonce, mac }, this.#out.carver),
    });
  }

  /** Keeps `p` (it passed the check) as a possible helper of later checks. */
  #remember(p: Member): void {
    if (!this.#noNatOnly) return;
    const i = this.#helpers.indexOf(p.num);
    if (i >= 0) this.#helpers.splice(i, 1);
    this.#helpers.push(p.num);
    if (this.#helpers.length > MAX_HELPERS) this.#helperBudget.delete(this.#helpers.shift()!);
  }

  /**
   * A helper for checking `p`: the newest registered supernode of another room, on IPv4, at an
   * address no member of `p`'s room (nor `p`) has, so `p` never sent anything there, that may
   * still be asked (at most {@link HELPER_RATE} a second, burst {@link HELPER_BURST}).
   */
  #helperFor(now: number, p: Member): Member | undefined {
    const taken = new Set<string>([p.addr.hostname]);
    for (const m of p.room.members.values()) taken.add(m.addr.hostname);
    for (let i = this.#helpers.length - 1; i >= 0; i--) {
      const num = this.#helpers[i]!;
      const h = this.#members.get(num);
      if (!h || !h.supernode || h === p || h.room === p.room) continue;
      if (h.addr.hostname.includes(":") || taken.has(h.addr.hostname)) continue;
      let budget = this.#helperBudget.get(num);
      if (!budget) {
        this.#helperBudget.set(num, budget = new TokenBucket(HELPER_RATE, HELPER_BURST, now));
      }
      if (budget.take(now, 1)) return h;
    }
    return undefined;
  }

  /** A member's answer to its REACH: it is reachable, so it becomes a supernode of its room. */
  reached(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Reached>): void {
    const out = this.#out;
    const p = this.#members.get(idNum(m.id));
    if (!p || !sameEndpoint(p.addr, from)) return out.drop("reached-unknown");
    if (!tokenIs(p, m.token)) return out.drop("reached-bad-token");
    if (!p.reach || !constantTimeEqual(p.reach, m.nonce)) return out.drop("reached-bad-nonce");
    p.reach = undefined;
    this.#members.touch(p, now);
    p.supernode = true;
    this.#remember(p);
    out.stats.reachPassed++;
    out.event({ type: "supernode", room: p.room.short, name: nameOf(p), addr: p.addr });
    // Its room learns it (INTROs are per member and token-authenticated; nobody else does).
    for (const other of p.room.members.values()) {
      if (other !== p) out.send(other.addr, this.#introductions.intro(p, other));
    }
  }
}

/**
 * Whether member `p` is on an address of its own (no NAT between it and the server): the
 * server sees it at one of the endpoints its HELLO lists as its interfaces'.
 */
export function withoutNat(p: Pick<Member, "addr" | "privateEndpoints">): boolean {
  return p.privateEndpoints.some((e) => sameEndpoint(e, p.addr));
}
