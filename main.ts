/**
 * The `p2p` command line: parses arguments, picks the role and maps errors to exit codes
 * (0 success, 1 runtime failure, 2 bad arguments).
 *
 * @module
 */
import { parseArgs, type ParseArgsOptionsConfig } from "node:util";
import denoJson from "./deno.json" with { type: "json" };
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, setupLogging } from "./lib/io/log.ts";
import { PassphraseError } from "./lib/io/passphrase.ts";
import { splitHostPort } from "./lib/roles/view.ts";
import { normalizeName } from "./lib/core/names.ts";
import { DEFAULT_REGISTRY } from "./lib/server/registry.ts";
import { DEFAULT_SUPERNODE } from "./lib/peer/supernode.ts";
import { formatIPv6, parseIPv6 } from "./lib/wire/address.ts";
import { hasControlChars } from "./lib/wire/codec.ts";
import { MAX_ROOM_SIZE } from "./lib/wire/server_msg.ts";
import type { DoctorCliOptions } from "./lib/roles/doctor.ts";
import type { JoinOptions } from "./lib/roles/join.ts";
import type { ServeOptions } from "./lib/roles/serve.ts";

/** The program's version, from deno.json (the wire protocol has its own `PROTOCOL_VERSION`). */
export const PROGRAM_VERSION: string = denoJson.version;

/** Bad command-line arguments: `p2p` prints {@link formatUsageError} and exits 2. */
export class UsageError extends Error {
  /** The subcommand whose help to point at (`""` for the main help). */
  readonly command: string;

