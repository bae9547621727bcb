/**
 * Tests of the server's log lines (`server.ts`, `lib/io/log.ts`): names and other received strings
 * are LogTape properties, never template text, and render escaped; peer events are
 * rate-limited per kind with the left-out lines counted and reported once. Records are
 * captured by a LogTape test sink and rendered with the formatter `setupLogging` uses.
 *
 * @module
 */
import assert from "node:assert/strict";
import { getLogger, type LogRecord } from "@logtape/logtape";
import { type LimitedLevel, logFormatter, RateLimitedLog, renderValue } from "../../lib/io/log.ts";
import type { RegistryEvent } from "../../lib/server/registry.ts";
import { describeEvent, logEvent, plural } from "../../lib/roles/serve.ts";
import { captureRecords } from "../support/log_capture.ts";

const ADDR = { hostname: "198.51.100.23", port: 40112 };

/** Runs `f` with LogTape writing every `p2p` record to a list; returns the rendered lines. */
async function captured(f: () => void): Promise<{ lines: string[]; records: LogRecord[] }> {
  const records = await captureRecords(f);
  const format = logFormatter({ timestamp: false });
  return { lines: records.map((r) => format(r)), records };
}

const EVIL = "a{x}b{}c\x1b[2Jd{{e}}";
const EVIL_SHOWN = "a{x}b{}c\\x1b[2Jd{{e}}";

Deno.test("server log: a name with {x}, {} and ESC is a property, rendered escaped", async () => {
  const e: RegistryEvent = {
    type: "registered",
    room: "r{0}\u202E",
    name: EVIL,
    addr: ADDR,
    relayOnly: false,
  };
  const { lines, records } = await captured(() => {
    logEvent(new RateLimitedLog(getLogger(["p2p", "serve"])), e);
  });
  assert.deepEqual(lines, [
    `[INF] p2p·serve: Peer "${EVIL_SHOWN}" registered in room "r{0}\\u{202E}" from 198.51.100.23:40112\n`,
  ]);
  assert.equal(records[0]!.properties.name, EVIL, "the record keeps the name as it was");
  assert.deepEqual(records[0]!.message, [
    'Peer "',
    EVIL,
    '" registered in room "',
    "r{0}\u202E",
    '" from ',
    "198.51.100.23:40112",
    "",
  ]);
});

Deno.test("server log: every event type keeps received strings out of the template", async () => {
  const events: RegistryEvent[] = [
    { type: "registered", room: EVIL, name: EVIL, addr: ADDR, relayOnly: true },
    { type: "moved", room: EVIL, name: EVIL, addr: ADDR },
    { type: "introduced", room: EVIL, a: EVIL, b: "{}", repunch: false },
    { type: "introduced", room: EVIL, a: EVIL, b: "{}", repunch: true },
    { type: "relaying", room: EVIL, from: EVIL, to: "{b}" },
    { type: "left", room: EVIL, name: EVIL, reason: "expired" },
    { type: "refused", addr: ADDR, why: `Name ${EVIL} is bad`, code: 2 },
  ];
  for (const e of events) {
    const l = describeEvent(e);
    assert.ok(!l.template.includes("a{x}"), `${e.type}: the template is constant`);
    for (const m of l.template.matchAll(/\{(\w*)\}/g)) {
      assert.ok(m[1]! in l.props, `${e.type}: placeholder {${m[1]}} has a property`);
    }
  }
  const { lines } = await captured(() => {
    const out = new RateLimitedLog(getLogger(["p2p", "serve"]));
    for (const e of events) logEvent(out, e);
  });
  const shown = `"${EVIL_SHOWN}"`;
  assert.deepEqual(lines, [
    `[INF] p2p·serve: Peer ${shown} registered in room ${shown} from 198.51.100.23:40112 (relay only)\n`,
    `[INF] p2p·serve: Peer ${shown} in room ${shown} moved to 198.51.100.23:40112\n`,
    `[INF] p2p·serve: Introduced ${shown} and "{}" in room ${shown}\n`,
    `[DBG] p2p·serve: Introduced ${shown} and "{}" in room ${shown} again\n`,
    `[DBG] p2p·serve: Relaying from ${shown} to "{b}" in room ${shown}\n`,
    `[INF] p2p·serve: Peer ${shown} left room ${shown} (expired)\n`,
    `[INF] p2p·serve: Refused 198.51.100.23:40112: Name ${EVIL_SHOWN} is bad\n`,
  ]);
  for (const l of lines) {
    assert.doesNotMatch(l.slice(0, -1), /\p{Cc}|undefined/u, l);
  }
});

