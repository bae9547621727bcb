/**
 * `p2p join`: a chat peer. Wires the pure {@link Client} to a UDP driver, stdin and stdout.
 *
 * Human mode prints `[name] text` for messages and `*` status lines; `--json` mode prints one
 * JSON object per line on stdout and nothing else there (logs go to stderr).
 *
 * @module
 */
import { styleText } from "node:util";
import { getLogger } from "@logtape/logtape";
import { Client, type ClientEvent } from "./lib/client.ts";
import { monotonicNow, UdpDriver } from "./lib/udp.ts";
import {
  type Endpoint,
  formatEndpoint,
  MAX_PRIVATE_ENDPOINTS,
  parseIPv4,
  parseIPv6,
  sameEndpoint,
} from "./lib/wire.ts";

/** Options of {@link join}. */
export interface JoinOptions {
  /** Server as `HOST:PORT` (host name or literal IP). */
  server: string;
  /** Room to join. */
  room: string;
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
  /** Keepalive interval in ms. */
  keepalive: number;
  /** Give up registering after this long, in ms. */
  registerTimeout: number;
  /** After stdin ends, wait at most this long for messages to be acknowledged, in ms. */
  drainTimeout: number;
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

/** Splits `HOST:PORT` (IPv6 as `[addr]:port`); returns null when malformed. */
export function splitHostPort(s: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

async function resolveServer(spec: string): Promise<Endpoint> {
  const hp = splitHostPort(spec);
  if (!hp) throw new JoinError(`Server "${spec}" is not HOST:PORT; for example 203.0.113.7:7777`);
  if (parseIPv4(hp.host) || parseIPv6(hp.host)) return { hostname: hp.host, port: hp.port };
  if (hp.host === "localhost") return { hostname: "127.0.0.1", port: hp.port };
  try {
    const ips = await Deno.resolveDns(hp.host, "A");
    if (ips[0]) return { hostname: ips[0], port: hp.port };
  } catch {
    // Reported below.
  }
  throw new JoinError(`Cannot resolve server host "${hp.host}"; check the name or use its IP`);
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

function jsonLine(e: ClientEvent): string | undefined {
  switch (e.type) {
    case "ready":
      return JSON.stringify({ event: "ready", name: e.name, public: formatEndpoint(e.public) });
    case "peer":
      return JSON.stringify({
        event: "peer",
        name: e.name,
        path: e.path,
        addr: e.addr ? formatEndpoint(e.addr) : null,
        rtt_ms: e.rtt,
      });
    case "message":
      return JSON.stringify({ event: "message", from: e.from, text: e.text });
    case "left":
      return JSON.stringify({ event: "left", name: e.name, reason: e.reason });
    case "server-lost":
      return JSON.stringify({ event: "server", state: "lost" });
    case "server-back":
      return JSON.stringify({ event: "server", state: "back", public: formatEndpoint(e.public) });
    case "notice":
      return JSON.stringify({ event: "notice", message: e.message });
    case "fatal":
      return undefined;
  }
}

/** Shows control characters as escapes so received text cannot fake lines or move the cursor. */
export function printable(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? `\\x${c.toString(16).padStart(2, "0")}` : ch;
  }
  return out;
}

function pathText(path: string, addr: Endpoint | null, rtt: number | null): string {
  if (path === "direct" && addr) return `direct ${formatEndpoint(addr)}, ${rtt ?? "?"} ms`;
  if (path === "relay") return "relayed via server";
  return "connecting";
}

function humanLine(e: ClientEvent, color: boolean, seen: Set<string>): string | undefined {
  const dim = (s: string) => color ? styleText("dim", s) : s;
  const bold = (s: string) => color ? styleText("bold", s) : s;
  switch (e.type) {
    case "ready":
      return dim(`* Joined as "${e.name}"; the server sees us at ${formatEndpoint(e.public)}`);
    case "peer": {
      const first = !seen.has(e.name);
      seen.add(e.name);
      return dim(
        first
          ? `* ${e.name} is here: ${pathText(e.path, e.addr, e.rtt)}`
          : `* ${e.name} is now ${pathText(e.path, e.addr, e.rtt)}`,
      );
    }
    case "message":
      return `${bold(`[${printable(e.from)}]`)} ${printable(e.text)}`;
    case "left":
      seen.delete(e.name);
      return dim(`* ${e.name} left${e.reason === "expired" ? " (timed out)" : ""}`);
    case "server-lost":
      return dim("* Lost contact with the server; peers stay connected, retrying");
    case "server-back":
      return dim("* Server is back");
    case "notice":
      return dim(`* ${e.message}`);
    case "fatal":
      return undefined;
  }
}

const HELP = [
  "/peers   list peers with path and RTT",
  "/quit    deliver what is queued, leave and exit",
  "//text   send a line that starts with /",
].join("\n");

/** Runs a peer until stdin ends, /quit, or a signal. Returns the process exit code. */
export async function join(o: JoinOptions): Promise<number> {
  const server = await resolveServer(o.server);
  const color = !o.json && Deno.stdout.isTerminal();
  const print = (s: string) => console.log(s);
  // The client needs the bound port, the driver needs the client: bind first, fill in after.
  const box = {} as { client: Client };
  let fatal: string | undefined;
  let ready = false;
  let sendable = false;
  const pending: string[] = [];
  const seen = new Set<string>();
  const wake = { fn: () => {} };

  // Test-only hook: with P2P_TEST_BLOCK_DIRECT=1 every datagram to or from anyone but the
  // server is dropped until the process receives SIGUSR1.
  const testHook = Deno.env.get("P2P_TEST_BLOCK_DIRECT") === "1";
  let blockDirect = testHook;
  const unblock = () => {
    blockDirect = false;
    log.info("Test hook: direct paths unblocked");
  };
  if (testHook) Deno.addSignalListener("SIGUSR1", unblock);

  const onStep = () => {
    for (let e = box.client.pollEvent(); e; e = box.client.pollEvent()) {
      if (e.type === "fatal") {
        fatal = e.message;
        continue;
      }
      if (e.type === "ready") ready = true;
      const line = o.json ? jsonLine(e) : humanLine(e, color, seen);
      if (line !== undefined) print(line);
      if (e.type === "peer" || e.type === "left") {
        log.info(
          e.type === "peer"
            ? `Peer "${e.name}" is ${pathText(e.path, e.addr, e.rtt)}`
            : `Peer "${e.name}" left (${e.reason})`,
        );
      }
    }
    wake.fn();
  };

  let driver: UdpDriver;
  try {
    driver = UdpDriver.bind(o.bind, o.port, {
      handleDatagram: (n, f, d) => box.client.handleDatagram(n, f, d),
      handleTimeout: (n) => box.client.handleTimeout(n),
      pollTransmit: () => box.client.pollTransmit(),
      nextTimeout: () => box.client.nextTimeout(),
    }, {
      onStep,
      filter: (peer) => !blockDirect || sameEndpoint(peer, server),
    });
  } catch (e) {
    throw new JoinError((e as Error).message);
  }
  const local = driver.localAddr;
  const client = box.client = new Client({
    server,
    room: o.room,
    name: o.name,
    relayOnly: o.relayOnly,
    privateEndpoints: privateEndpoints(o.bind, local.port),
    keepalive: o.keepalive,
    registerTimeout: o.registerTimeout,
  });
  log.info(`Bound UDP ${formatEndpoint(local)}; registering with ${formatEndpoint(server)}`);
  if (o.json) {
    print(JSON.stringify({
      event: "registering",
      server: formatEndpoint(server),
      local: formatEndpoint(local),
    }));
  }
  driver.step((now) => client.start(now));
  driver.start();

  /** Resolves when `cond` holds after some step, or after `ms`. */
  const until = (cond: () => boolean, ms: number) =>
    new Promise<boolean>((resolve) => {
      const check = () => {
        if (cond()) finish(true);
      };
      const timer = setTimeout(() => finish(cond()), ms);
      const finish = (v: boolean) => {
        clearTimeout(timer);
        wake.fn = () => {};
        resolve(v);
      };
      wake.fn = check;
      check();
    });

  const notice = (message: string) =>
    print(
      o.json
        ? JSON.stringify({ event: "notice", message })
        : humanLine({ type: "notice", message }, color, seen)!,
    );
  const sendLine = (line: string) => {
    if (!sendable) return pending.push(line);
    let n = 0;
    driver.step((now) => n = client.send(now, line));
    if (n === 0 && client.peers().length === 0) notice("Nobody else is in the room; not sent");
  };

  const signalled = Promise.withResolvers<"signal">();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    signalled.resolve("signal");
    wake.fn();
  };
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, onSignal);

