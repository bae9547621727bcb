/**
 * What a chat peer shows and what it reads, without any I/O: {@link parseInput} turns a typed
 * line into a command, and a {@link PeerView} turns client events, notices, the `/peers`
 * listing and the help into output lines, either for people ({@link HumanView}) or as one JSON
 * object per line ({@link JsonView}). `peer.ts` prints the lines; tests check them directly.
 *
 * @module
 */
import type { ClientEvent, PeerInfo } from "../peer/client.ts";
import {
  confusableWith,
  displayName,
  escapeCodePoint,
  escapeUnsafeInJson,
  isUnsafeTextChar as unsafeChar,
} from "../core/names.ts";
import { type Endpoint, formatEndpoint } from "../wire/address.ts";
import { fileJson, fileLine } from "./file_view.ts";

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
  /** `/trust NAME`: accept the identity `NAME` has now (after a changed-identity warning). */
  | { kind: "trust"; name: string }
  /** `/msg NAME text`: send `text` to `NAME` alone. */
  | { kind: "private"; name: string; text: string }
  /** `/nick NAME`: be called `NAME` from now on. */
  | { kind: "nick"; name: string }
  /** `/send PATH` or `/send NAME PATH`: offer a file (the role tells a name from a path). */
  | { kind: "send-file"; args: string }
  /** `/accept [ID]`, `/reject [ID]`: answer an offer (the only one waiting when no ID). */
  | { kind: "accept" | "reject"; id: string }
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
  // `/me waves` goes to the room as the line "/me waves"; views show it as an action.
  if (line.startsWith("/me ") && line.slice(4).trim() !== "") return { kind: "send", text: line };
  if (line.startsWith("/trust ") && line.slice(7).trim() !== "") {
    return { kind: "trust", name: line.slice(7).trim() };
  }
  const msg = /^\/msg +(\S+) +(.*\S.*)$/s.exec(line);
  if (msg) return { kind: "private", name: msg[1]!, text: msg[2]! };
  const nick = /^\/nick +(\S.*)$/.exec(line);
  if (nick) return { kind: "nick", name: nick[1]!.trim() };
  if (line.startsWith("/send ") && line.slice(6).trim() !== "") {
    return { kind: "send-file", args: line.slice(6).trim() };
  }
  for (const kind of ["accept", "reject"] as const) {
    if (line === `/${kind}` || line.startsWith(`/${kind} `)) {
      return { kind, id: line.slice(kind.length + 1).trim() };
    }
  }
  if (line.startsWith("//")) return { kind: "send", text: line.slice(1) };
  if (line.startsWith("/")) return { kind: "unknown", command: line.split(" ")[0]! };
  return { kind: "send", text: line };
}

/** The commands, one per line, as `/help` shows them. */
export const HELP_LINES: readonly string[] = [
  "/peers   list peers with path and RTT",
  '/me text  an action: shown as "* yourname text"',
  "/msg NAME text  send text to NAME alone (never shown to later joiners)",
  "/nick NAME  be called NAME from now on (your identity stays)",
  "/trust NAME  accept NAME's new identity (check its fingerprint with them first)",
  "/send [NAME] PATH  offer a file to the room (or to NAME)",
  "/accept [ID], /reject [ID]  answer a file offer (the one waiting, or ID)",
  "/quit    deliver what is queued, leave and exit",
  "//text   send a line that starts with /",
];

/**
 * True for the characters {@link printable} escapes (see `isUnsafeTextChar` in
 * `lib/core/names.ts`, where it is defined once for every output).
 */
export const isUnsafeTextChar: (c: number) => boolean = unsafeChar;

/**
 * Makes received text safe to print: every character {@link isUnsafeTextChar} accepts is shown
 * as a visible escape (`\xNN` below U+0100, else `\u{XXXX}`), so text can neither fake lines,
 * move the cursor, nor reorder itself or what follows on the line. Everything else is kept as
 * sent: accents, combining marks, CJK, right-to-left letters, emoji. The zero-width joiner
 * U+200D and non-joiner U+200C are kept too, wherever they are: they build emoji sequences
 * (👨‍👩‍👧, 🏳️‍🌈, 👩🏽‍💻) and are required by Indic scripts and Persian, and they can neither move
 * the cursor nor reorder text. (Names are stricter: see {@link displayName}.)
 */
export function printable(s: string): string {
  let out = "";
  // Inside a flag's tag sequence (U+1F3F4, tag letters, U+E007F): those tags are the flag.
  let flag = false;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    const tag = c >= 0xe0020 && c <= 0xe007f;
    flag = c === 0x1f3f4 || (flag && tag && c !== 0xe007f) || (flag && c === 0xe007f);
    out += isUnsafeTextChar(c) && !(tag && flag) ? escapeCodePoint(c) : ch;
    if (c === 0xe007f) flag = false;
  }
  return out;
}

