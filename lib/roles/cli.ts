/**
 * The `p2p` subcommands' options, each written once: one table per subcommand
 * ({@link SERVE_COMMAND}, {@link JOIN_COMMAND}, {@link DOCTOR_COMMAND}) gives every option's
 * name, value, default, help text and check. The help text is made from the table
 * ({@link helpText}), the arguments are read through it ({@link parseOptions}), and the defaults
 * are the constants the code uses (`DEFAULT_REGISTRY`, `DEFAULT_SUPERNODE`, ...), so help,
 * parsed default and constant agree by construction. {@link parseServe}, {@link parseJoin} and
 * {@link parseDoctor} turn the values into the roles' options and check what no single option
 * can (contradictions, options that need others). Pure apart from the host name, which the
 * caller passes in.
 *
 * @module
 */
import {
  BadValue,
  type CommandSpec,
  fileName,
  flag,
  helpText,
  int,
  list,
  num,
  numberIn,
  oneOf,
  optional,
  type OptionTable,
  type OptionValues,
  parseOptions,
  type Range,
  required,
  UsageError,
  value,
} from "./options.ts";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../io/log.ts";
import { splitHostPort } from "../core/host_port.ts";
import { normalizeName } from "../core/names.ts";
import { DEFAULT_REGISTRY } from "../server/registry.ts";
import { DEFAULT_STREAM_LIMITS } from "../core/stream_policy.ts";
import { DEFAULT_CLUSTER } from "../server/cluster.ts";
import { DEFAULT_SUPERNODE } from "../peer/supernode.ts";
import { DEFAULT_TIMEOUT } from "../nat/doctor.ts";
import { formatIPv6, parseIPv6 } from "../wire/address.ts";
import { hasControlChars } from "../wire/codec.ts";
import { MAX_NAME } from "../wire/peer_frame.ts";
import { MAX_ROOM_SIZE } from "../wire/server_msg.ts";
import { DEFAULT_LIFETIME_BUDGET, type DoctorCliOptions } from "./doctor.ts";
import type { JoinOptions } from "./join.ts";
import type { ServeOptions } from "./serve.ts";

export { formatUsageError, UsageError } from "./options.ts";

/** The UDP port `p2p serve` listens on unless `--port` says otherwise. */
export const DEFAULT_PORT = 7777;
/** The STUN port a `--stun HOST` without one means (RFC 8489). */
export const STUN_DEFAULT_PORT = 3478;
/** Interval of `p2p serve`'s summary log line, s. */
export const DEFAULT_SUMMARY_S = 60;
/**
 * Keepalive interval of `p2p join`, s. The server forgets peers after
 * `DEFAULT_REGISTRY.expireAfter` (75 s) of silence: keepalives must come well before that.
 */
export const DEFAULT_KEEPALIVE_S = 25;
/** Longest keepalive interval `p2p join` accepts, s (below the server's 75 s expiry). */
export const MAX_KEEPALIVE_S = 60;
/** How long `p2p join` tries to register before giving up, s. */
export const DEFAULT_REGISTER_TIMEOUT_S = 10;
/** After stdin ends, how long `p2p join` waits at most for messages to be acknowledged, ms. */
export const DRAIN_TIMEOUT = 30_000;
/** Most `--server` options `p2p join` takes. */
export const MAX_SERVERS = 8;

// ---------------------------------------------------------------------------------------------
// Checks of p2p's values

const PORT_RANGE: Range = { min: 0, max: 65535, whole: true };

/** Reads a literal IPv4 address; `hint` is added when an IPv6 address was given. */
function ipv4(flagName: string, hint = ""): (v: string) => string {
  return (v) => {
    if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(v) || v.split(".").some((p) => Number(p) > 255)) {
      const why = v.includes(":") && hint ? ` (${hint})` : "";
      throw new BadValue(`--${flagName} must be a literal IPv4 address, got "${v}"${why}`);
    }
    return v;
  };
}

/** Reads a literal IPv6 address a server can bind (not link-local or multicast), canonical. */
function ipv6(flagName: string): (v: string) => string {
  return (v) => {
    const b = parseIPv6(v);
    if (!b || b[0] === 0xff || (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80)) {
      throw new BadValue(
        `--${flagName} must be a literal IPv6 address (not link-local or multicast), got "${v}"`,
      );
    }
    return formatIPv6(b);
  };
}

/**
 * A `HOST:PORT` option; a bare host (a name, an IPv4 address, an IPv6 address with or without
 * brackets) takes `defaultPort`.
 */
function hostPort(flagName: string, what: string, defaultPort: number): (v: string) => string {
  return (v) => {
    const spec = withDefaultPort(v, defaultPort);
    if (!splitHostPort(spec)) {
      throw new BadValue(
        `--${flagName} must be ${what} (or HOST alone for port ${defaultPort}; IPv6 as ` +
          `[ADDR]:PORT), got "${v}"`,
      );
    }
    return spec;
  };
}

/**
 * `v` as `HOST:PORT`: a bare name or IPv4 address, or an IPv6 address in brackets, gets `port`.
 * An IPv6 address without brackets stays as it is (refused: `2001:db8::1:7777` could end in a
 * port or not).
 */
