/**
 * How a client's parts are made from its options: our id and fingerprint, whether we send to
 * IPv6, the server link, discovery (STUN and port mapping), the supernode side, the peer table,
 * the birthday socket pool and membership, wired to one another in the order their randomness
 * is drawn. {@link Client} (`lib/peer/client.ts`) drives what this returns. Pure.
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
  remoteContextOf,
} from "./client_options.ts";
import { Discovery } from "./discovery.ts";
import { isIPv6 } from "./introductions.ts";
import { Membership } from "./membership.ts";
import { PeerTable } from "./peer_table.ts";
import { ServerLink } from "./server_link.ts";
import { Supernodes } from "./supernodes.ts";

/** A client's parts, as {@link makeParts} wires them. */
export interface MadeParts extends ClientParts {
  /** Our identity's fingerprint. */
  fingerprint: string;
  /** Who is in the room. */
  members: Membership;
}

/** Makes the parts of a client with `options`, counting drops in `drops`. */
export function makeParts(options: ClientOptions, drops: Record<string, number>): MadeParts {
  const peers = new PeerTable();
  const pool = new BirthdayPool();
  const ipv6 = options.ipv6 ?? [options.server, ...options.privateEndpoints].some(isIPv6);
  const idKey = peerIdKey(options.idSeed ?? options.random(32));
  const id = idKey.id;
  const linkOptions = linkOptionsOf(options, idKey);
  const link = new ServerLink(linkOptions, () => peers.digest);
  const discovery = new Discovery({
    // Always ask the p2p server (it answers STUN on its port), plus any --stun servers.
    stun: [options.server, ...(options.stun ?? [])],
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
    members: new Membership(peers, remoteContextOf(options, parts), drops),
  };
}
