/**
 * Tests of the log formats of `lib/io/log.ts`: JSON lines (one parseable object per record with
 * level, category, constant message template and properties; received strings only in
 * properties, exactly as they were), text with and without colour, the colour rule (a terminal
 * and no `NO_COLOR`), and `setupLogging` in a child process writing to a real stderr.
 *
 * @module
 */
import assert from "node:assert/strict";
import { getLogger } from "@logtape/logtape";
import {
  colorWanted,
  formatterFor,
  jsonLogFormatter,
  LOG_FORMATS,
  LOG_LEVELS,
  logFormatter,
  RateLimitedLog,
} from "../../lib/io/log.ts";
import { logEvent } from "../../lib/roles/serve.ts";
import { captureRecords } from "../support/log_capture.ts";
import { run, toolTest } from "../support/tools.ts";

const ESC = "\x1b";
const EVIL = 'a{x}b"c\\d\n\x1b[2J\u202Ee\u2028f\u0085g';
const ADDR = { hostname: "198.51.100.23", port: 40112 };

Deno.test("json log: one line per record with time, level, category, message, properties", async () => {
  const [r] = await captureRecords(() => {
    getLogger(["p2p", "serve"]).info("Listening on UDP {addr}", { addr: "0.0.0.0:7777" });
  });
  const line = jsonLogFormatter(r!);
  assert.ok(line.endsWith("\n"));
  assert.equal(line.indexOf("\n"), line.length - 1, "exactly one line");
  const o = JSON.parse(line);
  assert.deepEqual(Object.keys(o), ["time", "level", "category", "message", "properties"]);
  assert.equal(o.level, "info");
  assert.equal(o.category, "p2p.serve");
  assert.equal(o.message, "Listening on UDP {addr}");
  assert.deepEqual(o.properties, { addr: "0.0.0.0:7777" });
  assert.equal(new Date(o.time).getTime(), r!.timestamp);
  assert.match(o.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

Deno.test("json log: received strings stay in properties, exact, and never act on a terminal", async () => {
  const rs = await captureRecords(() => {
    logEvent(new RateLimitedLog(getLogger(["p2p", "serve"])), {
      type: "registered",
      room: EVIL,
      name: EVIL,
      addr: ADDR,
      relayOnly: false,
    });
    getLogger(["p2p", "serve"]).warning("Odd {what}", {
      what: EVIL,
      big: 12345678901234567890n,
      err: new Error("boom"),
      bytes: new Uint8Array([0, 255]),
    });
  });
  assert.equal(rs.length, 2);
  for (const r of rs) {
    const line = jsonLogFormatter(r);
    assert.equal(line.split("\n").length, 2, "one line, whatever the name holds");
    assert.ok(!line.includes(ESC) && !line.includes("\u202E") && !line.includes("\u2028"));
    assert.ok(!line.includes("\u0085"), "C1 controls are escaped");
    const o = JSON.parse(line);
    assert.ok(!o.message.includes("a{x}"), "the message is the constant template");
    for (const [k, v] of Object.entries(o)) {
      if (k !== "properties") assert.ok(!String(v).includes("a{x}"), `${k} has no user data`);
    }
  }
  const reg = JSON.parse(jsonLogFormatter(rs[0]!));
  assert.equal(reg.message, 'Peer "{name}" registered in room "{room}" from {addr}');
  assert.deepEqual(reg.properties, { name: EVIL, room: EVIL, addr: "198.51.100.23:40112" });
  const odd = JSON.parse(jsonLogFormatter(rs[1]!));
  assert.equal(odd.level, "warning");
  assert.equal(odd.properties.what, EVIL, "parsed back exactly");
  assert.equal(odd.properties.big, "12345678901234567890");
  assert.deepEqual(odd.properties.err, { name: "Error", message: "boom" });
  assert.equal(odd.properties.bytes, "00ff");
});

Deno.test("json log: a property that cannot be JSON does not lose the line", async () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const [r] = await captureRecords(() => {
    getLogger(["p2p"]).info("Cycle {c}", { c: cyclic, n: 1 });
  });
  const o = JSON.parse(jsonLogFormatter(r!));
  assert.equal(o.properties.n, 1);
  assert.equal(typeof o.properties.c, "string");
});

Deno.test("text log: colour only when asked; escaping the same either way", async () => {
  const [r] = await captureRecords(() => {
    getLogger(["p2p", "serve"]).info("Peer {name}", { name: EVIL });
  });
  const plain = logFormatter({ timestamp: false })(r!);
  const colored = logFormatter({ timestamp: false, color: true })(r!);
  assert.ok(!plain.includes(ESC));
  assert.ok(colored.includes(`${ESC}[`), "ANSI colour codes");
  const body = plain.slice(plain.indexOf("p2p·serve: "));
  assert.ok(
    colored.replace(new RegExp(`${ESC}\\[[0-9;]*m`, "g"), "").endsWith(body),
    "same escaping with colours",
  );
  assert.ok(!colored.includes(`${ESC}[2J`), "the name's escape sequence stays escaped");
  assert.equal(formatterFor({ format: "text", color: false })(r!).includes(ESC), false);
  assert.equal(formatterFor({ format: "json", color: true })(r!).includes(ESC), false);
  assert.deepEqual(LOG_FORMATS, ["text", "json"]);
  assert.ok(LOG_LEVELS.includes("warning") && LOG_LEVELS.includes("debug"));
});

Deno.test("colour rule: a terminal and NO_COLOR unset or empty", () => {
  assert.equal(colorWanted(true, undefined), true);
  assert.equal(colorWanted(true, ""), true, "no-color.org: an empty NO_COLOR does not count");
  assert.equal(colorWanted(true, "1"), false);
  assert.equal(colorWanted(false, undefined), false);
  assert.equal(colorWanted(false, "1"), false);
});

const CHILD = new URL("../support/log_child.ts", import.meta.url).pathname;
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

async function child(args: string[], env: Record<string, string> = {}) {
  const r = await run(Deno.execPath(), [
    "run",
    "--quiet",
    "--config",
    CONFIG,
    "--allow-env",
    CHILD,
    ...args,
  ], { env });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "", "logs never go to stdout");
  return r.stderr;
}

Deno.test("setupLogging: json lines on stderr at the level asked", async () => {
  const err = await child(["info", "json"]);
  const lines = err.trimEnd().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => [l.level, l.message, l.properties.n]), [
    ["info", "Info {n}", 2],
    ["warning", "Warning {n}", 3],
  ]);
  assert.ok(lines.every((l) => l.category === "p2p.child"));
});