export function withDefaultPort(v: string, port: number): string {
  if (splitHostPort(v)) return v;
  if (/^\[[^\]]+\]$/.test(v)) return `${v}:${port}`;
  if (v !== "" && !v.includes(":")) return `${v}:${port}`;
  return v;
}

// ---------------------------------------------------------------------------------------------
// The tables

const LOGGING = {
  "log-format": value({
    arg: LOG_FORMATS.join("|"),
    help: "log lines for people (text) or JSON lines for collectors (json)",
    default: "text" as LogFormat,
    parse: oneOf("log-format", LOG_FORMATS),
  }),
  "log-level": optional({
    arg: "LEVEL",
    help: `${LOG_LEVELS.slice(0, -1).join(", ")} or ${LOG_LEVELS.at(-1)}; wins over -v and -q`,
    shows: "info",
    parse: oneOf("log-level", LOG_LEVELS as readonly LogLevel[]),
  }),
  "log-file": optional({
    arg: "FILE",
    help: "append log lines to FILE (made with mode 0600) instead of stderr; the chat screen " +
      "still shows warnings",
    shows: "stderr",
    parse: fileName("log-file"),
  }),
  verbose: flag("debug logging on stderr", { short: "v" }),
  quiet: flag("only warnings and errors on stderr", { short: "q" }),
  help: flag("show this help", { short: "h" }),
};

const REG = DEFAULT_REGISTRY;
const HUGE = 10_000_000;
/** `--puzzle-from`: a share of `--max-peers`, in percent. */
const PUZZLE_RANGE: Range = { min: 0, max: 100, whole: true };

