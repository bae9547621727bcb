/**
 * Who is in the room: an INTRO makes a remote peer (or brings a departed one back, or updates
 * its endpoints), a GOODBYE from the peer itself or a LEFT departs it, and departed peers are
 * forgotten after a while (the limits are {@link PeerTable}'s). The server's word counts; our
 * supernode's on who left or is present counts only while the server is silent (the caller says
 * which, `inCharge`). A hostile server cannot make the room larger than a ROSTER can list, nor
 * key a forgotten peer again under its old epoch.
 *
 * The server's roster is not the truth about peers we can reach. A present peer a ROSTER leaves
 * out (a restarted server that does not know it yet), or that the server expired while a direct
 * path to it still works, becomes _unlisted_: still shown, still sent to, lines to it queued; if
 * it is introduced again it simply carries on. Only when {@link UNLISTED_GRACE} passed, no path
 * to it works (neither direct nor through a supernode that answers) and it has been silent for
 * {@link UNLISTED_SILENCE} does it depart, as `gone`. The exception follows our own stop: a peer
 * the same run of the server (its boot id) listed before, left out of a roster that answers what
 * we sent after waking, and not heard from since, departs at once: that server dropped it (it
 * left, or was expired) while we were stopped, and its goodbye and the server's LEFT never reached
 * us (our socket overflowed, or the server had expired us too). What we knew of its path is as
 * old as our stop, so only its silence since counts.
 * A peer whose handshake shows the identity of another remote (the same user back under a new
 * id) replaces it: the old one is forgotten at once, with one `left` if it was shown.
 *
 * @module
 */
import { STALL_GRACE } from "../core/stall.ts";
import { countDrop, type Drops } from "./drops.ts";
import { undelivered, type Warning } from "./identity_policy.ts";
import type { PeerTable } from "./peer_table.ts";
import { RemotePeer } from "./remote.ts";
import type { Introduction, RemoteContext } from "./remote_context.ts";
import { idHex } from "../wire/header.ts";
import { idDigest, MAX_ROOM_SIZE } from "../wire/server_msg.ts";

/**
 * How long a present peer the server does not list is still shown and sent to without a working
 * path, at least, in ms: longer than a keepalive interval, so a peer that re-registers with a
 * restarted server at its next PING is back in time.
 */
export const UNLISTED_GRACE = 30_000;

/**
 * How long an unlisted peer without a working path must also have been silent (nothing
 * authenticated came from it) before it departs, in ms: as long as a server keeps a silent
 * member (its default expiry), so a peer that was merely stopped when the server restarted is
 * not told to have left before a server would have expired it.
 */
export const UNLISTED_SILENCE = 75_000;

/**
 * Why a peer left: it said goodbye (or the server says it did, or replaced it), the server
 * expired it, or it was unlisted and unreachable for {@link UNLISTED_GRACE} (or a newer
 * instance of its identity took its place).
 */
export type LeftReason = "bye" | "expired" | "gone";

/** What membership reports to the user. */
export type MembershipEvent =
  /** A peer that was shown left (the others leave silently). */
  | { type: "left"; name: string; reason: LeftReason }
  /** A forgotten peer's undelivered messages (kind `undelivered`). */
  | Warning;

/**
 * The room's membership, kept in a {@link PeerTable}.
 *
 * Driving it: after any call, drain {@link pollTouched} (each remote peer it made or touched,
 * in order: drain that peer's own queues) until undefined, then {@link pollEvent}, then
 * {@link pollGone}.
 */
export class Membership {
  #peers: PeerTable;
  #ctx: RemoteContext;
  #drops: Drops;
  #touched: RemotePeer[] = [];
  #events: MembershipEvent[] = [];
  /** Keys of remotes that left (departed or replaced), for the parts that keep state per peer. */
  #gone: string[] = [];
  #synced = false;
  /** When we last woke up late (the process had been stopped; see {@link stalled}). */
  #wokeAt = -Infinity;
  /** The server run (boot id, hex) whose INTRO or ROSTER last listed each present peer. */
  #listedBy = new Map<string, string>();
  /** After a stop, until a roster read after its hold: the unlisted count in our digest. */
  #confirming = false;

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

