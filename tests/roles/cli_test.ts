/**
 * Tests of the `p2p` command line (`main.ts`). Argument cases run in-process against
 * {@link parseCommand}; a few spawned `deno run -A main.ts ...` runs check what only a process
 * shows: exit codes, clean stdout and stderr, the one-line usage error.
 *
 * @module
 */

import assert from "node:assert/strict";
import { decodeTicket, encodeTicket } from "../../lib/roles/ticket.ts";
import { qrLines } from "../../lib/roles/qr.ts";
import denoJson from "../../deno.json" with { type: "json" };
import {
  type Command,
  formatUsageError,
  parseCommand,
  PROGRAM_VERSION,
  UsageError,
} from "../../main.ts";
import { freeUdpPort, type P2pResult, runP2p, stripDenoProgress } from "../support/proc.ts";
import {
  DEFAULT_KEEPALIVE_S,
  DEFAULT_PORT,
  DOCTOR_COMMAND,
  JOIN_COMMAND,
  SERVE_COMMAND,
} from "../../lib/roles/cli.ts";
import {
  type CommandSpec,
  defaultText,
  helpText,
  type OptionTable,
  parseOptions,
} from "../../lib/roles/options.ts";
import { DEFAULT_REGISTRY } from "../../lib/server/registry.ts";
import { DEFAULT_SUPERNODE } from "../../lib/peer/supernode.ts";
import { DEFAULT_TIMEOUT } from "../../lib/nat/doctor.ts";
import { DEFAULT_LIFETIME_BUDGET } from "../../lib/roles/doctor.ts";
import { MAX_ROOM_SIZE } from "../../lib/wire/server_msg.ts";

/** Parses with a fixed host name, so the default `--name` is known. */
function parse(...argv: string[]): Command {
  return parseCommand(argv, () => "myhost");
}

/** Asserts that `argv` is a usage error whose one-line message names every `mentions`. */
function assertUsageError(argv: string[], ...mentions: string[]): UsageError {
  let error: unknown;
  try {
    parse(...argv);
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof UsageError, `usage error for ${JSON.stringify(argv)}: ${error}`);
  const line = formatUsageError(error);
  assert.match(line, /^p2p: \S/, line);
  assert.doesNotMatch(line, /\n/, `one line: ${line}`);
  assert.match(line, /--help/, `points at the help: ${line}`);
  for (const m of mentions) assert.ok(line.includes(m), `"${line}" names "${m}"`);
  return error;
}

function joinOptions(cmd: Command) {
  assert.equal(cmd.kind, "join");
  return (cmd as Extract<Command, { kind: "join" }>).options;
}

function serveOptions(cmd: Command) {
  assert.equal(cmd.kind, "serve");
  return (cmd as Extract<Command, { kind: "serve" }>).options;
}

// ---------------------------------------------------------------------------------------------
// Help and version

Deno.test("cli: --help, -h and help give the main usage naming both subcommands", () => {
  for (const flag of ["--help", "-h", "help"]) {
    const cmd = parse(flag);
    assert.equal(cmd.kind, "help");
    if (cmd.kind !== "help") return;
    assert.equal(cmd.code, 0);
    assert.match(cmd.text, /Usage:/);
    assert.match(cmd.text, /p2p serve/);
    assert.match(cmd.text, /p2p join/);
  }
});

Deno.test("cli: serve --help documents the serve options", () => {
  const cmd = parse("serve", "--help");
  assert.ok(cmd.kind === "help" && cmd.code === 0);
  assert.match(cmd.text, /Usage: p2p serve/);
  for (const opt of ["--host", "--port", "--expire", "--summary", "--json", "-v", "-q"]) {
    assert.ok(cmd.text.includes(opt), `serve help mentions ${opt}`);
  }
});

Deno.test("cli: join --help documents the join options", () => {
  const cmd = parse("join", "-h");
  assert.ok(cmd.kind === "help" && cmd.code === 0);
  assert.match(cmd.text, /Usage: p2p join/);
  const opts = ["--server", "--room", "--name", "--relay-only", "--keepalive", "--timeout"];
  const secrets = ["--passphrase-file", "--new-room", "--identity", "P2P_PASSPHRASE"];
  for (const opt of [...opts, ...secrets, "--json", "--bind", "--port"]) {
    assert.ok(cmd.text.includes(opt), `join help mentions ${opt}`);
  }
  // Help wins over missing required options.
  assert.equal(parse("join", "--help", "--room", "r").kind, "help");
});

Deno.test("cli: --version, -V and version give 'p2p <version from deno.json>'", () => {
  assert.match(denoJson.version, /^\d+\.\d+\.\d+/);
  assert.equal(PROGRAM_VERSION, denoJson.version);
  for (const flag of ["--version", "-V", "version"]) {
    assert.deepEqual(parse(flag), { kind: "version", text: `p2p ${denoJson.version}` });
  }
});

Deno.test("cli: no arguments is the usage with exit code 2", () => {
  const cmd = parse();
  assert.ok(cmd.kind === "help");
  assert.equal(cmd.code, 2);
  assert.match(cmd.text, /Usage:/);
});

// ---------------------------------------------------------------------------------------------
// The options tables: help, default and constant agree

const COMMANDS: CommandSpec<OptionTable>[] = [SERVE_COMMAND, JOIN_COMMAND, DOCTOR_COMMAND];

/** A valid value of every required option (a new required option must be added here). */
const REQUIRED: Record<string, Record<string, string>> = {
  serve: {},
  join: {},
  doctor: { server: "h:1" },
};

