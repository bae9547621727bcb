/**
 * What a chat peer shows and what it reads, without any I/O: {@link parseInput} turns a typed
 * line into a command, and a {@link PeerView} turns client events, notices, the `/peers`
 * listing and the help into output lines, either for people ({@link HumanView}) or as one JSON
 * object per line ({@link JsonView}). `peer.ts` prints the lines; tests check them directly.
 *
 * @module
 */
import type { ClientEvent, PeerInfo } from "./client.ts";
import { type Endpoint, formatEndpoint, isControlChar } from "./wire.ts";

/** A line typed by the user, parsed. */
export type InputCommand =
  /** Send `text` to the room (`//text` arrives here as `/text`). */
  | { kind: "send"; text: string }
  /** `/quit`: deliver what is queued, leave, exit. */
  | { kind: "quit" }
  /** `/peers`: list the peers. */
  | { kind: "peers" }
  /** `/help`: list the commands. */
  | { kind: "help" }
  /** A line starting with `/` that is no command; `command` is its first word. */
  | { kind: "unknown"; command: string }
  /** An empty line: nothing to do. */
  | { kind: "empty" };

/**
 * Parses one input line (without its `\n`; a trailing `\r` is dropped). Commands match the
 * whole line; `//text` sends `/text`.
 */
export function parseInput(raw: string): InputCommand {
  const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
  if (line === "") return { kind: "empty" };
  if (line === "/quit") return { kind: "quit" };
  if (line === "/peers") return { kind: "peers" };
  if (line === "/help") return { kind: "help" };
  if (line.startsWith("//")) return { kind: "send", text: line.slice(1) };
  if (line.startsWith("/")) return { kind: "unknown", command: line.split(" ")[0]! };
  return { kind: "send", text: line };
}

/** The commands, one per line, as `/help` shows them. */
export const HELP_LINES: readonly string[] = [
  "/peers   list peers with path and RTT",
  "/quit    deliver what is queued, leave and exit",
  "//text   send a line that starts with /",
];

/** Shows control characters as escapes so received text cannot fake lines or move the cursor. */
export function printable(s: string): string {
  let out = "";
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    out += isControlChar(c) ? `\\x${c.toString(16).padStart(2, "0")}` : ch;
  }
  return out;
}

/** Describes a path: `direct IP:PORT, RTT ms`, `relayed via server` or `connecting`. */
export function pathText(path: string, addr: Endpoint | null, rtt: number | null): string {
  if (path === "direct" && addr) return `direct ${formatEndpoint(addr)}, ${rtt ?? "?"} ms`;
  if (path === "relay") return "relayed via server";
  return "connecting";
}

/** Splits `HOST:PORT` (IPv6 as `[addr]:port`); returns null when malformed. */
export function splitHostPort(s: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}

/** Turns what a peer has to show into output lines (without newlines at the end). */
export interface PeerView {
  /** Lines for a client event; none for `fatal` (the caller reports it as an error). */
  event(e: ClientEvent): string[];
  /** Lines for the start: bound to `local`, registering with `server`. */
  registering(server: Endpoint, local: Endpoint): string[];
  /** Lines for a notice to the user (unknown command, empty room, ...). */
  notice(message: string): string[];
  /** Lines answering `/peers`. */
  peers(list: readonly PeerInfo[]): string[];
  /** Lines answering `/help`. */
  help(): string[];
}

/** Options of {@link HumanView}. */
export interface HumanViewOptions {
  /** Style status lines dim and sender names bold with ANSI escapes. */
  color?: boolean;
}

/**
 * The view for people: messages as `[name] text`, status lines starting with `*`. Everything
 * received (names, text, notices) has its control characters escaped by {@link printable}.
 */
export class HumanView implements PeerView {
  #color: boolean;
  /** Peers announced so far, to tell "is here" from "is now". */
  #seen = new Set<string>();

  /** Makes a view; without `color` the lines are plain text. */
  constructor(o: HumanViewOptions = {}) {
    this.#color = o.color ?? false;
  }

