/**
 * `p2p join`: a chat peer. Gets the room passphrase (or makes one up for `--new-room`),
 * derives the room keys, loads the user's identity and the peers met before, then wires the
 * pure {@link Client} to a UDP driver, stdin and stdout; what is shown comes from
 * `lib/roles/view.ts`.
 *
 * Human mode prints `[name] text` for messages and `*` status lines; `--json` mode prints one
 * JSON object per line on stdout and nothing else there (logs go to stderr).
 *
 * @module
 */
import { ChatScreen } from "./chat_screen.ts";
import { type LogLevel, redirectLogs } from "../io/log.ts";
import { displayName } from "../core/names.ts";
import { ResolveError, resolveHostPort } from "../io/resolve.ts";
import { setImmediate } from "node:timers";
import { getLogger } from "@logtape/logtape";
import { Client, type ClientEvent } from "../peer/client.ts";
import type { PeerInfo } from "../peer/remote_context.ts";
import type { RegistryOptions } from "../server/registry.ts";
import { Identity } from "../crypto/identity.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { identityPath, loadOrCreateIdentity } from "../io/identity_store.ts";
import { KnownPeers, knownPeersPath } from "../io/known_peers.ts";
import { PASSPHRASE_ENV, PassphraseError } from "../io/passphrase.ts";
import { readRoomEntry, TICKET_ENV } from "./room_entry.ts";
import { encodeTicket, type Ticket } from "./ticket.ts";
import { qrLines } from "./qr.ts";
import { base32 } from "../crypto/base32.ts";
import { parseInput, pathText, type PeerView, peerView } from "./view.ts";
import { canonicalRoom, deriveRoomKeys, newRoomSecret, type RoomKeys } from "../crypto/room_key.ts";
import { monotonicNow, UdpDriver } from "../io/udp.ts";
import { withStreams } from "../io/tcp.ts";
import { parseServerSpec, serverRoutes, ServerTransports } from "./transports.ts";
import { findGateway } from "../io/gateway.ts";
import { runHttp } from "../io/http.ts";
import { type PortMapHttp, PortMapper } from "../nat/portmap/mapper.ts";
import { systemRandom } from "../io/random.ts";
import {
  type Endpoint,
  formatEndpoint,
  formatIPv6,
  parseIPv6,
  sameEndpoint,
} from "../wire/address.ts";
import { MAX_PRIVATE_ENDPOINTS } from "../wire/header.ts";
import { FileSession, sendAndWait } from "./file_session.ts";
import { defaultDownloadDir } from "../io/file_store.ts";

/** Options of {@link join}. */
export interface JoinOptions {
  /** Server as `HOST:PORT` (host name or literal IP); from the ticket when not given. */
  server?: string | undefined;
  /** `--ticket`: the room's ticket as an argument. */
  ticket?: string | undefined;
  /** `--ticket-file`: read the room's ticket from this file's first line. */
  ticketFile?: string | undefined;
  /** `--qr`: with `newRoom`, also print the ticket as a QR code. */
  qr?: boolean;
  /** More servers (`--server` again): servers or supernodes to fail over to, in order. */
  moreServers?: string[];
  /** The supernode role: offered (`auto`), asked for (`ask`, `--supernode`) or refused (`off`). */
  supernode?: "auto" | "ask" | "off";
  /** Limits of the supernode role (`--supernode-relay-rate` etc.). */
  supernodeLimits?: Partial<RegistryOptions>;
  /** Room to join; from the ticket when not given. */
  room?: string | undefined;
  /** Wanted name. */
  name: string;
  /** Only use the relay; never reveal addresses. */
  relayOnly: boolean;
  /** Machine-readable output. */
  json: boolean;
  /** Local address to bind (default all IPv4 interfaces). */
  bind: string;
  /** Local port to bind (0: any). */
  port: number;
  /**
   * `--no-ipv6` sets false: no IPv6 socket and no IPv6 addresses offered (an IPv6 server still
   * gets one). Default: with `bind` 0.0.0.0, an IPv6 socket when this host has a global or ULA
   * IPv6 address.
   */
  ipv6?: boolean;
  /** Keepalive interval in ms. */
  keepalive: number;
  /** Give up registering after this long, in ms. */
  registerTimeout: number;
  /** After stdin ends, wait at most this long for messages to be acknowledged, in ms. */
  drainTimeout: number;
  /** `--passphrase-file`: read the room passphrase from this file's first line. */
  passphraseFile?: string | undefined;
  /** `--new-room`: make up a passphrase, print it with the line to share, join with it. */
  newRoom?: boolean;
  /** `--identity`: the identity file (default: in the configuration directory). */
  identityFile?: string | undefined;
  /** `--downloads`: where received files go (default: the XDG download directory). */
  downloads?: string;
  /** `--auto-accept`: accept every file offered. */
  autoAccept?: boolean;
  /** `p2p send`: the file to offer, and to whom (every peer present without names). */
  sendFile?: { path: string; to: string[] | undefined; wait?: number };
  /** STUN servers (`HOST:PORT`) asked besides the p2p server how the NAT maps us. */
  stun?: string[] | undefined;
  /**
   * Ask the router for a port mapping (NAT-PMP, PCP, UPnP IGD; default true; `--no-portmap`
   * sets false). Never with `relayOnly`, nor on a loopback-only binding.
   */
  portmap?: boolean;
  /**
   * Return false to drop a datagram to or from `peer` (passed to the UDP driver). Tests use it
   * to block direct paths; the command line never sets it.
   */
  filter?: (peer: Endpoint) => boolean;
  /** `--tcp`: reach the servers over TCP first (UDP still tried in the background). */
  tcp?: boolean;
  /** `--tls-ca`: a CA certificate file (PEM) trusted for `tls://` servers. */
  tlsCa?: string;
  /**
   * The log level asked for (`-v`, `-q`, `--log-level`). On the chat screen logs are shown
   * above the input, from `warning` up unless this asks for more.
   */
  logLevel?: LogLevel;
}