  /** Makes an error for `command` (`"serve"`, `"join"`, `"doctor"` or `""`). */
  constructor(message: string, command: string) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** The one line `p2p` prints on stderr for a usage error. */
export function formatUsageError(e: UsageError): string {
  return `p2p: ${e.message} (see "p2p ${e.command ? e.command + " " : ""}--help")`;
}

/** Log levels the command line can pick. */
export type LogLevel = "trace" | "debug" | "info" | "warning" | "error" | "fatal";

/** What the arguments ask for, as returned by {@link parseCommand}. */
export type Command =
  /** Print `text` on stdout and exit with `code` (2 when no command was given). */
  | { kind: "help"; text: string; code: 0 | 2 }
  /** Print the version. */
  | { kind: "version"; text: string }
  /** Run the server. */
  | { kind: "serve"; options: ServeOptions; logLevel: LogLevel; logFormat: LogFormat }
  /** Join a room. */
  | { kind: "join"; options: JoinOptions; logLevel: LogLevel; logFormat: LogFormat }
  /** Diagnose the network between this machine and a server. */
  | { kind: "doctor"; options: DoctorCliOptions };

const MAIN_HELP =
  `p2p ${PROGRAM_VERSION}: connect machines behind NATs directly over UDP; group chat.

Usage:
  p2p serve [options]     run the rendezvous and relay server (on a public box)
  p2p join --server HOST:PORT --room NAME [options]
                          join a room and chat with its other peers
  p2p doctor --server HOST:PORT [options]
                          say what your NAT does and why peers may be relayed

Options:
  -h, --help              show help (also "p2p serve --help", "p2p join --help",
                          "p2p doctor --help")
  -V, --version           show the version
`;

const SERVE_HELP = `Usage: p2p serve [options]

Runs the rendezvous server: peers register, learn about each other, punch holes
through their NATs; when that fails, the server relays their (end-to-end encrypted)
traffic.

Options:
  --host IP               IPv4 address to bind (default 0.0.0.0)
  --host6 IP              IPv6 address to bind, same port (default :: when --host
                          is 0.0.0.0; with a concrete --host, only if given)
  --no-ipv6               serve IPv4 only
  --port PORT             UDP port (default 7777)
  --expire SECONDS        forget peers silent this long (default 75)
  --summary SECONDS       interval of the summary log line, 0 for none (default 60)
  --json                  print {"event":"listening","addr":...} on stdout when ready

STUN (RFC 8489) Binding requests are answered on the same port. For RFC 5780 NAT
behaviour discovery (CHANGE-REQUEST, OTHER-ADDRESS) give a second port and a second
local address of this box; --host must then be a concrete address:
  --alt-port PORT         also answer STUN on this port ("change port")
  --alt-host IP           and on this second local address ("change IP"; needs
                          --alt-port)
With --alt-host the server also checks, from that second address, which joining
peers are reachable from the Internet; those serve their room as supernodes
(rendezvous and relay for its members). Without it, no peer becomes a supernode.

Limits (what one source may cost the server; hitting one is logged, counted and
answered with an error the peer shows):
  --max-peers N           peers on the whole server (default 10000)
  --max-room-size N       peers in one room, at most 150 (default 128)
  --max-per-source N      registrations from one IP address (an IPv6 source is its
                          /64) (default 64)
  --max-rooms-per-source N  rooms one IP address may be in (default 16)
  --relay-rate KIB        relayed KiB/s one peer may send (default 256, burst 1024)
  --pair-rate KIB         relayed KiB/s one peer may send to one other (default 128)
  --hello-rate N          registrations (signature checks) one IP address may cause a
                          second, burst 4x (default 50)

Operations:
  --metrics HOST:PORT     serve Prometheus metrics at http://HOST:PORT/metrics
                          (off by default; keep it on loopback, e.g. 127.0.0.1:9477)
  --log-format text|json  log lines for people (default) or JSON lines for collectors
  --log-level LEVEL       trace, debug, info (default), warning, error or fatal
  -v, --verbose           debug logging on stderr
  -q, --quiet             only warnings and errors on stderr
  -h, --help              show this help
`;

const JOIN_HELP = `Usage: p2p join --server HOST:PORT --room NAME [options]

Joins a room. Lines typed on stdin go to every other peer in the room; received
lines print as "[name] text". Commands: /peers, /quit, /help. End of input
delivers what is queued, then leaves.

A room is entered with the passphrase its members share: from the environment
variable P2P_PASSPHRASE, else --passphrase-file, else typed at a prompt (stdin
must be a terminal then). --new-room makes up a new one and prints it.

Options:
  --server HOST:PORT      the rendezvous server (required); repeat it to name
                          others (servers or a room's supernodes): registers with
                          the first that answers, fails over to the next
  --room NAME             room to join (required)
  --name NAME             your name in the room (default: this host's name)
  --passphrase-file FILE  read the room passphrase from the first line of FILE
  --new-room              make up a strong passphrase for a new room, print it
                          and the command line to share, and join with it
  --identity FILE         your long-term key, made on first use (default:
                          $XDG_CONFIG_HOME/p2p/identity or ~/.config/p2p/identity)
  --relay-only            never punch, never reveal your addresses; relay everything
  --stun HOST:PORT        also ask this STUN server how your NAT maps you (repeatable);
                          a NAT that will force the relay is reported as a notice
  --supernode             ask to serve as this room's supernode (rendezvous and
                          relay for the room's members; on by default, and only
                          granted when the server finds you reachable from the
                          Internet); says whether it was
  --no-supernode          never serve as a supernode (still use the room's)
  --supernode-relay-rate KIB  as a supernode, relayed KiB/s one member may send
                          (default 64)
  --supernode-pair-rate KIB   as a supernode, relayed KiB/s one member may send
                          to one other (default 32)
  --supernode-max-members N   as a supernode, most members registered with it
                          (default 32)
  --no-portmap            do not ask the router for a port mapping (NAT-PMP, PCP,
                          UPnP IGD; by default asked at start, deleted on exit)
  --json                  one JSON object per line on stdout (events: registering,
                          ready, peer, message, left, server, notice, warning,
                          peers, room); logs go to stderr
  --bind IP               local IPv4 address to bind (default 0.0.0.0)
  --port PORT             local UDP port (default: any free port)
  --no-ipv6               do not offer this host's IPv6 addresses to peers (by
                          default, without --bind, global and ULA ones are)
  --keepalive SECONDS     keepalive interval, at most 60 (default 25)
  --timeout SECONDS       give up registering after this long (default 10)
  --log-format text|json  log lines on stderr for people (default) or as JSON
  --log-level LEVEL       trace, debug, info (default), warning, error or fatal
  -v, --verbose           debug logging on stderr
  -q, --quiet             only warnings and errors on stderr
  -h, --help              show this help
`;

const DOCTOR_HELP = `Usage: p2p doctor --server HOST:PORT [options]

Asks a p2p server (STUN on its port) what your network does to UDP and says, in
plain words, whether peers can reach you directly: whether UDP reaches the server,
your public address, your NAT's mapping and filtering behaviour (RFC 4787/5780;
needs a server started with --alt-host and --alt-port), whether it keeps your
port, hairpinning, and what to do. Exit code 0 when UDP reaches the server, 1
when it does not.

Options:
  --server HOST:PORT      the server to ask (required)
  --json                  print one JSON object on stdout (the last line)
  --timeout SECONDS       wait this long for each answer (default 3)
  --lifetime[=SECONDS]    also measure how long your NAT keeps an idle UDP
                          mapping; takes up to SECONDS (default 300)
  -h, --help              show this help
`;

/** Default time budget of `p2p doctor --lifetime`, s. */
const DOCTOR_LIFETIME_DEFAULT = 300;

function num(
  v: string | undefined,
  flag: string,
  dflt: number,
  min: number,
  max: number,
  cmd: string,
): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new UsageError(`--${flag} must be a number from ${min} to ${max}, got "${v}"`, cmd);
  }
  return n;
}

