/**
 * What one remote peer's authenticated frames come to: the frame goes to the part it is for
 * (`lib/peer/remote_frames.ts`), and what is left is done here: DATA delivered and acknowledged
 * (its messages, and a `missed` notice for lines the peer gave up), ACKs clearing what waits
 * (and a `responding` notice when a silent peer answers again), chat envelopes decoded, GOODBYE
 * answered and recorded under the pair's epoch, SERVER_HINT, GOODBYE_ACK and file frames passed on
 * as outputs. A departed peer's
 * frames still count while it is kept. {@link RemotePeer} (`lib/peer/remote.ts`) owns one per
 * peer. Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import { type InnerFrame, InnerKind } from "../wire/peer_frame.ts";
import { ChatKind, decodeChat } from "../wire/chat_message.ts";
import type { ControlFrames } from "./control_frames.ts";
import { countDrop } from "./drops.ts";
import type { SecureLink } from "./handshake/secure_link.ts";
import { notice } from "./notices.ts";
import type { RemoteChannel } from "./remote_channel.ts";
import type { RemoteContext, RemoteOutput } from "./remote_context.ts";
import type { IntroEpochs } from "./remote_epochs.ts";
import {
  type AckFrame,
  type DataFrame,
  departedFrame,
  type FrameStep,
  presentFrame,
} from "./remote_frames.ts";
import type { RemoteRoute } from "./remote_route.ts";
import type { Responsiveness } from "./responsiveness.ts";

/** What an inbox reports: the remote's outputs, and `nick` when the peer renamed itself. */
export type InboxOutput = RemoteOutput | { type: "nick"; name: string };

/** The parts of its remote that an inbox drives. */
export interface InboxParts {
  /** The client as remotes see it (for the drop counters). */
  readonly ctx: RemoteContext;
  /** Its name, as events name it. */
  readonly who: { readonly name: string };
  /** The reliable channel with the peer. */
  readonly channel: RemoteChannel;
  /** How frames reach the peer. */
  readonly route: RemoteRoute;
  /** The peer's signs of life. */
  readonly alive: Responsiveness;
  /** ANNOUNCE, CANDIDATES, NAT, RELAYS. */
  readonly control: ControlFrames;
  /** The pair's link. */
  readonly secure: SecureLink;
  /** The introduction epochs (GOODBYE is recorded under the current one). */
  readonly epochs: IntroEpochs;
  /** The pair's current introduction epoch. */
  readonly epoch: () => Uint8Array;
}

/**
 * One remote's inbox.
 *
 * Driving it: {@link RemotePeer} calls {@link handle} with each authenticated, decoded frame
 * of an established peer, then drains {@link pollEvent} until undefined.
 */
export class RemoteInbox {
  #p: InboxParts;
  #events: InboxOutput[] = [];

  /** The inbox of the remote made of `parts`. */
  constructor(parts: InboxParts) {
    this.#p = parts;
  }

  /** The next event, if any. */
  pollEvent(): InboxOutput | undefined {
    return this.#events.shift();
  }

  /**
   * Handles frame `f` from the peer, from `from` (null: relayed) to our socket `via`; `present`
   * while the peer is in the room. True when the remote should send what is due now.
   */
  handle(
    now: number,
    f: InnerFrame,
    from: Endpoint | null,
    via: number,
    present: boolean,
  ): boolean {
    const { route } = this.#p;
    if (!present) {
      this.#departed(now, departedFrame(f), from, via);
      return false;
    }
    const path = route.path!;
    if (from) path.onDirectTraffic(now, from, via);
    const step = presentFrame(now, f, from, via, {
      path,
      control: this.#p.control,
      secure: this.#p.secure,
      search: route.search,
    });
    if (step.kind === "goodbye") {
      route.send(now, { kind: InnerKind.GoodbyeAck }, from, via);
      this.#p.epochs.goodbye(this.#p.epoch());
      this.#events.push({ type: "goodbye" });
      return false;
    }
    if (!this.#take(now, step, from, via, present)) return false;
    if (!from) this.#routeNews(() => route.heardRelayed());
    return true;
  }

  /** Does what is left of a frame's `step`; false when it was dropped. */
  #take(
    now: number,
    step: FrameStep,
    from: Endpoint | null,
    via: number,
    present: boolean,
  ): boolean {
    switch (step.kind) {
      case "drop":
        this.#drop(step.reason);
        return false;
      case "reply":
        this.#p.route.send(now, step.frame, from, via);
        break;
      case "data":
        this.#data(now, step.frame, from, via, present);
        break;
      case "ack":
        this.#ack(now, step.frame);
        break;
      case "server-hint":
        this.#events.push({ type: "server-hint", boot: step.boot });
        break;
      case "goodbye-ack":
        this.#events.push({ type: "goodbye-ack" });
        break;
      case "observed":
        if (from) this.#events.push({ type: "observed", observed: step.observed, from });
        break;
      case "file":
        this.#events.push({ type: "file", frame: step.frame });
        break;
    }
    return true;
  }

  /** A departed peer's frame (see {@link departedFrame}); what is owed goes now. */
  #departed(now: number, step: FrameStep, from: Endpoint | null, via: number): void {
    if (!this.#take(now, step, from, via, false) || step.kind === "reply") return;
    // No timers run while it is departed: what is owed goes now.
    const ack = this.#p.channel.takeAckOut();
    if (ack) this.#p.route.send(now, ack.frame, ack.to, ack.via);
  }

  /** An ACK from the peer: it clears what it acknowledges, and the peer is responding. */
  #ack(now: number, f: AckFrame): void {
    const oldest = this.#p.channel.oldestSentAt();
    this.#p.channel.onAck(now, f);
    // How long the oldest payload waited for its acknowledgement, if this ACK covered it.
    const after = this.#p.channel.oldestSentAt();
    if (oldest !== undefined && after !== oldest) this.#p.route.acked(now - oldest);
    if (this.#p.alive.acked(now)) {
      this.#events.push(notice({ kind: "responding", name: this.#p.who.name }));
    }
  }

  /** A DATA frame from the peer: delivered, acknowledged, its messages shown. */
  #data(now: number, f: DataFrame, from: Endpoint | null, via: number, present: boolean): void {
    const { channel, route, who } = this.#p;
    const got = channel.receive(now, f, from, via);
    for (const reason of got.drops) this.#drop(reason);
    // The peer gave lines up that never reached us: say so rather than skip them silently.
    if (got.missed > 0) {
      this.#events.push(notice({ kind: "missed", name: who.name, frames: got.missed }));
    }
    // Data proves the peer reachable: say so before its first message, even if the path
    // machine has not decided yet (it reports again when it does).
    if (got.delivered && present) this.#routeNews(() => route.announce(from));
    // A delayed ACK goes out from the remote's next step when due.
    if (got.ack) route.send(now, got.ack, from, via);
    for (const bytes of got.messages) {
      // An empty message is no message: a leaving peer's frame that gave lines up (its `base`
      // already told how many were missed).
      if (bytes.length === 0) continue;
      const m = decodeChat(bytes);
      if (!m.ok) this.#drop(m.reason);
      else if (m.value.kind === ChatKind.Nick) {
        this.#events.push({ type: "nick", name: m.value.name });
      } else this.#events.push({ type: "chat", msg: m.value });
    }
  }

  /** Runs `step` on the route and moves its path news into our events, in order. */
  #routeNews(step: () => void): void {
    step();
    const route = this.#p.route;
    for (let e = route.pollEvent(); e; e = route.pollEvent()) this.#events.push(e);
  }

  #drop(reason: string): void {
    countDrop(this.#p.ctx.shared.drops, reason);
  }
}
