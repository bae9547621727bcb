/**
 * How a client's parts are made from its options: our id and fingerprint, whether we send to
 * IPv6, the server link, discovery (STUN and port mapping), the supernode side, the peer table,
 * the birthday socket pool and membership, wired to one another in the order their randomness
 * is drawn; then the machinery over them ({@link wireParts}: drain, inbox, chat, file transfers,
 * the end of a step, leaving). {@link Client} (`lib/peer/client.ts`) drives what this returns.
 * Pure.
 *
 * @module
 */
import { peerIdKey } from "../crypto/peer_id.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { BirthdayPool } from "./path/birthday.ts";
import {
  type ClientOptions,
  type ClientParts,
  linkOptionsOf,
  type MadeParts,
  remoteContextOf,
} from "./client_options.ts";
import { Discovery } from "./discovery.ts";
import { isIPv6 } from "./introductions.ts";
import { Membership } from "./membership.ts";
import { PeerTable } from "./peer_table.ts";
import { ServerLink } from "./server_link.ts";
import { Supernodes } from "./supernodes.ts";
import type { Endpoint } from "../wire/address.ts";
import { ChatLog } from "./chat_log.ts";
import { ChatOut } from "./client_chat.ts";
import { ClientDrain } from "./client_drain.ts";
import type { DriveState } from "./client_drive.ts";
import { ClientFiles } from "./client_files.ts";
import { ClientInbox } from "./client_inbox.ts";
import { ClientLeave } from "./client_leave.ts";
import { StepEnd } from "./client_step.ts";
import type { Farewell } from "./farewell.ts";

/** Makes the parts of a client with `options`, counting drops in `drops`. */
export function makeParts(options: ClientOptions, drops: Record<string, number>): MadeParts {
  const peers = new PeerTable();
  const pool = new BirthdayPool();
  const ipv6 = options.ipv6 ?? [options.server, ...options.privateEndpoints].some(isIPv6);
  const idKey = peerIdKey(options.idSeed ?? options.random(32));
  const id = idKey.id;
  const linkOptions = linkOptionsOf(options, idKey);
  // The digest is the membership's (after a stop it asks the server to confirm who is unlisted).
  let members: Membership | undefined;
  const link = new ServerLink(linkOptions, () => members?.digest ?? peers.digest);
  const discovery = new Discovery({
    // Always ask the p2p server (it answers STUN on its port), plus any --stun servers.
    // (over UDP: a server reached over TCP or TLS is asked at its UDP endpoint, if we have one)
    stun: [...udpServers(options).slice(0, 1), ...(options.stun ?? [])],
    random: options.random,
    // Until the server's reachability check had its chance (see the client's REACH).
    holdOther: linkOptions.offerSupernode!,
    ...(options.portmap ? { portmap: options.portmap } : {}),
    relayOnly: options.relayOnly,
    server: link,
  });
  const supernodes = new Supernodes({
    id,
    linkOptions,
    server: link,
    relayOnly: options.relayOnly,
    ipv6,
    mode: options.supernode ?? "auto",
    limits: options.supernodeLimits ?? {},
    random: options.random,
    peers,
    drops,
  });
  const parts: ClientParts = { id, ipv6, link, discovery, supernodes, peers, pool, drops };
  return {
    ...parts,
    fingerprint: fingerprint(options.identity.publicKey),
    members: members = new Membership(peers, remoteContextOf(options, parts), drops),
  };
}

/** The client's machinery over its parts, as {@link wireParts} makes it. */
export interface WiredParts {
  /** Where the parts' datagrams and events become the client's. */
  drain: ClientDrain;
  /** Where incoming datagrams go. */
  inbox: ClientInbox;
  /** Chat lines out. */
  chat: ChatOut;
  /** File transfers with the peers. */
  files: ClientFiles;
  /** The end of every step. */
  end: StepEnd;
  /** Our goodbyes, once we leave. */
  leave: ClientLeave;
}

/**
 * Wires the client's machinery over parts `p` made from `options` (after {@link makeParts}: the
 * chat log's random id is drawn then); `step` and `farewell` are the client's own.
 */
export function wireParts(
  options: ClientOptions,
  p: MadeParts,
  step: DriveState,
  farewell: Farewell,
): WiredParts {
  const log = new ChatLog(options.random(4));
  const files = new ClientFiles(p.peers, p.drops);
  const drain = new ClientDrain({ parts: p, step, farewell, log, files });
  const inbox = new ClientInbox({
    parts: p,
    drain,
    farewell,
    relayOnly: options.relayOnly,
    helps: (options.supernode ?? "auto") !== "off",
    privates: options.privateEndpoints,
  });
  const chat = new ChatOut(p.peers, drain, log);
  const end = new StepEnd({ parts: p, drain, step, files, chat, inbox });
  const leave = new ClientLeave({ parts: p, drain, farewell, end });
  return { drain, inbox, chat, files, end, leave };
}

/** The servers of `o` we reach over UDP (not over a TCP or TLS stream), in order. */
function udpServers(o: ClientOptions): Endpoint[] {
  return [o.server, ...(o.fallbacks ?? [])].filter((e) => e.stream === undefined);
}