function port(v: string | undefined, flag: string, dflt: number, cmd: string): number {
  const n = num(v, flag, dflt, 0, 65535, cmd);
  if (!Number.isInteger(n)) throw new UsageError(`--${flag} must be a whole number`, cmd);
  return n;
}

function ip(v: string | undefined, flag: string, dflt: string, cmd: string): string {
  if (v === undefined) return dflt;
  if (!/^(\d{1,3}\.){3}\d{1,3}$/.test(v) || v.split(".").some((p) => Number(p) > 255)) {
    const hint = !v.includes(":")
      ? ""
      : flag === "host"
      ? " (for IPv6 use --host6)"
      : flag === "bind"
      ? " (IPv6 is used by itself when this host has it; see --no-ipv6)"
      : "";
    throw new UsageError(`--${flag} must be a literal IPv4 address, got "${v}"${hint}`, cmd);
  }
  return v;
}

function ip6(v: string, flag: string, cmd: string): string {
  const b = parseIPv6(v);
  if (!b || b[0] === 0xff || (b[0] === 0xfe && (b[1]! & 0xc0) === 0x80)) {
    throw new UsageError(
      `--${flag} must be a literal IPv6 address (not link-local or multicast), got "${v}"`,
      cmd,
    );
  }
  return formatIPv6(b);
}

function parse(cmd: string, args: string[], options: ParseArgsOptionsConfig) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (e) {
    // node:util messages are fine but long, some several lines; keep the first sentence.
    const msg = (e as Error).message.split("\n")[0]!.split(". ")[0]!.replace(/\.$/, "");
    throw new UsageError(msg, cmd);
  }
}

