/**
 * How the client's parts' outputs become the client's: a remote peer's datagrams as the
 * datagrams the client sends (direct ones as they are, RELAYs through our supernode or the
 * server, REPUNCH to the server), and the server link's and discovery's events as the user
 * sees them. Used by {@link Client} (`lib/peer/client.ts`) after every step that touched a
 * part. Pure.
 *
 * @module
 */
import { bytesEqual } from "../core/bytes.ts";
import { MsgType } from "../wire/header.ts";
import { encodeServerMsg } from "../wire/server_msg.ts";
import type { Transmit } from "../wire/transmit.ts";
import type { ClientEvent } from "./client_options.ts";
import { notice, type NoticeFact } from "./notices.ts";
import type { DiscoveryEvent } from "./discovery.ts";
import type { RemotePeer } from "./remote.ts";
import type { ServerLink, ServerLinkEvent } from "./server_link.ts";
import type { Supernodes } from "./supernodes.ts";

/**
 * Drains remote `r`'s datagrams: direct ones onto `out`, a REPUNCH request and RELAYs through
 * the server onto `out` (to `link`'s server), RELAYs through our supernode to `sn` (sent with
 * its own output). `id` is our peer id.
 */
export function remoteTransmits(
  r: RemotePeer,
  id: Uint8Array,
  link: ServerLink,
  sn: Supernodes,
  out: Transmit[],
): void {
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
    if (t.kind === "direct") {
      out.push(t.via ? { to: t.to, data: t.data, via: t.via } : { to: t.to, data: t.data });
      continue;
    }
    if (t.kind === "repunch") {
      const m = { type: MsgType.Repunch, id, target: r.id, token: link.token } as const;
      out.push({ to: link.server, data: encodeServerMsg(m) });
      continue;
    }
    const relay = { type: MsgType.Relay, from: id, to: r.id, payload: t.data } as const;
    const sup = sn.link;
    if (t.through !== null && sup?.key === t.through) {
      sn.send(sup, { ...relay, token: sup.link.token });
    } else out.push({ to: link.server, data: encodeServerMsg({ ...relay, token: link.token }) });
  }
}

/**
 * Whether a peer's SERVER_HINT naming server instance `boot` asks us to check our registration:
 * not when we are registered with that very instance (`mine`, our link's boot id).
 */
export function hintMatters(mine: Uint8Array | null, boot: Uint8Array): boolean {
  return !(mine && boot.some((b) => b !== 0) && bytesEqual(mine, boot));
}

/** What the user is shown of a server link event; `fingerprint` and `id` (hex) are ours. */
export function linkEventOf(e: ServerLinkEvent, fingerprint: string, id: string): ClientEvent {
  switch (e.type) {
    case "renamed":
      return notice({ kind: "renamed", wanted: e.wanted, name: e.name });
    case "refused":
      return notice({ kind: "refused", reason: e.message });
    case "ready":
      return { ...e, fingerprint, id };
    default:
      return e;
  }
}

/** What the user is told of a discovery event that is news for them (not one for the peers). */
export function discoveryNotice(
  e: Extract<DiscoveryEvent, { type: "mapping-notice" | "port-mapped" }>,
): NoticeFact {
  return e.type === "mapping-notice"
    ? { kind: "symmetric-nat", message: e.message }
    : { kind: "portmap", protocol: e.protocol, external: e.external };
}

/** The BYE to send to `link`'s server on leaving (we are peer `id`); none unless registered. */
export function byeOf(link: ServerLink, id: Uint8Array): Transmit | undefined {
  if (!link.registered) return undefined;
  return { to: link.server, data: encodeServerMsg({ type: MsgType.Bye, id, token: link.token }) };
}