/** `p2p serve`. */
export const SERVE_COMMAND = {
  name: "serve",
  usage: "p2p serve [options]",
  about: "Runs the rendezvous server: peers register, learn about each other, punch holes " +
    "through their NATs; when that fails, the server relays their (end-to-end encrypted) " +
    "traffic.",
  options: {
    host: value({
      arg: "IP",
      help: "IPv4 address to bind",
      default: "0.0.0.0",
      parse: ipv4("host", "for IPv6 use --host6"),
    }),
    host6: optional({
      arg: "IP",
      help: "IPv6 address to bind, same port",
      shows: ":: when --host is 0.0.0.0; with a concrete --host, only if given",
      parse: ipv6("host6"),
    }),
    "no-ipv6": flag("serve IPv4 only"),
    port: int("port", { arg: "PORT", help: "UDP port", default: DEFAULT_PORT, ...PORT_RANGE }),
    expire: num("expire", {
      arg: "SECONDS",
      help: "forget peers silent this long",
      default: REG.expireAfter / 1000,
      min: 1,
      max: 86_400,
    }),
    summary: num("summary", {
      arg: "SECONDS",
      help: "interval of the summary log line, 0 for none",
      default: DEFAULT_SUMMARY_S,
      min: 0,
      max: 86_400,
    }),
    json: flag('print {"event":"listening","addr":...} on stdout when ready'),
    "alt-port": optional({
      arg: "PORT",
      help: "the second port of the same address (0: any free port; the default is skipped, " +
        "with a warning, when taken)",
      shows: "PORT+1, any with --port 0",
      parse: numberIn("alt-port", PORT_RANGE),
      before: "STUN (RFC 8489) Binding requests are answered on the same port and on a second " +
        "one: peers asking both learn whether their NAT gives each destination port its own " +
        "mapping (a hard NAT, which birthday probing gets through). From the second port the " +
        "server also checks which joining peers without a NAT are reachable from the Internet; " +
        "those serve their room as supernodes. Open both ports in your firewall.",
    }),
    "no-alt-port": flag("no second port: no mapping verdict from this server, no supernodes"),
    "alt-host": optional({
      arg: "IP",
      help: 'and on this second local address ("change IP"; --host must then be a concrete ' +
        "address)",
      shows: "none",
      parse: ipv4("alt-host"),
      after:
        "With --alt-host the server offers RFC 5780 NAT behaviour discovery (CHANGE-REQUEST, " +
        "OTHER-ADDRESS) and checks reachability from that second address, so peers behind " +
        "NATs that let anyone in (full cones) become supernodes too, and peers learn whether " +
        "their NAT maps per destination address.",
    }),
    "no-tcp": flag("do not accept peers over TCP", {
      before: "Peers whose network blocks UDP register and relay over TCP (on the UDP port's " +
        "number unless --tcp-port says otherwise) or TLS (with --tls-port, --tls-cert and " +
        "--tls-key), carrying the same datagrams:",
    }),
    "tcp-port": optional({
      arg: "PORT",
      help: "TCP port",
      shows: "the UDP port",
      parse: numberIn("tcp-port", PORT_RANGE),
    }),
    "tls-port": optional({
      arg: "PORT",
      help: "also accept peers over TLS on this TCP port, e.g. 443 (needs --tls-cert, --tls-key)",
      shows: "none",
      parse: numberIn("tls-port", PORT_RANGE),
    }),
    "tls-cert": optional({
      arg: "FILE",
      help: "the TLS certificate chain (PEM)",
      shows: "none",
      parse: fileName("tls-cert"),
    }),
    "tls-key": optional({
      arg: "FILE",
      help: "its private key (PEM)",
      shows: "none",
      parse: fileName("tls-key"),
    }),
    "max-tcp": int("max-tcp", {
      arg: "N",
      help: "TCP and TLS connections open at once",
      default: DEFAULT_STREAM_LIMITS.maxConnections,
      min: 1,
      max: HUGE,
    }),
    "max-tcp-per-source": int("max-tcp-per-source", {
      arg: "N",
      help: "TCP and TLS connections from one IP address (an IPv6 source is its /64)",
      default: DEFAULT_STREAM_LIMITS.maxPerSource,
      min: 1,
      max: HUGE,
    }),
    "max-peers": int("max-peers", {
      arg: "N",
      help: "peers on the whole server",
      default: REG.maxPeers,
      min: 1,
      max: HUGE,
      before: "Limits (what one source may cost the server; hitting one is logged, counted and " +
        "answered with an error the peer shows):",
    }),
    "max-room-size": int("max-room-size", {
      arg: "N",
      help: "peers in one room, {min} to {max}",
      default: REG.maxRoomSize,
      min: 2,
      max: MAX_ROOM_SIZE,
    }),
    "max-per-source": int("max-per-source", {
      arg: "N",
      help: "registrations from one IP address (an IPv6 source is its /64)",
      default: REG.maxPerSource,
      min: 1,
      max: HUGE,
    }),
    "max-rooms-per-source": int("max-rooms-per-source", {
      arg: "N",
      help: "rooms one IP address may be in",
      default: REG.maxRoomsPerSource,
      min: 1,
      max: HUGE,
    }),
    "max-per-network": int("max-per-network", {
      arg: "N",
      help: "most registrations from one network (an IPv4 /24, an IPv6 /48)",
      default: REG.maxPerNetwork,
      min: 1,
      max: HUGE,
    }),
    "max-rooms-per-network": int("max-rooms-per-network", {
      arg: "N",
      help: "most rooms one network may have registrations in",
      default: REG.maxRoomsPerNetwork,
      min: 1,
      max: HUGE,
    }),
    "relay-rate": int("relay-rate", {
      arg: "KIB",
      help: `relayed KiB/s one peer may send, burst 4 s of it or ${
        REG.relayBurst / 1024
      } KiB, whichever is more`,
      default: REG.relayRate / 1024,
      min: 1,
      max: HUGE,
    }),
    "pair-rate": int("pair-rate", {
      arg: "KIB",
      help: "relayed KiB/s one peer may send to one other",
      default: REG.pairRate / 1024,
      min: 1,
      max: HUGE,
    }),
    "receive-rate": int("receive-rate", {
      arg: "KIB",
      help: "relayed KiB/s one peer may receive from all senders together",
      default: REG.receiveRate / 1024,
      min: 1,
      max: HUGE,
    }),
    "total-relay-rate": int("total-relay-rate", {
      arg: "KIB",
      help: "relayed KiB/s the whole server forwards",
      default: REG.totalRelayRate / 1024,
      min: 1,
      max: HUGE,
    }),
    "hello-rate": int("hello-rate", {
      arg: "N",
      help: "registrations (signature checks) one IP address may cause a second, burst 4x",
      default: REG.helloRate,
      min: 1,
      max: HUGE,
    }),
    "puzzle-from": optional({
      arg: "PERCENT",
      help: "from this fill of --max-peers on, every registration must first solve a " +
        "proof-of-work puzzle the server's COOKIE asks (14 bits of SHA-256, 16 from 75 % full, " +
        "18 from 90 %; about 40, 150 and 600 ms of a peer's CPU); 0: always, 100: only " +
        "when full",
      shows: String(REG.pressureAt * 100),
      range: PUZZLE_RANGE,
      parse: numberIn("puzzle-from", PUZZLE_RANGE),
    }),
    "no-puzzle": flag("never ask for the puzzle (a full server still keeps rooms with members)"),
    metrics: optional({
      arg: "HOST:PORT",
      help: "serve Prometheus metrics at http://HOST:PORT/metrics; keep it on loopback, e.g. " +
        "127.0.0.1:9477",
      shows: "off",
      parse: metricsAddress,
      before: "Operations:",
    }),
    cluster: optional({
      arg: "URL",
      help:
        "share rooms with the other servers on this NATS engine, nats://[USER:PASS@]HOST:PORT " +
        "(others on this machine can read arguments: prefer P2P_CLUSTER_URL or --cluster-file)",
      shows: "P2P_CLUSTER_URL, else no cluster",
      parse: (v) => v,
      before: "Cluster (several servers, one network; off unless a cluster URL is given):",
    }),
    "cluster-file": optional({
      arg: "FILE",
      help: "read the cluster URL from the first line of FILE",
      shows: "none",
      parse: fileName("cluster-file"),
    }),
    "cluster-secret-file": optional({
      arg: "FILE",
      help: "authenticate cluster messages with the secret in FILE (or P2P_CLUSTER_SECRET); " +
        "without one, the engine's access control is trusted",
      shows: "P2P_CLUSTER_SECRET, else none",
      parse: fileName("cluster-secret-file"),
    }),
    "cluster-advertise": list({
      arg: "IP:PORT",
      help: "where peers reach this server, told to the cluster's peers for failover (repeat for " +
        "IPv6); by default --host and the port when --host is concrete",
      max: 2,
      parse: clusterEndpoint,
    }),
    "cluster-lease": num("cluster-lease", {
      arg: "SECONDS",
      help: "how long the other servers keep this server's peers after its last heartbeat",
      default: DEFAULT_CLUSTER.lease / 1000,
      min: 2,
      max: 600,
    }),
    "cluster-keepalive": num("cluster-keepalive", {
      arg: "SECONDS",
      help: "the keepalive interval the cluster asks of peers (failover within it + 4 s)",
      default: DEFAULT_CLUSTER.keepalive,
      min: 1,
      max: MAX_KEEPALIVE_S,
      whole: true,
    }),
    ...LOGGING,
  },
} satisfies CommandSpec<OptionTable>;