/** A failure the user can fix; main.ts prints the message and exits 1. */
export class JoinError extends Error {
  /** Makes an error with a user-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "JoinError";
  }
}

const log = getLogger(["p2p", "join"]);

/** How often people see a transfer's progress line, in ms. */
const HUMAN_PROGRESS_EVERY = 2000;

/**
 * After leaving, how long to wait for the peers to answer our goodbyes (at most a second) and
 * the router to confirm deleting our port mapping, ms.
 */
const LEAVE_WAIT = 1500;

/**
 * Input waits while a peer that is taking messages has this many payloads queued behind its
 * window (the queue itself holds 4096; a peer that stopped acknowledging does not hold input).
 */
const INPUT_BACKLOG = 256;
/** How often "Still trying SERVER…" is shown while registering, ms. */
const STILL_TRYING_EVERY = 3_000;
/** After this long alone in the room (ms), the `alone` notice says what that may mean. */
export const ALONE_AFTER = 10_000;
/** What the `alone` notice says. */
export const ALONE_NOTICE = "Nobody else is here yet. A wrong passphrase or room name leads into " +
  "another, empty room: check them with whoever invited you, or join with their ticket";
/** Longest wait for registration while the server keeps answering, ms. */
const REGISTER_WAIT_MAX = 5 * 60_000;
/** Most output lines written at once (see {@link OutputLines}). */
const OUTPUT_BATCH = 256;

/** Resolves `spec` (`HOST:PORT`) to an IPv4 or IPv6 endpoint; a {@link JoinError} says why not. */
export async function resolveServer(spec: string, what = "Server"): Promise<Endpoint> {
  try {
    return await resolveHostPort(spec, what);
  } catch (e) {
    throw e instanceof ResolveError ? new JoinError(e.message) : e;
  }
}

/**
 * The servers a ticket names: `HOST:PORT` (UDP, and TCP on the same port when UDP gets no
 * answer), so `tcp://HOST:PORT` becomes `HOST:PORT`; a `tls://` server cannot be named (its UDP
 * port is unknown, and a ticket carries no CA).
 */
function ticketServers(specs: string[]): string[] {
  return specs.map((spec) => {
    const { scheme, hostPort } = parseServerSpec(spec);
    if (scheme === "tls") {
      throw new JoinError(
        `A ticket cannot name ${spec}: give --new-room the server's UDP address (HOST:PORT) too, ` +
          "or share --server and --room with the passphrase instead",
      );
    }
    return hostPort;
  });
}

/** The CA certificate of `--tls-ca`, or a {@link JoinError} saying what is wrong with it. */
async function readCa(file: string): Promise<string> {
  try {
    const pem = await Deno.readTextFile(file);
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it");
    return pem;
  } catch (e) {
    throw new JoinError(
      `Cannot use --tls-ca ${file}: ${(e as Error).message}; give a CA certificate in PEM`,
    );
  }
}

function privateEndpoints(bind: string, port: number): Endpoint[] {
  if (bind !== "0.0.0.0") return [{ hostname: bind, port }];
  try {
    return Deno.networkInterfaces()
      .filter((i) =>
        i.family === "IPv4" && !i.address.startsWith("127.") &&
        !i.address.startsWith("169.254.")
      )
      .map((i) => ({ hostname: i.address, port }))
      .filter((e, i, all) => all.findIndex((o) => o.hostname === e.hostname) === i)
      .slice(0, MAX_PRIVATE_ENDPOINTS);
  } catch {
    return [];
  }
}

/** Most IPv6 addresses offered to peers (the IPv4 LAN ones get the rest of the list). */
const MAX_IPV6_ENDPOINTS = 3;

/**
 * This host's IPv6 addresses worth offering to peers, global ones first, then ULAs (fc00::/7,
 * LAN only); never loopback, link-local (fe80::/10: useless without an interface), multicast
 * or IPv4-mapped ones. At most {@link MAX_IPV6_ENDPOINTS}.
 */
export function ipv6Addresses(
  interfaces: () => Deno.NetworkInterfaceInfo[] = Deno.networkInterfaces,
): string[] {
  let list: Deno.NetworkInterfaceInfo[];
  try {
    list = interfaces();
  } catch {
    return [];
  }
  const global: string[] = [], ula: string[] = [];
  for (const i of list) {
    if (i.family !== "IPv6") continue;
    const b = parseIPv6(i.address.split("%")[0]!);
    if (!b || b[0] === 0xff || (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80)) continue;
    if (b.subarray(0, 10).every((x) => x === 0)) continue; // ::, ::1, IPv4-mapped/compatible
    const a = formatIPv6(b);
    const into = (b[0]! & 0xfe) === 0xfc ? ula : global;
    if (!global.includes(a) && !ula.includes(a)) into.push(a);
  }
  return [...global, ...ula].slice(0, MAX_IPV6_ENDPOINTS);
}

/** The HELLO's private list: LAN IPv4 endpoints first, then the IPv6 ones, within the limit. */
function withIPv6(v4: Endpoint[], v6: string[], port6: number | undefined): Endpoint[] {
  const six = port6 === undefined ? [] : v6.map((hostname) => ({ hostname, port: port6 }));
  return [...v4.slice(0, MAX_PRIVATE_ENDPOINTS - six.length), ...six];
}

/** What a peer is before it has a socket: room keys, identity, the peers it has met. */
interface Credentials {
  /** Keys of the room, from its name and passphrase. */
  room: RoomKeys;
  /** The server to register with, and those to fail over to (the command line's or the ticket's). */
  servers: string[];
  /** The user's long-term identity. */
  identity: Identity;
  /** Fingerprints remembered for this room. */
  known: KnownPeers;
}

/**
 * Gets the passphrase (or makes one up for `--new-room`, printing it), derives the room keys,
 * loads or creates the identity (printing its fingerprint in human mode) and loads the known
 * peers. Returns null when Ctrl-C ended the passphrase prompt.
 */
async function credentials(o: JoinOptions): Promise<Credentials | null> {
  let passphrase: string;
  let roomName = o.room;
  let servers = o.server === undefined ? [] : [o.server, ...(o.moreServers ?? [])];
  if (o.newRoom) {
    passphrase = newRoomSecret(systemRandom);
    roomName ??= `room-${base32(systemRandom(4)).slice(0, 6)}`;
    announceRoom(o, { servers: ticketServers(servers), room: roomName, passphrase });
  } else {
    try {
      const got = await readRoomEntry({
        env: {
          [PASSPHRASE_ENV]: Deno.env.get(PASSPHRASE_ENV),
          [TICKET_ENV]: Deno.env.get(TICKET_ENV),
        },
        ticket: o.ticket,
        ticketFile: o.ticketFile,
        passphraseFile: o.passphraseFile,
        haveServerAndRoom: o.server !== undefined && o.room !== undefined,
        stdin: Deno.stdin,
      });
      passphrase = got.passphrase;
      if (got.ticket) {
        // --server still wins; the room is the ticket's.
        if (servers.length === 0) servers = got.ticket.servers;
        if (roomName !== undefined && canonicalRoom(roomName) !== canonicalRoom(got.ticket.room)) {
          throw new JoinError(
            `--room ${roomName} is not the ticket's room (${got.ticket.room}); drop --room`,
          );
        }
        roomName = got.ticket.room;
      }
    } catch (e) {
      if (e instanceof PassphraseError && e.kind === "interrupted") return null;
      throw e;
    }
  }
  if (roomName === undefined || servers.length === 0) {
    throw new PassphraseError("usage", "a passphrase needs --server and --room; or use a ticket");
  }
  o = { ...o, room: roomName };
  const t0 = performance.now();
  const room = deriveRoomKeys(roomName, passphrase);
  log.debug("Derived the room keys in {ms} ms", { ms: Math.round(performance.now() - t0) });
  const path = identityPath({
    XDG_CONFIG_HOME: Deno.env.get("XDG_CONFIG_HOME"),
    HOME: Deno.env.get("HOME"),
    APPDATA: Deno.env.get("APPDATA"),
  }, o.identityFile);
  const { privateKey, created } = await loadOrCreateIdentity(path);
  const identity = Identity.fromPrivate(privateKey);
  privateKey.fill(0);
  const fp = fingerprint(identity.publicKey);
  if (created) log.info("Made a new identity in {path}", { path });
  log.debug("Identity {path}, fingerprint {fp}", { path, fp });
  // The fingerprint is shown with the ready event (human and --json).
  const known = await KnownPeers.load(knownPeersPath(path), room.id);
  return { room, servers, identity, known };
}

/**
 * Prints a new room's ticket, the command to run on another machine (the ticket is then pasted
 * at its prompt: nothing secret in shell history or `ps`), and with `--qr` the ticket as a QR
 * code; `--json` prints one `room` event with all of it.
 */
function announceRoom(o: JoinOptions, t: Ticket): void {
  const ticket = encodeTicket(t);
  const run = joinCommand();
  if (o.json) {
    console.log(
      JSON.stringify({ event: "room", room: t.room, passphrase: t.passphrase, ticket, join: run }),
    );
    return;
  }
  console.log(`* New room "${t.room}". Its ticket (keep it secret, share it with the room):`);
  console.log(`  ${ticket}`);
  console.log(`* On another machine run: ${run}`);
  console.log("  and paste the ticket at its prompt (or put it in P2P_TICKET)");
  if (o.qr) { for (const line of qrLines(ticket)) console.log(line); }
}

/**
 * The command that starts `p2p join` the way this process was started: the binary by its own
 * name, or Deno's task from a checkout (`npx -y deno@VERSION task join`).
 */
function joinCommand(): string {
  const exe = Deno.execPath();
  const base = exe.slice(exe.lastIndexOf("/") + 1);
  if (base === "deno" || base === "deno.exe") {
    return `npx -y deno@${Deno.version.deno} task join`;
  }
  return `${base} join`;
}

/** Runs a peer until stdin ends, /quit, or a signal. Returns the process exit code. */
export async function join(o: JoinOptions): Promise<number> {
  const creds = await credentials(o);
  if (!creds) return 130;
  // Over UDP, and over TCP or TLS where UDP gets no answer (see lib/roles/transports.ts).
  const late = {
    deliver: (_from: Endpoint, _data: Uint8Array): void => {},
    closed: (_server: Endpoint): void => {},
  };
  const transports = await ServerTransports.open(
    serverRoutes(creds.servers, o.tcp ?? false),
    (hostPort) => resolveServer(hostPort),
    (from, data) => late.deliver(from, data),
    (why) => log.debug("Stream to the server failed: {why}", { why }),
    o.tlsCa === undefined ? [] : [await readCa(o.tlsCa)],
    (server) => late.closed(server),
  );
  const [server, ...fallbacks] = transports.servers as [Endpoint, ...Endpoint[]];
  const stun: Endpoint[] = [];
  for (const spec of o.stun ?? []) stun.push(await resolveServer(spec, "STUN server"));
  const color = !o.json && Deno.stdout.isTerminal() && !Deno.noColor;
  // A person at a terminal gets the chat screen; pipes and --json keep the line protocol.
  const screen = !o.json && !o.sendFile && Deno.stdin.isTerminal() && Deno.stdout.isTerminal()
    ? ChatScreen.open({ prompt: "> " })
    : null;
  const out = screen
    ? new OutputLines((lines) => screen.print(lines), timed(color))
    : new OutputLines(writeStdout);
  if (screen) {
    const level = o.logLevel ?? "info";
    redirectLogs((line) => out.line(line), level === "info" ? "warning" : level);
  }
  try {
    const peer = new PeerProcess(
      o,
      server,
      peerView({ json: o.json, color, bell: screen !== null }),
      creds,
      out,
      screen,
      stun,
      fallbacks,
      transports,
    );
    late.deliver = (from, data) => peer.deliver(from, data);
    late.closed = (server) => peer.streamClosed(server);
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const onSignal = () => peer.interrupt();
    for (const s of signals) Deno.addSignalListener(s, onSignal);
    try {
      const input = o.sendFile
        ? (async function* () {})()
        : screen
        ? screen.lines()
        : readLineBatches(Deno.stdin.readable);
      return await peer.run(input);
    } finally {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
      await peer.close();
      await transports.close();
    }
  } finally {
    out.flush();
    if (screen) {
      redirectLogs(null);
      screen.close();
    }
  }
}

/** One running peer: the client on its driver, the view, and the state of the session. */
class PeerProcess {
  #o: JoinOptions;
  #view: PeerView;
  #known: KnownPeers;
  /** Writes of the known-peers file under way. */
  #saving = new Set<Promise<void>>();
  #client: Client;
  #driver: UdpDriver;
  #fatal: string | undefined;
  #ready = false;
  /** False until the roster is in (or a second passed): lines typed before wait in #pending. */
  #sendable = false;
  #pending: string[] = [];
  #interrupted = false;
  #signalled = Promise.withResolvers<"signal">();
  /** Called after every driver step (and on a signal) by whoever waits in {@link #until}. */
  #wake = () => {};
  /** Input waiting for the send queues to drain: resolved after the next step. */
  #room: (() => void) | undefined;
  #out: OutputLines;
  #screen: ChatScreen | null;
  /** Our name in the room, once registered (our own lines are shown with it on the screen). */
  #self: string | null = null;
  /** Whether any peer has been shown yet (else, after a while, the `alone` notice). */
  #metSomeone = false;
  /** The server last seen in use, to announce a failover. */
  #serverShown: string | null = null;
  /** File transfers: commands, offers, disk work. */
  #files: FileSession;
  /** When each transfer's progress was last shown to people. */
  #progressShown = new Map<string, number>();
  /** How the servers are reached (TCP and TLS streams besides UDP). */
  #transports: ServerTransports | undefined;
  /** The server in use last seen, to announce a move between UDP and TCP. */
  #inUse: Endpoint | undefined;

