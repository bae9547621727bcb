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
import { getLogger } from "@logtape/logtape";
import { type LogLevel, redirectLogs } from "../io/log.ts";
import { monotonicNow, type UdpDriver } from "../io/udp.ts";
import { withStreams } from "../io/tcp.ts";
import { runHttp } from "../io/http.ts";
import { systemRandom } from "../io/random.ts";
import { defaultDownloadDir } from "../io/file_store.ts";
import { Client } from "../peer/client.ts";
import { plural } from "../peer/notices.ts";
import type { RegistryOptions } from "../server/registry.ts";
import type { PortMapHttp } from "../nat/portmap/mapper.ts";
import { type Endpoint, formatEndpoint, sameEndpoint } from "../wire/address.ts";
import { ChatScreen } from "./chat_screen.ts";
import { pathText, type PeerView, peerView } from "./view.ts";
import { serverRoutes, ServerTransports } from "./transports.ts";
import { TlsAdvice } from "./tls_advice.ts";
import { FileSession, sendAndWait } from "./file_session.ts";
import { JoinError, readCa, resolveServer } from "./join_error.ts";
import { type Credentials, credentials } from "./join_entry.ts";
import { bindPeer, type BoundPeer } from "./peer_socket.ts";
import { OutputLines, readLineBatches, timed, writeStdout } from "./line_output.ts";
import { KnownFingerprints } from "./known_fingerprints.ts";
import { ServerNotices } from "./server_notices.ts";
import { ChatInput } from "./chat_input.ts";

export { JoinError, resolveServer } from "./join_error.ts";

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
  /** `--log-file`: logs go to this file; the chat screen then shows only warnings and up. */
  logFile?: string;
}

const log = getLogger(["p2p", "join"]);

/** How often people see a transfer's progress line, in ms. */
const HUMAN_PROGRESS_EVERY = 2000;

/**
 * After leaving, how long to wait for the peers to answer our goodbyes (at most a second) and
 * the router to confirm deleting our port mapping, ms.
 */
const LEAVE_WAIT = 1500;

/** How often "Still trying SERVER…" is shown while registering, ms. */
const STILL_TRYING_EVERY = 3_000;
/** After this long alone in the room (ms), the `alone` notice says what that may mean. */
export const ALONE_AFTER = 10_000;
/** What the `alone` notice says. */
export const ALONE_NOTICE = "Nobody else is here yet. A wrong passphrase or room name leads into " +
  "another, empty room: check them with whoever invited you, or join with their ticket";
/** Longest wait for registration while the server keeps answering, ms. */
const REGISTER_WAIT_MAX = 5 * 60_000;

/** Runs a peer until stdin ends, /quit, or a signal. Returns the process exit code. */
export async function join(o: JoinOptions): Promise<number> {
  // The chat screen opens as soon as nothing more is asked at the terminal: the room keys are
  // derived (0.1 s of scrypt) and the servers resolved while it is up.
  let output: Output | null = null;
  try {
    const creds = await credentials(o, () => output = openOutput(o));
    if (!creds) return 130;
    return await runPeer(o, creds, output ?? openOutput(o));
  } finally {
    closeOutput(output);
  }
}

/** Resolves the servers and runs the peer until it ends; returns the exit code. */
async function runPeer(o: JoinOptions, creds: Credentials, output: Output): Promise<number> {
  const { screen, out, color } = output;
  // Over UDP, and over TCP or TLS where UDP gets no answer (see lib/roles/transports.ts).
  const tlsAdvice = new TlsAdvice(o.tlsCa !== undefined);
  const late = {
    deliver: (_from: Endpoint, _data: Uint8Array): void => {},
    closed: (_server: Endpoint): void => {},
  };
  const transports = await ServerTransports.open(
    serverRoutes(creds.servers, o.tcp ?? false),
    (hostPort) => resolveServer(hostPort),
    (from, data) => late.deliver(from, data),
    (why) => {
      log.debug("Stream to the server failed: {why}", { why });
      const advice = tlsAdvice.heard(why);
      if (advice) log.warning("{advice}", { advice });
    },
    o.tlsCa === undefined ? [] : [await readCa(o.tlsCa)],
    (server) => late.closed(server),
  );
  const stun: Endpoint[] = [];
  try {
    for (const spec of o.stun ?? []) stun.push(await resolveServer(spec, "STUN server"));
  } catch (e) {
    await transports.close();
    throw e;
  }
  const view = peerView({ json: o.json, color, bell: screen !== null });
  const peer = new PeerProcess(o, view, creds, out, screen, stun, transports);
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
}

