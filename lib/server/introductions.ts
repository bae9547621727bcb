/**
 * What the registry tells members about their room (`docs/protocol.md` 6.3 to 6.7): the WELCOME
 * of a registration (with the registry's boot id), INTROs (one way or both ways, with the pair's epoch, addresses hidden for
 * relay-only peers), ROSTERs, and the re-introductions a REPUNCH asks for (rate-limited per
 * pair). Every INTRO and ROSTER carries the recipient's token and the next number of its
 * sequence. Pure.
 *
 * @module
 */
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { idHex, MsgType } from "../wire/header.ts";
import { FLAG_RELAY_ONLY, FLAG_SUPERNODE, type MsgOf, type ServerMsg } from "../wire/server_msg.ts";
import { idNum, idOf, type Member, nameOf, pairEpoch, tokenIs, tokenOf } from "./member.ts";
import type { Members } from "./members.ts";
import type { RegistryOptions } from "./options.ts";
import type { Outbox } from "./outbox.ts";

/**
 * Sends introductions and rosters, and answers REPUNCH. Call {@link prune} from the registry's
 * timer (it bounds the per-pair REPUNCH memory).
 */
export class Introductions {
  #o: RegistryOptions;
  #members: Members;
  #out: Outbox;
  /** The registry's boot id, in every WELCOME. */
  #boot: Uint8Array;
  /** When each unordered pair (hex ids, smaller first) was last repunched, in time order. */
  #repunched = new Map<string, number>();
  /** Tells a member's cluster server to re-introduce it (a REPUNCH across servers). */
  remoteRepunch: ((src: Member, dst: Member) => void) | undefined;

  /** Introductions among `members`, sent to `out`; WELCOMEs carry `boot`. */
  constructor(o: RegistryOptions, members: Members, out: Outbox, boot: Uint8Array) {
    this.#o = o;
    this.#members = members;
    this.#out = out;
    this.#boot = boot;
  }

  /**
   * The WELCOME of `p`'s registration, echoing its HELLO's `nonce`; in a cluster with the shared
   * cookie and the other servers.
   */
  welcome(
    p: Member,
    nonce: Uint8Array,
    sharedCookie?: Uint8Array,
    cluster?: { keepalive: number; servers: Endpoint[] },
  ): void {
    this.#out.send(p.addr, {
      type: MsgType.Welcome,
      id: idOf(p),
      nonce,
      token: tokenOf(p),
      boot: this.#boot,
      observed: p.addr,
      ...(sharedCookie ? { sharedCookie } : {}),
      ...(cluster ? { cluster } : {}),
    });
  }

  /** Tells `p` who else is in its room (after its introductions, so it can tell when it has them all). */
  roster(p: Member): void {
    const ids = [...p.room.members.values()].filter((o) => o !== p).map(idOf);
    this.#out.send(p.addr, { type: MsgType.Roster, token: tokenOf(p), seq: ++p.seq, ids });
  }

  /** Introduces every other member of its room to `p` (and, if `both`, `p` to them). */
  introduceAll(p: Member, both: boolean): void {
    for (const other of p.room.members.values()) {
      if (other === p) continue;
      this.introduce(p, other, both);
    }
  }

  /** Sends `a` an introduction of `b`, and (if `both`) `b` one of `a`, back to back. */
  introduce(a: Member, b: Member, both: boolean, repunch = false): void {
    // A member of another cluster server hears of its room from that server.
    if (!a.home) this.#out.send(a.addr, this.intro(b, a));
    if (both) {
      if (!b.home) this.#out.send(b.addr, this.intro(a, b));
      this.#out.event({
        type: "introduced",
        room: a.room.short,
        a: nameOf(a),
        b: nameOf(b),
        repunch,
      });
    }
  }

  /** The INTRO that tells `to` about `about`, hiding addresses when either is relay-only. */
  intro(about: Member, to: Member): ServerMsg {
    const hide = ((about.flags | to.flags) & FLAG_RELAY_ONLY) !== 0;
    return {
      type: MsgType.Intro,
      token: tokenOf(to),
      seq: ++to.seq,
      id: idOf(about),
      epoch: pairEpoch(about, to),
      // Only the server's own check makes a supernode; a HELLO's bit is never passed on.
      flags: (about.flags & FLAG_RELAY_ONLY) | (about.supernode ? FLAG_SUPERNODE : 0),
      // A member over TCP or TLS has no UDP address to punch to, and one that reaches us only
      // over TCP would spend its probe budget in vain (its private ones may still work). A move
      // to UDP introduces both again with it.
      publicEndpoint: hide || about.addr.stream !== undefined || to.addr.stream !== undefined
        ? null
        : about.addr,
      privateEndpoints: hide ? [] : about.privateEndpoints,
    };
  }

  /** A REPUNCH: introduces the pair both ways again, at most once per `repunchInterval`. */
  repunch(now: number, from: Endpoint, m: MsgOf<typeof MsgType.Repunch>): void {
    const found = this.#pair(now, from, m.id, m.token, m.target);
    if (!found) return;
    const [src, dst] = found;
    const a = idHex(idOf(src)), b = idHex(idOf(dst));
    const pair = a < b ? a + b : b + a;
    const last = this.#repunched.get(pair);
    if (last !== undefined && now - last < this.#o.repunchInterval) {
      return this.#out.drop("repunch-rate");
    }
    // Entries only matter for repunchInterval; keep them in time order (delete, then set).
    this.prune(now);
    this.#repunched.delete(pair);
    this.#repunched.set(pair, now);
    this.introduce(src, dst, true, true);
    if (dst.home) this.remoteRepunch?.(src, dst);
  }

  /** Drops expired re-punch entries: they sit in insertion (= time) order, so O(expired). */
  prune(now: number): void {
    for (const [k, t] of this.#repunched) {
      if (now - t <= this.#o.repunchInterval) break;
      this.#repunched.delete(k);
    }
  }

  /**
   * The registered sender (at the address it registered from) and a target in its room, or
   * undefined after counting a drop as `repunch-unknown-sender`, `-bad-token` or
   * `-unknown-target`.
   */
  #pair(
    now: number,
    from: Endpoint,
    id: Uint8Array,
    token: Uint8Array,
    target: Uint8Array,
  ): [Member, Member] | undefined {
    const members = this.#members;
    const src = members.get(idNum(id));
    if (!src || !sameEndpoint(src.addr, from)) return void this.#out.drop("repunch-unknown-sender");
    if (!tokenIs(src, token)) return void this.#out.drop("repunch-bad-token");
    members.touch(src, now);
    const dst = members.get(idNum(target));
    if (!dst || dst.room !== src.room || dst === src) {
      return void this.#out.drop("repunch-unknown-target");
    }
    return [src, dst];
  }
}