const COMMON = {
  help: { type: "boolean", short: "h" },
  verbose: { type: "boolean", short: "v" },
  quiet: { type: "boolean", short: "q" },
  json: { type: "boolean" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
} as const;

/** `--log-level` wins over `-v` / `-q`. */
function level(v: Record<string, unknown>, cmd: string): LogLevel {
  const given = v["log-level"] as string | undefined;
  if (given !== undefined) {
    if (!(LOG_LEVELS as readonly string[]).includes(given)) {
      throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(", ")}`, cmd);
    }
    return given as LogLevel;
  }
  return v.verbose ? "debug" : v.quiet ? "warning" : "info";
}

function format(v: Record<string, unknown>, cmd: string): LogFormat {
  const given = (v["log-format"] as string | undefined) ?? "text";
  if (!(LOG_FORMATS as readonly string[]).includes(given)) {
    throw new UsageError(`--log-format must be one of ${LOG_FORMATS.join(", ")}`, cmd);
  }
  return given as LogFormat;
}

/**
 * Parses the command line (without the program name) into what to run. Only reads the host
 * name, for the default `--name`, through `hostName`; files named by options (passphrase,
 * identity) are only recorded, never read here. Throws {@link UsageError} for bad arguments.
 */
export function parseCommand(
  argv: readonly string[],
  hostName: () => string = defaultName,
): Command {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "-h" || cmd === "--help" || cmd === "help") {
    return { kind: "help", text: MAIN_HELP, code: cmd === undefined ? 2 : 0 };
  }
  if (cmd === "-V" || cmd === "--version" || cmd === "version") {
    return { kind: "version", text: `p2p ${PROGRAM_VERSION}` };
  }
  if (cmd === "serve") return parseServe(rest);
  if (cmd === "join") return parseJoin(rest, hostName);
  if (cmd === "doctor") return parseDoctor(rest);
  throw new UsageError(`Unknown command "${cmd}"; use "serve", "join" or "doctor"`, "");
}

function parseServe(args: string[]): Command {
  const { values: v } = parse("serve", args, {
    ...COMMON,
    host: { type: "string" },
    host6: { type: "string" },
    "no-ipv6": { type: "boolean" },
    port: { type: "string" },
    expire: { type: "string" },
    summary: { type: "string" },
    "max-peers": { type: "string" },
    "max-room-size": { type: "string" },
    "max-per-source": { type: "string" },
    "max-rooms-per-source": { type: "string" },
    "relay-rate": { type: "string" },
    "pair-rate": { type: "string" },
    "hello-rate": { type: "string" },
    "alt-port": { type: "string" },
    "alt-host": { type: "string" },
    metrics: { type: "string" },
  });
  if (v.help) return { kind: "help", text: SERVE_HELP, code: 0 };
  const int = (flag: string, dflt: number, min: number, max: number) => {
    const n = num(v[flag] as string | undefined, flag, dflt, min, max, "serve");
    if (!Number.isInteger(n)) throw new UsageError(`--${flag} must be a whole number`, "serve");
    return n;
  };
  const d = DEFAULT_REGISTRY;
  const options: ServeOptions = {
    host: ip(v.host as string | undefined, "host", "0.0.0.0", "serve"),
    port: port(v.port as string | undefined, "port", 7777, "serve"),
    expireAfter: num(v.expire as string | undefined, "expire", 75, 1, 86_400, "serve") * 1000,
    summaryInterval: num(v.summary as string | undefined, "summary", 60, 0, 86_400, "serve") *
      1000,
    json: Boolean(v.json),
    limits: {
      maxPeers: int("max-peers", d.maxPeers, 1, 10_000_000),
      maxRoomSize: int("max-room-size", d.maxRoomSize, 2, MAX_ROOM_SIZE),
      maxPerSource: int("max-per-source", d.maxPerSource, 1, 10_000_000),
      maxRoomsPerSource: int("max-rooms-per-source", d.maxRoomsPerSource, 1, 10_000_000),
      relayRate: int("relay-rate", d.relayRate / 1024, 1, 10_000_000) * 1024,
      relayBurst: Math.max(d.relayBurst, 4 * 1024 * int("relay-rate", d.relayRate / 1024, 1, 1e7)),
      pairRate: int("pair-rate", d.pairRate / 1024, 1, 10_000_000) * 1024,
      helloRate: int("hello-rate", d.helloRate, 1, 10_000_000),
    },
  };
  const metrics = v.metrics as string | undefined;
  if (metrics !== undefined) {
    // Port 0 (any free port) is allowed: the listening line says which one.
    const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(metrics);
    const hp = m && { host: m[1]!, port: Number(m[2]) };
    if (!hp || hp.port > 65535 || hp.host.split(".").some((x) => Number(x) > 255)) {
      throw new UsageError(
        `--metrics must be IP:PORT (for example 127.0.0.1:9477), got "${metrics}"`,
        "serve",
      );
    }
    options.metrics = { host: hp.host, port: hp.port };
  }
  const altPort = v["alt-port"] as string | undefined;
  const altHost = v["alt-host"] as string | undefined;
  if (altPort !== undefined) {
    options.altPort = port(altPort, "alt-port", 0, "serve");
    if (options.altPort === 0 || options.altPort === options.port) {
      throw new UsageError("--alt-port must be a port from 1 to 65535 other than --port", "serve");
    }
  }
  if (altHost !== undefined) {
    options.altHost = ip(altHost, "alt-host", "", "serve");
    if (altPort === undefined) throw new UsageError("--alt-host needs --alt-port", "serve");
    if (options.host === "0.0.0.0" || options.altHost === "0.0.0.0") {
      throw new UsageError(
        "--alt-host needs --host and --alt-host to be concrete addresses",
        "serve",
      );
    }
    if (options.altHost === options.host) {
      throw new UsageError("--alt-host must be another address than --host", "serve");
    }
  }
  const host6 = v.host6 as string | undefined;
  if (host6 !== undefined && v["no-ipv6"]) {
    throw new UsageError("--host6 and --no-ipv6 contradict each other; drop one", "serve");
  }
  if (host6 !== undefined) options.ipv6 = { host: ip6(host6, "host6", "serve"), required: true };
  else if (!v["no-ipv6"] && options.host === "0.0.0.0") {
    options.ipv6 = { host: "::", required: false };
  }
  return { kind: "serve", options, logLevel: level(v, "serve"), logFormat: format(v, "serve") };
}

function parseJoin(args: string[], hostName: () => string): Command {
  const { values: v } = parse("join", args, {
    ...COMMON,
    server: { type: "string", multiple: true },
    room: { type: "string" },
    name: { type: "string" },
    "relay-only": { type: "boolean" },
    supernode: { type: "boolean" },
    "no-supernode": { type: "boolean" },
    "supernode-relay-rate": { type: "string" },
    "supernode-pair-rate": { type: "string" },
    "supernode-max-members": { type: "string" },
    stun: { type: "string", multiple: true },
    "no-portmap": { type: "boolean" },
    bind: { type: "string" },
    port: { type: "string" },
    "no-ipv6": { type: "boolean" },
    keepalive: { type: "string" },
    timeout: { type: "string" },
    "passphrase-file": { type: "string" },
    "new-room": { type: "boolean" },
    identity: { type: "string" },
  });
  if (v.help) return { kind: "help", text: JOIN_HELP, code: 0 };
  const serverList = (v.server as string[] | undefined) ?? [];
  const server = serverList[0];
  const room = v.room as string | undefined;
  if (!server) throw new UsageError("--server HOST:PORT is required", "join");
  if (serverList.length > 8) throw new UsageError("--server may be given at most 8 times", "join");
  if (!room) throw new UsageError("--room NAME is required", "join");
  const bytes = new TextEncoder().encode(room).length;
  if (bytes === 0 || bytes > 64 || hasControlChars(room)) {
    throw new UsageError("--room must be 1 to 64 bytes without control characters", "join");
  }
  // Names are shown to others: normalised (NFKC) and limited to a documented set (lib/core/names.ts).
  const given = v.name as string | undefined;
  const checked = normalizeName(given ?? hostName());
  if (!checked.ok) {
    throw new UsageError(
      given === undefined
        ? `this host's name is no valid chat name (${checked.reason}); pick one with --name NAME`
        : `--name: ${checked.reason}`,
      "join",
    );
  }
  const name = checked.name;
  for (const spec of serverList) {
    if (!splitHostPort(spec)) {
      throw new UsageError(
        `--server must be HOST:PORT with a port from 1 to 65535, got "${spec}"`,
        "join",
      );
    }
  }
  if (v.supernode && v["no-supernode"]) {
    throw new UsageError("--supernode and --no-supernode contradict each other; drop one", "join");
  }
  if (v.supernode && v["relay-only"]) {
    throw new UsageError("--relay-only hides your address: it cannot be a supernode", "join");
  }
  const sn = DEFAULT_SUPERNODE;
  const snInt = (flag: string, dflt: number, min: number, max: number) => {
    const n = num(v[flag] as string | undefined, flag, dflt, min, max, "join");
    if (!Number.isInteger(n)) throw new UsageError(`--${flag} must be a whole number`, "join");
    return n;
  };
  const relayKib = snInt("supernode-relay-rate", sn.relayRate! / 1024, 1, 1_000_000);
  const members = snInt("supernode-max-members", sn.maxPeers!, 1, MAX_ROOM_SIZE);
  const passphraseFile = v["passphrase-file"] as string | undefined;
  const identityFile = v.identity as string | undefined;
  const newRoom = Boolean(v["new-room"]);
  if (passphraseFile === "") throw new UsageError("--passphrase-file needs a file name", "join");
  if (identityFile === "") throw new UsageError("--identity needs a file name", "join");
  if (newRoom && passphraseFile !== undefined) {
    throw new UsageError("--new-room makes its own passphrase: drop --passphrase-file", "join");
  }
  const options: JoinOptions = {
    server,
    room,
    name,
    relayOnly: Boolean(v["relay-only"]),
    json: Boolean(v.json),
    bind: ip(v.bind as string | undefined, "bind", "0.0.0.0", "join"),
    port: port(v.port as string | undefined, "port", 0, "join"),
    ...(v["no-ipv6"] ? { ipv6: false } : {}),
    // The server forgets peers after 75 s of silence: keepalives must come well before that.
    keepalive: num(v.keepalive as string | undefined, "keepalive", 25, 0.1, 60, "join") * 1000,
    registerTimeout: num(v.timeout as string | undefined, "timeout", 10, 0.1, 3_600, "join") *
      1000,
    drainTimeout: 30_000,
    passphraseFile,
    newRoom,
    identityFile,
    stun: (v.stun as string[] | undefined) ?? [],
    portmap: !v["no-portmap"],
    ...(serverList.length > 1 ? { moreServers: serverList.slice(1) } : {}),
    supernode: v.supernode ? "ask" : v["no-supernode"] || v["relay-only"] ? "off" : "auto",
    supernodeLimits: {
      relayRate: relayKib * 1024,
      relayBurst: 4 * relayKib * 1024,
      pairRate: snInt("supernode-pair-rate", sn.pairRate! / 1024, 1, 1_000_000) * 1024,
      maxPeers: members,
      maxRoomSize: members,
    },
  };
  for (const spec of options.stun ?? []) {
    if (!splitHostPort(spec)) {
      throw new UsageError(`--stun must be HOST:PORT, got "${spec}"`, "join");
    }
  }
  return { kind: "join", options, logLevel: level(v, "join"), logFormat: format(v, "join") };
}