/** `--cluster-advertise`: a literal `IP:PORT` (IPv6 in brackets) with a port from 1. */
function clusterEndpoint(v: string): { hostname: string; port: number } {
  const hp = splitHostPort(v);
  const literal = hp && (/^(\d{1,3}\.){3}\d{1,3}$/.test(hp.host) || parseIPv6(hp.host) !== null);
  if (!hp || !literal || hp.port === 0) {
    throw new BadValue(
      `--cluster-advertise must be a literal IP:PORT (IPv6 as [ADDR]:PORT), got "${v}"`,
    );
  }
  const b = parseIPv6(hp.host);
  return { hostname: b ? formatIPv6(b) : hp.host, port: hp.port };
}

const SN = DEFAULT_SUPERNODE;

/** `p2p join`. */
export const JOIN_COMMAND = {
  name: "join",
  usage: "p2p join [--server HOST:PORT --room NAME] [options]",
  about: "Joins a room. Lines typed on stdin go to every other peer in the room; received lines " +
    'print as "[name] text". Commands: /peers, /msg, /me, /nick, /trust, /send, /help, /quit ' +
    "(/help says more). End of input delivers what is queued, then leaves: exit code 0 when " +
    "everything was delivered, 1 when a line reached nobody (too long, nobody there) or was " +
    "never acknowledged.\n\n" +
    "A room is entered with a ticket (servers, room and secret in one string; from " +
    "P2P_TICKET, --ticket-file, --ticket, or pasted at the prompt) or with --server, --room " +
    "and the passphrase its members share (P2P_PASSPHRASE, --passphrase-file, or typed at the " +
    "prompt). --new-room makes up a room and prints its ticket.",
  options: {
    server: list({
      arg: "HOST[:PORT]",
      help: `the rendezvous server (port ${DEFAULT_PORT} when none is given; tcp://HOST:PORT ` +
        "or tls://HOST:PORT to reach it over TCP or TLS); repeat it to " +
        "name others (servers or a room's " +
        `supernodes), at most ${MAX_SERVERS} in all: registers with the first that answers, ` +
        "fails over to the next; a ticket names them otherwise",
      max: MAX_SERVERS,
      parse: serverSpec,
    }),
    tcp: flag(
      "register and relay over TCP from the start (a server given as tcp://HOST:PORT or " +
        "tls://HOST:PORT is reached that way anyway; without either, TCP is tried when no " +
        "server answers over UDP); UDP is still tried in the background and used once it works",
    ),
    "tls-ca": optional({
      arg: "FILE",
      help: "trust this CA certificate, or a self-signed server certificate (PEM), for tls:// " +
        "servers, besides the public CAs (Mozilla's list; DENO_TLS_CA_STORE=system,mozilla adds " +
        "the system's)",
      shows: "the public CAs",
      parse: fileName("tls-ca"),
    }),
    room: optional({
      arg: "NAME",
      help: "room to join (a ticket names it otherwise); not case-sensitive",
      shows: "from the ticket",
      parse: roomName,
    }),
    ticket: optional({
      arg: "TICKET",
      help: "the room's ticket; others on this machine can read arguments (ps): prefer " +
        "P2P_TICKET, --ticket-file or the prompt",
      shows: "none",
      parse: (v) => v,
    }),
    "ticket-file": optional({
      arg: "FILE",
      help: "read the room's ticket from the first line of FILE",
      shows: "none",
      parse: fileName("ticket-file"),
    }),
    qr: flag("with --new-room: also print the ticket as a QR code"),
    name: optional({
      arg: "NAME",
      help: "your name in the room",
      shows: "this host's name",
      parse: (v) => {
        const checked = normalizeName(v);
        if (!checked.ok) throw new BadValue(`--name: ${checked.reason}`);
        return checked.name;
      },
    }),
    "passphrase-file": optional({
      arg: "FILE",
      help: "read the room passphrase from the first line of FILE",
      shows: "none",
      parse: fileName("passphrase-file"),
    }),
    "new-room": flag(
      "make up a strong passphrase for a new room, print it and the command line to share, " +
        "and join with it",
    ),
    identity: optional({
      arg: "FILE",
      help: "your long-term key, made on first use",
      shows: "$XDG_CONFIG_HOME/p2p/identity or ~/.config/p2p/identity",
      parse: fileName("identity"),
    }),
    "relay-only": flag("never punch, never reveal your addresses; relay everything"),
    stun: list({
      arg: "HOST[:PORT]",
      help: `also ask this STUN server (port ${STUN_DEFAULT_PORT} when none is given) how your ` +
        "NAT maps you (repeatable); a NAT that will " +
        "force the relay is reported as a notice",
      parse: hostPort("stun", "HOST:PORT", STUN_DEFAULT_PORT),
    }),
    supernode: flag(
      "ask to serve as this room's supernode (rendezvous and relay for the room's members; on " +
        "by default, and only granted when the server finds you reachable from the Internet); " +
        "says whether it was",
    ),
    "no-supernode": flag("never serve as a supernode (still use the room's)"),
    "supernode-relay-rate": int("supernode-relay-rate", {
      arg: "KIB",
      help: "as a supernode, relayed KiB/s one member may send, burst 4 s of it",
      default: SN.relayRate! / 1024,
      min: 1,
      max: 1_000_000,
    }),
    "supernode-pair-rate": int("supernode-pair-rate", {
      arg: "KIB",
      help: "as a supernode, relayed KiB/s one member may send to one other",
      default: SN.pairRate! / 1024,
      min: 1,
      max: 1_000_000,
    }),
    "supernode-max-members": int("supernode-max-members", {
      arg: "N",
      help: "as a supernode, most members registered with it, at most {max}",
      default: SN.maxPeers!,
      min: 1,
      max: MAX_ROOM_SIZE,
    }),
    downloads: optional({
      arg: "DIR",
      help: "where received files go (made when a file is first accepted)",
      shows: "$XDG_DOWNLOAD_DIR, or ~/Downloads",
      parse: fileName("downloads"),
    }),
    "auto-accept": flag("accept every file the room's members offer (else /accept or /reject)"),
    "no-portmap": flag(
      "do not ask the router for a port mapping (NAT-PMP, PCP, UPnP IGD; by default asked at " +
        "start, deleted on exit)",
    ),
    json: flag(
      "one JSON object per line on stdout (events: registering, ready, peer, message, left, " +
        "server, notice, warning, peers, room); logs go to stderr",
    ),
    bind: value({
      arg: "IP",
      help: "local IPv4 address to bind",
      default: "0.0.0.0",
      parse: ipv4("bind", "IPv6 is used by itself when this host has it; see --no-ipv6"),
    }),
    port: int("port", {
      arg: "PORT",
      help: "local UDP port",
      default: 0,
      shows: "any free port",
      ...PORT_RANGE,
    }),
    "no-ipv6": flag(
      "do not offer this host's IPv6 addresses to peers (by default, without --bind, global " +
        "and ULA ones are)",
    ),
    keepalive: num("keepalive", {
      arg: "SECONDS",
      help: "keepalive interval, at most {max}",
      default: DEFAULT_KEEPALIVE_S,
      min: 0.1,
      max: MAX_KEEPALIVE_S,
    }),
    timeout: num("timeout", {
      arg: "SECONDS",
      help: "give up registering after this long",
      default: DEFAULT_REGISTER_TIMEOUT_S,
      min: 0.1,
      max: 3_600,
    }),
    ...LOGGING,
  },
} satisfies CommandSpec<OptionTable>;