/** Where the peer's lines go (see {@link openOutput}). */
interface Output {
  screen: ChatScreen | null;
  out: OutputLines;
  color: boolean;
}

/** Writes what is left and gives the terminal back. */
function closeOutput(output: Output | null): void {
  if (!output) return;
  output.out.flush();
  if (output.screen) {
    redirectLogs(null);
    output.screen.close();
  }
}

/**
 * Where the peer's lines go: a person at a terminal gets the chat screen (logs shown above the
 * input, from `warning` up unless more was asked for without a log file); pipes and `--json`
 * keep the line protocol.
 */
function openOutput(o: JoinOptions): Output {
  const color = !o.json && Deno.stdout.isTerminal() && !Deno.noColor;
  const screen = !o.json && !o.sendFile && Deno.stdin.isTerminal() && Deno.stdout.isTerminal()
    ? ChatScreen.open({ prompt: "> " })
    : null;
  const out = screen
    ? new OutputLines((lines) => screen.print(lines), timed(color))
    : new OutputLines(writeStdout);
  if (screen) {
    const level = o.logLevel ?? "info";
    const lowest = level === "info" || o.logFile !== undefined ? "warning" : level;
    redirectLogs((line) => out.line(line), lowest);
  }
  return { screen, out, color };
}

/** The client of a peer registering with `servers[0]` (the rest to fail over to). */
function newClient(
  o: JoinOptions,
  creds: Credentials,
  bound: BoundPeer,
  stun: Endpoint[],
  transports: ServerTransports,
): Client {
  const [server, ...fallbacks] = transports.servers as [Endpoint, ...Endpoint[]];
  return new Client({
    server,
    room: creds.room,
    name: o.name,
    identity: creds.identity,
    random: systemRandom,
    knownPeers: creds.known.entries(),
    relayOnly: o.relayOnly,
    privateEndpoints: bound.privateEndpoints,
    keepalive: o.keepalive,
    registerTimeout: o.registerTimeout,
    stun,
    fallbacks,
    serverGroups: transports.groups,
    supernode: o.supernode ?? "auto",
    supernodeLimits: o.supernodeLimits ?? {},
    ipv6: bound.driver.localAddr6 !== undefined,
    ...(bound.portmap ? { portmap: bound.portmap } : {}),
  });
}

/**
 * One running peer: the client on its driver, and the session's course (registering, sending,
 * draining, leaving). Its parts: the input ({@link ChatInput}), file transfers
 * ({@link FileSession}), the server notices ({@link ServerNotices}) and the known peers
 * ({@link KnownFingerprints}).
 */
class PeerProcess {
  #o: JoinOptions;
  #view: PeerView;
  #client: Client;
  #driver: UdpDriver;
  #fatal: string | undefined;
  #ready = false;
  #interrupted = false;
  #signalled = Promise.withResolvers<"signal">();
  /** Called after every driver step (and on a signal) by whoever waits in {@link #until}. */
  #wake = () => {};
  #out: OutputLines;
  /** Whether any peer has been shown yet (else, after a while, the `alone` notice). */
  #metSomeone = false;
  /** File transfers: commands, offers, disk work. */
  #files: FileSession;
  /** When each transfer's progress was last shown to people. */
  #progressShown = new Map<string, number>();
  #known: KnownFingerprints;
  #notices: ServerNotices;
  #input: ChatInput;

