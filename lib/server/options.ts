/**
 * The registry's tunables ({@link RegistryOptions}) and their defaults for `p2p serve`
 * ({@link DEFAULT_REGISTRY}); a supernode's registry overrides them (`lib/peer/supernode.ts`).
 *
 * @module
 */
/** Tunables of the registry. */
export interface RegistryOptions {
  /** Forget a peer after this long without hearing from it, in ms. */
  expireAfter: number;
  /** Most peers in one room (at most `MAX_ROOM_SIZE` of `lib/wire/server_msg.ts`, so a ROSTER fits a datagram). */
  maxRoomSize: number;
  /** Most peers on the whole server. */
  maxPeers: number;
  /** Least time between two forced re-introductions of the same pair, in ms. */
  repunchInterval: number;
  /** Least time between two roster resyncs for one peer, in ms. */
  resyncInterval: number;
  /** Most registrations from one source IP address (CGNAT users share addresses). */
  maxPerSource: number;
  /** Most distinct rooms one source IP address may have registrations in. */
  maxRoomsPerSource: number;
  /** Most registrations from one network (an IPv4 /24, an IPv6 /48). */
  maxPerNetwork: number;
  /** Most distinct rooms one network may have registrations in. */
  maxRoomsPerNetwork: number;
  /** Relayed payload bytes a second one peer may send (token bucket rate). */
  relayRate: number;
  /** Relayed payload bytes one peer may send in a burst. */
  relayBurst: number;
  /** Relayed payload bytes a second one peer may send to one other peer. */
  pairRate: number;
  /**
   * Relayed payload bytes a second one peer may receive from all senders together (burst 2 s
   * of it): many senders cannot flood one member through the server.
   */
  receiveRate: number;
  /** Relayed payload bytes a second the whole server forwards (burst 1 s of it). */
  totalRelayRate: number;
  /** HELLO signature checks one source address may cause per second (burst 4x). */
  helloRate: number;
  /**
   * Fill (share of `maxPeers`) from which every HELLO must solve the COOKIE's puzzle
   * (`lib/server/pressure.ts`); 1 or more: only when full; `Infinity`: never.
   */
  pressureAt: number;
  /**
   * The socket (a `Transmit.via` number) of an address peers never contact, from which
   * reachability probes (REACH) go to peers offering to be supernodes; undefined: no checks,
   * so no supernodes.
   */
  reachVia?: number | undefined;
  /**
   * The probes' socket shares the server's one address (its second port): only members without
   * a NAT are probed (see `lib/server/reach.ts`), since a NAT that filters on the address alone
   * would let a probe from our own address in.
   */
  reachNoNatOnly?: boolean;
  /** Reachability probes a second, server-wide (burst 4x). */
  reachRate: number;
  /**
   * Serve only this room (the room id): a supernode's registry. Registrations for any other
   * room are refused. Undefined: every room (`p2p serve`).
   */
  onlyRoom?: Uint8Array | undefined;
  /**
   * Decode every PING (its fast path off). For tests that hold the fast path to the decoding
   * one; never needed otherwise.
   */
  slowPing?: boolean | undefined;
}

/** Defaults: expire after 75 s (three missed 25 s keepalives). */
export const DEFAULT_REGISTRY: RegistryOptions = {
  expireAfter: 75_000,
  maxRoomSize: 128,
  maxPeers: 100_000,
  repunchInterval: 1_000,
  resyncInterval: 1_000,
  maxPerSource: 64,
  maxRoomsPerSource: 16,
  maxPerNetwork: 1024,
  maxRoomsPerNetwork: 256,
  relayRate: 256 * 1024,
  relayBurst: 1024 * 1024,
  pairRate: 128 * 1024,
  receiveRate: 2 * 1024 * 1024,
  totalRelayRate: 256 * 1024 * 1024,
  helloRate: 50,
  pressureAt: 0.5,
  reachRate: 20,
};