/** `p2p send`: `p2p join`'s options, and whom to send to. */
export const SEND_COMMAND = {
  name: "send",
  usage: "p2p send PATH [--to NAME] [--server HOST:PORT --room NAME] [options]",
  about: "Joins a room like p2p join, offers the file PATH (a directory: each of its files, " +
    "under the directory's name) to every peer there (or to the peers named with --to, waiting " +
    "for them to arrive), and exits when every recipient has it (0), or says who does not (1).",
  options: {
    wait: num("wait", {
      arg: "SECONDS",
      help: "how long to wait for the recipients to be in the room, or to come back when they " +
        "left before they had the file",
      default: 30,
      min: 0.1,
      max: 86_400,
    }),
    to: list({
      arg: "NAME",
      help: "send to this peer only (repeatable); waits for it to be in the room",
      parse: (v) => {
        const checked = normalizeName(v);
        if (!checked.ok) throw new BadValue(`--to: ${checked.reason}`);
        return checked.name;
      },
    }),
    ...JOIN_COMMAND.options,
  },
} satisfies CommandSpec<OptionTable>;

/** `p2p doctor`. */
export const DOCTOR_COMMAND = {
  name: "doctor",
  usage: "p2p doctor --server HOST:PORT [options]",
  about: "Asks a p2p server (STUN on its port) what your network does to UDP and says, in " +
    "plain words, whether peers can reach you directly: whether UDP reaches the server, your " +
    "public address, your NAT's mapping and filtering behaviour (RFC 4787/5780; needs a " +
    "server started with --alt-host and --alt-port), whether it keeps your port, " +
    "hairpinning, and what to do. Exit code 0 when UDP reaches the server, 1 when it does not.",
  options: {
    server: required({
      arg: "HOST[:PORT]",
      help: `the server to ask (port ${DEFAULT_PORT} when none is given)`,
      parse: hostPort("server", "HOST:PORT with a port from 1 to 65535", DEFAULT_PORT),
    }),
    json: flag("print one JSON object on stdout (the last line)"),
    timeout: num("timeout", {
      arg: "SECONDS",
      help: "wait this long for each answer",
      default: DEFAULT_TIMEOUT / 1000,
      min: 0.1,
      max: 60,
    }),
    lifetime: value<number | undefined>({
      arg: "SECONDS",
      help: "also measure how long your NAT keeps an idle UDP mapping; takes up to SECONDS",
      default: undefined,
      bare: String(DEFAULT_LIFETIME_BUDGET / 1000),
      parse: numberIn("lifetime", { min: 10, max: 3600 }),
    }),
    ...LOGGING,
  },
} satisfies CommandSpec<OptionTable>;

