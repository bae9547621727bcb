/**
 * Who is in the room, by the word of the rendezvous points: an INTRO makes a remote peer (or
 * brings a departed one back, or updates its endpoints), LEFT and ROSTER depart peers, and
 * departed peers are forgotten after a while (the limits are {@link PeerTable}'s). The
 * server's word counts; our supernode's on who left or is present counts only while the server
 * is silent (the caller says which, `inCharge`). A hostile server cannot make the room larger
 * than a ROSTER can list, nor key a forgotten peer again under its old epoch.
 *
 * @module
 */
import { countDrop, type Drops } from "./drops.ts";
import { type Notice, notice } from "./notices.ts";
import type { PeerTable } from "./peer_table.ts";
import { RemotePeer } from "./remote.ts";
import type { Introduction, RemoteContext } from "./remote_context.ts";
import { idHex } from "../wire/header.ts";
import { MAX_ROOM_SIZE } from "../wire/server_msg.ts";

/** Why a peer left: it said goodbye, the server expired it, or a roster no longer lists it. */
export type LeftReason = "bye" | "expired" | "gone";

/** What membership reports to the user. */
export type MembershipEvent =
  /** A peer that proved itself left (the others leave silently). */
  | { type: "left"; name: string; reason: LeftReason }
  /** A forgotten peer's undelivered messages (a notice of kind `undelivered`). */
  | Notice;

/**
 * The room's membership, kept in a {@link PeerTable}.
 *
 * Driving it: after any call, drain {@link pollTouched} (each remote peer it made or touched,
 * in order: drain that peer's own queues) until undefined, then {@link pollEvent}.
 */
export class Membership {
  #peers: PeerTable;
  #ctx: RemoteContext;
  #drops: Drops;
  #touched: RemotePeer[] = [];
  #events: MembershipEvent[] = [];
  #synced = false;

  /** Membership kept in `peers`, whose remote peers read `ctx`. */
  constructor(peers: PeerTable, ctx: RemoteContext, drops: Drops) {
    this.#peers = peers;
    this.#ctx = ctx;
    this.#drops = drops;
  }

  /**
   * True once the server's roster has arrived after registering: the peers present then are
   * known, so a message sent now reaches all of them.
   */
  get synced(): boolean {
    return this.#synced;
  }

  /** The next remote peer made or touched, whose queues the caller drains. */
  pollTouched(): RemotePeer | undefined {
    return this.#touched.shift();
  }

  /** The next event, if any. */
  pollEvent(): MembershipEvent | undefined {
    return this.#events.shift();
  }

  /** An INTRO's introduction (never of ourselves), from our supernode when `fromSupernode`. */
  intro(now: number, intro: Introduction, fromSupernode: boolean): void {
    const key = idHex(intro.id);
    const known = this.#peers.get(key);
    if (!known) {
      if (this.#peers.isRetired(key, idHex(intro.epoch))) return this.#drop("intro-retired-epoch");
      // No honest room is larger than a ROSTER can list: a flood of INTROs stops here.
      if (this.#peers.presentCount >= MAX_ROOM_SIZE) return this.#drop("intro-room-too-large");
      const r = new RemotePeer(this.#ctx, now, intro);
      this.#peers.add(r);
      this.#touched.push(r);
      return;
    }
    const returning = !known.present;
    known.reintroduce(now, intro);
    if (returning) this.#peers.returned(known);
    if (fromSupernode) known.refreshRoute(now);
    this.#touched.push(known);
  }

  /**
   * A LEFT about peer `key`. From our supernode it no longer relays to that peer (the relay
   * changes); the peer departs only when the sender is `inCharge`.
   */
  left(now: number, key: string, reason: LeftReason, fromSupernode: boolean, inCharge: boolean) {
    const r = this.#peers.get(key);
    if (fromSupernode) this.refresh(now, r);
    if (inCharge && r) this.#depart(now, r, reason);
  }

  /** A ROSTER listing `ids`: the present peers it does not list are gone. */
  roster(now: number, ids: readonly Uint8Array[], inCharge: boolean, registered: boolean): void {
    if (!inCharge) return;
    if (registered) this.#synced = true;
    const listed = new Set(ids.map(idHex));
    for (const r of this.#peers.values()) {
      if (r.present && !listed.has(r.key)) this.#depart(now, r, "gone");
    }
  }

  /** Re-settles `r` (if present) after the relay that reaches it may have changed. */
  refresh(now: number, r: RemotePeer | undefined): void {
    if (!r || !r.present) return;
    r.refreshRoute(now);
    this.#touched.push(r);
  }

  /** Forgets departed peers beyond the count or age limits (see {@link PeerTable.forget}). */
  forget(now: number): void {
    for (const r of this.#peers.forget(now)) {
      if (r.outstanding > 0 && r.established) {
        this.#events.push(notice({ kind: "undelivered", name: r.name, parts: r.outstanding }));
      }
    }
  }

  #depart(now: number, r: RemotePeer, reason: LeftReason): void {
    if (!this.#peers.depart(now, r)) return;
    // Only a peer that proved itself was ever shown; the others leave silently.
    if (r.established) this.#events.push({ type: "left", name: r.name, reason });
    this.forget(now);
  }

  #drop(reason: string): void {
    countDrop(this.#drops, reason);
  }
}
