/**
 * p2p as a library: what an embedder needs to run a rendezvous server, run a chat peer, derive
 * a room's keys and a user's identity, and diagnose a network. Everything else in `lib/` (the
 * codecs, the peer's parts, the handshake, path and reliable-channel machines) is internal and
 * may move between releases; `docs/architecture.md` maps it. The protocol itself is specified
 * in `docs/protocol.md`.
 *
 * The protocol cores are sans-IO state machines: a {@link SansIo} takes datagrams and timer
 * ticks in (`handle*`) and gives datagrams out (`poll*`); a {@link UdpDriver} runs one on a UDP
 * socket. Nothing here draws randomness of its own: pass {@link systemRandom} (or seeded bytes
 * in tests).
 *
 * The exports, each listed once (tests/roles/mod_test.ts holds this list to the code, so the
 * API grows only on purpose):
 *
 * - **A server.** `serve` and `ServeOptions`: the `p2p serve` role (STUN on the same port,
 *   logs, metrics; runs until its signal aborts, or SIGINT/SIGTERM). `Registry`, its options
 *   `RegistryOptions` (defaults `DEFAULT_REGISTRY`), its `RegistryEvent`s and `RegistryStats`:
 *   the pure core, to run on a `UdpDriver` of your own.
 * - **A peer.** `Client`, `ClientOptions` and what it reports: `ClientEvent` (a `RemoteEvent`
 *   of a peer, a chat line as a `MessageEvent`, a `Warning` of kind `WarningKind`, a `Notice` of
 *   kind `NoticeKind`, a `ClientFileEvent`, the `FileEvent` of a file transfer, ...),
 *   `PeerInfo` (a row of `Client.peers()`), `SupernodeStats`, `MAX_MESSAGE` (the longest line, in bytes). Types
 *   its options and methods name: `ServerLinkOptions` (the registration fields
 *   `ClientOptions` extends), `PathOptions`, `ReliableOptions`; `PortMapper`, `PortMapEvent`,
 *   `PortMapProtocol`, `PortMapHttp`, `HttpRequest` and `HttpResult` (type only: router port
 *   mapping needs the gateway and HTTP I/O of the `join` role, so an embedder leaves
 *   `ClientOptions.portmap` out and `Client.pollHttp` stays empty).
 * - **Keys.** `deriveRoomKeys` (room name and passphrase to `RoomKeys`), `newRoomSecret` (a
 *   passphrase for a new room), `Identity` (a user's long-term key pair), `fingerprint` (its
 *   readable form), `systemRandom` (the process's randomness).
 * - **Driving.** `SansIo` (what a driver needs of a machine), `UdpDriver` with
 *   `DriverOptions`, `DriverStats` and `AuxStats`, `Transmit` (a datagram a machine wants
 *   sent), `Endpoint` (a literal IP and port) and `formatEndpoint`, `PROTOCOL_VERSION`.
 * - **The doctor.** `doctor`, `DoctorCliOptions` and `DoctorOutput`: the `p2p doctor` role;
 *   its report is a `DoctorReport` (with `json: true`, the last line written to `out`), whose
 *   behaviours are `Behaviour`s and relayed kinds `PeerNat`s.
 *
 * @example Run a rendezvous server's core on a socket
 * ```ts
 * import { Registry, systemRandom, UdpDriver } from "./mod.ts";
 * const registry = new Registry({}, systemRandom);
 * const driver = UdpDriver.bind("127.0.0.1", 0, registry, {
 *   onStep: () => {
 *     for (let e = registry.pollEvent(); e; e = registry.pollEvent()) console.log(e.type);
 *   },
 * });
 * driver.start();
 * await driver.close();
 * ```
 *
 * @example Join a room and send a line
 * ```ts
 * import { Client, deriveRoomKeys, Identity, systemRandom, UdpDriver } from "./mod.ts";
 * const client = new Client({
 *   server: { hostname: "203.0.113.7", port: 7777 },
 *   room: deriveRoomKeys("friends", "k3xq-7hmd-p2ra-wt5n-b6fz-c4ej"),
 *   name: "alice",
 *   identity: Identity.generate(systemRandom),
 *   random: systemRandom,
 *   relayOnly: false,
 *   privateEndpoints: [],
 *   keepalive: 25_000,
 *   registerTimeout: 10_000,
 * });
 * let greeted = false;
 * const driver = UdpDriver.bind("0.0.0.0", 0, client, {
 *   onStep: () => {
 *     for (let e = client.pollEvent(); e; e = client.pollEvent()) {
 *       if (e.type === "message") console.log(`[${e.from}] ${e.text}`);
 *       // The first peer proved itself and is reachable: greet the room (a step of its own).
 *       if (e.type === "peer" && !greeted) {
 *         greeted = true;
 *         driver.step((now) => client.send(now, "hello"));
 *       }
 *     }
 *   },
 * });
 * driver.step((now) => client.start(now));
 * driver.start();
 * ```
 *
 * @module
 */
export { serve, type ServeOptions } from "./lib/roles/serve.ts";
export {
  DEFAULT_REGISTRY,
  Registry,
  type RegistryEvent,
  type RegistryOptions,
  type RegistryStats,
} from "./lib/server/registry.ts";
export {
  Client,
  type ClientEvent,
  type ClientOptions,
  MAX_MESSAGE,
  type Notice,
  type NoticeKind,
  type PeerInfo,
} from "./lib/peer/client.ts";
export type { MessageEvent, RemoteEvent } from "./lib/peer/remote_context.ts";
export type { ClientFileEvent } from "./lib/peer/client_files.ts";
export type { FileEvent } from "./lib/files/file_outputs.ts";
export type { Warning, WarningKind } from "./lib/peer/identity_policy.ts";
export type { ServerLinkOptions } from "./lib/peer/server_link.ts";
export type { SupernodeStats } from "./lib/peer/supernodes.ts";
export type { PathOptions } from "./lib/peer/path/path.ts";
export type { ReliableOptions } from "./lib/peer/reliable.ts";
export type {
  HttpRequest,
  HttpResult,
  PortMapEvent,
  PortMapHttp,
  PortMapper,
  PortMapProtocol,
} from "./lib/nat/portmap/mapper.ts";
export { deriveRoomKeys, newRoomSecret, type RoomKeys } from "./lib/crypto/room_key.ts";
export { Identity } from "./lib/crypto/identity.ts";
export { fingerprint } from "./lib/crypto/fingerprint.ts";
export { systemRandom } from "./lib/io/random.ts";
export {
  type AuxStats,
  type DriverOptions,
  type DriverStats,
  type SansIo,
  UdpDriver,
} from "./lib/io/udp.ts";
export type { Transmit } from "./lib/wire/transmit.ts";
export { type Endpoint, formatEndpoint } from "./lib/wire/address.ts";
export { PROTOCOL_VERSION } from "./lib/wire/header.ts";
export { doctor, type DoctorCliOptions, type DoctorOutput } from "./lib/roles/doctor.ts";
export type { Behaviour, DoctorReport, PeerNat } from "./lib/nat/doctor.ts";