/** A `--server`: `HOST[:PORT]`, or the same after `tcp://` or `tls://` (a port is needed then). */
function serverSpec(v: string): string {
  const m = /^(tcp|tls):\/\/(.*)$/i.exec(v);
  if (!m) return hostPort("server", "HOST:PORT with a port from 1 to 65535", DEFAULT_PORT)(v);
  if (!splitHostPort(m[2]!)) {
    throw new BadValue(
      `--server ${
        m[1]!.toLowerCase()
      }://HOST:PORT needs a host and a port (IPv6 as [ADDR]:PORT), got "${v}"`,
    );
  }
  return `${m[1]!.toLowerCase()}://${m[2]}`;
}

function roomName(v: string): string {
  const bytes = new TextEncoder().encode(v).length;
  if (bytes === 0 || bytes > MAX_NAME || hasControlChars(v)) {
    throw new BadValue(`--room must be 1 to ${MAX_NAME} bytes without control characters`);
  }
  return v;
}

function metricsAddress(v: string): { host: string; port: number } {
  // Port 0 (any free port) is allowed: the listening line says which one.
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(v);
  const hp = m && { host: m[1]!, port: Number(m[2]) };
  if (!hp || hp.port > 65535 || hp.host.split(".").some((x) => Number(x) > 255)) {
    throw new BadValue(`--metrics must be IP:PORT (for example 127.0.0.1:9477), got "${v}"`);
  }
  return hp;
}

// ---------------------------------------------------------------------------------------------
// From values to the roles' options

/** Log levels the command line can pick (`lib/io/log.ts`). */
export type { LogLevel };

/** What the arguments ask for, as returned by `parseCommand` in main.ts. */
export type Command =
  /** Print `text` on stdout and exit with `code` (2 when no command was given). */
  | { kind: "help"; text: string; code: 0 | 2 }
  /** Print the version. */
  | { kind: "version"; text: string }
  /** Run the server. */
  | { kind: "serve"; options: ServeOptions } & LogChoice
  /** Join a room. */
  | { kind: "join"; options: JoinOptions } & LogChoice
  /** Diagnose the network between this machine and a server. */
  | { kind: "doctor"; options: DoctorCliOptions } & LogChoice;

/** Where log lines go, at what level, in what form (`--log-level`, `-v`, `--log-file`...). */
export interface LogChoice {
  logLevel: LogLevel;
  logFormat: LogFormat;
  /** `--log-file`: append to this file instead of writing to stderr. */
  logFile?: string;
}

/** Throws a {@link UsageError} for `command`. */
function fail(command: string, message: string): never {
  throw new UsageError(message, command);
}

/** The log options of `v` (`--log-level` wins over `-v` / `-q`). */
function logChoice(v: {
  "log-level": LogLevel | undefined;
  "log-format": LogFormat;
  "log-file": string | undefined;
  verbose: boolean;
  quiet: boolean;
}): LogChoice {
  return {
    logLevel: level(v),
    logFormat: v["log-format"],
    ...(v["log-file"] !== undefined ? { logFile: v["log-file"] } : {}),
  };
}

/** `--log-level` wins over `-v` / `-q`. */
function level(v: { "log-level": LogLevel | undefined; verbose: boolean; quiet: boolean }) {
  return v["log-level"] ?? (v.verbose ? "debug" : v.quiet ? "warning" : "info");
}

/** The second port by default: PORT+1 (PORT-1 for 65535), any free port for `--port 0`. */
export function defaultAltPort(port: number): number {
  return port === 0 ? 0 : port === 65535 ? 65534 : port + 1;
}

/** `p2p serve`'s arguments (after `serve`) as a command. Throws {@link UsageError}. */
export function parseServe(args: readonly string[]): Command {
  const v = parseOptions("serve", SERVE_COMMAND.options, args);
  if (!v) return { kind: "help", text: helpText(SERVE_COMMAND), code: 0 };
  const options: ServeOptions = {
    host: v.host,
    port: v.port,
    expireAfter: v.expire * 1000,
    summaryInterval: v.summary * 1000,
    json: v.json,
    limits: {
      maxPeers: v["max-peers"],
      maxRoomSize: v["max-room-size"],
      maxPerSource: v["max-per-source"],
      maxRoomsPerSource: v["max-rooms-per-source"],
      maxPerNetwork: v["max-per-network"],
      maxRoomsPerNetwork: v["max-rooms-per-network"],
      relayRate: v["relay-rate"] * 1024,
      relayBurst: Math.max(REG.relayBurst, 4 * 1024 * v["relay-rate"]),
      pairRate: v["pair-rate"] * 1024,
      receiveRate: v["receive-rate"] * 1024,
      totalRelayRate: v["total-relay-rate"] * 1024,
      helloRate: v["hello-rate"],
    },
  };
  if (v.metrics) options.metrics = v.metrics;
  if (v["no-puzzle"]) {
    if (v["puzzle-from"] !== undefined) {
      fail("serve", "--puzzle-from and --no-puzzle contradict each other; drop one");
    }
    options.limits!.pressureAt = Infinity;
  } else if (v["puzzle-from"] !== undefined) options.limits!.pressureAt = v["puzzle-from"] / 100;
  serveAltAddress(v, options);
  serveStreams(v, options);
  if (v.host6 !== undefined && v["no-ipv6"]) {
    fail("serve", "--host6 and --no-ipv6 contradict each other; drop one");
  }
  if (v.host6 !== undefined) options.ipv6 = { host: v.host6, required: true };
  else if (!v["no-ipv6"] && v.host === "0.0.0.0") options.ipv6 = { host: "::", required: false };
  const cluster = serveCluster(v, args);
  if (cluster) options.cluster = cluster;
  return { kind: "serve", options, ...logChoice(v) };
}