/**
 * Describes a path: `direct IP:PORT, RTT ms`, `relayed via server`, `relayed via NAME` (a
 * supernode of the room) or `connecting`.
 */
export function pathText(
  path: string,
  addr: Endpoint | null,
  rtt: number | null,
  relayedBy: string | null = null,
  transport?: "tcp",
): string {
  if (path === "direct" && addr) {
    // No RTT yet when data arrived before the first probe answer: say nothing rather than "?".
    return `direct ${formatEndpoint(addr)}${rtt === null ? "" : `, ${rtt} ms`}`;
  }
  if (path === "relay") {
    if (relayedBy !== null) return `relayed via ${displayName(relayedBy)}`;
    return transport ? "relayed via server over TCP" : "relayed via server";
  }
  return "connecting";
}

/**
 * The columns `s` takes in a terminal: combining marks none, East Asian wide and fullwidth
 * characters (CJK, Hangul, fullwidth forms, most emoji) two, everything else one. Lines up
 * `/peers` whatever script names are written in.
 */
export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) {
    if (/^[\p{M}\u200d]$/u.test(ch)) continue;
    const c = ch.codePointAt(0)!;
    const wide = (c >= 0x1100 && c <= 0x115f) || (c >= 0x2e80 && c <= 0xa4cf && c !== 0x303f) ||
      (c >= 0xac00 && c <= 0xd7a3) || (c >= 0xf900 && c <= 0xfaff) ||
      (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff60) ||
      (c >= 0xffe0 && c <= 0xffe6) || (c >= 0x1f300 && c <= 0x1f64f) ||
      (c >= 0x1f900 && c <= 0x1f9ff) || (c >= 0x20000 && c <= 0x3fffd);
    w += wide ? 2 : 1;
  }
  return w;
}

/** Turns what a peer has to show into output lines (without newlines at the end). */
export interface PeerView {
  /** Lines for a client event; none for `fatal` (the caller reports it as an error). */
  event(e: ClientEvent): string[];
  /** Lines for the start: bound to `local`, registering with `server`. */
  registering(server: Endpoint, local: Endpoint): string[];
  /**
   * Lines for a notice to the user (unknown command, empty room, ...). Notices may quote names
   * and typed text; a human view escapes the whole message as strictly as a name. `kind` names
   * what it is about for `--json` readers (`alone`, `waiting`, `failover`); none for answers to
   * what was typed.
   */
  notice(message: string, kind?: string): string[];
  /** Lines answering `/peers`. */
  peers(list: readonly PeerInfo[]): string[];
  /** Lines answering `/help`. */
  help(): string[];
}

/** Options of {@link HumanView}. */
export interface HumanViewOptions {
  /**
   * Style status lines dim, sender names bold in a colour of their identity (stable per
   * fingerprint) and warnings bold red with ANSI escapes.
   */
  color?: boolean;
  /** Ring the terminal bell on a message that mentions our name. */
  bell?: boolean;
}

/** Colours names are drawn in (never red: that is for warnings). */
const NAME_COLORS = [32, 33, 34, 35, 36, 92, 93, 94, 95, 96];

/** The colour of an identity: the same fingerprint always gets the same one. */
export function nameColor(fingerprint: string): number {
  let h = 0;
  for (const ch of fingerprint) h = (h * 31 + ch.codePointAt(0)!) >>> 0;
  return NAME_COLORS[h % NAME_COLORS.length]!;
}

/** How long ago a history line was written, for people: `just now`, `5 min ago`, `2 h ago`. */
export function agoText(seconds: number): string {
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  return `${Math.floor(seconds / 3600)} h ago`;
}

/** True for a `/me` line: an action, shown as `* name text`. */
export function isAction(text: string): boolean {
  return text.startsWith("/me ");
}

/** True when `text` mentions `name` as a word (any case). */
export function mentions(text: string, name: string): boolean {
  const t = text.toLowerCase(), n = name.toLowerCase();
  if (n === "") return false;
  for (let i = t.indexOf(n); i >= 0; i = t.indexOf(n, i + 1)) {
    const before = t[i - 1], after = t[i + n.length];
    const word = (c: string | undefined) => c !== undefined && /[\p{L}\p{N}_]/u.test(c);
    if (!word(before) && !word(after)) return true;
  }
  return false;
}

