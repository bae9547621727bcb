/**
 * What a joining peer (`Client`, `lib/peer/client.ts`) is configured with and reports, and how its parts'
 * settings follow from its options: the registration's ({@link linkOptionsOf}) and the
 * context every remote peer reads ({@link remoteContextOf}), with the client-wide budgets.
 *
 * @module
 */
import type { BirthdayPool } from "./path/birthday.ts";
import type { Discovery } from "./discovery.ts";
import type { Identity } from "../crypto/identity.ts";
import type { PeerTable } from "./peer_table.ts";
import type { Membership } from "./membership.ts";
import type { Notice } from "./notices.ts";
import type { PeerIdKey } from "../crypto/peer_id.ts";
import { FailureGate } from "./handshake/failure_gate.ts";
import { TokenBucket } from "../core/limits.ts";
import type { PortMapper } from "../nat/portmap/mapper.ts";
import { noiseFactory } from "./handshake/handshake.ts";
import { nameTag, type RoomKeys, roomSign } from "../crypto/room_key.ts";
import { ownerTag } from "../crypto/owner.ts";
import { DEFAULT_PATH, type PathOptions, ProbeBudget } from "./path/path.ts";
import type { ReliableOptions } from "./reliable.ts";
import type { RemoteContext, RemoteEvent } from "./remote_context.ts";
import type { ServerLink, ServerLinkOptions } from "./server_link.ts";
import type { RegistryOptions } from "../server/registry.ts";
import type { Supernodes } from "./supernodes.ts";
import type { Endpoint } from "../wire/address.ts";
import type { ClientFileEvent } from "./client_files.ts";

/**
 * Direct handshake copies to endpoints that never answered: a few dense rounds an introduction
 * per endpoint (see lib/peer/handshake/handshake.ts), at most 24 a minute to one address, 120 in a burst
 * refilled at one a second across all.
 */
const HANDSHAKE_BUDGET = { unprovenPerMinute: 24, unprovenBurst: 120 };
/** Direct message 2s without a cookie of ours read per second (each costs a DH: ~0.15 ms). */
const UNCOOKIED_PER_SECOND = 16;
/** Options of a joining peer: what it registers with, plus its machines' tunables. */
export interface ClientOptions
  extends Omit<ServerLinkOptions, "id" | "idKey" | "roomId" | "nameTag" | "sign" | "owner"> {
  /** The room's keys, derived from its name and passphrase (see `lib/crypto/room_key.ts`). */
  room: RoomKeys;
  /** Names and fingerprints seen before in this room (known_peers); a change is flagged. */
  knownPeers?: ReadonlyMap<string, string>;
  /**
   * STUN servers (`--stun`) asked, together with the p2p server (which answers STUN on its
   * port), how our NAT maps us: a symmetric NAT is told to the user once, early, as a notice.
   */
  stun?: Endpoint[];
  /**
   * Router port mapping (NAT-PMP, PCP, UPnP IGD) for the main socket: started with the
   * client, its granted mapping offered to peers as a candidate, deleted on `Client.leave`.
   */
  portmap?: PortMapper;
  /** Timing of path machines (keepalive is taken from `keepalive`). */
  path?: Partial<PathOptions>;
  /** Tunables of reliable channels. */
  reliable?: Partial<ReliableOptions>;
  /** The long-term identity (from the config directory). */
  identity: Identity;
  /**
   * The seed of our id key for this run (tests; by default 32 bytes drawn from `random`): the
   * peer id is derived from the key (`lib/crypto/peer_id.ts`), so it cannot be chosen.
   */
  idSeed?: Uint8Array;
  /**
   * The supernode role: `auto` (default) offers it (the server checks reachability), `ask`
   * offers it and says whether the check passed, `off` (`--no-supernode`) never serves.
   * Supernodes of the room are used for relay either way (unless relay-only).
   */
  supernode?: "auto" | "ask" | "off";
  /** Limits of the supernode role (over `DEFAULT_SUPERNODE` in `lib/peer/supernode.ts`). */
  supernodeLimits?: Partial<RegistryOptions>;
  /**
   * This machine has an IPv6 socket: peers' IPv6 candidates are probed. Without one they are
   * skipped and nothing is sent to an IPv6 address. Default: true when the server or one of
   * {@link ServerLinkOptions.privateEndpoints} is IPv6.
   */
  ipv6?: boolean;
}

/** What a peer reports to its user. */
export type ClientEvent =
  | {
    type: "ready";
    name: string;
    public: Endpoint;
    fingerprint: string;
    /** Our peer id of this run, hex (the client always sets it). */
    id?: string;
  }
  | RemoteEvent
  | { type: "left"; name: string; reason: "bye" | "expired" | "gone" }
  | { type: "server-lost" }
  | { type: "server-back"; public: Endpoint }
  | Notice
  | ClientFileEvent
  | { type: "fatal"; message: string };

/** The options of our registration with the server (reused for a supernode's). */
export function linkOptionsOf(o: ClientOptions, idKey: PeerIdKey): ServerLinkOptions {
  const room = o.room;
  return {
    ...o,
    id: idKey.id,
    idKey,
    roomId: room.id,
    nameTag: (n) => nameTag(room, n),
    owner: ownerTag(o.identity.privateKey, room.id),
    sign: (data) => roomSign(room, data),
    offerSupernode: (o.supernode ?? "auto") !== "off" && !o.relayOnly,
  };
}

/** The parts of a client its remote peers read. */
export interface ClientParts {
  id: Uint8Array;
  ipv6: boolean;
  link: ServerLink;
  discovery: Discovery;
  supernodes: Supernodes;
  peers: PeerTable;
  pool: BirthdayPool;
  drops: Record<string, number>;
}

/** A client's parts, as `makeParts` of `lib/peer/client_parts.ts` wires them. */
export interface MadeParts extends ClientParts {
  /** Our identity's fingerprint. */
  fingerprint: string;
  /** Who is in the room. */
  members: Membership;
}

/** The context every remote peer of the client with options `o` and parts `c` reads. */
export function remoteContextOf(o: ClientOptions, c: ClientParts): RemoteContext {
  const { link, discovery, supernodes: sn, peers } = c;
  return {
    self: {
      id: c.id,
      roomId: o.room.id,
      identityKey: o.identity.publicKey,
      name: () => link.name,
      noise: noiseFactory({ staticKey: o.identity.privateKey, psk: o.room.psk, random: o.random }),
      knownPeers: o.knownPeers ?? new Map(),
    },
    settings: {
      relayOnly: o.relayOnly,
      ipv6: c.ipv6,
      path: { keepalive: o.keepalive, ...o.path },
      reliable: o.reliable,
    },
    shared: {
      probeBudget: new ProbeBudget({ ...DEFAULT_PATH, ...o.path }),
      handshakeBudget: new ProbeBudget(HANDSHAKE_BUDGET),
      uncookied: new TokenBucket(UNCOOKIED_PER_SECOND, UNCOOKIED_PER_SECOND, 0),
      failures: new FailureGate(),
      birthday: c.pool,
      random: o.random,
      drops: c.drops,
    },
    view: {
      extraCandidates: () => discovery.candidates,
      nat: () => discovery.nat,
      nameHolder: (name, except) => peers.nameHolder(name, except),
      supernodeFor: (key, stalledOn) => sn.relayFor(key, stalledOn),
      supernodeName: (key) => sn.nameOf(key),
      relays: () => sn.relaysFrame(),
    },
  };
}