/** The values `p2p serve`'s option table parses to. */
type ServeValues = OptionValues<typeof SERVE_COMMAND.options>;

/** The second port and address (`--alt-port`, `--no-alt-port`, `--alt-host`) into `options`. */
function serveAltAddress(v: ServeValues, options: ServeOptions): void {
  if (v["alt-port"] !== undefined && v["no-alt-port"]) {
    fail("serve", "--alt-port and --no-alt-port contradict each other; drop one");
  }
  if (v["alt-host"] !== undefined && v["no-alt-port"]) {
    fail("serve", "--alt-host needs the second port; drop --no-alt-port");
  }
  if (v["alt-port"] !== undefined) {
    if (v["alt-port"] === v.port && v.port !== 0) {
      fail("serve", "--alt-port must be another port than --port");
    }
    if (v["alt-port"] === 0 && v["alt-host"] !== undefined) {
      fail("serve", "--alt-host needs a fixed --alt-port (1 to 65535)");
    }
    options.altPort = v["alt-port"];
  } else if (!v["no-alt-port"]) {
    options.altPort = defaultAltPort(v.port);
    options.altPortOptional = true;
  }
  if (v["alt-host"] !== undefined) {
    options.altHost = v["alt-host"];
    if (v["alt-port"] === undefined) fail("serve", "--alt-host needs --alt-port");
    if (v.host === "0.0.0.0" || v["alt-host"] === "0.0.0.0") {
      fail("serve", "--alt-host needs --host and --alt-host to be concrete addresses");
    }
    if (v["alt-host"] === v.host) fail("serve", "--alt-host must be another address than --host");
  }
}

/** TCP and TLS (`--tcp-port`, `--no-tcp`, `--tls-*`, `--max-tcp*`) into `options`. */
function serveStreams(v: ServeValues, options: ServeOptions): void {
  if (!v["no-tcp"]) options.tcp = v["tcp-port"] === undefined ? {} : { port: v["tcp-port"] };
  else if (v["tcp-port"] !== undefined) {
    fail("serve", "--tcp-port and --no-tcp contradict each other; drop one");
  }
  const tls = [v["tls-port"], v["tls-cert"], v["tls-key"]];
  if (tls.some((x) => x !== undefined)) {
    if (tls.some((x) => x === undefined)) {
      fail("serve", "TLS needs all of --tls-port, --tls-cert and --tls-key");
    }
    options.tls = { port: v["tls-port"]!, cert: v["tls-cert"]!, key: v["tls-key"]! };
  }
  options.streamLimits = {
    maxConnections: v["max-tcp"],
    maxPerSource: v["max-tcp-per-source"],
  };
}

/**
 * The cluster `p2p serve` joins: any `--cluster*` option given, or a lease or keepalive other
 * than the defaults (which then fail for want of a cluster); else undefined.
 */
function serveCluster(
  v: ServeValues,
  args: readonly string[],
): ServeOptions["cluster"] | undefined {
  if (v.cluster !== undefined && v["cluster-file"] !== undefined) {
    fail("serve", "--cluster and --cluster-file both name the cluster; drop one");
  }
  const clusterFlags = ["cluster", "cluster-file", "cluster-secret-file", "cluster-advertise"];
  const defaults = v["cluster-lease"] * 1000 === DEFAULT_CLUSTER.lease &&
    v["cluster-keepalive"] === DEFAULT_CLUSTER.keepalive;
  if (!defaults || clusterFlags.some((k) => args.some((a) => a.startsWith(`--${k}`)))) {
    return {
      url: v.cluster,
      urlFile: v["cluster-file"],
      secretFile: v["cluster-secret-file"],
      advertise: v["cluster-advertise"],
      lease: v["cluster-lease"] * 1000,
      keepalive: v["cluster-keepalive"],
    };
  }
  return undefined;
}

/**
 * `p2p join`'s arguments (after `join`) as a command. `hostName` gives the default `--name`
 * and is called only when `--name` is missing. Files named by options are only recorded.
 * Throws {@link UsageError}.
 */
export function parseJoin(args: readonly string[], hostName: () => string): Command {
  const v = parseOptions("join", JOIN_COMMAND.options, args);
  if (!v) return { kind: "help", text: helpText(JOIN_COMMAND), code: 0 };
  return joinCommand("join", v, hostName);
}

