/**
 * Tests of the `p2p` command line (`main.ts`) as a user sees it: exit codes, usage text and
 * error messages. Each case spawns `deno run -A main.ts ...`.
 *
 * @module
 */

import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };

const MAIN = new URL("../main.ts", import.meta.url);
const ROOT = new URL("../", import.meta.url);
/** Guard against a hung child: it is killed after this long (the tests expect far less). */
const KILL_AFTER_MS = 30_000;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

async function p2p(...args: string[]): Promise<Result> {
  const started = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN.href, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(KILL_AFTER_MS),
  }).output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - started,
  };
}

function show(r: Result): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Asserts a usage error: exit 2, nothing on stdout, a one-line message naming `mentions`. */
function assertUsageError(r: Result, ...mentions: string[]): void {
  assert.equal(r.code, 2, show(r));
  assert.equal(r.stdout, "", `stdout must stay clean\n${show(r)}`);
  const lines = r.stderr.trimEnd().split("\n");
  const first = lines[0]!;
  assert.match(first, /^p2p: \S/, `error line starts with "p2p: "\n${show(r)}`);
  for (const m of mentions) {
    assert.ok(first.includes(m), `error line names "${m}"\n${show(r)}`);
  }
  // At most the error line and one hint line pointing at --help; no stack traces.
  assert.equal(lines.length, 1, `a one-line error\n${show(r)}`);
  assert.match(lines[0]!, /--help/, `points at the help\n${show(r)}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace\n${show(r)}`);
}

/** A UDP port on 127.0.0.1 where nothing listens (bound, then released). */
function freeUdpPort(): number {
  const s = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (s.addr as Deno.NetAddr).port;
  s.close();
  return port;
}

// ---------------------------------------------------------------------------------------------
// Help and version

Deno.test("cli: --help and -h exit 0 and print usage naming both subcommands", async () => {
  for (const flag of ["--help", "-h"]) {
    const r = await p2p(flag);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /Usage:/, show(r));
    assert.match(r.stdout, /p2p serve/, show(r));
    assert.match(r.stdout, /p2p join/, show(r));
    assert.equal(r.stderr, "", show(r));
  }
});

Deno.test("cli: serve --help exits 0 and documents the serve options", async () => {
  const r = await p2p("serve", "--help");
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /Usage: p2p serve/, show(r));
  for (const opt of ["--host", "--port", "--expire", "--json"]) {
    assert.ok(r.stdout.includes(opt), `serve help mentions ${opt}\n${show(r)}`);
  }
  assert.equal(r.stderr, "", show(r));
});

Deno.test("cli: join --help exits 0 and documents the join options", async () => {
  const r = await p2p("join", "--help");
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /Usage: p2p join/, show(r));
  for (const opt of ["--server", "--room", "--name", "--relay-only", "--keepalive", "--timeout"]) {
    assert.ok(r.stdout.includes(opt), `join help mentions ${opt}\n${show(r)}`);
  }
  assert.equal(r.stderr, "", show(r));
});

Deno.test("cli: --version and -V print 'p2p <version from deno.json>'", async () => {
  assert.match(denoJson.version, /^\d+\.\d+\.\d+/);
  for (const flag of ["--version", "-V"]) {
    const r = await p2p(flag);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout.trim(), `p2p ${denoJson.version}`, show(r));
    assert.equal(r.stderr, "", show(r));
  }
});

Deno.test("cli: no arguments prints usage and exits 2", async () => {
  const r = await p2p();
  assert.equal(r.code, 2, show(r));
  assert.match(r.stdout + r.stderr, /Usage:/, show(r));
});

// ---------------------------------------------------------------------------------------------
// Bad arguments: exit 2 with a one-line error

Deno.test("cli: unknown option is a usage error naming the option", async () => {
  assertUsageError(await p2p("serve", "--bogus"), "--bogus");
  assertUsageError(
    await p2p("join", "--server", "127.0.0.1:7777", "--room", "r", "--frob"),
    "--frob",
  );
});

Deno.test("cli: unexpected positional argument is a usage error", async () => {
  assertUsageError(await p2p("serve", "extra"), "extra");
});

Deno.test("cli: join without --server is a usage error naming --server", async () => {
  assertUsageError(await p2p("join", "--room", "lobby"), "--server");
});

Deno.test("cli: join without --room is a usage error naming --room", async () => {
  assertUsageError(await p2p("join", "--server", "127.0.0.1:7777"), "--room");
});

Deno.test("cli: bad ports are usage errors naming --port", async () => {
  assertUsageError(await p2p("serve", "--port", "70000"), "--port", "70000");
  assertUsageError(await p2p("serve", "--port", "abc"), "--port");
  assertUsageError(await p2p("serve", "--port=-1"), "--port");
  assertUsageError(await p2p("serve", "--port", "1.5"), "--port");
  assertUsageError(
    await p2p("join", "--server", "127.0.0.1:7777", "--room", "r", "--port", "99999"),
    "--port",
  );
});

Deno.test("cli: malformed --server values are usage errors naming --server", async () => {
  for (const server of ["nocolon", "127.0.0.1:0", "127.0.0.1:65536", "host:", ":7777"]) {
    assertUsageError(await p2p("join", "--server", server, "--room", "r"), "--server", server);
  }
});

Deno.test("cli: non-numeric or out-of-range durations are usage errors", async () => {
  const base = ["join", "--server", "127.0.0.1:7777", "--room", "r"];
  assertUsageError(await p2p(...base, "--keepalive", "abc"), "--keepalive", "abc");
  assertUsageError(await p2p(...base, "--keepalive", "0"), "--keepalive");
  // Above the server's 75 s expiry a peer would keep expiring: refused.
  assertUsageError(await p2p(...base, "--keepalive", "61"), "--keepalive", "60");
  assertUsageError(await p2p(...base, "--timeout", "soon"), "--timeout");
  assertUsageError(await p2p("serve", "--expire", "0"), "--expire");
});

Deno.test("cli: bad addresses and names are usage errors", async () => {
  assertUsageError(await p2p("serve", "--host", "999.0.0.1"), "--host");
  assertUsageError(await p2p("serve", "--host", "example.com"), "--host");
  const base = ["join", "--server", "127.0.0.1:7777"];
  assertUsageError(await p2p(...base, "--room", "x".repeat(65)), "--room");
  assertUsageError(await p2p(...base, "--room", "r", "--name", "é".repeat(33)), "--name");
  assertUsageError(await p2p(...base, "--room", "r", "--bind", "nowhere"), "--bind");
});

Deno.test("cli: unknown subcommand is a usage error naming it", async () => {
  assertUsageError(await p2p("frobnicate"), "frobnicate");
});

// ---------------------------------------------------------------------------------------------
// Runtime failure

Deno.test("cli: join with no server listening exits 1 promptly with a clear message", async () => {
  const port = freeUdpPort();
  const r = await p2p("join", "--server", `127.0.0.1:${port}`, "--room", "r", "--timeout", "1");
  assert.equal(r.code, 1, show(r));
  assert.ok(r.ms < 10_000, `gave up after ${Math.round(r.ms)} ms\n${show(r)}`);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("p2p: "));
  assert.equal(errors.length, 1, `one final error line\n${show(r)}`);
  assert.ok(errors[0]!.includes(`127.0.0.1:${port}`), `names the server address\n${show(r)}`);
  assert.match(errors[0]!, /server/i, show(r));
  assert.doesNotMatch(r.stderr, /^\s+at /m, `no stack trace\n${show(r)}`);
});