/**
 * The view for people: messages as `[name] text`, status lines starting with `*`, warnings
 * (a changed or shared identity, failed authentication) starting with `!`. Every name shown
 * goes through {@link displayName}, and so do whole notices and warning messages, which quote
 * names inside their text; message text goes through {@link printable}. Our fingerprint is
 * shown on joining, a peer's when it first appears and in `/peers`. When a peer appears whose
 * name differs from ours or a present peer's only by case or look-alike characters, a
 * `Careful` line follows.
 */
export class HumanView implements PeerView {
  #color: boolean;
  #bell: boolean;
  /** Peers announced so far, to tell "is here" from "is now". */
  #seen = new Set<string>();
  /** The fingerprint of each name seen (ours too), for its colour. */
  #fingerprints = new Map<string, string>();
  /** Our own name, once registered. */
  #self: string | null = null;

  /** Makes a view; without `color` the lines are plain text. */
  constructor(o: HumanViewOptions = {}) {
    this.#color = o.color ?? false;
    this.#bell = o.bell ?? false;
  }

  /** Lines for a client event; none for `fatal`. */
  event(e: ClientEvent): string[] {
    switch (e.type) {
      case "ready":
        this.#self = e.name;
        this.#fingerprints.set(e.name, e.fingerprint);
        return [
          this.#dim(
            `* Joined as "${displayName(e.name)}" (fingerprint ${
              printable(e.fingerprint)
            }); the server sees us at ${formatEndpoint(e.public)}`,
          ),
        ];
      case "peer": {
        this.#fingerprints.set(e.name, e.fingerprint);
        const fresh = !this.#seen.has(e.name);
        const lines = [
          this.#dim(
            `* ${displayName(e.name)} ${
              fresh ? `is here (fingerprint ${printable(e.fingerprint)}):` : "is now"
            } ${pathText(e.path, e.addr, e.rtt, e.relayedBy ?? null, e.transport)}`,
          ),
        ];
        if (fresh) {
          const others = this.#self === null ? [...this.#seen] : [this.#self, ...this.#seen];
          const like = confusableWith(e.name, others);
          if (like !== null) {
            lines.push(this.#dim(
              `* Careful: "${displayName(e.name)}" looks like "${
                displayName(like)
              }" but is a different name (look-alike characters or case)`,
            ));
          }
          this.#seen.add(e.name);
        }
        return lines;
      }
      case "message": {
        const fp = this.#fingerprints.get(e.from);
        const action = isAction(e.text);
        const who = e.to === undefined
          ? displayName(e.from)
          : `${displayName(e.from)} → ${displayName(e.to)}`;
        const name = action ? `* ${who}` : `[${who}]`;
        const shown = `${fp === undefined ? this.#bold(name) : this.#named(name, fp)} ${
          e.private ? this.#dim("(private) ") : ""
        }${printable(action ? e.text.slice(4) : e.text)}`;
        if (e.history) return [`${this.#dim(`(${agoText(e.ago ?? 0)})`)} ${shown}`];
        const ring = this.#bell && this.#self !== null && e.from !== this.#self &&
          mentions(e.text, this.#self);
        return [ring ? `${shown}\x07` : shown];
      }
      case "left":
        this.#seen.delete(e.name);
        return [
          this.#dim(`* ${displayName(e.name)} left${e.reason === "expired" ? " (timed out)" : ""}`),
        ];
      case "server-lost":
        return [this.#dim("* Lost contact with the server; peers stay connected, retrying")];
      case "server-back":
        return [this.#dim("* Server is back")];
      case "warning":
        return [this.#alert(`! ${displayName(e.message)}`)];
      case "notice":
        return this.notice(e.message);
      case "file":
        return [this.#dim(fileLine(e, this.#fingerprints.get(e.from ?? ""), printable))];
      case "fatal":
        return [];
    }
  }

  /** No lines: in human mode a log line on stderr says it. */
  registering(_server: Endpoint, _local: Endpoint): string[] {
    return [];
  }

  /** Lines for a notice, escaped whole as strictly as a name (it may quote names). */
  notice(message: string): string[] {
    return [this.#dim(`* ${displayName(message)}`)];
  }

  /**
   * Lines answering `/peers`: name, fingerprint, path (`direct`, `relayed`, `connecting`), RTT
   * (the direct path's, or messages' round trip through the relay) and via (the peer's endpoint,
   * or who relays) in aligned columns.
   */
  peers(list: readonly PeerInfo[]): string[] {
    if (list.length === 0) return ["* Nobody else is in the room"];
    const rows = list.map((p) => [
      displayName(p.name),
      printable(p.fingerprint),
      p.path === "direct" ? "direct" : p.path === "relay" ? "relayed" : "connecting",
      p.rtt === null ? "-" : `${p.rtt} ms`,
      p.path === "direct" && p.addr
        ? formatEndpoint(p.addr)
        : p.path === "relay"
        ? (p.relayedBy ? displayName(p.relayedBy) : p.transport ? "server over TCP" : "server")
        : "",
    ]);
    const head = ["name", "fingerprint", "path", "rtt", "via"];
    const widths = head.map((h, c) =>
      Math.max(displayWidth(h), ...rows.map((r) => displayWidth(r[c]!)))
    );
    const pad = (s: string, w: number) => s + " ".repeat(Math.max(0, w - displayWidth(s)));
    const row = (cells: string[]) =>
      `    ${cells.map((c, i) => pad(c, widths[i]!)).join("  ")}`.trimEnd();
    return [
      `* ${list.length} ${list.length === 1 ? "peer" : "peers"} in the room:`,
      row(head),
      ...rows.map(row),
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

  /** Bold, in the colour of the identity `fp`. */
  #named(s: string, fp: string): string {
    return this.#color ? `\x1b[1;${nameColor(fp)}m${s}\x1b[39;22m` : s;
  }

  /** Bold red, for warnings. */
  #alert(s: string): string {
    return this.#color ? `\x1b[1;31m${s}\x1b[39;22m` : s;
  }
}

/**
 * The `--json` view: one JSON object per line with an `event` field (`registering`, `ready`,
 * `peer`, `message`, `left`, `server`, `warning`, `notice`, `peers`); the README documents
 * the fields. `ready`, `peer` and each row of `peers` carry the identity's `fingerprint`.
 * Strings are kept exactly (JSON.parse gives back what was received), but every character
 * {@link printable} would escape appears as a `\uXXXX` escape, never raw: in particular
 * U+2028, U+2029 and U+0085, which line-splitting readers treat as line ends.
 */
export class JsonView implements PeerView {
  /** Lines for a client event; none for `fatal`. */
  event(e: ClientEvent): string[] {
    switch (e.type) {
      case "ready":
        return [line({
          event: "ready",
          name: e.name,
          fingerprint: e.fingerprint,
          public: formatEndpoint(e.public),
          ...(e.id !== undefined ? { id: e.id } : {}),
        })];
      case "peer":
        return [line({ event: "peer", ...peerFields(e) })];
      case "message": {
        const o: Record<string, unknown> = { event: "message", from: e.from, text: e.text };
        if (e.to !== undefined) o.to = e.to;
        if (isAction(e.text)) o.action = true;
        if (e.private) o.private = true;
        if (e.history) (o.history = true, o.ago = e.ago ?? 0);
        return [line(o)];
      }
      case "left":
        return [line({ event: "left", name: e.name, reason: e.reason })];
      case "server-lost":
        return [line({ event: "server", state: "lost" })];
      case "server-back":
        return [line({ event: "server", state: "back", public: formatEndpoint(e.public) })];
      case "warning":
        return [line({ event: "warning", kind: e.kind, name: e.name, message: e.message })];
      case "notice":
        return [line({ event: "notice", kind: e.kind, message: e.message })];
      case "file":
        return [line(fileJson(e))];
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

  /** Lines for a notice (with its `kind` when it has one). */
  notice(message: string, kind?: string): string[] {
    return [
      line(kind === undefined ? { event: "notice", message } : { event: "notice", kind, message }),
    ];
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
  /** Human mode only: ring the bell on a message that mentions us. */
  bell?: boolean;
}

/** The view for a mode: {@link JsonView} with `json`, else {@link HumanView}. */
export function peerView(o: PeerViewOptions): PeerView {
  return o.json
    ? new JsonView()
    : new HumanView({ color: o.color ?? false, bell: o.bell ?? false });
}

/** One JSON line for `value`, with no raw line separators, terminal controls or invisibles. */
export function jsonLine(value: unknown): string {
  return escapeUnsafeInJson(JSON.stringify(value));
}

function line(value: Record<string, unknown>): string {
  return jsonLine(value);
}

function peerFields(p: {
  name: string;
  fingerprint: string;
  path: string;
  addr: Endpoint | null;
  rtt: number | null;
  relayedBy?: string | null;
  transport?: "tcp";
}) {
  return {
    name: p.name,
    fingerprint: p.fingerprint,
    path: p.path,
    addr: p.addr ? formatEndpoint(p.addr) : null,
    rtt_ms: p.rtt,
    // A relayed path says whose relay: "server" or the supernode's name.
    ...(p.path === "relay" ? { via: p.relayedBy ?? "server" } : {}),
    // The server's relay reached over TCP or TLS (UDP does not get through).
    ...(p.transport ? { transport: p.transport } : {}),
  };
}
