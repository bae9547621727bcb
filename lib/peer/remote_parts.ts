/**
 * The parts one remote peer is made of, put together: its admission (who it is), the pair's
 * link and the handshake traffic, the reliable channel, the control frames, the route (path,
 * relay, birthday search, path news), what it is told of us, its inbox, its outbox, its
 * introduction epochs and its signs of life. {@link RemotePeer} (`lib/peer/remote.ts`) makes
 * them once with {@link remoteParts} and coordinates them. Pure.
 *
 * @module
 */
import { idHex } from "../wire/header.ts";
import { HandshakeTransport } from "./handshake/transport.ts";
import { SecureLink } from "./handshake/secure_link.ts";
import { ControlFrames } from "./control_frames.ts";
import { PeerAdmission } from "./remote_admission.ts";
import { RemoteChannel } from "./remote_channel.ts";
import type { Introduction, RemoteContext } from "./remote_context.ts";
import { IntroEpochs } from "./remote_epochs.ts";
import { RemoteHandshake } from "./remote_handshake.ts";
import { RemoteInbox } from "./remote_inbox.ts";
import { RemoteOutbox } from "./remote_outbox.ts";
import { RemoteRoute } from "./remote_route.ts";
import { RemoteTell } from "./remote_tell.ts";
import { Responsiveness } from "./responsiveness.ts";

/** The parts of one remote peer. */
export interface RemoteParts {
  /** Its name, fingerprint, warnings, and whether it is refused for good. */
  readonly admission: PeerAdmission;
  /** The pair's link: the two handshakes and their keys. */
  readonly secure: SecureLink;
  /** Handshake messages in and out: relayed, and directly with cookies that prove paths. */
  readonly hs: RemoteHandshake;
  /** The reliable channel, where its ACKs go back, the reassembly of its messages. */
  readonly channel: RemoteChannel;
  /** ANNOUNCE, CANDIDATES, NAT, RELAYS: what we owe the peer, what it told us. */
  readonly control: ControlFrames;
  /** The path, the relay, the birthday search and what the user is told of them. */
  readonly route: RemoteRoute;
  /** What the peer is told of us. */
  readonly tell: RemoteTell;
  /** What its authenticated frames come to. */
  readonly inbox: RemoteInbox;
  /** What we send it, sealed, direct or relayed. */
  readonly tx: RemoteOutbox;
  /** The last epoch from each source of introductions, and the one it said GOODBYE under. */
  readonly epochs: IntroEpochs;
  /** Its signs of life: when it was heard from, when it acknowledged, "not responding". */
  readonly alive: Responsiveness;
}

/** What the parts read of their remote as it changes. */
export interface RemoteState {
  /** The peer's current introduction. */
  intro(): Introduction;
  /** True when frames may go out (established and present). */
  sendable(): boolean;
}

/** The u32 a fresh channel to this peer sends on: taken from the pair's epoch. */
function streamOf(epoch: Uint8Array): number {
  return ((epoch[0]! << 24) | (epoch[1]! << 16) | (epoch[2]! << 8) | epoch[3]!) >>> 0;
}

/** Makes the parts of the remote first introduced by `intro` at `now`. */
export function remoteParts(
  ctx: RemoteContext,
  now: number,
  intro: Introduction,
  state: RemoteState,
): RemoteParts {
  const key = idHex(intro.id);
  const self = ctx.self;
  const admission = new PeerAdmission(key);
  const alive = new Responsiveness(now);
  const epochs = new IntroEpochs(intro);
  const control = new ControlFrames();
  const channel = new RemoteChannel(ctx.settings.reliable, streamOf(intro.epoch));
  const secure = new SecureLink({
    now,
    myId: self.id,
    theirId: intro.id,
    roomId: self.roomId,
    myName: self.name(),
    noise: self.noise,
  });
  const tx = new RemoteOutbox(ctx, secure, key);
  const route = new RemoteRoute({
    ctx,
    key,
    who: admission,
    tx,
    channel,
    control,
    intro: state.intro,
    leader: () => secure.leader,
  });
  const tell = new RemoteTell(control, route, ctx.view, state.sendable);
  const inbox = new RemoteInbox({
    ctx,
    who: admission,
    channel,
    route,
    alive,
    control,
    secure,
    epochs,
    epoch: () => state.intro().epoch,
  });
  const transport = new HandshakeTransport({
    id: self.id,
    random: ctx.shared.random,
    budget: ctx.shared.handshakeBudget,
  }, intro.id);
  const hs = new RemoteHandshake({
    secure,
    transport,
    tx,
    route,
    place: () => ({
      relayOnly: ctx.settings.relayOnly || state.intro().relayOnly,
      candidates: state.intro().candidates,
    }),
  });
  return { admission, secure, hs, channel, control, route, tell, inbox, tx, epochs, alive };
}
