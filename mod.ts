/**
 * p2p as a library: the pure protocol cores (codec, registry, path machine, reliable
 * channel, peer client), the crypto sessions, and the UDP driver that runs a core on a
 * socket. `main.ts` is the command line built from these.
 *
 * @example Run a rendezvous server on a socket
 * ```ts
 * import { Registry, UdpDriver } from "./mod.ts";
 * const registry = new Registry();
 * const driver = UdpDriver.bind("127.0.0.1", 0, registry);
 * driver.start();
 * await driver.close();
 * ```
 *
 * @module
 */
export * from "./lib/wire.ts";
export { Identity, PairSession } from "./lib/crypto.ts";
export {
  DEFAULT_REGISTRY,
  Registry,
  type RegistryEvent,
  type RegistryOptions,
  type RegistryStats,
} from "./lib/registry.ts";
export {
  type Candidate,
  type CandidateKind,
  DEFAULT_PATH,
  type PathAction,
  type PathEvent,
  PathMachine,
  type PathOptions,
  type PathState,
} from "./lib/path.ts";
export {
  DEFAULT_RELIABLE,
  type OutAck,
  type OutData,
  ReliableChannel,
  type ReliableOptions,
  type ReliableStats,
} from "./lib/reliable.ts";
export {
  Client,
  type ClientEvent,
  type ClientOptions,
  DEFAULT_CLIENT,
  MAX_MESSAGE,
  type PeerInfo,
} from "./lib/client.ts";
export { type DriverOptions, type DriverStats, type SansIo, UdpDriver } from "./lib/udp.ts";