Deno.test("renderValue: strings through displayName, other values inspected on one line", () => {
  assert.equal(renderValue("a\x1b\n\u2028\u202Eb\\"), "a\\x1b\\x0a\\u{2028}\\u{202E}b\\\\");
  assert.equal(renderValue("{x}"), "{x}");
  assert.equal(renderValue(42), "42");
  assert.equal(renderValue(true), "true");
  assert.equal(renderValue(null), "null");
  assert.equal(renderValue({ k: "v\n" }), '{ k: "v\\\\n" }');
});

// ---------------------------------------------------------------------------------------------
// RateLimitedLog

/** A fake logger recording `level template props` and a clock the test moves. */
function fake(perSecond = 3) {
  const out: string[] = [];
  const rec = (level: LimitedLevel) => (t: string, p?: Record<string, unknown>) =>
    out.push(`${level} ${t} ${JSON.stringify(p ?? {})}`);
  const clock = { t: 0 };
  const log = new RateLimitedLog(
    { debug: rec("debug"), info: rec("info"), warning: rec("warning") } as never,
    { perSecond, now: () => clock.t },
  );
  return { out, clock, log };
}

Deno.test("RateLimitedLog: at most N lines per kind per second, the rest counted", () => {
  const { out, clock, log } = fake(3);
  const written = [];
  for (let i = 0; i < 10; i++) {
    clock.t = i * 50;
    written.push(log.log("info", "registered", "Peer {n}", { n: i }));
  }
  assert.deepEqual(written, [true, true, true, false, false, false, false, false, false, false]);
  assert.deepEqual(out, [
    'info Peer {n} {"n":0}',
    'info Peer {n} {"n":1}',
    'info Peer {n} {"n":2}',
  ]);
  assert.equal(log.suppressedTotal, 7);
  // Another kind has its own budget.
  assert.equal(log.log("info", "left", "Left {n}", { n: 1 }), true);
  // The next second: the left-out lines are reported once, then lines flow again.
  clock.t = 1000;
  assert.equal(log.log("info", "registered", "Peer {n}", { n: 10 }), true);
  assert.deepEqual(out.slice(4), [
    'info Left out {count} {kind} log lines (more than {limit} per second) {"count":7,"kind":"registered","limit":3}',
    'info Peer {n} {"n":10}',
  ]);
  clock.t = 2500;
  log.log("info", "registered", "Peer {n}", { n: 11 });
  assert.equal(out.length, 7, "no report for a window without left-out lines");
});

Deno.test("RateLimitedLog: flush reports ended windows, flush(true) everything", () => {
  const { out, clock, log } = fake(1);
  log.log("debug", "introduced-again", "x");
  log.log("debug", "introduced-again", "x");
  log.log("warning", "introduced-again", "x");
  log.log("info", "moved", "m");
  log.log("info", "moved", "m");
  clock.t = 500;
  log.flush();
  assert.equal(out.length, 2, "windows still open: nothing reported yet");
  clock.t = 1000;
  log.flush();
  assert.deepEqual(out.slice(2), [
    'warning Left out {count} {kind} log lines (more than {limit} per second) {"count":2,"kind":"introduced-again","limit":1}',
    'info Left out {count} {kind} log lines (more than {limit} per second) {"count":1,"kind":"moved","limit":1}',
  ]);
  log.flush();
  assert.equal(out.length, 4, "reported once");
  log.log("info", "left", "l");
  log.log("info", "left", "l");
  log.flush(true);
  assert.equal(out.length, 6);
  assert.match(out[5]!, /"count":1,"kind":"left"/);
});

Deno.test("RateLimitedLog: a flood of events logs a bounded number of lines", async () => {
  const e: RegistryEvent = { type: "refused", addr: ADDR, why: "bad cookie", code: 2 };
  const { lines } = await captured(() => {
    let t = 0;
    const out = new RateLimitedLog(getLogger(["p2p", "serve"]), { perSecond: 5, now: () => t });
    for (let i = 0; i < 10_000; i++) {
      t = i / 10; // 10,000 events in one second
      logEvent(out, e);
    }
    t = 1000;
    out.flush();
  });
  assert.equal(lines.length, 6);
  assert.equal(
    lines[5],
    "[INF] p2p·serve: Left out 9995 refused log lines (more than 5 per second)\n",
  );
});

Deno.test("server log: routine events are debug (relaying per pair, Register again); plurals", () => {
  const at = { hostname: "192.0.2.1", port: 1 };
  assert.equal(describeEvent({ type: "relaying", room: "r", from: "a", to: "b" }).level, "debug");
  assert.equal(
    describeEvent({ type: "refused", addr: at, why: "Register again", code: 1 }).level,
    "debug",
  );
  assert.equal(
    describeEvent({ type: "refused", addr: at, why: "Server is full", code: 5 }).level,
    "info",
  );
  assert.equal(plural(1, "room"), "1 room");
  assert.equal(plural(2, "peer"), "2 peers");
  assert.equal(plural(0, "peer"), "0 peers");
});
