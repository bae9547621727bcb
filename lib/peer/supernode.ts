/**
 * Supernodes: a member whose address the server found reachable (REACH, see `docs/protocol.md`)
 * serves its own room as rendezvous and relay. The two parts, both sans-IO, which
 * `lib/peer/supernodes.ts` runs for the client on the peer's one socket:
 *
 * - {@link SupernodeHost}: the role itself, the server's {@link Registry} restricted to one room
 *   (`onlyRoom`) with a supernode's smaller limits. The client hands it the datagrams members
 *   send to a server (HELLO, PING, BYE, RELAY, REPUNCH) and sends what it answers.
 * - {@link SupernodeLink}: a member's registration with one supernode besides the server (a
 *   second {@link ServerLink}: same signed HELLO, cookie and token rules), and which peers the
 *   supernode introduced (only those can be relayed to through it).
 *
 * A supernode relays end-to-end sealed frames (it sees ciphertext only) and never learns more
 * than the server would: it is a member itself, and its registry checks every HELLO's room
 * signature.
 *
 * @module
 */
import { Registry, type RegistryOptions, type RegistryStats } from "../server/registry.ts";
import { ServerLink, type ServerLinkOptions } from "./server_link.ts";
import { type Endpoint } from "../wire/address.ts";
import { MAX_ROOM_SIZE } from "../wire/server_msg.ts";
import { MsgType } from "../wire/header.ts";
import { type Transmit } from "../wire/transmit.ts";

/** What a supernode allows by default: a member's uplink is no server's. */
export const DEFAULT_SUPERNODE: Partial<RegistryOptions> = {
  /** Relayed payload bytes a second one member may send through us (64 KiB/s). */
  relayRate: 64 * 1024,
  relayBurst: 256 * 1024,
  /** Per pair of members (32 KiB/s). */
  pairRate: 32 * 1024,
  /** Members registered with us (our room only). */
  maxRoomSize: 32,
  maxPeers: 32,
  maxPerSource: 8,
  maxRoomsPerSource: 1,
  helloRate: 10,
  /** Only members of the one room register: no puzzle (the room key's signature is the cost). */
  pressureAt: Infinity,
};

/** Message types members send to a rendezvous point (what a supernode host takes). */
const TO_SERVER: ReadonlySet<number> = new Set([
  MsgType.Hello,
  MsgType.Ping,
  MsgType.Bye,
  MsgType.Relay,
  MsgType.Repunch,
]);

/** The supernode role: a registry for one room inside the join process. */
export class SupernodeHost {
  #registry: Registry;

  /**
   * Serves room `roomId` with `limits` over {@link DEFAULT_SUPERNODE}; `random` keys its
   * cookies and draws incarnations.
   */
  constructor(
    roomId: Uint8Array,
    limits: Partial<RegistryOptions>,
    random: (n: number) => Uint8Array,
  ) {
    const secret = random(32);
    this.#registry = new Registry(
      { ...DEFAULT_SUPERNODE, ...limits, onlyRoom: roomId, reachVia: undefined },
      random,
      secret,
    );
  }

  /** True for a message type members send to a rendezvous point (the host's input). */
  static takes(type: number): boolean {
    return TO_SERVER.has(type);
  }

  /** Members registered with us. */
  get members(): number {
    return this.#registry.peerCount;
  }

  /** Relay and drop counters. */
  get stats(): Readonly<RegistryStats> {
    return this.#registry.stats;
  }

  /** A member's datagram. Never throws on bad input. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.#registry.handleDatagram(now, from, data);
  }

  /** Expires silent members. */
  handleTimeout(now: number): void {
    this.#registry.handleTimeout(now);
  }

  /** When {@link handleTimeout} next has work. */
  nextTimeout(): number | undefined {
    return this.#registry.nextTimeout();
  }

  /** The next datagram to send (its events are not needed: the counters say enough). */
  pollTransmit(): Transmit | undefined {
    while (this.#registry.pollEvent()) { /* not logged by peers */ }
    return this.#registry.pollTransmit();
  }
}

/** A member's registration with one supernode of its room. */
export class SupernodeLink {
  /** Hex id of the supernode (a member of the room). */
  readonly key: string;
  /** Its peer id. */
  readonly id: Uint8Array;
  /** Its public endpoint (as the server introduced it). */
  readonly host: Endpoint;
  /** The registration. */
  readonly link: ServerLink;
  /** Hex ids of the peers the supernode introduced to us (reachable through its relay). */
  readonly introduced: Set<string> = new Set();

  /**
   * Registers (once its link is started) with the supernode `key` at `host`; `digest` gives
   * the roster digest for PINGs.
   */
  constructor(key: string, host: Endpoint, options: ServerLinkOptions, digest: () => number) {
    this.key = key;
    this.id = new Uint8Array(key.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
    this.host = host;
    this.link = new ServerLink({ ...options, server: host, offerSupernode: false }, digest);
  }

  /** The supernode introduced peer `key` (at most a room's worth are remembered). */
  introduce(key: string): void {
    if (this.introduced.size < MAX_ROOM_SIZE || this.introduced.has(key)) this.introduced.add(key);
  }

  /** True when frames to peer `key` can be relayed through this supernode now. */
  relays(key: string): boolean {
    return key !== this.key && this.link.healthy && this.introduced.has(key);
  }
}
