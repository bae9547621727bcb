/**
 * HELLO, registration (`docs/protocol.md` 6.3): the cookie first (a spoofed HELLO costs no
 * signature check), a budget of signature checks per source, the room's signature, a repeated
 * HELLO answered with the same WELCOME, admission limits, the name tag, and then a new member:
 * WELCOME, introductions both ways with the rest of its room, its ROSTER, and a reachability
 * check if it offers to be a supernode. Pure: tokens and incarnations come from the registry's
 * injected random source.
 *
 * Names bind to identities: a HELLO for a name tag held by a member with the same owner tag is
 * the same person back after a lost BYE or a crash, and the old registration is removed at once
 * (LEFT `Replaced`) so the newcomer takes the name itself. A member so replaced cannot in turn
 * take the name back for {@link REPLACED_KEEP} (a replayed HELLO of the ghost, or a second
 * process of one identity, gets NameTaken instead), so two registrations never evict each other
 * in turn.
 *
 * @module
 */
import { bytesEqual } from "../core/bytes.ts";
import { sourceKey, TokenBucket } from "../core/limits.ts";
import { ed25519PublicKey, ed25519Verify } from "../crypto/ed25519.ts";
import { peerIdOf } from "../crypto/peer_id.ts";
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
import { COOKIE_ROTATION, type Cookies } from "./cookies.ts";
import type { Introductions } from "./introductions.ts";
import {
  idNum,
  idOf,
  type Member,
  nameOf,
  ownerIs,
  type Room,
  tagNum,
  usable,
  view,
} from "./member.ts";
import { RoomKeys } from "./room_keys.ts";
import type { Members } from "./members.ts";
import type { RegistryOptions } from "./options.ts";
import type { Outbox } from "./outbox.ts";
import type { Reach } from "./reach.ts";
import { SpentNonces } from "./spent_nonces.ts";
import { difficultyFor } from "./pressure.ts";
import { puzzleSolved } from "../crypto/puzzle.ts";

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
  /**
   * With a cluster: takes a member of another server over when its peer registers here (the
   * same room, name tag and owner), returning it (its incarnation is kept); undefined refuses.
   */
  takeOver?: (stub: Member, roomHex: string, nameTag: bigint, owner: Uint8Array) =>
    | Member
    | undefined;
  /**
   * With a cluster that shares cookies: true when a HELLO with id `num` may carry the shared
   * cookie at `now` (a member of ours, or one whose server went silent: a failover); otherwise
   * it needs this server's own, so that a HELLO replayed at another server gets only a COOKIE.
   */
  sharedCookie?: (num: bigint, now: number) => boolean;
  /**
   * With a cluster: a signed HELLO with id `num` into room `roomHex`: the other servers' members
   * of the room (and `num`, if it is one of theirs) are held in full from now on.
   */
  interest?: (now: number, roomHex: string, num: bigint) => void;
  /**
   * With a cluster: the other servers a new member is told in its WELCOME, and the keepalive it
   * is asked to keep (s); undefined while no other server is known.
   */
  clusterServers?: () => { keepalive: number; servers: Endpoint[] } | undefined;
}

/** Most source addresses with a signature-check budget remembered. */
const MAX_HELLO_BUCKETS = 10_000;

/**
 * How long a replaced member's id may not take its name back, in ms: two cookie periods, as long
 * as a captured HELLO of it can pass the cookie check.
 */
export const REPLACED_KEEP = 2 * COOKIE_ROTATION;

/** Most replaced ids remembered (the oldest is forgotten first). */
const MAX_REPLACED = 4_096;