/** The required options' arguments of `c`, plus `more`. */
function argsOf(c: CommandSpec<OptionTable>, ...more: string[]): string[] {
  return [...Object.entries(REQUIRED[c.name]!).flatMap(([k, v]) => [`--${k}`, v]), ...more];
}

/** `c`'s help on one line (wrapping may break a default's words anywhere). */
function oneLineHelp(c: CommandSpec<OptionTable>): string {
  return helpText(c).replace(/\s+/g, " ");
}

Deno.test("cli: every option's help names its default, and parsing without it gives that default", () => {
  for (const c of COMMANDS) {
    const help = oneLineHelp(c);
    const none = parseOptions(c.name, c.options, argsOf(c))!;
    assert.ok(none, `${c.name}: parses with only its required options`);
    for (const [name, s] of Object.entries(c.options)) {
      const what = `${c.name} --${name}`;
      assert.ok(help.includes(`--${name}`), `${what} is in the help`);
      // The table's help says what the option does; the default is added from the table only.
      assert.doesNotMatch(s.help, /\(default|\(required/, `${what}: a default in the prose`);
      if (s.kind === "flag") {
        assert.equal(none[name], false, `${what} is off unless given`);
        continue;
      }
      if (s.required) {
        assert.ok(REQUIRED[c.name]![name], `${what} is required: REQUIRED names a value`);
        assert.ok(help.includes(`--${name} ${s.arg} ${s.help} (required)`.replace(/\s+/g, " ")));
        continue;
      }
      if (s.kind === "list") {
        assert.deepEqual(none[name], [], `${what}: none unless given`);
        continue;
      }
      // Every optional value names what happens without it.
      const named = defaultText(s);
      assert.ok(named, `${what} names its default`);
      assert.ok(help.includes(`${s.help} ${named}`.replace(/\s+/g, " ")), `${what}: ${named}`);
      assert.deepEqual(none[name], s.default, `${what}: not given, the default`);
      if (s.bare !== undefined) {
        // Given without a value: the default the help names.
        assert.equal(named, `(default ${s.bare})`);
        const bare = parseOptions(c.name, c.options, argsOf(c, `--${name}`))!;
        assert.deepEqual(bare[name], s.parse(s.bare), `${what} given bare`);
      } else if (s.default !== undefined) {
        // A value default is one the option accepts, and the help says it as typed.
        if (s.shows === undefined) assert.equal(named, `(default ${String(s.default)})`);
        const typed = parseOptions(c.name, c.options, argsOf(c, `--${name}=${s.default}`))!;
        assert.deepEqual(typed[name], s.default, `${what}=${s.default}`);
      }
    }
  }
});

Deno.test("cli: the defaults are the constants the modules use", () => {
  const serve = serveOptions(parse("serve"));
  const r = DEFAULT_REGISTRY;
  assert.equal(serve.port, DEFAULT_PORT);
  assert.equal(serve.expireAfter, r.expireAfter);
  assert.deepEqual(serve.limits, {
    maxPeers: r.maxPeers,
    maxRoomSize: r.maxRoomSize,
    maxPerSource: r.maxPerSource,
    maxRoomsPerSource: r.maxRoomsPerSource,
    maxPerNetwork: r.maxPerNetwork,
    maxRoomsPerNetwork: r.maxRoomsPerNetwork,
    relayRate: r.relayRate,
    relayBurst: r.relayBurst,
    pairRate: r.pairRate,
    receiveRate: r.receiveRate,
    totalRelayRate: r.totalRelayRate,
    helloRate: r.helloRate,
  });
  const join = joinOptions(parse("join", "--server", "h:1", "--room", "r"));
  const sn = DEFAULT_SUPERNODE;
  assert.equal(join.keepalive, DEFAULT_KEEPALIVE_S * 1000);
  assert.ok(join.keepalive < r.expireAfter / 2, "keepalives come well before the server forgets");
  assert.deepEqual(join.supernodeLimits, {
    relayRate: sn.relayRate,
    relayBurst: sn.relayBurst,
    pairRate: sn.pairRate,
    maxPeers: sn.maxPeers,
    maxRoomSize: sn.maxRoomSize,
  });
  const doctor = (...a: string[]) => {
    const cmd = parse("doctor", "--server", "h:1", ...a);
    assert.ok(cmd.kind === "doctor");
    return cmd.options;
  };
  assert.equal(doctor().timeout, DEFAULT_TIMEOUT);
  assert.equal(doctor().lifetime, null);
  assert.equal(doctor("--lifetime").lifetime, DEFAULT_LIFETIME_BUDGET);
});

Deno.test("cli: every number option takes the bounds its help names, and nothing past them", () => {
  let checked = 0;
  for (const c of COMMANDS) {
    const help = oneLineHelp(c);
    for (const [name, s] of Object.entries(c.options)) {
      if (s.kind !== "value" || !s.range) continue;
      const { min, max } = s.range;
      const at = (v: number) => parseOptions(c.name, c.options, argsOf(c, `--${name}=${v}`));
      assert.equal(at(min)![name], min, `${c.name} --${name}=${min}`);
      assert.equal(at(max)![name], max, `${c.name} --${name}=${max}`);
      for (const v of [min - 1, max + 1]) {
        assert.throws(() => at(v), UsageError, `${c.name} --${name}=${v}`);
        try {
          at(v);
        } catch (e) {
          assert.ok((e as Error).message.includes(`from ${min} to ${max}`));
        }
      }
      // A help that names a bound names the checked one.
      for (const m of help.matchAll(new RegExp(`--${name} \\S+ [^(]*?at most (\\d+)`, "g"))) {
        assert.equal(Number(m[1]), max, `${c.name} --${name}: help says at most ${m[1]}`);
      }
      checked++;
    }
  }
  assert.ok(checked >= 15, `${checked} number options`);
  // The room size: a ROSTER of everyone else must fit in one datagram.
  const serveHelp = oneLineHelp(SERVE_COMMAND);
  assert.ok(serveHelp.includes(`--max-room-size N peers in one room, 2 to ${MAX_ROOM_SIZE}`));
  assert.equal(
    serveOptions(parse("serve", `--max-room-size=${MAX_ROOM_SIZE}`)).limits?.maxRoomSize,
    MAX_ROOM_SIZE,
  );
  assertUsageError(["serve", `--max-room-size=${MAX_ROOM_SIZE + 1}`], "--max-room-size");
  assert.ok(oneLineHelp(JOIN_COMMAND).includes(`at most ${MAX_ROOM_SIZE}`));
});

// ---------------------------------------------------------------------------------------------
// Parsed options

Deno.test("cli: serve --cluster options", () => {
  const c = serveOptions(parse(
    "serve",
    "--cluster=nats://u:p@10.0.0.1:4222",
    "--cluster-secret-file=/etc/p2p/secret",
    "--cluster-advertise=203.0.113.5:7777",
    "--cluster-advertise=[2001:DB8::5]:7777",
    "--cluster-lease=20",
    "--cluster-keepalive=5",
  )).cluster;
  assert.deepEqual(c, {
    url: "nats://u:p@10.0.0.1:4222",
    urlFile: undefined,
    secretFile: "/etc/p2p/secret",
    advertise: [{ hostname: "203.0.113.5", port: 7777 }, { hostname: "2001:db8::5", port: 7777 }],
    lease: 20_000,
    keepalive: 5,
  });
  for (const bad of ["example.com:7777", "203.0.113.5", "203.0.113.5:0"]) {
    assert.throws(() => parse("serve", `--cluster-advertise=${bad}`), UsageError, bad);
  }
  assert.throws(
    () => parse("serve", "--cluster=nats://x:1", "--cluster-file=f"),
    /drop one/,
  );
});

Deno.test("cli: serve --puzzle-from (a percentage of --max-peers) and --no-puzzle", () => {
  // Not given: the registry's own default (half the cap), as the help says.
  assert.equal(serveOptions(parse("serve")).limits?.pressureAt, undefined);
  assert.ok(oneLineHelp(SERVE_COMMAND).includes(`(default: ${DEFAULT_REGISTRY.pressureAt * 100})`));
  const at = (...a: string[]) => serveOptions(parse("serve", ...a)).limits?.pressureAt;
  assert.equal(at("--puzzle-from=75"), 0.75);
  assert.equal(at("--puzzle-from", "0"), 0);
  assert.equal(at("--puzzle-from=100"), 1);
  assert.equal(at("--no-puzzle"), Infinity);
  assertUsageError(["serve", "--puzzle-from=101"], "--puzzle-from", "from 0 to 100");
  assertUsageError(["serve", "--puzzle-from=half"], "--puzzle-from");
  assertUsageError(["serve", "--puzzle-from=12.5"], "--puzzle-from", "whole number");
  assertUsageError(["serve", "--puzzle-from=60", "--no-puzzle"], "--puzzle-from", "--no-puzzle");
});

Deno.test("cli: serve defaults and values (seconds become ms)", () => {
  const cmd = parse("serve");
  assert.deepEqual(cmd, {
    kind: "serve",
    options: {
      host: "0.0.0.0",
      port: 7777,
      // A second port of the same address by default (mapping verdicts, supernodes).
      altPort: 7778,
      altPortOptional: true,
      ipv6: { host: "::", required: false },
      expireAfter: 75_000,
      summaryInterval: 60_000,
      json: false,
      limits: {
        maxPeers: 100_000,
        maxRoomSize: 128,
        maxPerSource: 64,
        maxRoomsPerSource: 16,
        maxPerNetwork: 1024,
        maxRoomsPerNetwork: 256,
        relayRate: 256 * 1024,
        relayBurst: 1024 * 1024,
        pairRate: 128 * 1024,
        receiveRate: 2048 * 1024,
        totalRelayRate: 256 * 1024 * 1024,
        helloRate: 50,
      },
      // TCP on the UDP port's number by default; no TLS without a certificate.
      tcp: {},
      streamLimits: { maxConnections: 1000, maxPerSource: 64 },
    },
    logLevel: "info",
    logFormat: "text",
  });
  const limits = serveOptions(parse(
    "serve",
    "--max-peers=5",
    "--max-room-size=10",
    "--max-per-source=2",
    "--max-rooms-per-source=1",
    "--relay-rate=1024",
    "--pair-rate=8",
  )).limits;
  assert.deepEqual(limits, {
    maxPeers: 5,
    maxRoomSize: 10,
    maxPerSource: 2,
    maxRoomsPerSource: 1,
    maxPerNetwork: 1024,
    maxRoomsPerNetwork: 256,
    relayRate: 1024 * 1024,
    relayBurst: 4 * 1024 * 1024,
    pairRate: 8 * 1024,
    receiveRate: 2048 * 1024,
    totalRelayRate: 256 * 1024 * 1024,
    helloRate: 50,
  });
  for (const bad of ["--max-room-size=151", "--max-peers=0", "--relay-rate=1.5"]) {
    assert.throws(() => parse("serve", bad), UsageError, bad);
  }
  assert.deepEqual(
    serveOptions(parse(
      "serve",
      "--host",
      "127.0.0.1",
      "--port=0",
      "--expire",
      "1.5",
      "--summary",
      "0",
      "--json",
    )),
    {
      host: "127.0.0.1",
      port: 0,
      altPort: 0,
      altPortOptional: true,
      expireAfter: 1_500,
      summaryInterval: 0,
      json: true,
      limits: serveOptions(parse("serve")).limits,
      tcp: {},
      streamLimits: serveOptions(parse("serve")).streamLimits,
    },
  );
});

Deno.test("cli: join defaults: the host name, any port, keepalive 25 s, timeout 10 s", () => {
  assert.deepEqual(joinOptions(parse("join", "--server", "example.com:7777", "--room", "r")), {
    server: "example.com:7777",
    room: "r",
    name: "myhost",
    relayOnly: false,
    json: false,
    bind: "0.0.0.0",
    port: 0,
    keepalive: 25_000,
    registerTimeout: 10_000,
    drainTimeout: 30_000,
    passphraseFile: undefined,
    newRoom: false,
    identityFile: undefined,
    stun: [],
    portmap: true,
    supernode: "auto",
    supernodeLimits: {
      relayRate: 64 * 1024,
      relayBurst: 256 * 1024,
      pairRate: 32 * 1024,
      maxPeers: 32,
      maxRoomSize: 32,
    },
    ticket: undefined,
    ticketFile: undefined,
    qr: false,
    logLevel: "info",
  });
});

Deno.test("cli: join --supernode, --no-supernode, limits and several --server", () => {
  const base = ["join", "--server", "h:1", "--room", "r"];
  assert.equal(joinOptions(parse(...base, "--supernode")).supernode, "ask");
  assert.equal(joinOptions(parse(...base, "--no-supernode")).supernode, "off");
  assert.equal(joinOptions(parse(...base, "--relay-only")).supernode, "off");
  const o = joinOptions(parse(...base, "--supernode-relay-rate", "10", "--server", "s:2"));
  assert.equal(o.supernodeLimits?.relayRate, 10 * 1024);
  assert.equal(o.server, "h:1");
  assert.deepEqual(o.moreServers, ["s:2"]);
  assert.throws(() => parse(...base, "--supernode", "--no-supernode"), /contradict/);
  assert.throws(() => parse(...base, "--supernode", "--relay-only"), /cannot be a supernode/);
  assert.throws(() => parse(...base, "--server", "nope:"), /--server must be HOST:PORT/);
  assert.throws(() => parse(...base, "--supernode-max-members", "0"), /from 1 to/);
  assert.match((parse("join", "--help") as { text: string }).text, /--no-supernode/);
  assert.match(
    (parse("serve", "--help") as { text: string }).text,
    /--no-alt-port +no second port: no mapping verdict from this server, no\s+supernodes/,
  );
});

Deno.test("cli: join --no-portmap turns router port mapping off", () => {
  const base = ["join", "--server", "h:1", "--room", "r"];
  assert.equal(joinOptions(parse(...base, "--no-portmap")).portmap, false);
  assert.match((parse("join", "--help") as { text: string }).text, /--no-portmap/);
});

Deno.test("cli: join records --passphrase-file, --new-room and --identity without reading them", () => {
  const base = ["join", "--server", "h:1", "--room", "r"];
  const o = joinOptions(parse(...base, "--passphrase-file", "/no/such/file", "--identity", "id"));
  assert.equal(o.passphraseFile, "/no/such/file");
  assert.equal(o.identityFile, "id");
  assert.equal(o.newRoom, false);
  const n = joinOptions(parse(...base, "--new-room", "--identity=/x/identity"));
  assert.equal(n.newRoom, true);
  assert.equal(n.passphraseFile, undefined);
  assert.equal(n.identityFile, "/x/identity");
  assertUsageError([...base, "--new-room", "--passphrase-file", "f"], "--new-room");
  assertUsageError([...base, "--passphrase-file", ""], "--passphrase-file");
  assertUsageError([...base, "--identity="], "--identity");
  assertUsageError([...base, "--passphrase-file"], "--passphrase-file");
});

Deno.test("cli: join values", () => {
  const o = joinOptions(parse(
    "join",
    "--server=[::1]:9",
    "--room",
    "lobby",
    "--name",
    "é".repeat(32),
    "--relay-only",
    "--json",
    "--bind",
    "10.0.0.2",
    "--port",
    "40000",
    "--keepalive",
    "0.5",
    "--timeout",
    "2",
  ));
  assert.equal(o.server, "[::1]:9");
  assert.equal(o.room, "lobby");
  assert.equal(o.name, "é".repeat(32)); // 64 bytes: the limit.
  assert.equal(o.relayOnly, true);
  assert.equal(o.json, true);
  assert.equal(o.bind, "10.0.0.2");
  assert.equal(o.port, 40_000);
  assert.equal(o.keepalive, 500);
  assert.equal(o.registerTimeout, 2_000);
});

Deno.test("cli: the host name is asked for only when --name is missing", () => {
  let asked = 0;
  const hostName = () => {
    asked++;
    return "h";
  };
  parseCommand(["join", "--server", "h:1", "--room", "r", "--name", "n"], hostName);
  assert.equal(asked, 0);
  parseCommand(["join", "--server", "h:1", "--room", "r"], hostName);
  assert.equal(asked, 1);
});

Deno.test("cli: -v and -q pick the log level", () => {
  const base = ["join", "--server", "h:1", "--room", "r"];
  for (const [flags, level] of [[[], "info"], [["-v"], "debug"], [["-q"], "warning"]] as const) {
    for (const cmd of [parse(...base, ...flags), parse("serve", ...flags)]) {
      assert.ok(cmd.kind === "join" || cmd.kind === "serve");
      assert.equal(cmd.logLevel, level, `${cmd.kind} ${flags.join(" ")}`);
    }
  }
  const v = parse("serve", "--verbose");
  assert.ok(v.kind === "serve" && v.logLevel === "debug");
  const d = parse("doctor", "--server", "h:1", "-v");
  assert.ok(d.kind === "doctor" && d.logLevel === "debug", "doctor -v too");
  for (const cmd of ["join", "serve", "send", "doctor"]) {
    assert.deepEqual(parse(cmd, "--version"), { kind: "version", text: `p2p ${denoJson.version}` });
  }
});

// ---------------------------------------------------------------------------------------------
// Bad arguments: a one-line usage error

Deno.test("cli: unknown option is a usage error naming the option", () => {
  assert.equal(assertUsageError(["serve", "--bogus"], "--bogus").command, "serve");
  const e = assertUsageError(["join", "--server", "127.0.0.1:7777", "--room", "r", "--frob"]);
  assert.ok(formatUsageError(e).includes("--frob"));
  assert.ok(formatUsageError(e).endsWith(`(see "p2p join --help")`), formatUsageError(e));
});

Deno.test("cli: unexpected positional argument is a usage error", () => {
  assertUsageError(["serve", "extra"], "extra");
  assertUsageError(["join", "--server", "h:1", "--room", "r", "extra"], "extra");
});

Deno.test("cli: join takes --server and --room, or a ticket instead; the contradictions are usage errors", () => {
  assert.equal(joinOptions(parse("join")).server, undefined);
  assert.equal(joinOptions(parse("join", "--ticket-file", "t")).ticketFile, "t");
  assertUsageError(["join", "--ticket", "x", "--ticket-file", "t"], "--ticket");
  assertUsageError(["join", "--new-room"], "--new-room needs --server");
  assertUsageError(["join", "--server", "h", "--new-room", "--ticket", "x"], "--new-room");
  assertUsageError(["join", "--server", "h", "--room", "r", "--qr"], "--qr");
});

Deno.test("cli: bad ports are usage errors naming --port", () => {
  assertUsageError(["serve", "--port", "70000"], "--port", "70000");
  assertUsageError(["serve", "--port", "abc"], "--port");
  assertUsageError(["serve", "--port=-1"], "--port");
  assertUsageError(["serve", "--port", "1.5"], "--port");
  assertUsageError(["serve", "--port", ""], "--port");
  assertUsageError(
    ["join", "--server", "127.0.0.1:7777", "--room", "r", "--port", "99999"],
    "--port",
  );
});

Deno.test("cli: malformed --server values are usage errors naming --server", () => {
  for (const server of ["127.0.0.1:0", "127.0.0.1:65536", "host:", ":7777", "a:b:c", ""]) {
    assertUsageError(["join", "--server", server, "--room", "r"], "--server", server);
  }
});

Deno.test("cli: non-numeric or out-of-range durations are usage errors", () => {
  const base = ["join", "--server", "127.0.0.1:7777", "--room", "r"];
  assertUsageError([...base, "--keepalive", "abc"], "--keepalive", "abc");
  assertUsageError([...base, "--keepalive", "0"], "--keepalive");
  // Above the server's 75 s expiry a peer would keep expiring: refused.
  assertUsageError([...base, "--keepalive", "61"], "--keepalive", "60");
  assertUsageError([...base, "--timeout", "soon"], "--timeout");
  assertUsageError([...base, "--timeout", "Infinity"], "--timeout");
  assertUsageError(["serve", "--expire", "0"], "--expire");
  assertUsageError(["serve", "--summary", "-1"], "--summary");
});

Deno.test("cli: bad addresses and names are usage errors", () => {
  assertUsageError(["serve", "--host", "999.0.0.1"], "--host");
  assertUsageError(["serve", "--host", "example.com"], "--host");
  const base = ["join", "--server", "127.0.0.1:7777"];
  assertUsageError([...base, "--room", "x".repeat(65)], "--room");
  assertUsageError([...base, "--room", "a\nb"], "--room");
  assertUsageError([...base, "--room", "r", "--name", "é".repeat(33)], "--name");
  assertUsageError([...base, "--room", "r", "--name", "tab\there"], "--name");
  assertUsageError([...base, "--room", "r", "--name", ""], "--name");
  assertUsageError([...base, "--room", "r", "--bind", "nowhere"], "--bind");
});

Deno.test("cli: a host name unfit as a name is a usage error too", () => {
  assert.throws(
    () => parseCommand(["join", "--server", "h:1", "--room", "r"], () => "x".repeat(65)),
    UsageError,
  );
});

Deno.test("cli: unknown subcommand is a usage error naming it and the main help", () => {
  const e = assertUsageError(["frobnicate"], "frobnicate");
  assert.equal(e.command, "");
  assert.ok(formatUsageError(e).endsWith(`(see "p2p --help")`), formatUsageError(e));
});

// ---------------------------------------------------------------------------------------------
// As a process: exit codes and what lands on stdout and stderr

function show(r: P2pResult): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

Deno.test("cli: Deno's own download lines are not taken for the program's stderr", () => {
  const first = "Download https://registry.npmjs.org/@logtape%2flogtape\n" +
    "Download https://registry.npmjs.org/@logtape/logtape/-/logtape-2.4.2.tgz\n" +
    "Initialize @logtape/logtape@2.4.2\n";
  assert.equal(stripDenoProgress(first), "");
  assert.equal(stripDenoProgress(first + "p2p: boom\n"), "p2p: boom\n");
  // Only whole lines of that shape go; the program's own lines stay.
  const own = "p2p: Download https://x failed\nDownload of the roster\n";
  assert.equal(stripDenoProgress(own), own);
});

Deno.test("cli process: --help and --version exit 0 with stdout only; no arguments exits 2", async () => {
  const [help, version, none] = await Promise.all([
    runP2p(["--help"]),
    runP2p(["--version"]),
    runP2p([]),
  ]);
  assert.equal(help.code, 0, show(help));
  assert.match(help.stdout, /^p2p .*\n\nUsage:/, show(help));
  assert.equal(help.stderr, "", show(help));
  assert.equal(version.code, 0, show(version));
  assert.equal(version.stdout, `p2p ${denoJson.version}\n`, show(version));
  assert.equal(version.stderr, "", show(version));
  assert.equal(none.code, 2, show(none));
  assert.match(none.stdout, /Usage:/, show(none));
});

Deno.test("cli process: a usage error exits 2 with one line on stderr and nothing on stdout", async () => {
  const r = await runP2p(["serve", "--port", "70000"]);
  assert.equal(r.code, 2, show(r));
  assert.equal(r.stdout, "", `stdout must stay clean\n${show(r)}`);
  assert.equal(
    r.stderr,
    `p2p: --port must be a number from 0 to 65535, got "70000" (see "p2p serve --help")\n`,
    show(r),
  );
});

Deno.test("cli process: join with no server listening exits 1 promptly with a clear message", async () => {
  const port = freeUdpPort();
  const r = await runP2p([
    "join",
    "--server",
    `127.0.0.1:${port}`,
    "--room",
    "r",
    "--timeout",
    "1",
  ], { env: { P2P_PASSPHRASE: "pass" } });
  assert.equal(r.code, 1, show(r));
  assert.ok(r.ms < 10_000, `gave up after ${Math.round(r.ms)} ms\n${show(r)}`);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("p2p: "));
  assert.equal(errors.length, 1, `one final error line\n${show(r)}`);
  assert.ok(errors[0]!.includes(`127.0.0.1:${port}`), `names the server address\n${show(r)}`);
  assert.match(errors[0]!, /server/i, show(r));
  assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace\n${show(r)}`);
});

Deno.test("cli process: --log-file takes the log lines off stderr (mode 0600); one it cannot open is named", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2p-cli-" });
  try {
    const file = `${dir}/p2p.log`;
    const args = [
      "join",
      "--server",
      `127.0.0.1:${freeUdpPort()}`,
      "--room",
      "r",
      "--timeout",
      "1",
    ];
    const r = await runP2p([...args, "--log-file", file], { env: { P2P_PASSPHRASE: "pass" } });
    assert.equal(r.code, 1, show(r));
    // Only the final error is left on stderr: the log lines went to the file.
    assert.deepEqual(r.stderr.trimEnd().split("\n").filter((l) => !l.startsWith("p2p: ")), []);
    const logged = await Deno.readTextFile(file);
    assert.match(logged, /INF\] p2p·join: Bound UDP/, logged);
    assert.equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    const bad = await runP2p([...args, "--log-file", dir], { env: { P2P_PASSPHRASE: "pass" } });
    assert.equal(bad.code, 1, show(bad));
    assert.match(bad.stderr, new RegExp(`^p2p: Cannot open the log file ${dir} .*--log-file\n$`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------------------------
// The room passphrase

Deno.test("cli process: join without a passphrase, stdin no terminal, exits 2 with one line", async () => {
  const r = await runP2p(["join", "--server", `127.0.0.1:${freeUdpPort()}`, "--room", "r"]);
  assert.equal(r.code, 2, show(r));
  assert.equal(r.stdout, "", show(r));
  assert.equal(
    r.stderr,
    "p2p: no room passphrase: set P2P_PASSPHRASE, use --passphrase-file FILE, or run in a " +
      `terminal (see "p2p join --help")\n`,
    show(r),
  );
});

Deno.test("cli process: an unreadable --passphrase-file exits 1 naming the file", async () => {
  // Exit 1, not 2: the arguments are well-formed; the file is a runtime matter, like a server
  // that does not answer or an identity file that cannot be read.
  const dir = await Deno.makeTempDir({ prefix: "p2p-cli-" });
  try {
    const file = `${dir}/missing-passphrase`;
    const args = ["join", "--server", `127.0.0.1:${freeUdpPort()}`, "--room", "r"];
    const r = await runP2p([...args, "--passphrase-file", file]);
    assert.equal(r.code, 1, show(r));
    assert.equal(r.stdout, "", show(r));
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, `one line\n${show(r)}`);
    assert.ok(lines[0]!.startsWith(`p2p: Cannot read passphrase file ${file}: `), show(r));
    await Deno.writeTextFile(file, "\n");
    const empty = await runP2p([...args, "--passphrase-file", file]);
    assert.equal(empty.code, 1, show(empty));
    assert.equal(
      empty.stderr,
      `p2p: Passphrase file ${file} starts with an empty line (or only spaces)\n`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli process: --new-room --json prints the room event with its ticket and command", async () => {
  const port = freeUdpPort();
  const r = await runP2p([
    "join",
    "--server",
    `127.0.0.1:${port}`,
    "--room",
    "our room",
    "--new-room",
    "--json",
    "--timeout",
    "1",
  ]);
  // Nobody answers at that port: it then gives up like any join.
  assert.equal(r.code, 1, show(r));
  const events = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
  const room = events[0];
  assert.equal(room.event, "room", show(r));
  assert.match(room.passphrase, /^[a-z2-7]{4}(-[a-z2-7]{4}){5}$/);
  assert.equal(room.join, `npx -y deno@${Deno.version.deno} task join`);
  assert.deepEqual(decodeTicket(room.ticket), {
    servers: [`127.0.0.1:${port}`],
    room: "our room",
    passphrase: room.passphrase,
  });
  assert.deepEqual(Object.keys(room).sort(), ["event", "join", "passphrase", "room", "ticket"]);
  assert.equal(events[1]?.event, "registering", show(r));
});

Deno.test("cli process: --new-room --qr prints the ticket, the command and the ticket's QR code", async () => {
  const args = ["join", "--server", `127.0.0.1:${freeUdpPort()}`, "--new-room", "--qr"];
  const r = await runP2p([...args, "--timeout", "1"]);
  assert.equal(r.code, 1, show(r));
  const lines = r.stdout.split("\n");
  const ticket = lines[1]!.trim();
  assert.ok(decodeTicket(ticket), show(r));
  const qr = lines.filter((l) => /^[ █▀▄]+$/.test(l) && /[█▀▄]/.test(l));
  assert.deepEqual(qr, qrLines(ticket).filter((l) => /[█▀▄]/.test(l)), show(r));
});

Deno.test("cli process: a ticket with a typo exits 2 saying so; no ticket and no terminal exits 2", async () => {
  const ticket = encodeTicket({
    servers: ["127.0.0.1:9"],
    room: "r",
    passphrase: "k3xq-7hmd-p2ra-wt5n-b6fz-c4ej",
  });
  const i = ticket.length - 3;
  const typo = ticket.slice(0, i) + (ticket[i] === "a" ? "b" : "a") + ticket.slice(i + 1);
  const bad = await runP2p(["join", "--json"], { env: { P2P_TICKET: typo } });
  assert.equal(bad.code, 2, show(bad));
  assert.match(bad.stderr, /this ticket has a typo/);
  const none = await runP2p(["join", "--json"]);
  assert.equal(none.code, 2, show(none));
  assert.match(none.stderr, /no room to join: give a ticket/);
});

Deno.test("cli: IPv6 serving: :: by default with 0.0.0.0, --host6, --no-ipv6, and their errors", () => {
  assert.equal(serveOptions(parse("serve", "--host", "192.0.2.1")).ipv6, undefined);
  assert.equal(serveOptions(parse("serve", "--no-ipv6")).ipv6, undefined);
  assert.deepEqual(serveOptions(parse("serve", "--host6", "2001:DB8:0::7")).ipv6, {
    host: "2001:db8::7",
    required: true,
  });
  assert.deepEqual(
    serveOptions(parse("serve", "--host", "192.0.2.1", "--host6", "::")).ipv6,
    { host: "::", required: true },
  );
  assertUsageError(["serve", "--host6", "::", "--no-ipv6"], "--host6", "--no-ipv6");
  assertUsageError(["serve", "--host6", "192.0.2.1"], "--host6", "literal IPv6", "192.0.2.1");
  assertUsageError(["serve", "--host6", "fe80::1"], "link-local");
  assertUsageError(["serve", "--host", "::"], "--host", "IPv4", "for IPv6 use --host6");
  assertUsageError(
    ["join", "--server", "h:1", "--room", "r", "--bind", "::"],
    "--bind",
    "--no-ipv6",
  );
  assert.equal(joinOptions(parse("join", "--server", "[::1]:7", "--room", "r")).ipv6, undefined);
  assert.equal(
    joinOptions(parse("join", "--server", "[::1]:7", "--room", "r", "--no-ipv6")).ipv6,
    false,
  );
  assertUsageError(
    ["join", "--server", "2001:db8::1:7777", "--room", "r"],
    "--server",
    "HOST:PORT",
  );
});

Deno.test("cli: an IPv6 --server resolves to its canonical address; bad ones are refused clearly", async () => {
  const { resolveServer, JoinError } = await import("../../lib/roles/join.ts");
  assert.deepEqual(await resolveServer("[::1]:7777"), { hostname: "::1", port: 7777 });
  assert.deepEqual(await resolveServer("[2001:DB8:0:0::1]:7000"), {
    hostname: "2001:db8::1",
    port: 7000,
  });
  assert.deepEqual(await resolveServer("127.0.0.1:7777"), { hostname: "127.0.0.1", port: 7777 });
  const refused: [string, RegExp][] = [
    ["[fe80::1]:7777", /"\[fe80::1\]:7777" is link-local/],
    ["[ff02::1]:7777", /is a multicast address/],
    ["[::]:7777", /is the unspecified address/],
    [
      "2001:db8::1:7777",
      /is not HOST:PORT; an IPv6 address goes in brackets, for example \[2001:db8::7\]:7777/,
    ],
    [
      "host-without-port",
      /is not HOST:PORT; for example 203\.0\.113\.7:7777 or \[2001:db8::7\]:7777/,
    ],
  ];
  for (const [spec, message] of refused) {
    await assert.rejects(() => resolveServer(spec), (e: unknown) => {
      assert.ok(e instanceof JoinError, spec);
      assert.match(e.message, message);
      return true;
    });
  }
  // The doctor examines IPv4 NAT behaviour: it refuses IPv6 with a reason.
  const doctor = await import("../../lib/roles/doctor.ts");
  await assert.rejects(
    () => doctor.resolveServer("[2001:db8::1]:7777"),
    /is an IPv6 address; this command speaks IPv4 only: use its IPv4 address/,
  );
});

Deno.test("cli: --log-format, --log-level and --metrics", () => {
  const s = parse(
    "serve",
    "--log-format",
    "json",
    "--log-level",
    "debug",
    "--metrics",
    "127.0.0.1:9477",
  );
  assert.ok(s.kind === "serve");
  assert.equal(s.logFormat, "json");
  assert.equal(s.logLevel, "debug");
  assert.deepEqual(s.options.metrics, { host: "127.0.0.1", port: 9477 });
  const j = parse(
    "join",
    "--server",
    "h:1",
    "--room",
    "r",
    "--name",
    "n",
    "-v",
    "--log-level=error",
  );
  assert.ok(j.kind === "join");
  assert.equal(j.logLevel, "error", "--log-level wins over -v");
  assert.equal(j.logFormat, "text");
  for (
    const bad of [["--log-format", "xml"], ["--log-level", "loud"], ["--metrics", "localhost:1"]]
  ) {
    assert.throws(() => parse("serve", ...bad), UsageError, bad.join(" "));
  }
});

Deno.test("cli: --stun is repeatable and must be HOST[:PORT]", () => {
  const j = parse(
    "join",
    "--server",
    "h:1",
    "--room",
    "r",
    "--name",
    "n",
    "--stun",
    "a:3478",
    "--stun=b:19302",
  );
  assert.ok(j.kind === "join");
  assert.deepEqual(j.options.stun, ["a:3478", "b:19302"]);
  assert.throws(
    () => parse("join", "--server", "h:1", "--room", "r", "--stun", "nope:"),
    UsageError,
  );
});

Deno.test("cli: a server or STUN server without a port takes the default port", () => {
  const j = (...servers: string[]) =>
    joinOptions(parse("join", ...servers.flatMap((s) => ["--server", s]), "--room", "r"));
  assert.equal(j("127.0.0.1").server, "127.0.0.1:7777");
  assert.equal(j("p2p.example.org").server, "p2p.example.org:7777");
  assert.throws(() => j("::1"), /--server must be/);
  assert.equal(j("[2001:db8::1]").server, "[2001:db8::1]:7777");
  assert.equal(j("h:1", "backup").moreServers?.[0], "backup:7777");
  const stun = joinOptions(parse("join", "--server", "h", "--room", "r", "--stun", "stun.example"));
  assert.deepEqual(stun.stun, ["stun.example:3478"]);
  const d = parse("doctor", "--server", "10.0.0.1") as { options: { server: string } };
  assert.equal(d.options.server, "10.0.0.1:7777");
});

Deno.test("cli: serve over TCP by default, --no-tcp, --tcp-port, TLS needs all three options", () => {
  assert.deepEqual(serveOptions(parse("serve", "--tcp-port", "443")).tcp, { port: 443 });
  assert.equal(serveOptions(parse("serve", "--no-tcp")).tcp, undefined);
  assertUsageError(["serve", "--no-tcp", "--tcp-port", "80"], "--tcp-port", "--no-tcp");
  const tls = serveOptions(
    parse("serve", "--tls-port", "443", "--tls-cert", "c.pem", "--tls-key", "k.pem"),
  );
  assert.deepEqual(tls.tls, { port: 443, cert: "c.pem", key: "k.pem" });
  assertUsageError(["serve", "--tls-port", "443", "--tls-cert", "c.pem"], "--tls-key");
  assertUsageError(["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"], "--tls-port");
  const limits = serveOptions(parse("serve", "--max-tcp", "5", "--max-tcp-per-source", "2"));
  assert.deepEqual(limits.streamLimits, { maxConnections: 5, maxPerSource: 2 });
});

Deno.test("cli: join --tcp, tcp:// and tls:// servers, --tls-ca", () => {
  const o = joinOptions(parse(
    "join",
    "--server",
    "tls://Example.org:443",
    "--server",
    "TCP://127.0.0.1:7777",
    "--room",
    "r",
    "--tcp",
    "--tls-ca",
    "ca.pem",
  ));
  assert.equal(o.server, "tls://Example.org:443");
  assert.deepEqual(o.moreServers, ["tcp://127.0.0.1:7777"]);
  assert.equal(o.tcp, true);
  assert.equal(o.tlsCa, "ca.pem");
  assert.equal(joinOptions(parse("join", "--server", "h", "--room", "r")).tcp, undefined);
  for (const bad of ["tcp://host", "tls://:443", "tcp://"]) {
    assertUsageError(["join", "--server", bad, "--room", "r"], "--server", bad);
  }
});

Deno.test("cli: p2p send PATH [--to NAME] [--wait S] is a join that sends; --downloads, --auto-accept", () => {
  const cmd = parseCommand(
    ["send", "./a file.txt", "--to", "ben", "--to", "cat", "--wait", "5", "--server", "h:1"]
      .concat(["--room", "r"]),
    () => "ann",
  );
  assert.equal(cmd.kind, "join");
  if (cmd.kind !== "join") return;
  assert.deepEqual(cmd.options.sendFile, { path: "./a file.txt", to: ["ben", "cat"], wait: 5000 });
  const room = parseCommand(["send", "x", "--room", "r"], () => "ann");
  assert.ok(room.kind === "join" && room.options.sendFile?.to === undefined);
  assert.throws(() => parseCommand(["send", "--to", "ben", "x"], () => "ann"), /PATH/);
  assert.equal(parseCommand(["send"], () => "ann").kind, "help");
  const join = parseCommand(
    ["join", "--room", "r", "--downloads", "/tmp/d", "--auto-accept"],
    () => "ann",
  );
  assert.ok(join.kind === "join" && join.options.downloads === "/tmp/d");
  assert.ok(join.kind === "join" && join.options.autoAccept === true);
});
