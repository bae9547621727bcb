/**
 * Tests of the systemd unit `deploy/p2p-serve.service`: its directives are the hardened set,
 * and systemd itself accepts it (`systemd-analyze verify`) and rates its sandbox
 * (`systemd-analyze security --offline`), on a copy whose ExecStart names an executable that
 * exists here. Those two need `systemd-analyze` (Debian package `systemd`): skipped with a
 * reason where it is missing, failed under `CI=true`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { run, toolTest } from "../support/tools.ts";

const UNIT_PATH = new URL("../../deploy/p2p-serve.service", import.meta.url);
const UNIT = Deno.readTextFileSync(UNIT_PATH);
const BINARY = "/usr/local/bin/p2p";

/** The unit's directives by section: `Section` → key → every value given, in order. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const s = /^\[(.+)\]$/.exec(line);
    if (s) {
      current = new Map();
      sections.set(s[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    assert.ok(current && eq > 0, `a directive inside a section: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...current.get(key) ?? [], line.slice(eq + 1).trim()]);
  }
  return sections;
}

const units = parseUnit(UNIT);
const service = units.get("Service")!;

/** The last value of `key` in [Service] (later assignments win in systemd). */
function one(key: string): string | undefined {
  return service.get(key)?.at(-1);
}

Deno.test("deploy: the unit runs the compiled binary's serve as a dynamic user", () => {
  assert.deepEqual([...units.keys()], ["Unit", "Service", "Install"]);
  const exec = one("ExecStart")!;
  assert.ok(exec.startsWith(`${BINARY} serve `), exec);
  assert.equal(service.get("ExecStart")!.length, 1);
  const port = Number(/--port (\d+)/.exec(exec)?.[1] ?? 7777);
  assert.ok(port >= 1024, "an unprivileged port: no capability needed");
  const metrics = /--metrics (\S+)/.exec(exec)?.[1];
  assert.ok(metrics?.startsWith("127.0.0.1:"), "metrics on loopback only");
  assert.equal(one("DynamicUser"), "yes");
  assert.equal(one("User"), undefined, "no fixed user");
  assert.deepEqual(units.get("Install")!.get("WantedBy"), ["multi-user.target"]);
});

Deno.test("deploy: the unit's directives are the hardened set", () => {
  const expected: Record<string, string> = {
    DynamicUser: "yes",
    NoNewPrivileges: "yes",
    CapabilityBoundingSet: "",
    AmbientCapabilities: "",
    ProtectSystem: "strict",
    ProtectHome: "yes",
    PrivateTmp: "yes",
    PrivateDevices: "yes",
    ProtectKernelTunables: "yes",
    ProtectKernelModules: "yes",
    ProtectKernelLogs: "yes",
    ProtectControlGroups: "yes",
    ProtectClock: "yes",
    ProtectHostname: "yes",
    RestrictAddressFamilies: "AF_INET AF_INET6 AF_UNIX",
    RestrictNamespaces: "yes",
    RestrictRealtime: "yes",
    RestrictSUIDSGID: "yes",
    LockPersonality: "yes",
    SystemCallArchitectures: "native",
  };
  for (const [key, value] of Object.entries(expected)) {
    assert.deepEqual(service.get(key), [value], `${key}=${value}`);
  }
  assert.deepEqual(service.get("SystemCallFilter"), ["@system-service", "~@privileged"]);
  assert.equal(
    service.get("MemoryDenyWriteExecute"),
    undefined,
    "V8 JITs: MemoryDenyWriteExecute would kill it",
  );
  assert.match(UNIT, /# MemoryDenyWriteExecute=yes must NOT be set: .*V8/);
  for (const key of ["ReadWritePaths", "User", "Group", "SupplementaryGroups", "PrivateNetwork"]) {
    assert.equal(service.get(key), undefined, `no ${key}`);
  }
});

/** A copy of the unit in a temporary directory whose ExecStart runs `/bin/true`. */
async function copyForVerify(): Promise<{ dir: string; path: string }> {
  const dir = await Deno.makeTempDir({ prefix: "p2p-unit-" });
  const bin = `${dir}/p2p`;
  await Deno.copyFile("/bin/true", bin);
  await Deno.chmod(bin, 0o755);
  const path = `${dir}/p2p-serve.service`;
  assert.ok(UNIT.includes(`ExecStart=${BINARY} `));
  await Deno.writeTextFile(path, UNIT.replaceAll(`ExecStart=${BINARY} `, `ExecStart=${bin} `));
  return { dir, path };
}

Deno.test(
  toolTest(
    "systemd-analyze",
    "systemd",
    "deploy: systemd-analyze verify accepts the unit",
    async () => {
      const { dir, path } = await copyForVerify();
      try {
        const r = await run("systemd-analyze", ["verify", "--man=no", path]);
        // verify exits 0 on unknown keys and bad values, only warning: any output is a finding.
        assert.equal(r.code, 0, r.stderr);
        assert.equal((r.stdout + r.stderr).trim(), "", "no warnings");
        // ... and it does find them: the same check on a broken copy.
        const broken = `${dir}/broken.service`;
        await Deno.writeTextFile(
          broken,
          (await Deno.readTextFile(path)).replace("ProtectSystem=strict", "ProtectSystem=banana"),
        );
        const b = await run("systemd-analyze", ["verify", "--man=no", broken]);
        assert.match(b.stderr, /ProtectSystem|protect system/i, "verify reports a bad value");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  ),
);

Deno.test(
  toolTest(
    "systemd-analyze",
    "systemd",
    "deploy: systemd-analyze security rates the sandbox OK",
    async () => {
      const { dir, path } = await copyForVerify();
      try {
        const r = await run("systemd-analyze", ["security", "--offline=true", "--no-pager", path]);
        assert.equal(r.code, 0, r.stderr);
        const m = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout);
        assert.ok(m, r.stdout + r.stderr);
        // 0 is best, 10 worst; up to 2.0 reads "OK" (a default service scores 9.6 "UNSAFE").
        assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]}:\n${r.stdout}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  ),
);