Deno.test("setupLogging: text, and the old setupLogging(level) call, without colour off a tty", async () => {
  const text = await child(["debug", "text"]);
  assert.equal(text.trimEnd().split("\n").length, 3);
  assert.match(text, /\[DBG\] p2p·child: Debug 1\n/);
  assert.ok(!text.includes(ESC), "stderr is a pipe: no colour");
  const legacy = await child(["warning", "legacy"]);
  assert.match(legacy, /^\S+ \S+ \S+ \[WRN\] p2p·child: Warning 3\n$/);
  const forced = await child(["info", "text", "on"]);
  assert.ok(forced.includes(ESC), "color: true forces colour");
});

Deno.test(toolTest(
  "script",
  "bsdutils",
  "setupLogging: colour on a terminal unless NO_COLOR",
  async () => {
    // script(1) gives the child a pseudo-terminal as stdin, stdout and stderr.
    const cmd = [Deno.execPath(), "run", "--quiet", "--config", CONFIG, "--allow-env", CHILD]
      .concat(["info", "text"]).map((a) => `'${a}'`).join(" ");
    const tty = await run("script", ["-qec", cmd, "/dev/null"], { env: { NO_COLOR: "" } });
    assert.equal(tty.code, 0, tty.stdout + tty.stderr);
    assert.ok(
      tty.stdout.includes(`${ESC}[`),
      `colour on a terminal: ${JSON.stringify(tty.stdout)}`,
    );
    const off = await run("script", ["-qec", cmd, "/dev/null"], { env: { NO_COLOR: "1" } });
    assert.equal(off.code, 0, off.stdout + off.stderr);
    assert.match(off.stdout, /Info 2/);
    assert.ok(!off.stdout.includes(ESC), `NO_COLOR=1: ${JSON.stringify(off.stdout)}`);
  },
));
