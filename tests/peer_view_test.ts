/**
 * Tests of what a chat peer shows and reads (`lib/peer_view.ts`): input commands, escaping,
 * human lines, JSON lines and the `/peers` listing. No processes, no sockets.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClientEvent, PeerInfo } from "../lib/client.ts";
import {
  HELP_LINES,
  HumanView,
  JsonView,
  parseInput,
  pathText,
  peerView,
  printable,
  splitHostPort,
} from "../lib/peer_view.ts";

const PUB = { hostname: "198.51.100.23", port: 40112 };
const BOB = { hostname: "203.0.113.9", port: 51820 };

function peerInfo(p: Partial<PeerInfo> & { name: string }): PeerInfo {
  return { path: "relay", addr: null, rtt: null, outstanding: 0, ...p };
}

// ---------------------------------------------------------------------------------------------
// parseInput

Deno.test("parseInput: plain text is sent as is", () => {
  assert.deepEqual(parseInput("hello there"), { kind: "send", text: "hello there" });
  assert.deepEqual(parseInput(" /not a command"), { kind: "send", text: " /not a command" });
});

Deno.test("parseInput: each command", () => {
  assert.deepEqual(parseInput("/quit"), { kind: "quit" });
  assert.deepEqual(parseInput("/peers"), { kind: "peers" });
  assert.deepEqual(parseInput("/help"), { kind: "help" });
});

Deno.test("parseInput: a trailing \\r is dropped, for text and commands", () => {
  assert.deepEqual(parseInput("hi\r"), { kind: "send", text: "hi" });
  assert.deepEqual(parseInput("/quit\r"), { kind: "quit" });
  assert.deepEqual(parseInput("\r"), { kind: "empty" });
  // Only one, and only at the end.
  assert.deepEqual(parseInput("a\rb\r\r"), { kind: "send", text: "a\rb\r" });
});

Deno.test("parseInput: //text sends a line starting with /", () => {
  assert.deepEqual(parseInput("//quit"), { kind: "send", text: "/quit" });
  assert.deepEqual(parseInput("//"), { kind: "send", text: "/" });
  assert.deepEqual(parseInput("///x"), { kind: "send", text: "//x" });
});

Deno.test("parseInput: an unknown /command names its first word", () => {
  assert.deepEqual(parseInput("/frob a b"), { kind: "unknown", command: "/frob" });
  assert.deepEqual(parseInput("/"), { kind: "unknown", command: "/" });
  // Commands match the whole line.
  assert.deepEqual(parseInput("/quit now"), { kind: "unknown", command: "/quit" });
});

Deno.test("parseInput: an empty line is nothing to do", () => {
  assert.deepEqual(parseInput(""), { kind: "empty" });
});

// ---------------------------------------------------------------------------------------------
// printable, pathText, splitHostPort

Deno.test("printable: C0, DEL and C1 controls become \\xNN escapes; the rest is kept", () => {
  assert.equal(printable("\x1b[2Jgotcha\rfake"), "\\x1b[2Jgotcha\\x0dfake");
  assert.equal(printable("a\nb\tc\x00"), "a\\x0ab\\x09c\\x00");
  assert.equal(printable("\x7f\x85\x9f"), "\\x7f\\x85\\x9f");
  assert.equal(printable("héllo 👋 \xa0"), "héllo 👋 \xa0");
  assert.equal(printable(""), "");
});

Deno.test("pathText: direct with address and RTT, relayed, connecting", () => {
  assert.equal(pathText("direct", BOB, 23.4), "direct 203.0.113.9:51820, 23.4 ms");
  assert.equal(pathText("direct", BOB, null), "direct 203.0.113.9:51820, ? ms");
  assert.equal(pathText("relay", null, null), "relayed via server");
  assert.equal(pathText("pending", null, null), "connecting");
});

Deno.test("splitHostPort: names, IPv4, [IPv6], and malformed values", () => {
  assert.deepEqual(splitHostPort("example.com:7777"), { host: "example.com", port: 7777 });
  assert.deepEqual(splitHostPort("127.0.0.1:1"), { host: "127.0.0.1", port: 1 });
  assert.deepEqual(splitHostPort("[::1]:65535"), { host: "::1", port: 65535 });
  for (const bad of ["nocolon", "h:0", "h:65536", "host:", ":7777", "::1:80", "h:1.5"]) {
    assert.equal(splitHostPort(bad), null, bad);
  }
});

// ---------------------------------------------------------------------------------------------
// Human view

Deno.test("human view: ready, first peer, path change, message, left", () => {
  const v = new HumanView();
  assert.deepEqual(v.event({ type: "ready", name: "alice", public: PUB }), [
    `* Joined as "alice"; the server sees us at 198.51.100.23:40112`,
  ]);
  const direct: ClientEvent = { type: "peer", name: "bob", path: "direct", addr: BOB, rtt: 23 };
  const relay: ClientEvent = { type: "peer", name: "bob", path: "relay", addr: null, rtt: null };
  assert.deepEqual(v.event(relay), ["* bob is here: relayed via server"]);
  assert.deepEqual(v.event(direct), ["* bob is now direct 203.0.113.9:51820, 23 ms"]);
  assert.deepEqual(v.event({ type: "message", from: "bob", text: "hi" }), ["[bob] hi"]);
  assert.deepEqual(v.event({ type: "left", name: "bob", reason: "bye" }), ["* bob left"]);
  assert.deepEqual(v.event({ type: "left", name: "bob", reason: "expired" }), [
    "* bob left (timed out)",
  ]);
  // After leaving, coming back is "is here" again.
  assert.deepEqual(v.event(direct), ["* bob is here: direct 203.0.113.9:51820, 23 ms"]);
});

Deno.test("human view: server state, notices, and nothing for fatal", () => {
  const v = new HumanView();
  assert.deepEqual(v.event({ type: "server-lost" }), [
    "* Lost contact with the server; peers stay connected, retrying",
  ]);
  assert.deepEqual(v.event({ type: "server-back", public: PUB }), ["* Server is back"]);
  assert.deepEqual(v.event({ type: "notice", message: "Renamed" }), ["* Renamed"]);
  assert.deepEqual(v.notice("Nobody else is in the room; not sent"), [
    "* Nobody else is in the room; not sent",
  ]);
  assert.deepEqual(v.event({ type: "fatal", message: "refused" }), []);
  assert.deepEqual(v.registering(PUB, BOB), []);
});

Deno.test("human view: control characters in names, text and notices are escaped", () => {
  const v = new HumanView();
  const evil = "ev\x1b[31mil\n* fake";
  assert.deepEqual(v.event({ type: "message", from: evil, text: "a\rb\x07" }), [
    "[ev\\x1b[31mil\\x0a* fake] a\\x0db\\x07",
  ]);
  assert.deepEqual(v.event({ type: "peer", name: evil, path: "relay", addr: null, rtt: null }), [
    "* ev\\x1b[31mil\\x0a* fake is here: relayed via server",
  ]);
  assert.deepEqual(v.event({ type: "left", name: evil, reason: "gone" }), [
    "* ev\\x1b[31mil\\x0a* fake left",
  ]);
  assert.deepEqual(v.event({ type: "ready", name: evil, public: PUB }), [
    `* Joined as "ev\\x1b[31mil\\x0a* fake"; the server sees us at 198.51.100.23:40112`,
  ]);
  assert.deepEqual(v.notice("Unknown command /\x1b[2J; try /help"), [
    "* Unknown command /\\x1b[2J; try /help",
  ]);
  assert.deepEqual(v.peers([peerInfo({ name: evil })]), [
    "* 1 peer in the room:",
    "    ev\\x1b[31mil\\x0a* fake  relayed via server",
  ]);
  for (const l of [...v.event({ type: "message", from: evil, text: evil }), ...v.help()]) {
    assert.equal(printable(l), l, "no control characters left");
  }
});

Deno.test("human view: /peers lists nobody, one peer, several peers", () => {
  const v = new HumanView();
  assert.deepEqual(v.peers([]), ["* Nobody else is in the room"]);
  assert.deepEqual(v.peers([peerInfo({ name: "bob", path: "direct", addr: BOB, rtt: 5 })]), [
    "* 1 peer in the room:",
    "    bob  direct 203.0.113.9:51820, 5 ms",
  ]);
  assert.deepEqual(
    v.peers([
      peerInfo({ name: "bob", path: "direct", addr: BOB, rtt: 5 }),
      peerInfo({ name: "cat" }),
      peerInfo({ name: "dan", path: "pending" }),
    ]),
    [
      "* 3 peers in the room:",
      "    bob  direct 203.0.113.9:51820, 5 ms",
      "    cat  relayed via server",
      "    dan  connecting",
    ],
  );
});

Deno.test("human view: /help lists every command", () => {
  const lines = new HumanView().help();
  assert.deepEqual(lines, [...HELP_LINES]);
  for (const cmd of ["/peers", "/quit", "//text"]) {
    assert.ok(lines.some((l) => l.startsWith(cmd)), cmd);
  }
});

Deno.test("human view: color dims status lines and bolds sender names", () => {
  const v = new HumanView({ color: true });
  assert.deepEqual(v.event({ type: "message", from: "bob", text: "hi" }), [
    "\x1b[1m[bob]\x1b[22m hi",
  ]);
  assert.deepEqual(v.notice("x"), ["\x1b[2m* x\x1b[22m"]);
});

// ---------------------------------------------------------------------------------------------
// JSON view

function parsed(lines: string[]): unknown[] {
  for (const l of lines) assert.doesNotMatch(l, /\n/);
  return lines.map((l) => JSON.parse(l));
}

Deno.test("json view: one object per event, as the README documents", () => {
  const v = new JsonView();
  const events: ClientEvent[] = [
    { type: "ready", name: "alice", public: PUB },
    { type: "peer", name: "bob", path: "direct", addr: BOB, rtt: 23.4 },
    { type: "peer", name: "bob", path: "relay", addr: null, rtt: null },
    { type: "message", from: "bob", text: "hi" },
    { type: "left", name: "bob", reason: "bye" },
    { type: "server-lost" },
    { type: "server-back", public: PUB },
    { type: "notice", message: "Renamed" },
  ];
  assert.deepEqual(parsed(events.flatMap((e) => v.event(e))), [
    { event: "ready", name: "alice", public: "198.51.100.23:40112" },
    { event: "peer", name: "bob", path: "direct", addr: "203.0.113.9:51820", rtt_ms: 23.4 },
    { event: "peer", name: "bob", path: "relay", addr: null, rtt_ms: null },
    { event: "message", from: "bob", text: "hi" },
    { event: "left", name: "bob", reason: "bye" },
    { event: "server", state: "lost" },
    { event: "server", state: "back", public: "198.51.100.23:40112" },
    { event: "notice", message: "Renamed" },
  ]);
  // The exact bytes of one line, field order included.
  assert.deepEqual(v.event({ type: "message", from: "bob", text: "hi" }), [
    `{"event":"message","from":"bob","text":"hi"}`,
  ]);
  assert.deepEqual(v.event({ type: "fatal", message: "refused" }), []);
});

Deno.test("json view: registering, notice, help", () => {
  const v = new JsonView();
  assert.deepEqual(parsed(v.registering(BOB, PUB)), [
    { event: "registering", server: "203.0.113.9:51820", local: "198.51.100.23:40112" },
  ]);
  assert.deepEqual(parsed(v.notice("Nobody else")), [{ event: "notice", message: "Nobody else" }]);
  assert.deepEqual(parsed(v.help()), [{ event: "notice", message: HELP_LINES.join("; ") }]);
});

Deno.test("json view: /peers is one peers event", () => {
  const v = new JsonView();
  assert.deepEqual(parsed(v.peers([])), [{ event: "peers", peers: [] }]);
  assert.deepEqual(
    parsed(v.peers([
      peerInfo({ name: "bob", path: "direct", addr: BOB, rtt: 5, outstanding: 3 }),
      peerInfo({ name: "cat", path: "pending" }),
    ])),
    [{
      event: "peers",
      peers: [
        { name: "bob", path: "direct", addr: "203.0.113.9:51820", rtt_ms: 5 },
        { name: "cat", path: "pending", addr: null, rtt_ms: null },
      ],
    }],
  );
});

Deno.test("json view: control characters survive as JSON escapes, one line each", () => {
  const v = new JsonView();
  const lines = v.event({ type: "message", from: "a\nb", text: "\x1b[2J\r\u2028" });
  assert.equal(lines.length, 1);
  assert.equal(printable(lines[0]!), lines[0], "no control characters in the line");
  assert.deepEqual(JSON.parse(lines[0]!), {
    event: "message",
    from: "a\nb",
    text: "\x1b[2J\r\u2028",
  });
});

Deno.test("peerView picks the view for the mode", () => {
  assert.ok(peerView({ json: true }) instanceof JsonView);
  assert.ok(peerView({ json: false }) instanceof HumanView);
  const colored = peerView({ json: false, color: true });
  assert.deepEqual(colored.notice("x"), ["\x1b[2m* x\x1b[22m"]);
});
