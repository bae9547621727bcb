/**
 * p2p as a library: the pure protocol cores (codec, registry, path machine, reliable
 * channel, fragmentation, the peer's server link and remote peers, the peer client), the crypto
 * sessions, and the UDP driver that runs a core on a socket. `main.ts` is the command line built from these.
 *
 * @example Run a rendezvous server on a socket
 * ```ts
 * import { Registry, systemRandom, UdpDriver } from "./mod.ts";
 * const registry = new Registry({}, systemRandom);
 * const driver = UdpDriver.bind("127.0.0.1", 0, registry);
 * driver.start();
 * await driver.close();
 * ```
 *
 * @module
 */
export * from "./lib/wire/address.ts";
export { type Decoded, hasControlChars, isControlChar, toHex } from "./lib/wire/codec.ts";
export * from "./lib/wire/header.ts";
export * from "./lib/wire/server_msg.ts";
export * from "./lib/wire/peer_frame.ts";
export * from "./lib/wire/transmit.ts";
export { Identity } from "./lib/crypto/identity.ts";
export { PairSession, type TransportCipher } from "./lib/crypto/session.ts";
export {
  DEFAULT_REGISTRY,
  Registry,
  type RegistryEvent,
  type RegistryOptions,
  type RegistryStats,
} from "./lib/server/registry.ts";
export {
  type Candidate,
  type CandidateKind,
  DEFAULT_PATH,
  type PathAction,
  type PathEvent,
  PathMachine,
  type PathOptions,
  type PathState,
  ProbeBudget,
} from "./lib/peer/path/path.ts";
export {
  type DataFrame,
  DEFAULT_RELIABLE,
  type Delivery,
  type OutAck,
  type OutData,
  ReliableChannel,
  type ReliableOptions,
  type ReliableStats,
  type SendReason,
} from "./lib/peer/reliable.ts";
export { fragment, MAX_MESSAGE, type Reassembled, Reassembler } from "./lib/peer/fragment.ts";
export { DeadlineQueue } from "./lib/core/deadlines.ts";
export {
  type BirthdayFrame,
  type BirthdayOptions,
  BirthdayPool,
  type BirthdayProbe,
  BirthdaySearch,
  type BirthdayState,
  type BirthdayStats,
  type BirthdayView,
  DEFAULT_BIRTHDAY,
  missProbability,
  type NatInfo,
  predictPorts,
} from "./lib/peer/path/birthday.ts";
export {
  SERVER_LOST_AFTER,
  ServerLink,
  type ServerLinkEvent,
  type ServerLinkOptions,
  type ServerLinkState,
} from "./lib/peer/server_link.ts";
export {
  type ClientView,
  type Introduction,
  type LocalPeer,
  NOT_RESPONDING_AFTER,
  type PeerInfo,
  type RemoteContext,
  type RemoteEvent,
  type RemoteOutput,
  RemotePeer,
  type RemoteSettings,
  type RemoteTransmit,
  type SharedResources,
  type Warning,
  type WarningKind,
} from "./lib/peer/remote.ts";
export type { PeerRelays, RelaysFrame } from "./lib/peer/supernodes.ts";
export type { Drops } from "./lib/peer/drops.ts";
export {
  type Half,
  type HandshakeOut,
  type HandshakeResult,
  type HandshakeRoute,
  NOISE_PROTOCOL,
  type NoiseFactory,
  noiseFactory,
  type NoiseSession,
  PairHandshake,
} from "./lib/peer/handshake/handshake.ts";
export { type LinkResult, pairPrologue, SecureLink } from "./lib/peer/handshake/secure_link.ts";
export {
  DirectCopies,
  type HandshakeTransmit,
  HandshakeTransport,
  type Proof,
  type RouteOptions,
  type RouteView,
} from "./lib/peer/handshake/transport.ts";
export {
  deriveRoomKeys,
  nameTag,
  newRoomSecret,
  ROOM_KDF,
  type RoomKeys,
} from "./lib/crypto/room_key.ts";
export { fingerprint } from "./lib/crypto/fingerprint.ts";
export { displayName, normalizeName } from "./lib/core/names.ts";
export { SourceCounts, TokenBucket } from "./lib/core/limits.ts";
export {
  Client,
  type ClientEvent,
  type ClientOptions,
  DEPARTED_KEEP,
  MAX_DEPARTED,
  type Notice,
  type NoticeKind,
} from "./lib/peer/client.ts";
export {
  type AuxStats,
  type DriverOptions,
  type DriverStats,
  type SansIo,
  UdpDriver,
} from "./lib/io/udp.ts";
export { systemRandom } from "./lib/io/random.ts";
export {
  DEFAULT_LEASE,
  DEFAULT_LIFETIME,
  DEFAULT_TIMEOUT,
  type HttpRequest,
  type HttpResult,
  type PortMapEvent,
  type PortMapHttp,
  PortMapper,
  type PortMapperOptions,
  type PortMapProtocol,
  SETTLE,
} from "./lib/nat/portmap/mapper.ts";
