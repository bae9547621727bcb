/**
 * Tests of what a chat peer shows and reads (`lib/roles/view.ts`): input commands, escaping,
 * human lines, JSON lines and the `/peers` listing. No processes, no sockets.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClientEvent, PeerInfo } from "../../lib/peer/client.ts";
import {
  displayWidth,
  HELP_LINES,
  HumanView,
  JsonView,
  mentions,
  nameColor,
  parseInput,
  pathText,
  peerView,
  printable,
} from "../../lib/roles/view.ts";

const PUB = { hostname: "198.51.100.23", port: 40112 };
const BOB = { hostname: "203.0.113.9", port: 51820 };
/** Our fingerprint and a peer's. */
const FP_A = "abcd-efgh-ijkl-mnop";
const FP_B = "qrst-uvwx-yz23-4567";

function peerInfo(p: Partial<PeerInfo> & { name: string }): PeerInfo {
  return { fingerprint: FP_B, path: "relay", addr: null, rtt: null, outstanding: 0, ...p };
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
// printable, pathText

Deno.test("printable: C0, DEL and C1 controls become \\xNN escapes; the rest is kept", () => {
  assert.equal(printable("\x1b[2Jgotcha\rfake"), "\\x1b[2Jgotcha\\x0dfake");
  assert.equal(printable("a\nb\tc\x00"), "a\\x0ab\\x09c\\x00");
  assert.equal(printable("\x7f\x85\x9f"), "\\x7f\\x85\\x9f");
  assert.equal(printable("héllo 👋 \xa0"), "héllo 👋 \xa0");
  assert.equal(printable(""), "");
});

Deno.test("printable: bidi controls, LRM/RLM, U+2028/U+2029 and NEL are escaped", () => {
  assert.equal(printable("abc\u202Etxt.exe"), "abc\\u{202E}txt.exe");
  assert.equal(
    printable("\u202A\u202B\u202C\u202D\u202E"),
    "\\u{202A}\\u{202B}\\u{202C}\\u{202D}\\u{202E}",
  );
  assert.equal(printable("\u2066a\u2067b\u2068c\u2069"), "\\u{2066}a\\u{2067}b\\u{2068}c\\u{2069}");
  assert.equal(printable("\u200Ex\u200Fy\u061C"), "\\u{200E}x\\u{200F}y\\u{061C}");
  assert.equal(
    printable("one\u2028two\u2029three\x85four"),
    "one\\u{2028}two\\u{2029}three\\x85four",
  );
  assert.equal(printable("lone \ud800"), "lone \\u{D800}");
});

Deno.test("printable: emoji, CJK, RTL letters, combining marks and ZWJ sequences are kept", () => {
  for (
    const text of [
      "家族 👨\u200D👩\u200D👧 and 🏳\uFE0F\u200D🌈 and 👩🏽\u200D💻",
      "こんにちは世界 你好 안녕하세요",
      "שלום עליכם مرحبا",
      "e\u0301 n\u0303 क्\u200Dष می\u200Cخواهم",
      "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} flag",
      "1️⃣ ✔︎ tab\u00a0nbsp",
    ]
  ) {
    assert.equal(printable(text), text);
  }
});

Deno.test("pathText: direct with address and RTT, relayed, connecting", () => {
  assert.equal(pathText("direct", BOB, 23.4), "direct 203.0.113.9:51820, 23.4 ms");
  assert.equal(pathText("direct", BOB, null), "direct 203.0.113.9:51820");
  assert.equal(pathText("relay", null, null), "relayed via server");
  assert.equal(pathText("pending", null, null), "connecting");
});

// ---------------------------------------------------------------------------------------------
// Human view

Deno.test("human view: ready, first peer, path change, message, left", () => {
  const v = new HumanView();
  assert.deepEqual(v.event({ type: "ready", name: "alice", public: PUB, fingerprint: FP_A }), [
    `* Joined as "alice" (fingerprint abcd-efgh-ijkl-mnop); ` +
    "the server sees us at 198.51.100.23:40112",
  ]);
  const direct: ClientEvent = {
    type: "peer",
    name: "bob",
    fingerprint: FP_B,
    path: "direct",
    addr: BOB,
    rtt: 23,
  };
  const relay: ClientEvent = {
    type: "peer",
    name: "bob",
    fingerprint: FP_B,
    path: "relay",
    addr: null,
    rtt: null,
  };
  assert.deepEqual(v.event(relay), [
    "* bob is here (fingerprint qrst-uvwx-yz23-4567): relayed via server",
  ]);
  assert.deepEqual(v.event(direct), ["* bob is now direct 203.0.113.9:51820, 23 ms"]);
  assert.deepEqual(v.event({ type: "message", from: "bob", text: "hi" }), ["[bob] hi"]);
  assert.deepEqual(v.event({ type: "left", name: "bob", reason: "bye" }), ["* bob left"]);
  assert.deepEqual(v.event({ type: "left", name: "bob", reason: "expired" }), [
    "* bob left (timed out)",
  ]);
  // After leaving, coming back is "is here" again.
  assert.deepEqual(v.event(direct), [
    "* bob is here (fingerprint qrst-uvwx-yz23-4567): direct 203.0.113.9:51820, 23 ms",
  ]);
});

Deno.test("human view: server state, notices, and nothing for fatal", () => {
  const v = new HumanView();
  assert.deepEqual(v.event({ type: "server-lost" }), [
    "* Lost contact with the server; peers stay connected, retrying",
  ]);
  assert.deepEqual(v.event({ type: "server-back", public: PUB }), ["* Server is back"]);
  assert.deepEqual(v.event({ type: "notice", kind: "renamed", message: "Renamed" }), ["* Renamed"]);
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
  assert.deepEqual(
    v.event({ type: "peer", name: evil, fingerprint: FP_B, path: "relay", addr: null, rtt: null }),
    [
      "* ev\\x1b[31mil\\x0a* fake is here (fingerprint qrst-uvwx-yz23-4567): relayed via server",
    ],
  );
  assert.deepEqual(v.event({ type: "left", name: evil, reason: "gone" }), [
    "* ev\\x1b[31mil\\x0a* fake left",
  ]);
  assert.deepEqual(v.event({ type: "ready", name: evil, public: PUB, fingerprint: FP_A }), [
    `* Joined as "ev\\x1b[31mil\\x0a* fake" (fingerprint ${FP_A}); ` +
    "the server sees us at 198.51.100.23:40112",
  ]);
  assert.deepEqual(v.notice("Unknown command /\x1b[2J; try /help"), [
    "* Unknown command /\\x1b[2J; try /help",
  ]);
  assert.deepEqual(v.peers([peerInfo({ name: evil })]), [
    "* 1 peer in the room:",
    "    name                    fingerprint          path     rtt  via",
    "    ev\\x1b[31mil\\x0a* fake  qrst-uvwx-yz23-4567  relayed  -    server",
  ]);
  for (const l of [...v.event({ type: "message", from: evil, text: evil }), ...v.help()]) {
    assert.equal(printable(l), l, "no control characters left");
  }
});

/** Every line a HumanView can show about a peer called `name`, with `text` as a message. */
function allLinesAbout(name: string, text: string): string[] {
  const v = new HumanView();
  return [
    ...v.event({ type: "ready", name, public: PUB, fingerprint: FP_A }),
    ...v.event({ type: "peer", name, fingerprint: FP_B, path: "relay", addr: null, rtt: null }),
    ...v.event({ type: "peer", name, fingerprint: FP_B, path: "direct", addr: BOB, rtt: 5 }),
    ...v.event({ type: "message", from: name, text }),
    ...v.event({ type: "left", name, reason: "expired" }),
    ...v.event({ type: "notice", kind: "renamed", message: `"${name}" is now called "${text}"` }),
    ...v.event({
      type: "warning",
      kind: "identity-changed",
      name,
      message: `${name} has a new identity (${FP_A}, was ${FP_B})`,
    }),
    ...v.notice(text),
    ...v.peers([peerInfo({ name }), peerInfo({ name: "bob" })]),
  ];
}

/** No raw control, bidi or line-breaking character: what a terminal would act on. */
const UNSAFE = /[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

Deno.test("human view: ESC [2J in a name is escaped in every line", () => {
  const lines = allLinesAbout("x\x1b[2Jy", "hi");
  for (const l of lines) assert.doesNotMatch(l, UNSAFE, l);
  assert.equal(lines.filter((l) => l.includes("x\\x1b[2Jy")).length, 8, lines.join("\n"));
  assert.deepEqual(lines.slice(0, 2), [
    `* Joined as "x\\x1b[2Jy" (fingerprint ${FP_A}); the server sees us at 198.51.100.23:40112`,
    "* x\\x1b[2Jy is here (fingerprint qrst-uvwx-yz23-4567): relayed via server",
  ]);
});

Deno.test("human view: U+202E in a name and in text is escaped", () => {
  const lines = allLinesAbout("bob\u202Eexe.txt", "see \u202Egnp.exe");
  for (const l of lines) assert.doesNotMatch(l, UNSAFE, l);
  const v = new HumanView();
  assert.deepEqual(v.event({ type: "message", from: "bob\u202Eevil", text: "a\u202Eb\u2066c" }), [
    "[bob\\u{202E}evil] a\\u{202E}b\\u{2066}c",
  ]);
  assert.deepEqual(
    v.event({
      type: "peer",
      name: "\u202Eeve",
      fingerprint: FP_B,
      path: "relay",
      addr: null,
      rtt: null,
    }),
    [
      "* \\u{202E}eve is here (fingerprint qrst-uvwx-yz23-4567): relayed via server",
    ],
  );
  assert.deepEqual(v.peers([peerInfo({ name: "\u2067eve\u2069" })]), [
    "* 1 peer in the room:",
    "    name                 fingerprint          path     rtt  via",
    "    \\u{2067}eve\\u{2069}  qrst-uvwx-yz23-4567  relayed  -    server",
  ]);
});

Deno.test("human view: a name with a newline cannot fake a second line", () => {
  for (const nl of ["\n", "\r", "\u2028", "\u2029", "\x85", "\r\n"]) {
    const name = `mallory${nl}* alice left`;
    const lines = allLinesAbout(name, `hi${nl}[alice] send me your password`);
    for (const l of lines) assert.doesNotMatch(l, UNSAFE, JSON.stringify(l));
    assert.equal(lines.length, 12, "one line per event (and the /peers header), none split");
  }
  const v = new HumanView();
  assert.deepEqual(v.event({ type: "left", name: "eve\n* bob left", reason: "bye" }), [
    "* eve\\x0a* bob left left",
  ]);
});

Deno.test("human view: names get the strict escaping, text keeps ZWJ emoji", () => {
  const v = new HumanView();
  const family = "👨\u200D👩\u200D👧";
  assert.deepEqual(v.event({ type: "message", from: "b\u200Bob", text: family }), [
    `[b\\u{200B}ob] ${family}`,
  ]);
});

Deno.test("human view: a look-alike of our name or a present peer's is flagged", () => {
  const v = new HumanView();
  v.event({ type: "ready", name: "alice", public: PUB, fingerprint: FP_A });
  assert.deepEqual(
    v.event({ type: "peer", name: "bob", fingerprint: FP_B, path: "relay", addr: null, rtt: null }),
    [
      "* bob is here (fingerprint qrst-uvwx-yz23-4567): relayed via server",
    ],
  );
  assert.deepEqual(
    v.event({
      type: "peer",
      name: "аlice",
      fingerprint: FP_B,
      path: "relay",
      addr: null,
      rtt: null,
    }),
    [
      "* аlice is here (fingerprint qrst-uvwx-yz23-4567): relayed via server",
      '* Careful: "аlice" looks like "alice" but is a different name (look-alike characters or case)',
    ],
  );
  assert.deepEqual(
    v.event({ type: "peer", name: "BOB", fingerprint: FP_B, path: "relay", addr: null, rtt: null }),
    [
      "* BOB is here (fingerprint qrst-uvwx-yz23-4567): relayed via server",
      '* Careful: "BOB" looks like "bob" but is a different name (look-alike characters or case)',
    ],
  );
  // Only when a peer appears, not on path changes.
  assert.deepEqual(
    v.event({ type: "peer", name: "BOB", fingerprint: FP_B, path: "direct", addr: BOB, rtt: 5 }),
    [
      "* BOB is now direct 203.0.113.9:51820, 5 ms",
    ],
  );
  assert.deepEqual(
    v.event({
      type: "peer",
      name: "carol",
      fingerprint: FP_B,
      path: "relay",
      addr: null,
      rtt: null,
    }),
    [
      "* carol is here (fingerprint qrst-uvwx-yz23-4567): relayed via server",
    ],
  );
});

Deno.test("human view: /peers lists nobody, one peer, several peers", () => {
  const v = new HumanView();
  assert.deepEqual(v.peers([]), ["* Nobody else is in the room"]);
  assert.deepEqual(v.peers([peerInfo({ name: "bob", path: "direct", addr: BOB, rtt: 5 })]), [
    "* 1 peer in the room:",
    "    name  fingerprint          path    rtt   via",
    `    bob   ${FP_B}  direct  5 ms  203.0.113.9:51820`,
  ]);
  assert.deepEqual(
    v.peers([
      peerInfo({ name: "bob", path: "direct", addr: BOB, rtt: 5 }),
      peerInfo({ name: "cat", fingerprint: FP_A, rtt: 180 }),
      peerInfo({ name: "dan", path: "pending" }),
      peerInfo({ name: "eve", relayedBy: "carol", rtt: 42 }),
    ]),
    [
      "* 4 peers in the room:",
      "    name  fingerprint          path        rtt     via",
      "    bob   qrst-uvwx-yz23-4567  direct      5 ms    203.0.113.9:51820",
      "    cat   abcd-efgh-ijkl-mnop  relayed     180 ms  server",
      "    dan   qrst-uvwx-yz23-4567  connecting  -",
      "    eve   qrst-uvwx-yz23-4567  relayed     42 ms   carol",
    ],
  );
});

Deno.test("human view: /peers lines up names in any script (wide CJK, combining marks)", () => {
  assert.equal(displayWidth("bob"), 3);
  assert.equal(displayWidth("李小龙"), 6);
  assert.equal(displayWidth("Jose\u0301"), 4);
  assert.equal(displayWidth("민수"), 4);
  const lines = new HumanView().peers([
    peerInfo({ name: "李小龙", path: "direct", addr: BOB, rtt: 5 }),
    peerInfo({ name: "Jose\u0301", fingerprint: FP_A, rtt: 7 }),
    peerInfo({ name: "bob", rtt: 9 }),
  ]);
  // Every row's fingerprint starts at the same terminal column.
  const columns = lines.slice(2).map((l) => displayWidth(l.slice(0, l.search(/[a-z2-7]{4}-/))));
  assert.deepEqual(columns, [columns[0], columns[0], columns[0]], lines.join("\n"));
  assert.equal(displayWidth(lines[1]!.slice(0, lines[1]!.indexOf("fingerprint"))), columns[0]);
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

/** A warning as the client reports it. */
function warning(
  kind: "identity-changed" | "identity-shared" | "auth-failed",
  name: string | null,
  message: string,
): ClientEvent {
  return { type: "warning", kind, name, message };
}

Deno.test("human view: warnings stand out with !, in bold red with color", () => {
  const changed = warning(
    "identity-changed",
    "bob",
    `bob has a new identity (${FP_A}, was ${FP_B}); check the fingerprint with them`,
  );
  const shared = warning(
    "identity-shared",
    null,
    `Another p2p process uses your identity (${FP_A}) in this room`,
  );
  const failed = warning("auth-failed", null, "Could not authenticate peer 0a1b2c3d");
  const plain = new HumanView();
  assert.deepEqual([changed, shared, failed].flatMap((e) => plain.event(e)), [
    `! bob has a new identity (${FP_A}, was ${FP_B}); check the fingerprint with them`,
    `! Another p2p process uses your identity (${FP_A}) in this room`,
    "! Could not authenticate peer 0a1b2c3d",
  ]);
  const colored = new HumanView({ color: true });
  assert.deepEqual(colored.event(failed), [
    "\x1b[1;31m! Could not authenticate peer 0a1b2c3d\x1b[39;22m",
  ]);
  // A warning neither announces nor forgets a peer.
  assert.deepEqual(
    plain.event({
      type: "peer",
      name: "bob",
      fingerprint: FP_A,
      path: "relay",
      addr: null,
      rtt: null,
    }),
    [`* bob is here (fingerprint ${FP_A}): relayed via server`],
  );
});

Deno.test("human view: a name with ESC and U+202E inside a warning message is escaped", () => {
  const name = "bo\x1b[2Jb\u202Etxt.exe";
  const message = `${name} has a new identity (${FP_A}, was ${FP_B})`;
  const shown = `bo\\x1b[2Jb\\u{202E}txt.exe has a new identity (${FP_A}, was ${FP_B})`;
  assert.deepEqual(new HumanView().event(warning("identity-changed", name, message)), [
    `! ${shown}`,
  ]);
  const colored = new HumanView({ color: true }).event(warning("auth-failed", name, message));
  assert.deepEqual(colored, [`\x1b[1;31m! ${shown}\x1b[39;22m`]);
  // The only escapes left raw are the view's own styling.
  assert.doesNotMatch(colored[0]!.slice(7, -8), UNSAFE);
  for (const nl of ["\n", "\r", "\u2028", "\u2029", "\x85"]) {
    const lines = new HumanView().event(warning("auth-failed", null, `x${nl}! fake`));
    assert.equal(lines.length, 1);
    assert.doesNotMatch(lines[0]!, UNSAFE, JSON.stringify(lines[0]));
  }
});

Deno.test("human view: notices and warnings are escaped whole, as strictly as names", () => {
  // They quote names, so what names may not hide (zero-width space, odd spaces) is shown too,
  // and a backslash is doubled so that no escape can be faked.
  const v = new HumanView();
  assert.deepEqual(v.notice('The name "b\u200Bob" is taken in this room; you are "b\\ob"'), [
    '* The name "b\\u{200B}ob" is taken in this room; you are "b\\\\ob"',
  ]);
  assert.deepEqual(v.event({ type: "notice", kind: "queue-full", message: "to \u00A0eve\u3000" }), [
    "* to \\xa0eve\\u{3000}",
  ]);
  assert.deepEqual(
    v.event(warning("identity-changed", "b\u200Bob", "b\u200Bob has a new identity")),
    ["! b\\u{200B}ob has a new identity"],
  );
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
    { type: "ready", name: "alice", public: PUB, fingerprint: FP_A },
    { type: "peer", name: "bob", fingerprint: FP_B, path: "direct", addr: BOB, rtt: 23.4 },
    { type: "peer", name: "bob", fingerprint: FP_B, path: "relay", addr: null, rtt: null },
    { type: "message", from: "bob", text: "hi" },
    { type: "left", name: "bob", reason: "bye" },
    { type: "server-lost" },
    { type: "server-back", public: PUB },
    { type: "notice", kind: "renamed", message: "Renamed" },
    warning("identity-changed", "bob", "bob has a new identity"),
    warning("auth-failed", null, "Could not authenticate peer 0a1b2c3d"),
  ];
  assert.deepEqual(parsed(events.flatMap((e) => v.event(e))), [
    { event: "ready", name: "alice", fingerprint: FP_A, public: "198.51.100.23:40112" },
    {
      event: "peer",
      name: "bob",
      fingerprint: FP_B,
      path: "direct",
      addr: "203.0.113.9:51820",
      rtt_ms: 23.4,
    },
    {
      event: "peer",
      name: "bob",
      fingerprint: FP_B,
      path: "relay",
      addr: null,
      rtt_ms: null,
      via: "server",
    },
    { event: "message", from: "bob", text: "hi" },
    { event: "left", name: "bob", reason: "bye" },
    { event: "server", state: "lost" },
    { event: "server", state: "back", public: "198.51.100.23:40112" },
    { event: "notice", kind: "renamed", message: "Renamed" },
    {
      event: "warning",
      kind: "identity-changed",
      name: "bob",
      message: "bob has a new identity",
    },
    {
      event: "warning",
      kind: "auth-failed",
      name: null,
      message: "Could not authenticate peer 0a1b2c3d",
    },
  ]);
  // The exact bytes of one line, field order included.
  assert.deepEqual(v.event({ type: "message", from: "bob", text: "hi" }), [
    `{"event":"message","from":"bob","text":"hi"}`,
  ]);
  assert.deepEqual(v.event(warning("identity-shared", null, "Another process")), [
    `{"event":"warning","kind":"identity-shared","name":null,"message":"Another process"}`,
  ]);
  assert.deepEqual(v.event({ type: "ready", name: "alice", public: PUB, fingerprint: FP_A }), [
    `{"event":"ready","name":"alice","fingerprint":"${FP_A}","public":"198.51.100.23:40112"}`,
  ]);
  const withId = {
    type: "ready",
    name: "alice",
    public: PUB,
    fingerprint: FP_A,
    id: "0a1b",
  } as const;
  assert.deepEqual(v.event(withId), [
    `{"event":"ready","name":"alice","fingerprint":"${FP_A}","public":"198.51.100.23:40112","id":"0a1b"}`,
  ]);
  assert.deepEqual(v.event({ type: "notice", kind: "portmap", message: "Mapped" }), [
    `{"event":"notice","kind":"portmap","message":"Mapped"}`,
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
        {
          name: "bob",
          fingerprint: FP_B,
          path: "direct",
          addr: "203.0.113.9:51820",
          rtt_ms: 5,
        },
        { name: "cat", fingerprint: FP_B, path: "pending", addr: null, rtt_ms: null },
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

Deno.test("json view: U+2028, U+2029 and NEL are never raw, and parse back exactly", () => {
  const v = new JsonView();
  const nasty = "a\u2028b\u2029c\x85d\x7f\x9b\u202Ee\u2066f\u200Eg\nh 👨\u200D👩 é";
  const lines = [
    ...v.event({ type: "ready", name: nasty, public: PUB, fingerprint: FP_A }),
    ...v.event({
      type: "peer",
      name: nasty,
      fingerprint: FP_B,
      path: "relay",
      addr: null,
      rtt: null,
    }),
    ...v.event({ type: "message", from: nasty, text: nasty }),
    ...v.event({ type: "left", name: nasty, reason: "bye" }),
    ...v.event({ type: "notice", kind: "refused", message: nasty }),
    ...v.notice(nasty),
    ...v.peers([peerInfo({ name: nasty })]),
  ];
  assert.equal(lines.length, 7);
  for (const l of lines) {
    assert.doesNotMatch(l, /[\u2028\u2029\x85]/, "no raw line separators");
    assert.doesNotMatch(l, UNSAFE, "no raw controls either");
    assert.equal(l.split(/\r\n|[\n\r\u2028\u2029\x85]/).length, 1, "one line by any reader");
    assert.ok(l.includes("\\u2028") && l.includes("\\u2029") && l.includes("\\u0085"), l);
    assert.ok(l.includes("👨\u200D👩 é"), "ordinary text stays readable");
  }
  assert.deepEqual(JSON.parse(lines[2]!), { event: "message", from: nasty, text: nasty });
  assert.deepEqual(JSON.parse(lines[6]!), {
    event: "peers",
    peers: [{
      name: nasty,
      fingerprint: FP_B,
      path: "relay",
      addr: null,
      rtt_ms: null,
      via: "server",
    }],
  });
  assert.equal(JSON.parse(lines[0]!).name, nasty);
  assert.equal(JSON.parse(lines[4]!).message, nasty);
});

Deno.test("json view: a name with ESC and U+202E in a warning is escaped and parses back", () => {
  const v = new JsonView();
  const name = "bo\x1b[2Jb\u202Etxt.exe\u2028";
  const message = `${name} has a new identity (${FP_A}, was ${FP_B})`;
  const lines = v.event(warning("identity-changed", name, message));
  assert.equal(lines.length, 1);
  assert.doesNotMatch(lines[0]!, UNSAFE, "no raw controls");
  assert.equal(
    lines[0],
    `{"event":"warning","kind":"identity-changed","name":"bo\\u001b[2Jb\\u202etxt.exe\\u2028",` +
      `"message":"bo\\u001b[2Jb\\u202etxt.exe\\u2028 has a new identity (${FP_A}, was ${FP_B})"}`,
  );
  assert.deepEqual(JSON.parse(lines[0]!), {
    event: "warning",
    kind: "identity-changed",
    name,
    message,
  });
});

Deno.test("peerView picks the view for the mode", () => {
  assert.ok(peerView({ json: true }) instanceof JsonView);
  assert.ok(peerView({ json: false }) instanceof HumanView);
  const colored = peerView({ json: false, color: true });
  assert.deepEqual(colored.notice("x"), ["\x1b[2m* x\x1b[22m"]);
});

Deno.test("printable: invisible characters are shown as escapes; a flag's tag sequence stays", () => {
  for (const c of [0xad, 0x180e, 0x200b, 0x2060, 0x2064, 0xfeff, 0x3164, 0xffa0, 0xe0041]) {
    const s = `a${String.fromCodePoint(c)}b`;
    assert.equal(
      printable(s),
      `a\\u{${c.toString(16).toUpperCase().padStart(4, "0")}}b`.replace(
        /\\u\{(00[0-9A-F]{2})\}/,
        (_, h: string) => `\\x${h.slice(2).toLowerCase()}`,
      ),
    );
  }
  const england = "\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}";
  assert.equal(printable(`go ${england}!`), `go ${england}!`);
  // Tags outside a flag (hidden text) are escaped.
  assert.equal(printable("hi\u{E0068}\u{E0069}"), "hi\\u{E0068}\\u{E0069}");
  // Joiners that build emoji and scripts are kept.
  assert.equal(printable("👩\u200D💻"), "👩\u200D💻");
});

Deno.test("human view: names coloured by identity, a bell on a mention, NO_COLOR plain", () => {
  const v = new HumanView({ color: true, bell: true });
  v.event({ type: "ready", name: "alice", fingerprint: FP_A, public: BOB });
  v.event({
    type: "peer",
    name: "bob",
    fingerprint: FP_B,
    path: "relay",
    addr: null,
    rtt: null,
  });
  const [line] = v.event({ type: "message", from: "bob", text: "hi Alice, look" });
  assert.ok(line!.includes(`\x1b[1;${nameColor(FP_B)}m[bob]`), JSON.stringify(line));
  assert.ok(line!.endsWith("\x07"), "a bell: the line mentions alice");
  const [other] = v.event({ type: "message", from: "bob", text: "malice aforethought" });
  assert.ok(!other!.endsWith("\x07"), "no bell for a word that only contains the name");
  assert.equal(nameColor(FP_B), nameColor(FP_B));
  const plain = new HumanView({ color: false, bell: false });
  plain.event({ type: "ready", name: "alice", fingerprint: FP_A, public: BOB });
  assert.deepEqual(plain.event({ type: "message", from: "bob", text: "alice!" }), ["[bob] alice!"]);
  assert.ok(mentions("@alice: hi", "alice") && !mentions("alicent", "alice"));
});

Deno.test("/me: sent as the line '/me …', shown as an action; --json marks it", () => {
  assert.deepEqual(parseInput("/me waves"), { kind: "send", text: "/me waves" });
  assert.deepEqual(parseInput("/me "), { kind: "unknown", command: "/me" });
  const v = new HumanView();
  assert.deepEqual(v.event({ type: "message", from: "bob", text: "/me waves" }), ["* bob waves"]);
  assert.deepEqual(v.event({ type: "message", from: "bob", text: "/men at work" }), [
    "[bob] /men at work",
  ]);
  const j = new JsonView();
  assert.deepEqual(JSON.parse(j.event({ type: "message", from: "bob", text: "/me waves" })[0]!), {
    event: "message",
    from: "bob",
    text: "/me waves",
    action: true,
  });
});

Deno.test("views: the server's relay reached over TCP says so (transport tcp)", () => {
  const e: ClientEvent = {
    type: "peer",
    name: "bob",
    fingerprint: FP_B,
    path: "relay",
    addr: null,
    rtt: null,
    transport: "tcp",
  };
  assert.deepEqual(parsed(new JsonView().event(e)), [{
    event: "peer",
    name: "bob",
    fingerprint: FP_B,
    path: "relay",
    addr: null,
    rtt_ms: null,
    via: "server",
    transport: "tcp",
  }]);
  assert.match(new HumanView().event(e).join("\n"), /relayed via server over TCP$/);
  assert.equal(pathText("relay", null, null, null, "tcp"), "relayed via server over TCP");
  const rows = parsed(new JsonView().peers([peerInfo({ name: "bob", transport: "tcp" })]));
  assert.deepEqual((rows[0] as { peers: { transport?: string }[] }).peers[0]!.transport, "tcp");
  assert.match(
    new HumanView().peers([peerInfo({ name: "bob", transport: "tcp" })]).join("\n"),
    /relayed +- +server over TCP/,
  );
});

// ---------------------------------------------------------------------------------------------
// Private lines, history, renames

Deno.test("input: /msg NAME text and /nick NAME are commands; incomplete ones are not", () => {
  assert.deepEqual(parseInput("/msg bob see you at 5"), {
    kind: "private",
    name: "bob",
    text: "see you at 5",
  });
  assert.deepEqual(parseInput("/nick  Robert "), { kind: "nick", name: "Robert" });
  assert.deepEqual(parseInput("/msg bob"), { kind: "unknown", command: "/msg" });
  assert.deepEqual(parseInput("/nick"), { kind: "unknown", command: "/nick" });
});

Deno.test("views: private lines and history are marked for people and in JSON", () => {
  const human = new HumanView();
  const [priv] = human.event({ type: "message", from: "bob", text: "psst", private: true });
  assert.equal(priv, "[bob] (private) psst");
  const [mine] = human.event({
    type: "message",
    from: "alice",
    to: "bob",
    text: "hi",
    private: true,
  });
  assert.equal(mine, "[alice → bob] (private) hi");
  const [old] = human.event({
    type: "message",
    from: "bob",
    text: "earlier",
    history: true,
    ago: 300,
  });
  assert.equal(old, "(5 min ago) [bob] earlier");
  const json = new JsonView();
  assert.deepEqual(
    JSON.parse(json.event({ type: "message", from: "bob", text: "psst", private: true })[0]!),
    { event: "message", from: "bob", text: "psst", private: true },
  );
  assert.deepEqual(
    JSON.parse(json.event({ type: "message", from: "bob", text: "x", history: true, ago: 12 })[0]!),
    { event: "message", from: "bob", text: "x", history: true, ago: 12 },
  );
});