/**
 * `p2p send`'s arguments (after `send`): the PATH first, then `--to` and `p2p join`'s options;
 * a `join` command that sends the file. Throws {@link UsageError}.
 */
export function parseSend(args: readonly string[], hostName: () => string): Command {
  const [path, ...rest] = args;
  if (path === undefined || path === "-h" || path === "--help") {
    return { kind: "help", text: helpText(SEND_COMMAND), code: path === undefined ? 2 : 0 };
  }
  if (path.startsWith("-")) fail("send", "p2p send needs the PATH of the file first");
  const v = parseOptions("send", SEND_COMMAND.options, rest);
  if (!v) return { kind: "help", text: helpText(SEND_COMMAND), code: 0 };
  const cmd = joinCommand("send", v, hostName);
  if (cmd.kind === "join") {
    cmd.options.sendFile = { path, to: v.to.length > 0 ? v.to : undefined, wait: v.wait * 1000 };
  }
  return cmd;
}

/** The values `p2p join`'s option table parses to. */
type JoinValues = OptionValues<typeof JOIN_COMMAND.options>;

function joinCommand(
  command: string,
  v: JoinValues,
  hostName: () => string,
): Command {
  const name = joinName(command, v.name, hostName);
  checkJoinOptions(command, v);
  const [server, ...more] = v.server;
  const relayKib = v["supernode-relay-rate"];
  const members = v["supernode-max-members"];
  const options: JoinOptions = {
    server,
    room: v.room,
    ticket: v.ticket,
    ticketFile: v["ticket-file"],
    qr: v.qr,
    name,
    relayOnly: v["relay-only"],
    json: v.json,
    bind: v.bind,
    port: v.port,
    ...(v["no-ipv6"] ? { ipv6: false } : {}),
    keepalive: v.keepalive * 1000,
    registerTimeout: v.timeout * 1000,
    drainTimeout: DRAIN_TIMEOUT,
    passphraseFile: v["passphrase-file"],
    newRoom: v["new-room"],
    identityFile: v.identity,
    stun: v.stun,
    portmap: !v["no-portmap"],
    ...(v.downloads !== undefined ? { downloads: v.downloads } : {}),
    ...(v["auto-accept"] ? { autoAccept: true } : {}),
    ...(v.tcp ? { tcp: true } : {}),
    ...(v["tls-ca"] !== undefined ? { tlsCa: v["tls-ca"] } : {}),
    ...(more.length > 0 ? { moreServers: more } : {}),
    supernode: v.supernode ? "ask" : v["no-supernode"] || v["relay-only"] ? "off" : "auto",
    supernodeLimits: {
      relayRate: relayKib * 1024,
      relayBurst: 4 * relayKib * 1024,
      pairRate: v["supernode-pair-rate"] * 1024,
      maxPeers: members,
      maxRoomSize: members,
    },
  };
  options.logLevel = level(v);
  if (v["log-file"] !== undefined) options.logFile = v["log-file"];
  return { kind: "join", options, ...logChoice(v) };
}

/** `--name`, or this host's name when it is a valid chat name (else a {@link UsageError}). */
function joinName(command: string, given: string | undefined, hostName: () => string): string {
  if (given !== undefined) return given;
  // Names are shown to others: normalised (NFKC) and limited to a documented set.
  const checked = normalizeName(hostName());
  if (!checked.ok) {
    fail(
      command,
      `this host's name is no valid chat name (${checked.reason}); pick one with --name NAME`,
    );
  }
  return checked.name;
}

/** Refuses `p2p join` options that contradict each other (a {@link UsageError} says which). */
function checkJoinOptions(command: string, v: JoinValues): void {
  if (v.supernode && v["no-supernode"]) {
    fail(command, "--supernode and --no-supernode contradict each other; drop one");
  }
  if (v.supernode && v["relay-only"]) {
    fail(command, "--relay-only hides your address: it cannot be a supernode");
  }
  if (v["new-room"] && v["passphrase-file"] !== undefined) {
    fail(command, "--new-room makes its own passphrase: drop --passphrase-file");
  }
  if (v["new-room"] && (v.ticket !== undefined || v["ticket-file"] !== undefined)) {
    fail(command, "--new-room makes its own ticket: drop --ticket and --ticket-file");
  }
  if (v["new-room"] && v.server.length === 0) fail(command, "--new-room needs --server");
  if (v.qr && !v["new-room"]) {
    fail(command, "--qr shows a new room's ticket: use it with --new-room");
  }
  if (v.ticket !== undefined && v["ticket-file"] !== undefined) {
    fail(command, "--ticket and --ticket-file both give a ticket; drop one");
  }
}

/** `p2p doctor`'s arguments (after `doctor`) as a command. Throws {@link UsageError}. */
export function parseDoctor(args: readonly string[]): Command {
  const v = parseOptions("doctor", DOCTOR_COMMAND.options, args);
  if (!v) return { kind: "help", text: helpText(DOCTOR_COMMAND), code: 0 };
  return {
    kind: "doctor",
    options: {
      server: v.server,
      json: v.json,
      timeout: v.timeout * 1000,
      lifetime: v.lifetime === undefined ? null : v.lifetime * 1000,
    },
    ...logChoice(v),
  };
}