/** Registers peers. */
export class Registration {
  #o: RegistryOptions;
  #p: RegistrationParts;
  /** Signature-check budgets per source address. */
  #helloBuckets = new Map<string, TokenBucket>();
  /** Ids of replaced members, with when they were replaced, oldest first. */
  #replaced = new Map<bigint, number>();
  /** Nonces that registered someone: a HELLO is good for one registration. */
  #spent = new SpentNonces();
  /** The verifying keys of the rooms registered into lately. */
  #roomKeys = new RoomKeys();

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
    const shared = this.#p.sharedCookie?.(idNum(m.id), now) ?? false;
    if (!this.#p.cookies.routable(from, m.id, m.cookie, m.nonce, shared)) return;
    // Under pressure, the puzzle (one hash to check) before any signature check.
    const difficulty = difficultyFor(members.size, this.#o.maxPeers, this.#o.pressureAt);
    if (!puzzleSolved(difficulty, m.cookie, m.id, m.nonce, m.pow) && !members.get(idNum(m.id))) {
      out.drop("hello-puzzle");
      return this.#p.cookies.askPuzzle(from, m.id, m.nonce, difficulty);
    }
    if (!this.#helloBudget(now, sourceKey(from.hostname))) return out.drop("hello-rate");
    const only = this.#o.onlyRoom;
    if (only && !bytesEqual(only, m.room)) {
      out.drop("hello-other-room");
      return out.refuse(from, m.nonce, RefuseCode.Invalid, "This supernode serves only its room");
    }
    const roomHex = idHex(m.room), nameTag = tagNum(m.nameTag);
    let existing = members.room(roomHex);
    // Only a holder of the room key may register into the room (the id is its public key).
    const roomKey = this.#roomKeys.get(roomHex, m.room);
    const input = helloSigningInput(m);
    if (!roomKey || !ed25519Verify(roomKey, input, m.signature)) {
      out.drop("hello-bad-signature");
      return out.refuse(from, m.nonce, RefuseCode.Invalid, "Bad room signature");
    }
    // The id is its key's (lib/crypto/peer_id.ts): only the holder of that key registers it.
    if (!this.#ownsId(m, input)) {
      out.drop("hello-bad-id");
      return out.refuse(from, m.nonce, RefuseCode.Invalid, "Peer id not proven; restart join");
    }
    const num = idNum(m.id);
    // A cluster holds the other servers' members of this room in full from here on.
    this.#p.interest?.(now, roomHex, num);
    existing = members.room(roomHex);
    const known = members.get(num);
    // A member of another cluster server failing over to us keeps its incarnation.
    const moved = known?.home && this.#p.takeOver?.(known, roomHex, nameTag, m.owner);
    if (known && !moved) return this.#repeated(now, from, m, known, roomHex, nameTag);
    // A HELLO that registered its sender once, who is gone now: replayed, never acted on again.
    if (this.#spent.has(num, m.nonce)) return out.drop("hello-replayed");
    const holder = existing && members.holder(existing, nameTag);
    const replacing = holder !== undefined && this.#mayReplace(holder, m.owner, num);
    if (replacing) this.#replace(now, holder);
    const room = members.room(roomHex);
    const refusal = members.admit(from, roomHex, room);
    if (refusal) return out.refuse(from, m.nonce, refusal.code, refusal.message);
    if (holder && !replacing) {
      return out.refuse(from, m.nonce, RefuseCode.NameTaken, "Name taken in this room");
    }
    this.#register(now, from, m, room ?? newRoom(roomHex), nameTag, moved || undefined);
  }

  /** True when `m`'s id is derived from its id key and the id key signed `input`. */
  #ownsId(m: Hello, input: Uint8Array): boolean {
    if (!bytesEqual(peerIdOf(m.idKey), m.id)) return false;
    const key = ed25519PublicKey(m.idKey);
    return key !== undefined && ed25519Verify(key, input, m.idSignature);
  }

  /** Forgets the ids of members replaced more than {@link REPLACED_KEEP} ago. */
  prune(now: number): void {
    this.#spent.prune(now);
    for (const [num, at] of this.#replaced) {
      if (now - at < REPLACED_KEEP) break;
      this.#replaced.delete(num);
    }
  }

  /**
   * True when the registration with id `num` and owner tag `owner` may take `holder`'s name:
   * the same identity (owner tag), and not a registration that was itself replaced lately.
   */
  #mayReplace(holder: Member, owner: Uint8Array, num: bigint): boolean {
    return ownerIs(holder, owner) && !this.#replaced.has(num);
  }

  /** Removes `holder`, a ghost of the identity now registering again (LEFT Replaced). */
  #replace(now: number, holder: Member): void {
    this.#p.members.remove(holder, "replaced");
    this.prune(now);
    if (this.#replaced.size >= MAX_REPLACED) {
      this.#replaced.delete(this.#replaced.keys().next().value!);
    }
    this.#replaced.delete(holder.num);
    this.#replaced.set(holder.num, now);
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
      known.room.hex !== roomHex || known.nameTag !== nameTag || !ownerIs(known, m.owner) ||
      !sameEndpoint(known.addr, from)
    ) {
      return this.#p.out.refuse(from, m.nonce, RefuseCode.Invalid, "Peer id in use; restart join");
    }
    this.#p.members.touch(known, now);
    known.privateEndpoints = usable(m.privateEndpoints);
    this.#welcome(known, m.nonce);
  }

  /**
   * WELCOME; in a cluster it carries the other servers and, when the cluster shares cookies, the
   * shared one, so that the peer can fail over from its first moment without a COOKIE round trip
   * (one datagram where a SERVERS and a COOKIE followed it before protocol 8).
   */
  #welcome(p: Member, nonce: Uint8Array): void {
    const cookies = this.#p.cookies;
    let sharedCookie: Uint8Array | undefined;
    if (cookies.shared) {
      p.cookieAt = cookies.period;
      sharedCookie = cookies.sharedCookieFor(idOf(p), p.addr);
    }
    this.#p.introductions.welcome(p, nonce, sharedCookie, this.#p.clusterServers?.());
  }

  /** Makes the new member and tells it and its room: WELCOME, INTROs, ROSTER, REACH. */
  #register(
    now: number,
    from: Endpoint,
    m: Hello,
    room: Room,
    nameTag: bigint,
    moved: Member | undefined,
  ): void {
    const { members, introductions, out } = this.#p;
    const member = this.#newMember(now, from, m, room, nameTag);
    if (moved) [member.inc0, member.inc1] = [moved.inc0, moved.inc1];
    members.add(member);
    this.#spent.spend(now, member.num, m.nonce);
    out.event({
      type: "registered",
      room: room.short,
      name: nameOf(member),
      addr: from,
      relayOnly: (m.flags & FLAG_RELAY_ONLY) !== 0,
    });
    this.#welcome(member, m.nonce);
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
    const owner = view(m.owner);
    return {
      num: idNum(m.id),
      dig: idDigest(m.id) | 0,
      tok0: token.getInt32(0),
      tok1: token.getInt32(4),
      seq: 0,
      nameTag,
      own0: owner.getInt32(0),
      own1: owner.getInt32(4),
      own2: owner.getInt32(8),
      own3: owner.getInt32(12),
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
      lastWrongToken: -Infinity,
      cookieAt: this.#p.cookies.period,
      relay: undefined,
      older: undefined,
      newer: undefined,
    };
  }
}

/** A room without members yet, keyed by `key` (its id, `hex`, is the key's public key). */
function newRoom(hex: string): Room {
  return { hex, short: hex.slice(0, 8), members: new Map(), digest: 0 };
}