  constructor(
    o: JoinOptions,
    server: Endpoint,
    view: PeerView,
    creds: Credentials,
    out: OutputLines,
    screen: ChatScreen | null,
    stun: Endpoint[] = [],
    fallbacks: Endpoint[] = [],
    transports?: ServerTransports,
  ) {
    this.#transports = transports;
    this.#o = o;
    this.#view = view;
    this.#out = out;
    this.#screen = screen;
    this.#known = creds.known;
    // The client needs the bound port, the driver needs the client: bind first, fill in after.
    const machine = withStreams({
      handleDatagram: (n: number, f: Endpoint, d: Uint8Array, via?: number) =>
        this.#client.handleDatagram(n, f, d, via),
      handleTimeout: (n: number) => this.#client.handleTimeout(n),
      pollTransmit: () => this.#client.pollTransmit(),
      pollRelease: () => this.#client.pollRelease(),
      nextTimeout: () => this.#client.nextTimeout(),
    }, (t) => this.#transports?.send(t));
    // An IPv6 socket when this host has an IPv6 address to offer (only with the default
    // --bind: a concrete one asks for that address alone) or the server is IPv6 (then it is
    // required); on the IPv4 socket's port when that is free (one dual-stack socket).
    const serverV6 = server.hostname.includes(":");
    const v6 = o.ipv6 === false || o.bind !== "0.0.0.0" ? [] : ipv6Addresses();
    const ipv6 = serverV6 || v6.length > 0
      ? { hostname: "::", port: o.port, optional: !serverV6 }
      : undefined;
    try {
      this.#driver = UdpDriver.bind(o.bind, o.port, machine, {
        onStep: () => this.#onStep(),
        filter: o.filter,
        ipv6,
      });
    } catch (e) {
      throw new JoinError((e as Error).message);
    }
    const local = this.#driver.localAddr;
    const local6 = this.#driver.localAddr6;
    if (this.#driver.ipv6Error) {
      log.warning("No IPv6 socket, IPv6 peers will be relayed: {why}", {
        why: this.#driver.ipv6Error,
      });
    }
    const portmap = portMapper(o, local.port, server);
    this.#client = new Client({
      server,
      room: creds.room,
      name: o.name,
      identity: creds.identity,
      random: systemRandom,
      knownPeers: creds.known.entries(),
      relayOnly: o.relayOnly,
      privateEndpoints: withIPv6(privateEndpoints(o.bind, local.port), v6, local6?.port),
      keepalive: o.keepalive,
      registerTimeout: o.registerTimeout,
      stun,
      fallbacks,
      ...(transports ? { serverGroups: transports.groups } : {}),
      supernode: o.supernode ?? "auto",
      supernodeLimits: o.supernodeLimits ?? {},
      ipv6: local6 !== undefined,
      ...(portmap ? { portmap } : {}),
    });
    log.info("Bound UDP {local}{local6}; registering with {server}", {
      local: formatEndpoint(local),
      local6: local6 ? ` and ${formatEndpoint(local6)}` : "",
      server: formatEndpoint(server),
    });
    this.#files = new FileSession({
      client: this.#client,
      step: (fn) => this.#driver.step(fn),
      downloads: o.downloads ?? defaultDownloadDir((k) => Deno.env.get(k)),
      autoAccept: o.autoAccept ?? false,
      notice: (text) => this.#print(view.notice(text, "file")),
      random: systemRandom,
    });
    this.#print(view.registering(server, local));
    this.#driver.step((now) => this.#client.start(now));
    this.#driver.start();
  }

  /** A datagram from a server over TCP or TLS (`from`: its stream endpoint). */
  deliver(from: Endpoint, data: Uint8Array): void {
    this.#driver.step((now) => this.#client.handleDatagram(now, from, data, 0));
  }

  /**
   * Our stream to `server` ended (the server restarted or dropped it, or it broke): when that is
   * how we reach our server, check the registration now rather than at the next keepalive.
   */
  streamClosed(server: Endpoint): void {
    if (!sameEndpoint(server, this.#client.serverInUse)) return;
    this.#driver.step((now) => this.#client.recheckServer(now));
  }

  /** Ctrl-C or SIGTERM: stop waiting for anything and leave. */
  interrupt(): void {
    this.#interrupted = true;
    this.#signalled.resolve("signal");
    this.#wake();
    this.#room?.();
  }

  /**
   * Registers, then sends the input lines (in batches, as they arrive) until they end, `/quit`
   * or a signal; returns an exit code.
   */
  async run(input: AsyncIterable<readonly string[]>): Promise<number> {
    const client = this.#client;
    const stdinDone = this.#readInput(input);
    // Registration first: fatal (unreachable, refused) ends the run, and so does Ctrl-C.
    // The client's own deadline ends it after `registerTimeout` without any answer; a server
    // that answers (slowly: a herd registering at once) is waited for, within reason.
    const registered = () => this.#ready || this.#fatal !== undefined || this.#interrupted;
    // Waiting is visible: every few seconds without an answer, which server is being tried.
    const still = setInterval(() => {
      if (registered()) return;
      const at = this.#serverText(this.#client.serverInUse, false);
      this.#print(this.#view.notice(`Still trying ${at}…`, "waiting"));
    }, STILL_TRYING_EVERY);
    try {
      await this.#until(registered, REGISTER_WAIT_MAX);
    } finally {
      clearInterval(still);
    }
    if (this.#interrupted && !this.#ready) return 130;
    if (this.#fatal !== undefined || !this.#ready) {
      throw new JoinError(this.#fatal ?? "Registration did not complete");
    }
    // Lines typed (or piped) before registration go out once the server's roster says who is
    // in the room, so they reach everyone already there.
    await this.#until(() => client.synced || this.#interrupted, 1_000);
    this.#sendable = true;
    this.#sendAll(this.#pending.splice(0));
    if (this.#o.sendFile) {
      return await sendAndWait(
        this.#files,
        this.#o.sendFile,
        this.#client,
        (c, ms) => this.#until(() => c() || this.#interrupted, ms),
      );
    }
    // Alone for a while: say what that may mean (a wrong passphrase or room name is a room too).
    const alone = setTimeout(() => {
      if (this.#metSomeone) return;
      this.#print(this.#view.notice(ALONE_NOTICE, "alone"));
    }, ALONE_AFTER);
    try {
      if (await Promise.race([stdinDone, this.#signalled.promise]) === "signal") return 0;
    } finally {
      clearTimeout(alone);
    }
    // Deliver what is queued before leaving, to the peers that answer (a stopped one is not
    // waited for: its goodbye would only come later); Ctrl-C stops waiting.
    const drained = () => client.awaiting(monotonicNow()) === 0 || this.#interrupted;
    await this.#until(drained, this.#o.drainTimeout);
    const unacknowledged = client.outstanding, forgotten = client.undelivered;
    if (unacknowledged === 0 && forgotten === 0) return 0;
    if (forgotten > 0) {
      log.warning(
        "{count} message parts to peers that left and did not come back were never delivered",
        {
          count: forgotten,
        },
      );
    }
    if (unacknowledged > 0) {
      log.warning("{count} message parts were not acknowledged before leaving", {
        count: unacknowledged,
      });
    }
    return 1;
  }

  /** Leaves the room, closes the socket and finishes writing the known peers. */
  async close(): Promise<void> {
    try {
      this.#driver.step((now) => this.#client.leave(now));
      // The peers answer our goodbyes and the router deletes our port mapping (bounded wait;
      // nothing to wait for when every peer answered at once and there is no mapping).
      const done = () => this.#client.farewellDone && this.#client.portmapIdle;
      if (!done()) await this.#until(done, LEAVE_WAIT);
      await this.#driver.close();
      await this.#files.close();
    } finally {
      this.#out.flush();
    }
    await Promise.all(this.#saving);
    log.debug("Stopped at {at} ms; drops {drops}; channels {channels}; socket {socket}", {
      at: Math.round(monotonicNow()),
      drops: this.#client.drops,
      channels: this.#client.channelStats(),
      socket: this.#driver.stats,
    });
  }

  /**
   * Acts on input lines until `/quit` or their end. Lines to send go out in one driver step per
   * batch; while a peer that is taking messages has {@link INPUT_BACKLOG} of them queued, input
   * waits (piped input is delivered, not refused for a full queue).
   */
  async #readInput(input: AsyncIterable<readonly string[]>): Promise<"quit" | "eof"> {
    for await (const batch of input) {
      let texts: string[] = [];
      for (const raw of batch) {
        const cmd = parseInput(raw);
        if (cmd.kind === "send") {
          if (this.#sendable && this.#client.backlog(monotonicNow()) >= INPUT_BACKLOG) {
            this.#sendAll(texts);
            texts = [];
            await this.#roomToSend();
          }
          texts.push(cmd.text);
          continue;
        }
        if (cmd.kind === "empty") continue;
        // Anything else is shown in order with the sends around it.
        this.#sendAll(texts);
        texts = [];
        switch (cmd.kind) {
          case "quit":
            return "quit";
          case "peers":
            this.#print(this.#view.peers(this.#client.peers().map((p) => this.#rowTransport(p))));
            break;
          case "help":
            this.#print(this.#view.help());
            break;
          case "trust":
            this.#trust(cmd.name);
            break;
          case "private":
            this.#private(cmd.name, cmd.text);
            break;
          case "nick":
            this.#nick(cmd.name);
            break;
          case "unknown":
            this.#print(this.#view.notice(`Unknown command ${cmd.command}; try /help`));
            break;
          case "send-file":
            void this.#files.sendCommand(cmd.args);
            break;
          case "accept":
            void this.#files.accept(cmd.id);
            break;
          case "reject":
            this.#files.reject(cmd.id);
            break;
        }
      }
      this.#sendAll(texts);
    }
    return "eof";
  }

  /** Resolves after a step that leaves room to send (or on a signal, or after a while). */
  #roomToSend(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, 250);
    this.#room = () => {
      if (this.#interrupted || this.#client.backlog(monotonicNow()) < INPUT_BACKLOG) resolve();
    };
    return promise.finally(() => {
      clearTimeout(timer);
      this.#room = undefined;
    });
  }

  /** Sends chat lines in one driver step (before registering, they wait in #pending). */
  #sendAll(texts: readonly string[]): void {
    if (texts.length === 0) return;
    if (!this.#sendable) {
      this.#pending.push(...texts);
      return;
    }
    const sent: number[] = [];
    this.#driver.step((now) => {
      for (const text of texts) sent.push(this.#client.send(now, text));
    });
    // On the chat screen our own lines are shown like everyone's, with our name.
    if (this.#screen && this.#self !== null) {
      for (let i = 0; i < texts.length; i++) {
        if (sent[i] !== 0) {
          this.#print(this.#view.event({ type: "message", from: this.#self, text: texts[i]! }));
        }
      }
    }
    if (sent.includes(0) && this.#client.peers().length === 0) {
      for (const n of sent) {
        if (n === 0) this.#print(this.#view.notice("Nobody else is in the room; not sent"));
      }
    }
  }

  #onStep(): void {
    for (let h = this.#client.pollHttp(); h; h = this.#client.pollHttp()) this.#fetch(h);
    // Failover to another --server (or a supernode) is announced, not silent.
    const inUse = this.#client.serverInUse;
    const using = this.#serverText(inUse, false);
    if (this.#serverShown !== null && using !== this.#serverShown) {
      this.#print(this.#view.notice(`Trying the next server: ${using}`, "failover"));
    } else if (
      this.#ready && this.#inUse &&
      (this.#inUse.stream === undefined) !== (inUse.stream === undefined)
    ) {
      this.#transportChanged(inUse);
    }
    this.#serverShown = using;
    this.#inUse = inUse;
    for (let e = this.#client.pollEvent(); e; e = this.#client.pollEvent()) {
      if (e.type === "fatal") this.#fatal = e.message;
      if (e.type === "ready") {
        this.#ready = true;
        this.#self = e.name;
        this.#screen?.setPrompt(`${displayName(e.name)}> `);
      }
      if (e.type === "peer") this.#metSomeone = true;
      // People get a progress line a transfer every 2 s at most; --json gets each.
      if (e.type !== "file" || e.state !== "progress" || this.#o.json || this.#showProgress(e.id)) {
        this.#print(this.#view.event(e.type === "peer" ? this.#withTransport(e) : e));
      }
      if (e.type === "file") this.#files.onEvent(e);
      if (e.type === "peer") this.#files.onPeer(e.name);
      // Registered over TCP or TLS: said once (and again whenever that changes).
      if (e.type === "ready" && inUse.stream !== undefined) {
        this.#print(this.#transportNotice(inUse));
      }
      if (e.type === "warning" && e.kind === "identity-changed" && e.name !== null) {
        this.#print(this.#view.notice(
          `If you checked the new fingerprint with ${e.name}, type /trust ${e.name} to accept it`,
        ));
      }
      // Shown on stdout already; the log repeats it only with -v (and for --json runs).
      if (e.type === "peer") {
        log.debug("Peer {name} is {path}", { name: e.name, path: pathText(e.path, e.addr, e.rtt) });
        this.#remember(e.name, e.fingerprint);
      } else if (e.type === "left") {
        log.debug("Peer {name} left ({reason})", { name: e.name, reason: e.reason });
      }
    }
    this.#files.onStep();
    this.#wake();
    this.#room?.();
  }

  /** Whether a progress line of transfer `id` is due for people (one every 2 s). */
  #showProgress(id: string): boolean {
    const now = monotonicNow(), last = this.#progressShown.get(id);
    if (last !== undefined && now - last < HUMAN_PROGRESS_EVERY) return false;
    this.#progressShown.set(id, now);
    if (this.#progressShown.size > 256) {
      this.#progressShown.delete(this.#progressShown.keys().next().value!);
    }
    return true;
  }

  /**
   * Server `ep` as the user named it (the group's first entry with `transport` false: failover
   * is between servers; a move between UDP and TCP is announced apart).
   */
  #serverText(ep: Endpoint, transport: boolean): string {
    const t = this.#transports;
    if (!t) return formatEndpoint(ep);
    if (transport) return t.describe(ep);
    const g = t.groupOf(ep);
    const first = g < 0 ? ep : t.servers[t.groups.indexOf(g)]!;
    return formatEndpoint({ hostname: first.hostname, port: first.port });
  }

  /** A relayed peer event says when our server relays over TCP (`transport: "tcp"`). */
  #withTransport(e: Extract<ClientEvent, { type: "peer" }>): ClientEvent {
    const tcp = e.path === "relay" && (e.relayedBy ?? null) === null &&
      this.#client.serverInUse.stream !== undefined;
    return tcp ? { ...e, transport: "tcp" } : e;
  }

  /** A `/peers` row says when our server relays to that peer over TCP. */
  #rowTransport(p: PeerInfo): PeerInfo {
    const tcp = p.path === "relay" && (p.relayedBy ?? null) === null &&
      this.#client.serverInUse.stream !== undefined;
    return tcp ? { ...p, transport: "tcp" } : p;
  }

  /** The `transport` notice: how the server in use, `ep`, is reached. */
  #transportNotice(ep: Endpoint): string[] {
    const how = ep.stream === undefined
      ? "UDP gets through: the server is reached over UDP"
      : `The server is reached over ${
        this.#serverText(ep, true)
      } (UDP is tried again in the background)`;
    return this.#view.notice(how, "transport");
  }

  /** Our server moved between UDP and TCP: said once, with the peers it relays for us. */
  #transportChanged(ep: Endpoint): void {
    this.#print(this.#transportNotice(ep));
    for (const p of this.#client.peers()) {
      if (p.path !== "relay" || (p.relayedBy ?? null) !== null) continue;
      const { outstanding: _, ...shown } = p;
      if (shown.path === "pending") continue;
      this.#print(
        this.#view.event(this.#withTransport({ ...shown, type: "peer", path: shown.path })),
      );
    }
  }

  /** Makes a port mapper's HTTP request and hands the answer back in a driver step. */
  #fetch(h: PortMapHttp): void {
    void runHttp(h).then((res) => {
      this.#driver.step((now) => this.#client.handleHttp(now, h.id, res));
    });
  }

  /**
   * Remembers the fingerprint of a peer met for the first time in this room. A name known with
   * another fingerprint keeps the old one (the client warns about the change each time): like
   * SSH, only the user replaces a known key, by removing its entry from the file.
   */
  #remember(name: string, fp: string): void {
    const known = this.#known.get(name);
    if (known === fp) return;
    // A known name with another key: the warning says so; only /trust replaces the record.
    if (known !== undefined) return;
    // A name the server suffixed (`bob-2`: "bob" was taken) is no identity's name to keep:
    // the next person suffixed so would set off a changed-identity warning.
    const suffixed = /^(.+)-\d+$/.exec(name);
    if (
      suffixed && (this.#known.get(suffixed[1]!) !== undefined ||
        this.#client.peers().some((p) => p.name === suffixed[1]))
    ) return;
    this.#save(name, fp);
  }

  /** `/trust NAME`: records the identity NAME has now as the one to expect. */
  #trust(name: string): void {
    const peer = this.#client.peers().find((p) => p.name === name);
    if (!peer) {
      this.#print(this.#view.notice(`Nobody called ${name} is here; /peers lists who is`));
      return;
    }
    this.#save(name, peer.fingerprint);
    this.#print(this.#view.notice(`${name} is now expected with fingerprint ${peer.fingerprint}`));
  }

  /** `/msg NAME text`: sends `text` to `name` alone; on the chat screen, shows it as sent. */
  #private(name: string, text: string): void {
    if (!this.#sendable) {
      this.#print(this.#view.notice("Not in the room yet; /msg waits for no one: try again soon"));
      return;
    }
    let sent = 0;
    this.#driver.step((now) => sent = this.#client.sendPrivate(now, name, text));
    if (sent > 0 && this.#screen && this.#self !== null) {
      this.#print(
        this.#view.event({ type: "message", from: this.#self, to: name, text, private: true }),
      );
    }
  }

  /** `/nick NAME`: renames us; the peers are told (the client's notice says so). */
  #nick(name: string): void {
    let why: string | null = null;
    this.#driver.step((now) => why = this.#client.rename(now, name));
    if (why !== null) return this.#print(this.#view.notice(why));
    this.#self = this.#client.name;
    this.#screen?.setPrompt(`${displayName(this.#self)}> `);
  }

  /** Writes `name` → `fp` to the known peers file (replacing what was there). */
  #save(name: string, fp: string): void {
    const saving = this.#known.remember(name, fp).catch((e) => {
      log.warning("Cannot remember the fingerprint of {name}: {error}", {
        name,
        error: (e as Error).message,
      });
    }).finally(() => this.#saving.delete(saving));
    this.#saving.add(saving);
  }

  #print(lines: readonly string[]): void {
    for (const l of lines) this.#out.line(l);
  }

  /** Resolves when `cond` holds after some step, or after `ms`. */
  #until(cond: () => boolean, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        this.#wake = () => {};
        resolve();
      };
      const timer = setTimeout(finish, ms);
      this.#wake = () => {
        if (cond()) finish();
      };
      this.#wake();
    });
  }
}