function parseDoctor(args: string[]): Command {
  // A bare --lifetime (no value, or an option next) takes the default budget.
  const a = args.map((x, i) =>
    x === "--lifetime" && (i + 1 >= args.length || args[i + 1]!.startsWith("-"))
      ? `--lifetime=${DOCTOR_LIFETIME_DEFAULT}`
      : x
  );
  const { values: v } = parse("doctor", a, {
    help: { type: "boolean", short: "h" },
    json: { type: "boolean" },
    server: { type: "string" },
    timeout: { type: "string" },
    lifetime: { type: "string" },
  });
  if (v.help) return { kind: "help", text: DOCTOR_HELP, code: 0 };
  const server = v.server as string | undefined;
  if (!server) throw new UsageError("--server HOST:PORT is required", "doctor");
  if (!splitHostPort(server)) {
    throw new UsageError(
      `--server must be HOST:PORT with a port from 1 to 65535, got "${server}"`,
      "doctor",
    );
  }
  const lifetime = v.lifetime as string | undefined;
  return {
    kind: "doctor",
    options: {
      server,
      json: Boolean(v.json),
      timeout: num(v.timeout as string | undefined, "timeout", 3, 0.1, 60, "doctor") * 1000,
      lifetime: lifetime === undefined
        ? null
        : num(lifetime, "lifetime", DOCTOR_LIFETIME_DEFAULT, 10, 3600, "doctor") * 1000,
    },
  };
}

