/**
 * What one remote peer is told of us, sealed: our extra candidates, what we know of our NAT's
 * mapping, our relay RTTs (for its supernode choice), that we just registered with the server
 * again (SERVER_HINT), and the control frames owed since a new path started
 * ({@link ControlFrames}, `lib/peer/control_frames.ts`). Nothing goes before the pair is
 * established and while the peer is away. {@link RemotePeer} (`lib/peer/remote.ts`) owns one per
 * peer as `tell`. Pure.
 *
 * @module
 */
import { InnerKind } from "../wire/peer_frame.ts";
import type { ControlFrames, OurFacts } from "./control_frames.ts";
import type { ClientView } from "./remote_context.ts";
import type { RemoteRoute } from "./remote_route.ts";

/** What one remote peer is told of us. The remote's owner drains its output afterwards. */
export class RemoteTell {
  #control: ControlFrames;
  #route: RemoteRoute;
  #ours: OurFacts;
  #sendable: () => boolean;

  /**
   * Tells through `route` what `view` knows of us, with `control`'s bookkeeping; only while
   * `sendable` (established and present).
   */
  constructor(
    control: ControlFrames,
    route: RemoteRoute,
    view: ClientView,
    sendable: () => boolean,
  ) {
    this.#control = control;
    this.#route = route;
    this.#sendable = sendable;
    this.#ours = {
      candidates: () => view.extraCandidates(),
      nat: () => view.nat(),
      relays: () => view.relays(),
    };
  }

  /** Tells the peer our extra candidates (repeated whenever a new path starts). */
  candidates(now: number): void {
    this.#send(now, this.#control.candidates(this.#ours, this.#sendable()));
  }

  /** Tells the peer what we know of our NAT's mapping (for birthday searches). */
  nat(now: number): void {
    this.#send(now, this.#control.nat(this.#ours, this.#sendable()));
  }

  /** Tells the peer our RTTs to the server and our supernode (for the relay choice). */
  relays(now: number): void {
    this.#send(now, this.#control.relays(this.#ours, this.#sendable()));
  }

  /**
   * Tells the peer we just registered with the server again (SERVER_HINT, along the path), so it
   * checks its own registration at once; `boot` is the server's boot id, or zeros.
   */
  serverHint(now: number, boot: Uint8Array): void {
    if (this.#sendable()) this.#route.send(now, { kind: InnerKind.ServerHint, boot });
  }

  /** Sends what is owed (an ANNOUNCE first, then what a new path repeats). */
  owed(now: number): void {
    for (const owed of this.#control.takeOwed(this.#ours)) this.#send(now, owed);
  }

  #send(now: number, owed: ReturnType<ControlFrames["nat"]>): void {
    if (owed) this.#route.send(now, owed.frame, owed.relayed ? null : undefined);
  }
}