/**
 * A port mapper for the socket bound on `port`, unless port mapping is off (`--no-portmap`,
 * `--relay-only`), the server is on this machine (loopback: every peer is here too, no router
 * between them), or there is no non-loopback IPv4 address to map.
 */
function portMapper(o: JoinOptions, port: number, server: Endpoint): PortMapper | undefined {
  if (o.portmap === false || o.relayOnly) return undefined;
  if (server.hostname.startsWith("127.") || server.hostname === "::1") return undefined;
  const gw = findGateway(o.bind);
  if (!gw) return undefined;
  log.debug("Port mapping: gateway {gateway}, local address {local}", {
    gateway: gw.gateway ?? "unknown (UPnP only)",
    local: gw.localAddress,
  });
  return new PortMapper({
    gateway: gw.gateway,
    localAddress: gw.localAddress,
    prefixLength: gw.prefixLength,
    localPort: port,
    random: systemRandom,
  });
}

/**
 * The lines of a byte stream (without `\n`), in batches: each chunk read gives the lines it
 * completes. A final partial line is included.
 */
function readLineBatches(stream: ReadableStream<Uint8Array>): AsyncIterable<string[]> {
  return stream.pipeThrough(new TextDecoderStream()).pipeThrough(new LineBatcher());
}

/** Splits a text stream into batches of lines (without the newline). */
class LineBatcher extends TransformStream<string, string[]> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop() ?? "";
        if (parts.length > 0) controller.enqueue(parts);
      },
      flush(controller) {
        if (rest !== "") controller.enqueue([rest]);
      },
    });
  }
}

