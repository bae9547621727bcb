/**
 * What the peer's server link (`lib/peer/server_link.ts`) is configured with and reports: its
 * options ({@link ServerLinkOptions}), its lifecycle ({@link ServerLinkState}), its events
 * ({@link ServerLinkEvent}) and its timing constants. Types and constants only.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";

/** RTT samples taken a second apart after registering, before PINGs settle to the keepalive. */
export const EARLY_SAMPLES = 3;
/** How long PONGs may be missing before the server counts as lost, in ms. */
export const SERVER_LOST_AFTER = 10_000;

/**
 * Once a cluster told us its other servers (SERVERS): how long PONGs may be missing before we
 * register with the next one, in ms (`docs/protocol.md` 5.18).
 */
export const CLUSTER_FAILOVER_AFTER = 3_000;

/**
 * Once a cluster told us its other servers: how long the lost server's other transport (TCP or
 * TLS, tried first with the same registration) may leave a PING unanswered before we register
 * with the next server, in ms. A live server answers over a stream within a few round trips; a
 * dead one never does, and the cluster's other servers wait.
 */
export const CLUSTER_MOVE_GIVE_UP = 1_500;

/** Most rendezvous points a link keeps (given ones and a cluster's). */
export const MAX_LINK_SERVERS = 16;

/** With fallback servers: how long one is tried (HELLOs unanswered) before the next, in ms. */
export const FAILOVER_AFTER = 2_000;

/** Least time between two checks of the registration a peer's SERVER_HINT asks for, in ms. */
export const RECHECK_INTERVAL = 2_000;

/** Where the link is in its lifecycle. */
export type ServerLinkState =
  | {
    kind: "registering";
    /** HELLOs sent in this attempt. */
    tries: number;
    /** When this attempt started. */
    since: number;
    nextHello: number;
    /** Registered before (the server forgot us); the first registration has a deadline. */
    again: boolean;
    /** "Lost" was reported and "back" is still owed. */
    lost: boolean;
  }
  | {
    kind: "registered";
    nextPing: number;
    /** When the oldest unanswered PING went out. */
    awaitingSince: number | undefined;
    lost: boolean;
  }
  | { kind: "closed" };

/** What the link reports. */
export type ServerLinkEvent =
  | { type: "ready"; name: string; public: Endpoint }
  | { type: "renamed"; wanted: string; name: string }
  | { type: "server-lost" }
  | {
    /**
     * Registered again after the server was lost (no PONG for {@link SERVER_LOST_AFTER}), or
     * after it restarted (`restarted`), whichever came first: reported once per return.
     */
    type: "server-back";
    public: Endpoint;
    /**
     * The WELCOME's boot id differs from the one this server gave our previous registration:
     * it restarted, so it forgot the room, and its first ROSTER lists only who has registered
     * again since. False when it was only unreachable (or forgot us by expiry).
     */
    restarted: boolean;
  }
  | { type: "refused"; message: string }
  | { type: "fatal"; message: string };

/** What the link registers with. */
export interface ServerLinkOptions {
  /** The rendezvous server. */
  server: Endpoint;
  /**
   * More servers (or supernodes of the room) to fail over to, in order: tried in turn while
   * registering, and when the current one is lost.
   */
  fallbacks?: Endpoint[];
  /** Our peer id. */
  id: Uint8Array;
  /** The room id: the room's Ed25519 public key (from the room name and passphrase). */
  roomId: Uint8Array;
  /** Signs a HELLO's signing input with the room key (64 bytes; see `roomSign`). */
  sign: (data: Uint8Array) => Uint8Array;
  /**
   * Our id key for this run (`id` is its id; `peerIdKey` of `lib/crypto/peer_id.ts`): its public
   * half goes in every HELLO, and it signs every HELLO too.
   */
  idKey: {
    readonly id: Uint8Array;
    readonly publicKey: Uint8Array;
    sign(data: Uint8Array): Uint8Array;
  };
  /** `n` random bytes, for registration nonces (node:crypto's from the roles, seeded in tests). */
  random: (n: number) => Uint8Array;
  /** The opaque tag of a name (the server checks uniqueness on tags, never sees names). */
  nameTag: (name: string) => Uint8Array;
  /**
   * Our owner tag in this room (`ownerTag` of `lib/crypto/owner.ts`, 16 bytes): a HELLO for a
   * name held by a registration with the same tag replaces it (we came back after a lost BYE).
   */
  owner: Uint8Array;
  /** Wanted name. */
  name: string;
  /** Never reveal our endpoints. */
  relayOnly: boolean;
  /** Offer to be the room's supernode (HELLO flag; the server checks reachability). */
  offerSupernode?: boolean;
  /** Our private endpoints (sent unless relay-only). */
  privateEndpoints: Endpoint[];
  /** PING interval while the server answers, in ms. */
  keepalive: number;
  /** The first registration fails after this long without a WELCOME, in ms. */
  registerTimeout: number;
  /**
   * One number per server (`server`, then `fallbacks`): equal numbers name the same server
   * reached over different transports (UDP, and TCP or TLS: an endpoint with `stream`).
   * Registered over a stream, the link PINGs the same server's UDP endpoint in the background
   * and moves there once a PONG comes back over UDP; a lost server is first tried over its
   * other transport with the same registration (a PING, which moves it). Ignored unless it has
   * one number per server.
   */
  serverGroups?: number[];
}