  const stdinDone = (async () => {
    const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).pipeThrough(
      new LineSplitter(),
    );
    for await (const raw of lines) {
      const line = raw.replace(/\r$/, "");
      if (line === "/quit") return "quit";
      if (line === "/peers") {
        const peers = client.peers();
        if (o.json) {
          print(JSON.stringify({
            event: "peers",
            peers: peers.map((p) => ({
              name: p.name,
              path: p.path,
              addr: p.addr ? formatEndpoint(p.addr) : null,
              rtt_ms: p.rtt,
            })),
          }));
        } else if (peers.length === 0) print("* Nobody else is in the room");
        else {
          print(`* ${peers.length} ${peers.length === 1 ? "peer" : "peers"} in the room:`);
          for (const p of peers) print(`    ${p.name}  ${pathText(p.path, p.addr, p.rtt)}`);
        }
        continue;
      }
      if (line === "/help") {
        if (o.json) notice(HELP.replaceAll("\n", "; "));
        else print(HELP);
        continue;
      }
      if (line.startsWith("/") && !line.startsWith("//")) {
        notice(`Unknown command ${line.split(" ")[0]}; try /help`);
        continue;
      }
      if (line === "") continue;
      sendLine(line.startsWith("//") ? line.slice(1) : line);
    }
    return "eof";
  })();

  let code = 0;
  try {
    // Registration first: fatal (unreachable, refused) ends the run, and so does Ctrl-C.
    await until(() => ready || fatal !== undefined || interrupted, o.registerTimeout + 1_000);
    if (interrupted && !ready) return 130;
    if (fatal !== undefined || !ready) {
      throw new JoinError(fatal ?? "Registration did not complete");
    }
    // Lines typed (or piped) before registration go out once the server's roster says who is
    // in the room, so they reach everyone already there.
    await until(() => client.synced || interrupted, 1_000);
    sendable = true;
    for (const line of pending.splice(0)) sendLine(line);
    const how = await Promise.race([stdinDone, signalled.promise]);
    if (how !== "signal") {
      // Deliver what is queued before leaving (Ctrl-C stops waiting).
      const delivered = await until(
        () => client.outstanding === 0 || interrupted,
        o.drainTimeout,
      ) && client.outstanding === 0;
      if (!delivered) {
        log.warning(
          `${client.outstanding} messages were not acknowledged within ${o.drainTimeout / 1000} s`,
        );
        code = 1;
      }
    }
  } finally {
    for (const s of signals) Deno.removeSignalListener(s, onSignal);
    if (testHook) Deno.removeSignalListener("SIGUSR1", unblock);
    driver.step(() => client.leave());
    await driver.close();
    log.debug(`Stopped at ${Math.round(monotonicNow())} ms; drops ${JSON.stringify(client.drops)}`);
  }
  return code;
}

/** Splits a text stream into lines (without the newline); a final partial line is emitted. */
class LineSplitter extends TransformStream<string, string> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop() ?? "";
        for (const p of parts) controller.enqueue(p);
      },
      flush(controller) {
        if (rest !== "") controller.enqueue(rest);
      },
    });
  }
}