  /**
   * The roster digest our PINGs carry: the peers the server lists as we hold it
   * ({@link PeerTable.digest}); after a stop, until a roster read after its hold came, the
   * unlisted peers too, so that the server, which may have dropped them meanwhile, answers with a
   * ROSTER that says so (see {@link roster}).
   */
  get digest(): number {
    let d = this.#peers.digest;
    if (!this.#confirming) return d;
    for (const r of this.#peers.values()) {
      if (r.present && this.#peers.isUnlisted(r)) d ^= idDigest(r.id);
    }
    return d >>> 0;
  }

  /** The next remote peer made or touched, whose queues the caller drains. */
  pollTouched(): RemotePeer | undefined {
    return this.#touched.shift();
  }

  /** The next event, if any. */
  pollEvent(): MembershipEvent | undefined {
    return this.#events.shift();
  }

  /**
   * The key of the next remote that left the room (departed, or replaced by a newer instance of
   * its identity), so that what is kept per peer elsewhere (file transfers' bulk state) goes
   * with it. Drained with {@link pollEvent}; at most {@link MAX_ROOM_SIZE} wait.
   */
  pollGone(): string | undefined {
    return this.#gone.shift();
  }

  #left(key: string): void {
    this.#gone.push(key);
    if (this.#gone.length > MAX_ROOM_SIZE) this.#gone.shift();
  }

  /**
   * An INTRO's introduction (never of ourselves), from our supernode when `fromSupernode`, else
   * from the server whose run has boot id `boot` (hex; undefined before a WELCOME told it).
   */
  intro(now: number, intro: Introduction, fromSupernode: boolean, boot?: string): void {
    const key = idHex(intro.id);
    if (!fromSupernode && boot !== undefined) this.#listedBy.set(key, boot);
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
    if (returning && known.saidGoodbye(idHex(intro.epoch))) {
      return this.#drop("intro-after-goodbye");
    }
    known.reintroduce(now, intro);
    if (returning) this.#peers.returned(known);
    else if (!fromSupernode) this.#peers.relist(known);
    if (fromSupernode) known.refreshRoute(now);
    this.#touched.push(known);
  }

  /**
   * A LEFT about peer `key`. From our supernode it no longer relays to that peer (the relay
   * changes); the peer departs only when the sender is `inCharge`, and not when the server
   * expired it while a direct path to it still works (it is unlisted instead).
   */
  left(now: number, key: string, reason: LeftReason, fromSupernode: boolean, inCharge: boolean) {
    const r = this.#peers.get(key);
    if (fromSupernode) this.refresh(now, r);
    if (!inCharge || !r) return;
    // An expiry says the server heard nothing from the peer: not the last word while a direct
    // path to it works, nor right after we woke from a stop (the LEFT may have waited in our
    // socket while the peer came back and registered again): it gets a grace to be listed again.
    const stale = now - this.#wokeAt < UNLISTED_GRACE;
    if (reason === "expired" && (r.direct || stale)) this.#peers.unlist(r, now + UNLISTED_GRACE);
    else this.#depart(now, r, reason);
  }

  /** A GOODBYE from remote `r` itself: it departs at once. */
  goodbye(now: number, r: RemotePeer): void {
    this.#depart(now, r, "bye");
  }

  /**
   * A ROSTER listing `ids`, from the server run with boot id `boot` (hex): the present peers it
   * leaves out are unlisted, or depart when that run listed them before (see the module); those
   * it lists and we held unlisted are listed again.
   */
  roster(
    now: number,
    ids: readonly Uint8Array[],
    inCharge: boolean,
    registered: boolean,
    boot?: string,
  ): void {
    if (!inCharge) return;
    if (registered) this.#synced = true;
    const listed = new Set(ids.map(idHex));
    // Within the grace after our last stop, and read after its hold: an answer to what we sent
    // since waking, not a roster that waited in our socket.
    const held = this.#wokeAt + STALL_GRACE;
    const fresh = registered && boot !== undefined && now >= held &&
      now < this.#wokeAt + UNLISTED_GRACE;
    const dropped: RemotePeer[] = [];
    for (const r of this.#peers.values()) {
      if (!r.present) continue;
      if (listed.has(r.key)) {
        this.#peers.relist(r);
        if (boot !== undefined) this.#listedBy.set(r.key, boot);
      } else if (fresh && this.#listedBy.get(r.key) === boot && r.heardAt < held) dropped.push(r);
      else if (!this.#peers.isUnlisted(r)) this.#peers.unlist(r, now + UNLISTED_GRACE);
    }
    for (const r of dropped) this.#depart(now, r, "gone");
    if (fresh) this.#confirming = false;
  }

  /**
   * Remote `r`'s handshake showed its identity: another remote with the same fingerprint (an
   * earlier instance of that user, present or departed) is forgotten at once, silently but for
   * one `left` if it was shown.
   */
  identified(r: RemotePeer): void {
    for (const other of [...this.#peers.values()]) {
      if (other === r || other.fingerprint !== r.fingerprint) continue;
      if (other.shown) this.#events.push({ type: "left", name: other.name, reason: "gone" });
      other.hide();
      this.#peers.drop(other);
      this.#listedBy.delete(other.key);
      this.#left(other.key);
    }
  }

  /**
   * Advances timers: unlisted peers whose grace ended depart unless a path to them works (then
   * they get another grace) or they were heard from too recently (then they are looked at again
   * once they have been silent long enough), and old departures are forgotten.
   */
  handleTimeout(now: number): void {
    if (now >= this.#wokeAt + UNLISTED_GRACE) this.#confirming = false;
    for (const r of this.#peers.unlistedDue(now)) {
      const quietUntil = r.heardAt + UNLISTED_SILENCE;
      if (r.reachable) this.#peers.unlist(r, now + UNLISTED_GRACE);
      else if (quietUntil > now) this.#peers.unlist(r, quietUntil);
      else this.#depart(now, r, "gone");
    }
    this.forget(now);
  }

  /**
   * We were not running until `now` (the process was stopped): the server's word on who is
   * unlisted is older than it looks, so each unlisted peer gets a grace from now, time to
   * register with us again and for our own registration to be checked.
   */
  stalled(now: number): void {
    this.#wokeAt = now;
    this.#confirming = true;
    this.#peers.postponeUnlisted(now + UNLISTED_GRACE);
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
      if (r.outstanding > 0 && r.established) this.#events.push(undelivered(r, r.outstanding));
    }
  }

  #depart(now: number, r: RemotePeer, reason: LeftReason): void {
    const shown = r.shown;
    if (!this.#peers.depart(now, r)) return;
    this.#listedBy.delete(r.key);
    this.#left(r.key);
    // Only a peer shown since its last introduction leaves visibly; the others leave silently.
    if (shown) this.#events.push({ type: "left", name: r.name, reason });
    this.forget(now);
  }

  #drop(reason: string): void {
    countDrop(this.#drops, reason);
  }
}
