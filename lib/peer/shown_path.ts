/**
 * What the user was shown of one remote peer's path, and whether a change is news: a `peer`
 * event tells the path (direct or relayed); a `left` only follows a peer that was shown. A
 * direct path that was shown and died is not shown as relayed until the peer is heard through
 * the relay (it may have stopped answering at all: "relayed" would claim what nobody knows);
 * likewise a peer that came back after departing, until something from it authenticates. The
 * same direct path selected again (its doubt lifted) is no news.
 *
 * Pure bookkeeping: the remote peer (`lib/peer/remote.ts`) asks, then reports the event.
 *
 * @module
 */
import { type Endpoint, sameEndpoint } from "../wire/address.ts";

/** What to do about a path the path machine decided on. */
export type PathNews =
  /** Show it (a `peer` event). */
  | "show"
  /** A relayed path held back until the peer is heard through the relay. */
  | "hold"
  /** Nothing: the same direct path as shown. */
  | "same";

/** What one remote peer's user was shown. */
export class ShownPath {
  /** A path was decided (or data arrived) since the peer was last introduced. */
  announced = false;
  #shown = false;
  #path: "direct" | "relay" | null = null;
  #addr: Endpoint | null = null;
  #held = false;
  /** Back after departing and not heard from since. */
  #returned = false;

  /** True once a `peer` event showed it since it was last introduced (and until it left). */
  get shown(): boolean {
    return this.#shown;
  }

  /** True while a relayed path waits to be shown (see {@link news}). */
  get held(): boolean {
    return this.#held;
  }

  /** A `peer` event showed `path` (at `addr`, when direct). */
  showed(path: "direct" | "relay", addr: Endpoint | null): void {
    this.announced = true;
    this.#shown = true;
    this.#path = path;
    this.#addr = addr;
    if (path === "direct") this.#held = false;
  }

  /** What to do about `path` (at `addr`), decided by the path machine. */
  news(path: "direct" | "relay", addr: Endpoint | null): PathNews {
    this.announced = true;
    this.#held = path === "relay" && (this.#path === "direct" || this.#returned);
    if (this.#held) return "hold";
    const same = path === "direct" && this.#path === "direct" && this.#addr !== null &&
      addr !== null && sameEndpoint(this.#addr, addr);
    return same ? "same" : "show";
  }

  /** Something from the peer authenticated: it is no longer a doubtful return. */
  heard(): void {
    this.#returned = false;
  }

  /**
   * A frame came from the peer through the relay (`direct`: a direct path is selected again):
   * true when the relayed path held back is to be shown now.
   */
  heardRelayed(direct: boolean): boolean {
    if (!this.#held || direct) return false;
    this.#held = false;
    return true;
  }

  /** It left (or was replaced): it will not be shown as leaving again. */
  hide(): void {
    this.#shown = false;
  }

  /** It came back after departing: nothing about it is shown yet. */
  returned(): void {
    this.announced = false;
    this.#path = null;
    this.#addr = null;
    this.#held = false;
    this.#returned = true;
  }
}