  /** Lines for a client event; none for `fatal`. */
  event(e: ClientEvent): string[] {
    switch (e.type) {
      case "ready":
        return [
          this.#dim(
            `* Joined as "${printable(e.name)}"; the server sees us at ${formatEndpoint(e.public)}`,
          ),
        ];
      case "peer": {
        const verb = this.#seen.has(e.name) ? "is now" : "is here:";
        this.#seen.add(e.name);
        return [this.#dim(`* ${printable(e.name)} ${verb} ${pathText(e.path, e.addr, e.rtt)}`)];
      }
      case "message":
        return [`${this.#bold(`[${printable(e.from)}]`)} ${printable(e.text)}`];
      case "left":
        this.#seen.delete(e.name);
        return [
          this.#dim(`* ${printable(e.name)} left${e.reason === "expired" ? " (timed out)" : ""}`),
        ];
      case "server-lost":
        return [this.#dim("* Lost contact with the server; peers stay connected, retrying")];
      case "server-back":
        return [this.#dim("* Server is back")];
      case "notice":
        return this.notice(e.message);
      case "fatal":
        return [];
    }
  }

  /** No lines: in human mode a log line on stderr says it. */
  registering(_server: Endpoint, _local: Endpoint): string[] {
    return [];
  }

  /** Lines for a notice. */
  notice(message: string): string[] {
    return [this.#dim(`* ${printable(message)}`)];
  }

  /** Lines answering `/peers`. */
  peers(list: readonly PeerInfo[]): string[] {
    if (list.length === 0) return ["* Nobody else is in the room"];
    return [
      `* ${list.length} ${list.length === 1 ? "peer" : "peers"} in the room:`,
      ...list.map((p) => `    ${printable(p.name)}  ${pathText(p.path, p.addr, p.rtt)}`),
    ];
  }

  /** Lines answering `/help`. */
  help(): string[] {
    return [...HELP_LINES];
  }

  #dim(s: string): string {
    return this.#color ? `\x1b[2m${s}\x1b[22m` : s;
  }

  #bold(s: string): string {
    return this.#color ? `\x1b[1m${s}\x1b[22m` : s;
  }
}

/**
 * The `--json` view: one JSON object per line with an `event` field (`registering`, `ready`,
 * `peer`, `message`, `left`, `server`, `notice`, `peers`); the README documents the fields.
 */
export class JsonView implements PeerView {
  /** Lines for a client event; none for `fatal`. */
  event(e: ClientEvent): string[] {
    switch (e.type) {
      case "ready":
        return [line({ event: "ready", name: e.name, public: formatEndpoint(e.public) })];
      case "peer":
        return [line({ event: "peer", ...peerFields(e) })];
      case "message":
        return [line({ event: "message", from: e.from, text: e.text })];
      case "left":
        return [line({ event: "left", name: e.name, reason: e.reason })];
      case "server-lost":
        return [line({ event: "server", state: "lost" })];
      case "server-back":
        return [line({ event: "server", state: "back", public: formatEndpoint(e.public) })];
      case "notice":
        return this.notice(e.message);
      case "fatal":
        return [];
    }
  }

  /** The `registering` event with the server and local addresses. */
  registering(server: Endpoint, local: Endpoint): string[] {
    return [line({
      event: "registering",
      server: formatEndpoint(server),
      local: formatEndpoint(local),
    })];
  }

  /** Lines for a notice. */
  notice(message: string): string[] {
    return [line({ event: "notice", message })];
  }

  /** Lines answering `/peers`. */
  peers(list: readonly PeerInfo[]): string[] {
    return [line({ event: "peers", peers: list.map(peerFields) })];
  }

  /** One notice listing the commands, separated by `; `. */
  help(): string[] {
    return this.notice(HELP_LINES.join("; "));
  }
}

/** Options of {@link peerView}. */
export interface PeerViewOptions {
  /** JSON lines instead of text for people. */
  json: boolean;
  /** Human mode only: ANSI styling. */
  color?: boolean;
}

/** The view for a mode: {@link JsonView} with `json`, else {@link HumanView}. */
export function peerView(o: PeerViewOptions): PeerView {
  return o.json ? new JsonView() : new HumanView({ color: o.color ?? false });
}

function line(value: Record<string, unknown>): string {
  return JSON.stringify(value);
}

function peerFields(p: {
  name: string;
  path: string;
  addr: Endpoint | null;
  rtt: number | null;
}) {
  return {
    name: p.name,
    path: p.path,
    addr: p.addr ? formatEndpoint(p.addr) : null,
    rtt_ms: p.rtt,
  };
}