/**
 * Output lines in batches: a line goes out once the event loop has handled what is ready now
 * (`setImmediate`), so one write carries every message that arrived meanwhile (a flood costs a
 * write per batch, not per line) while a lone line waits microseconds, not the millisecond or
 * two a timer would take. `write` takes a batch: stdout, or the chat screen.
 */
class OutputLines {
  #lines: string[] = [];
  #scheduled = false;
  #write: (lines: string[]) => void;
  #dress: (text: string) => string;
  #soon = () => {
    this.#scheduled = false;
    this.flush();
  };

  /** Lines go to `write`, each through `dress` first (the time in front, on the screen). */
  constructor(write: (lines: string[]) => void, dress: (text: string) => string = (t) => t) {
    this.#write = write;
    this.#dress = dress;
  }

  /** Queues one line (without its newline). */
  line(text: string): void {
    this.#lines.push(this.#dress(text));
    if (this.#lines.length >= OUTPUT_BATCH) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#soon);
    }
  }

  /** Writes everything queued. */
  flush(): void {
    if (this.#lines.length === 0) return;
    const lines = this.#lines;
    this.#lines = [];
    this.#write(lines);
  }
}

const encoder = new TextEncoder();

/** Writes lines to stdout; a closed pipe (nobody reads any more) is nothing to show them to. */
function writeStdout(lines: string[]): void {
  const bytes = encoder.encode(lines.join("\n") + "\n");
  try {
    for (let o = 0; o < bytes.length;) o += Deno.stdout.writeSync(bytes.subarray(o));
  } catch {
    // Nobody reads stdout any more.
  }
}

/** `text` with the local time (`HH:MM`) in front, dim when `color`: a chat screen's line. */
function timed(color: boolean): (text: string) => string {
  return (text) => {
    const d = new Date();
    const hh = String(d.getHours()).padStart(2, "0"), mm = String(d.getMinutes()).padStart(2, "0");
    return `${color ? `\x1b[2m${hh}:${mm}\x1b[22m` : `${hh}:${mm}`} ${text}`;
  };
}