function defaultName(): string {
  try {
    const h = Deno.hostname().split(".")[0] ?? "";
    return h.length > 0 && h.length <= 64 ? h : "peer";
  } catch {
    return "peer";
  }
}

/** Runs the command line `argv` and returns the exit code; throws {@link UsageError}. */
async function run(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv);
  switch (cmd.kind) {
    case "help":
      console.log(cmd.text);
      return cmd.code;
    case "version":
      console.log(cmd.text);
      return 0;
    case "serve": {
      await setupLogging({ level: cmd.logLevel, format: cmd.logFormat });
      const { serve } = await import("./server.ts");
      await serve(cmd.options);
      return 0;
    }
    case "join": {
      await setupLogging({ level: cmd.logLevel, format: cmd.logFormat });
      const { join } = await import("./peer.ts");
      return await join(cmd.options);
    }
    case "doctor": {
      const { doctor } = await import("./lib/roles/doctor.ts");
      return await doctor(cmd.options);
    }
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await run(Deno.args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(formatUsageError(e));
      code = 2;
    } else if (e instanceof PassphraseError && e.kind === "usage") {
      console.error(formatUsageError(new UsageError(e.message, "join")));
      code = 2;
    } else {
      // JoinError and anything else: one line, no stack trace.
      console.error(`p2p: ${e instanceof Error ? e.message : String(e)}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
