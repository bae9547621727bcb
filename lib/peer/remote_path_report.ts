/**
 * What one remote peer's user is told of its path: the `peer` events (direct, or relayed and by
 * whom) and `direct-lost`, from what the path machine decided, the relay that reaches the peer
 * now, and what was shown before ({@link ShownPath}, `lib/peer/shown_path.ts`); and which
 * direct path worked last; its `/peers` row. {@link RemotePeer} (`lib/peer/remote.ts`) feeds it
 * and resends what is in flight when it says so. Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import type { PathEvent } from "./path/path.ts";
import type { PeerInfo, RemoteOutput } from "./remote_context.ts";
import type { ShownPath } from "./shown_path.ts";

/** Who the peer is, as its `peer` events name it. */
export interface Shown {
  /** Its name in the room. */
  readonly name: string;
  /** Its identity's fingerprint (set once established). */
  readonly fingerprint: string | undefined;
}

/**
 * The path news of one peer.
 *
 * Driving it: after {@link announce}, {@link report} or {@link heardRelayed}, drain
 * {@link pollEvent} until undefined.
 */
export class PathReport {
  #shown: ShownPath;
  /**
   * The `/peers` row of established peer `who` (`fingerprint` set): `route` its direct path (or
   * null), `rtt` that path's, `relayName` the relay's name when not direct, `outstanding` its
   * messages queued or in flight. The path is `pending` until one was shown.
   */
  row(
    who: Shown,
    route: Endpoint | null,
    rtt: number | null,
    relayName: string | null,
    outstanding: number,
  ): PeerInfo {
    return {
      name: who.name,
      fingerprint: who.fingerprint!,
      path: this.#shown.announced ? (route ? "direct" : "relay") : "pending",
      addr: route,
      rtt,
      relayedBy: relayName,
      outstanding,
    };
  }

  /** The relay last reported (a supernode's name, or null for the server). */
  #relayedBy: string | null = null;
  #wasDirect = false;
  #lastDirect: { addr: Endpoint; via: number } | null = null;
  #events: RemoteOutput[] = [];

  /** The news told on top of what `shown` records of what the user saw. */
  constructor(shown: ShownPath) {
    this.#shown = shown;
  }

  /** The next event, if any. */
  pollEvent(): RemoteOutput | undefined {
    return this.#events.shift();
  }

  /** The relay last reported (a supernode's name, or null for the server). */
  get relayedBy(): string | null {
    return this.#relayedBy;
  }

  /** A direct path to it has worked (since it was last introduced). */
  get wasDirect(): boolean {
    return this.#wasDirect;
  }

  /** The direct path that worked last (kept when it died: a goodbye may still get there). */
  get lastDirect(): { addr: Endpoint; via: number } | null {
    return this.#lastDirect;
  }

  /** The path machine selected the direct path to `addr` from our socket `via`. */
  directWorked(addr: Endpoint, via: number): void {
    this.#wasDirect = true;
    this.#lastDirect = { addr, via };
  }

  /**
   * What the path machine decided (`changed`; undefined: nothing, but the relay may be another
   * now), with a direct path selected or not (`routed`) and the relay that reaches the peer
   * now (`relayName`). True when what is in flight should be resent the new way at once. A
   * direct path shown that died is not shown as relayed until the peer is heard through the
   * relay (see {@link ShownPath}).
   */
  report(
    changed: PathEvent | undefined,
    routed: boolean,
    relayName: string | null,
    who: Shown,
  ): boolean {
    if (!changed) {
      if (!this.#shown.announced || routed || relayName === this.#relayedBy) return false;
      if (this.#shown.held) this.#relayedBy = relayName;
      else this.announce("relay", null, null, true, relayName, who);
      return true;
    }
    const news = this.#shown.news(changed.path, changed.addr);
    if (news === "show") {
      this.announce(changed.path, changed.addr, changed.rtt, true, relayName, who);
    } else if (news !== "same") {
      // Held: the peer may have stopped answering altogether.
      this.#relayedBy = relayName;
      if (this.#wasDirect) this.#events.push({ type: "direct-lost" });
    }
    return true;
  }

  /**
   * A frame came from the peer through the relay (`routed`: a direct path is selected): a
   * relayed path held back is shown now.
   */
  heardRelayed(routed: boolean, relayName: string | null, who: Shown): void {
    if (this.#shown.heardRelayed(routed)) this.announce("relay", null, null, false, relayName, who);
  }

  /**
   * Shows `path` (to `addr`, with `rtt`); on the relay (`relayName`'s, or the server's), a
   * direct path that worked is told lost first unless `lost` is false.
   */
  announce(
    path: "direct" | "relay",
    addr: Endpoint | null,
    rtt: number | null,
    lost: boolean,
    relayName: string | null,
    who: Shown,
  ): void {
    this.#shown.showed(path, addr);
    const relayedBy = path === "relay" ? relayName : null;
    this.#relayedBy = relayedBy;
    // The direct path that worked failed (if this peer is our supernode, it is gone).
    if (path === "relay" && this.#wasDirect && lost) this.#events.push({ type: "direct-lost" });
    this.#events.push({
      type: "peer",
      name: who.name,
      fingerprint: who.fingerprint!,
      path,
      addr,
      rtt,
      ...(path === "relay" ? { relayedBy } : {}),
    });
  }
}
