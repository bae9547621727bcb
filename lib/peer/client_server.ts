/**
 * The client's intake of server messages, from the server or from the supernode we registered
 * with: our own registration's messages go to its link ({@link ServerLink} or, for a supernode,
 * {@link Supernodes.handleRegistration}); everything else must carry that registration's token
 * and a fresh sequence number, and is read as a {@link ServerStep} (an introduction, a departure,
 * a roster, a relayed peer frame) for the client (`lib/peer/client.ts`) to act on. A supernode's
 * word on who left or is present counts only while the server is not answering. Pure: the links
 * are passed in.
 *
 * @module
 */
import { compareBytes } from "../core/bytes.ts";
import type { Endpoint } from "../wire/address.ts";
import { idHex, MsgType } from "../wire/header.ts";
import { FLAG_SUPERNODE, LeftReason, type ServerMsg } from "../wire/server_msg.ts";
import { introductionOf, type LocalSite } from "./introductions.ts";
import type { Introduction } from "./remote_context.ts";
import type { ServerLink } from "./server_link.ts";
import type { SupernodeLink } from "./supernode.ts";
import type { Supernodes } from "./supernodes.ts";

/**
 * A decoded server message after the checks: dropped (counted by `reason`), taken by our
 * registration (`mine`), or another message for {@link serverStep}.
 */
export type Intake =
  | { kind: "drop"; reason: string }
  | { kind: "mine" }
  | { kind: "msg"; msg: ServerMsg };

/**
 * Takes message `m` from the server (`sup` absent; `link` is our server link; `from`: which of
 * its endpoints) or from our supernode `sup` (`link` is `sup.link`): our registration's own
 * messages are handled there;
 * the rest pass only with `link`'s token and a sequence number not seen before.
 */
export function serverIntake(
  now: number,
  m: ServerMsg,
  link: ServerLink,
  sup: SupernodeLink | undefined,
  sn: Supernodes,
  from?: Endpoint,
): Intake {
  const mine = sup ? sn.handleRegistration(now, sup, m) : link.handle(now, m, from);
  if (mine) return { kind: "mine" };
  // Everything else the server says carries our registration's token: forgeries stop here.
  if (!("token" in m) || !link.authentic(m.token)) {
    return { kind: "drop", reason: "server-bad-token" };
  }
  if ("seq" in m && !link.fresh(m.seq)) return { kind: "drop", reason: "server-replay" };
  return { kind: "msg", msg: m };
}

/**
 * What a checked server message asks of the client: a peer introduced (`supernodeAt`: where
 * the server found it serving as a supernode, from the server only), a peer gone, the roster, a
 * relayed peer frame, a REACH to send for another peer's check (from the server only), or a
 * drop. `inCharge`: the sender's word on membership counts now.
 */
export type ServerStep =
  | { kind: "drop"; reason: string }
  | { kind: "intro"; key: string; intro: Introduction; supernodeAt: Endpoint | null }
  | { kind: "left"; key: string; reason: "expired" | "bye"; inCharge: boolean }
  | { kind: "roster"; ids: Uint8Array[]; inCharge: boolean }
  | { kind: "relayed"; from: Uint8Array; payload: Uint8Array }
  | { kind: "check"; msg: Extract<ServerMsg, { type: typeof MsgType.Check }> };

/** Where the client stands when it reads a server message. */
export interface ServerReader {
  /** Our peer id (an INTRO of ourselves is dropped). */
  id: Uint8Array;
  /** Whether we can send to IPv6 addresses. */
  ipv6: boolean;
  /** Whether the server answers our registration now. */
  serverHealthy: boolean;
  /** Where we are (private candidates are taken only from peers on our site). */
  local?: LocalSite;
}

/** Reads a checked message `m` from the server, or from our supernode `sup`. */
export function serverStep(m: ServerMsg, at: ServerReader, sup?: SupernodeLink): ServerStep {
  const inCharge = !sup || !at.serverHealthy;
  switch (m.type) {
    case MsgType.Intro: {
      if (compareBytes(m.id, at.id) === 0) return { kind: "drop", reason: "intro-self" };
      const intro = introductionOf(m, sup?.key, at.ipv6, at.local);
      // Only the server's check makes a supernode (a supernode's own INTROs never do).
      const supernodeAt = !sup && (m.flags & FLAG_SUPERNODE) !== 0 ? m.publicEndpoint : null;
      return { kind: "intro", key: idHex(m.id), intro, supernodeAt };
    }
    case MsgType.Left: {
      const reason = m.reason === LeftReason.Expired ? "expired" : "bye";
      return { kind: "left", key: idHex(m.id), reason, inCharge };
    }
    case MsgType.Roster:
      return { kind: "roster", ids: m.ids, inCharge };
    case MsgType.Relayed:
      return { kind: "relayed", from: m.from, payload: m.payload };
    case MsgType.Check:
      // Only the server checks reachability; a supernode never asks.
      return sup ? { kind: "drop", reason: "unexpected-type" } : { kind: "check", msg: m };
    default:
      return { kind: "drop", reason: "unexpected-type" };
  }
}
