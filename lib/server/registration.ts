/**
 * HELLO, registration (`docs/protocol.md` 6.3): the cookie first (a spoofed HELLO costs no
 * signature check), a budget of signature checks per source, the room's signature, a repeated
 * HELLO answered with the same WELCOME, admission limits, the name tag, and then a new member:
 * WELCOME, introductions both ways with the rest of its room, its ROSTER, and a reachability
 * check if it offers to be a supernode. Pure: tokens and incarnations come from the registry's
 * injected random source.
 *
 * @module
 */
import { bytesEqual } from "../core/bytes.ts";
import { sourceKey, TokenBucket } from "../core/limits.ts";
import { ed25519PublicKey, ed25519Verify } from "../crypto/ed25519.ts";
import { type Endpoint, sameEndpoint } from "../wire/address.ts";
import { idHex, type MsgType } from "../wire/header.ts";
import {
  EPOCH_LEN,
  FLAG_RELAY_ONLY,
  helloSigningInput,
  idDigest,
  type MsgOf,
  RefuseCode,
  TOKEN_LEN,
} from "../wire/server_msg.ts";
import type { Cookies } from "./cookies.ts";
import type { Introductions } from "./introductions.ts";
import { idNum, type Member, nameOf, type Room, tagNum, usable, view } from "./member.ts";
import type { Members } from "./members.ts";
import type { RegistryOptions } from "./options.ts";
import type { Outbox } from "./outbox.ts";
import type { Reach } from "./reach.ts";

/** A HELLO, as the registry decoded it. */
type Hello = MsgOf<typeof MsgType.Hello>;

/** The parts of the registry a HELLO touches. */
export interface RegistrationParts {
  members: Members;
  cookies: Cookies;
  introductions: Introductions;
  reach: Reach;
  out: Outbox;
  /** Draws tokens and incarnations. */
  random: (n: number) => Uint8Array;
}

/** Most source addresses with a signature-check budget remembered. */
const MAX_HELLO_BUCKETS = 10_000;

/** Registers peers. */
export class Registration {
  #o: RegistryOptions;
  #p: RegistrationParts;
  /** Signature-check budgets per source address. */
  #helloBuckets = new Map<string, TokenBucket>();

  /** Registration with the parts `p`, under the options `o`. */
  constructor(o: RegistryOptions, p: RegistrationParts) {
    this.#o = o;
    this.#p = p;
  }

  /** A decoded HELLO from `from`: dropped, refused, answered again, or a new member. */
  hello(now: number, from: Endpoint, m: Hello): void {
    const { members, out } = this.#p;
    // The cookie first: a HELLO from a spoofed address costs no signature check; and one
    // address gets a bounded number of checks a second (they are the costly part).
    if (!this.#p.cookies.routable(from, m.id, m.cookie)) return;
    if (!this.#helloBudget(now, sourceKey(from.hostname))) return out.drop("hello-rate");
    const only = this.#o.onlyRoom;
    if (only && !bytesEqual(only, m.room)) {
      out.drop("hello-other-room");
      return out.refuse(from, m.nonce, RefuseCode.Invalid, "This supernode serves only its room");
    }
    const roomHex = idHex(m.room), nameTag = tagNum(m.nameTag);
    const existing = members.room(roomHex);
    // Only a holder of the room key may register into the room (the id is its public key).
    const roomKey = existing?.key ?? ed25519PublicKey(m.room);
    if (!roomKey || !ed25519Verify(roomKey, helloSigningInput(m), m.signature)) {
      out.drop("hello-bad-signature");
      return out.refuse(from, m.nonce, RefuseCode.Invalid, "Bad room signature");
    }
    const known = members.get(idNum(m.id));
    if (known) return this.#repeated(now, from, m, known, roomHex, nameTag);
    const refusal = members.admit(from, roomHex, existing);
    if (refusal) return out.refuse(from, m.nonce, refusal.code, refusal.message);
    if (existing && members.holder(existing, nameTag)) {
      return out.refuse(from, m.nonce, RefuseCode.NameTaken, "Name taken in this room");
    }
    const room = existing ??
      { hex: roomHex, short: roomHex.slice(0, 8), members: new Map(), key: roomKey, digest: 0 };
    this.#register(now, from, m, room, nameTag);
  }

  /**
   * A HELLO with the id of member `known`. Only the address it registered from may repeat a
   * HELLO (a move needs the token): then the WELCOME was lost, and it is sent again, never more
   * than was asked; the peer's next PING resyncs what else it missed.
   */
  #repeated(
    now: number,
    from: Endpoint,
    m: Hello,
    known: Member,
    roomHex: string,
    nameTag: bigint,
  ): void {
    if (
      known.room.hex !== roomHex || known.nameTag !== nameTag || !sameEndpoint(known.addr, from)
    ) {
      return this.#p.out.refuse(from, m.nonce, RefuseCode.Invalid, "Peer id in use; restart join");
    }
    this.#p.members.touch(known, now);
    known.privateEndpoints = usable(m.privateEndpoints);
    this.#p.introductions.welcome(known, m.nonce);
  }

  /** Makes the new member and tells it and its room: WELCOME, INTROs, ROSTER, REACH. */
  #register(now: number, from: Endpoint, m: Hello, room: Room, nameTag: bigint): void {
    const { members, introductions, out } = this.#p;
    const member = this.#newMember(now, from, m, room, nameTag);
    members.add(member);
    out.event({
      type: "registered",
      room: room.short,
      name: nameOf(member),
      addr: from,
      relayOnly: (m.flags & FLAG_RELAY_ONLY) !== 0,
    });
    introductions.welcome(member, m.nonce);
    introductions.introduceAll(member, true);
    introductions.roster(member);
    this.#p.reach.check(now, member);
  }

  /** One signature check for a HELLO from `ip`: at most `helloRate` a second (burst 4x). */
  #helloBudget(now: number, ip: string): boolean {
    let b = this.#helloBuckets.get(ip);
    if (!b) {
      // Bounded memory: forgetting every address at worst grants each a fresh burst.
      if (this.#helloBuckets.size >= MAX_HELLO_BUCKETS) this.#helloBuckets.clear();
      b = new TokenBucket(this.#o.helloRate, 4 * this.#o.helloRate, now);
      this.#helloBuckets.set(ip, b);
    }
    return b.take(now, 1);
  }

  #newMember(now: number, from: Endpoint, m: Hello, room: Room, nameTag: bigint): Member {
    const random = this.#p.random;
    const token = view(random(TOKEN_LEN)), inc = view(random(EPOCH_LEN));
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
}