  constructor(
    o: JoinOptions,
    view: PeerView,
    creds: Credentials,
    out: OutputLines,
    screen: ChatScreen | null,
    stun: Endpoint[],
    transports: ServerTransports,
  ) {
    this.#o = o;
    this.#view = view;
    this.#out = out;
    this.#known = new KnownFingerprints(creds.known);
    const server = transports.servers[0]!;
    // The client needs the bound port, the driver needs the client: bind first, fill in after.
    const machine = withStreams({
      handleDatagram: (n: number, f: Endpoint, d: Uint8Array, via?: number) =>
        this.#client.handleDatagram(n, f, d, via),
      handleTimeout: (n: number) => this.#client.handleTimeout(n),
      pollTransmit: () => this.#client.pollTransmit(),
      pollRelease: () => this.#client.pollRelease(),
      nextTimeout: () => this.#client.nextTimeout(),
    }, (t) => transports.send(t));
    const bound = bindPeer(o, server, machine, () => this.#onStep());
    this.#driver = bound.driver;
    this.#client = newClient(o, creds, bound, stun, transports);
    const local = this.#driver.localAddr, local6 = this.#driver.localAddr6;
    log.info("Bound UDP {local}{local6}; registering with {server}", {
      local: formatEndpoint(local),
      local6: local6 ? ` and ${formatEndpoint(local6)}` : "",
      server: formatEndpoint(server),
    });
    const step = (fn: (now: number) => void) => this.#driver.step(fn);
    const print = (lines: readonly string[]) => this.#print(lines);
    this.#files = new FileSession({
      client: this.#client,
      step,
      downloads: o.downloads ?? defaultDownloadDir((k) => Deno.env.get(k)),
      autoAccept: o.autoAccept ?? false,
      notice: (text) => this.#print(view.notice(text, "file")),
      random: systemRandom,
    });
    this.#notices = new ServerNotices(this.#client, view, transports, print);
    this.#input = new ChatInput({
      client: this.#client,
      step,
      view,
      print,
      screen,
      files: this.#files,
      known: this.#known,
      row: (p) => this.#notices.row(p),
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
    this.#input.interrupt();
  }

  /**
   * Registers, then sends the input lines (in batches, as they arrive) until they end, `/quit`
   * or a signal; returns an exit code.
   */
  async run(input: AsyncIterable<readonly string[]>): Promise<number> {
    const inputDone = this.#input.read(input);
    const registered = await this.#register();
    if (registered !== 0) return registered;
    // Lines typed (or piped) before registration go out once the server's roster says who is
    // in the room, so they reach everyone already there.
    await this.#until(() => this.#client.synced || this.#interrupted, 1_000);
    this.#input.open();
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
      if (await Promise.race([inputDone, this.#signalled.promise]) === "signal") return 0;
    } finally {
      clearTimeout(alone);
    }
    return await this.#drain();
  }

  /**
   * Waits for registration: fatal (unreachable, refused) ends the run, and so does Ctrl-C
   * (130). The client's own deadline ends it after `registerTimeout` without any answer; a
   * server that answers (slowly: a herd registering at once) is waited for, within reason.
   * Returns 0 once registered.
   */
  async #register(): Promise<number> {
    const registered = () => this.#ready || this.#fatal !== undefined || this.#interrupted;
    // Waiting is visible: every few seconds without an answer, which server is being tried.
    const still = setInterval(() => {
      if (!registered()) this.#notices.stillTrying();
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
    return 0;
  }

  /**
   * The input ended: delivers what is queued before leaving, to the peers that answer (a stopped
   * one is not waited for: its goodbye would only come later); Ctrl-C stops waiting. Returns 1
   * when something was left undelivered, or a typed line went to nobody.
   */
  async #drain(): Promise<number> {
    const client = this.#client;
    const drained = () => client.awaiting(monotonicNow()) === 0 || this.#interrupted;
    await this.#until(drained, this.#o.drainTimeout);
    const unacknowledged = client.outstanding, forgotten = client.undelivered;
    const unsent = this.#input.unsent;
    if (unsent > 0) {
      log.warning("{lines} typed reached nobody (too long, or nobody to send to)", {
        lines: plural(unsent, "line"),
      });
    }
    // Leaving gives up what still waits for peers that left (kept, in case they came back). A
    // peer that said goodbye may well have read it (its last ACK lost on the way, say): no claim
    // that it never arrived, and no failure for it.
    const departed = client.departedOutstanding;
    if (departed > 0) {
      log.warning("{parts} to peers that left {were} not acknowledged before they left", {
        parts: plural(departed, "message part"),
        were: departed === 1 ? "was" : "were",
      });
    }
    if (unacknowledged === 0 && forgotten === 0) return unsent > 0 ? 1 : 0;
    if (forgotten > 0) {
      log.warning(
        "{parts} to peers that left and did not come back {were} never delivered",
        { parts: plural(forgotten, "message part"), were: forgotten === 1 ? "was" : "were" },
      );
    }
    if (unacknowledged > 0) {
      log.warning("{parts} {were} not acknowledged before leaving", {
        parts: plural(unacknowledged, "message part"),
        were: unacknowledged === 1 ? "was" : "were",
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
    await this.#known.settled();
    log.debug("Stopped at {at} ms; drops {drops}; channels {channels}; socket {socket}", {
      at: Math.round(monotonicNow()),
      drops: this.#client.drops,
      channels: this.#client.channelStats(),
      socket: this.#driver.stats,
    });
  }

  /** After every driver step: HTTP for the port mapper, notices, the client's events. */
  #onStep(): void {
    for (let h = this.#client.pollHttp(); h; h = this.#client.pollHttp()) this.#fetch(h);
    this.#notices.afterStep(this.#ready);
    for (let e = this.#client.pollEvent(); e; e = this.#client.pollEvent()) {
      if (e.type === "fatal") this.#fatal = e.message;
      if (e.type === "ready") {
        this.#ready = true;
        this.#input.registered(e.name);
      }
      if (e.type === "peer") this.#metSomeone = true;
      // People get a progress line a transfer every 2 s at most; --json gets each.
      if (e.type !== "file" || e.state !== "progress" || this.#o.json || this.#showProgress(e.id)) {
        this.#print(this.#view.event(e.type === "peer" ? this.#notices.withTransport(e) : e));
      }
      if (e.type === "file") this.#files.onEvent(e);
      if (e.type === "peer") this.#files.onPeer(e.name);
      // Registered over TCP or TLS: said once (and again whenever that changes).
      if (e.type === "ready") this.#notices.registered();
      if (e.type === "warning" && e.kind === "identity-changed" && e.name !== null) {
        this.#print(this.#view.notice(
          `If you checked the new fingerprint with ${e.name}, type /trust ${e.name} to accept it`,
        ));
      }
      // Shown on stdout already; the log repeats it only with -v (and for --json runs).
      if (e.type === "peer") {
        log.debug("Peer {name} is {path}", { name: e.name, path: pathText(e.path, e.addr, e.rtt) });
        const present = (name: string) => this.#client.peers().some((p) => p.name === name);
        this.#known.remember(e.name, e.fingerprint, present);
      } else if (e.type === "left") {
        log.debug("Peer {name} left ({reason})", { name: e.name, reason: e.reason });
      }
    }
    this.#files.onStep();
    this.#wake();
    this.#input.afterStep();
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

  /** Makes a port mapper's HTTP request and hands the answer back in a driver step. */
  #fetch(h: PortMapHttp): void {
    void runHttp(h).then((res) => {
      this.#driver.step((now) => this.#client.handleHttp(now, h.id, res));
    });
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
