/**
 * Every path by which a string from the network reaches a terminal or a log (issue 17 #4), fed
 * every class of terminal escape: ESC and CSI sequences, OSC (window title, and OSC 52 which sets
 * the clipboard), C1 controls, bidirectional overrides and isolates, invisible characters, and a
 * fake line. Peer names and message texts come from peers' handshakes and frames, notices and
 * warnings quote them, `/peers` lists them with the supernode relaying, REFUSED reasons come from
 * a server, and log lines carry them as properties. On every path, in text and in JSON, none of
 * those characters may come out raw (the one definition: `isUnsafeTextChar`).
 */
import assert from "node:assert/strict";
import { HumanView, isUnsafeTextChar, JsonView, type PeerView } from "../../lib/roles/view.ts";
import { jsonLogFormatter, logFormatter } from "../../lib/io/log.ts";
import { notice } from "../../lib/peer/notices.ts";
import type { ClientEvent } from "../../lib/peer/client_options.ts";
import type { PeerInfo } from "../../lib/peer/remote_context.ts";
import type { LogRecord } from "@logtape/logtape";

/** One hostile string per class of escape. */
const CLASSES: Record<string, string> = {
  "ESC/CSI": "a\x1b[2J\x1b[Hb\x1b[31mred",
  "OSC title": "x\x1b]0;pwned\x07y",
  "OSC 52 clipboard": "x\x1b]52;c;cm0gLXJmIH4=\x1b\\y",
  "C1": "x\u009b31mC1\u0085NEL\u009d0;t\u009c",
  "bidi": "a\u202eexe.txt\u202c \u2066iso\u2069 \u200fRLM \u061cALM",
  "invisible": "in\u200bvi\ufeffsi\u2060ble\u00ad\u180e\u{E0041}\u3164\uffa0\u115f",
  "fake line": "ok\n* carol left\r\u2028\u2029",
};

/** The code points of `s` that must never reach a terminal raw. */
function unsafe(s: string): string[] {
  return [...s].filter((ch) => isUnsafeTextChar(ch.codePointAt(0)!)).map((ch) =>
    `U+${ch.codePointAt(0)!.toString(16).padStart(4, "0")}`
  );
}

/** Every view output a hostile `x` reaches (as a name, a text, a reason, a relay's name). */
function viewPaths(x: string): [string, (v: PeerView) => string[]][] {
  const row: PeerInfo = {
    name: x,
    fingerprint: "abcd-efgh-ijkl-mnop",
    path: "relay",
    addr: null,
    rtt: null,
    relayedBy: x,
    outstanding: 0,
  };
  const events: [string, ClientEvent][] = [
    ["ready (our name, as the server renamed us)", {
      type: "ready",
      name: x,
      public: { hostname: "192.0.2.1", port: 1 },
      fingerprint: "abcd-efgh-ijkl-mnop",
    }],
    ["message sender", { type: "message", from: x, text: "hi" }],
    ["message text", { type: "message", from: "bob", text: x }],
    ["/me action", { type: "message", from: x, text: `/me ${x}` }],
    ["peer event", {
      type: "peer",
      name: x,
      fingerprint: "abcd-efgh-ijkl-mnop",
      path: "relay",
      addr: null,
      rtt: null,
      relayedBy: x,
    }],
    ["left", { type: "left", name: x, reason: "bye" }],
    ["warning", { type: "warning", kind: "auth-failed", name: x, message: `Could not ${x}` }],
    ["notice: renamed", notice({ kind: "renamed", wanted: x, name: `${x}-2` })],
    ["notice: refused (a server's reason)", notice({ kind: "refused", reason: x })],
    [
      "notice: not responding",
      notice({ kind: "not-responding", name: x, seconds: 60, waiting: 1 }),
    ],
    ["notice: missed", notice({ kind: "missed", name: x, frames: 2 })],
    ["notice: queue full", notice({ kind: "queue-full", names: [x, x] })],
  ];
  return [
    ...events.map(([what, e]): [string, (v: PeerView) => string[]] => [what, (v) => v.event(e)]),
    ["/peers", (v) => v.peers([row])],
    ["a notice line", (v) => v.notice(`No peer called "${x}"`)],
  ];
}

for (const [cls, x] of Object.entries(CLASSES)) {
  Deno.test(`escape paths: ${cls} is escaped on every view path, text and JSON`, () => {
    for (const [name, view] of [["text", new HumanView()], ["json", new JsonView()]] as const) {
      for (const [what, out] of viewPaths(x)) {
        const lines = out(view);
        assert.ok(lines.length > 0, `${what} (${name}) shows something`);
        for (const l of lines) {
          assert.ok(!l.includes("\n") && !l.includes("\r"), `${what} (${name}): one line: ${l}`);
          assert.deepEqual(unsafe(l), [], `${what} (${name}): ${JSON.stringify(l)}`);
        }
        if (name === "json") {
          // JSON keeps the string exactly: a reader gets back what was received.
          for (const l of lines) assert.ok(JSON.stringify(JSON.parse(l)).length > 0);
        }
      }
    }
  });

  Deno.test(`escape paths: ${cls} in a log line's properties is escaped, text and JSON`, () => {
    const record: LogRecord = {
      category: ["p2p", "join"],
      level: "warning",
      message: ["Peer ", x, " refused: ", x],
      rawMessage: "Peer {name} refused: {reason}",
      timestamp: 0,
      properties: { name: x, reason: x },
    };
    for (
      const [name, format] of [["text", logFormatter({ timestamp: false })], [
        "json",
        jsonLogFormatter,
      ]] as const
    ) {
      const line = format(record).replace(/\n$/, "");
      assert.ok(!line.includes("\n") && !line.includes("\r"), `${name}: one line`);
      assert.deepEqual(unsafe(line), [], `${name}: ${JSON.stringify(line)}`);
    }
    // The JSON line gives back the exact strings.
    const parsed = JSON.parse(jsonLogFormatter(record));
    assert.equal(parsed.properties.name, x);
  });
}
