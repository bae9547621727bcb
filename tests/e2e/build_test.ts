/**
 * The single-file builds work as a product: `deno bundle` output (everywhere) and a
 * `deno compile` binary (where a `denort` runtime is available: DENORT_BIN or Deno's cache).
 * Both run with exactly the permissions users give them (`PERMISSION_FLAGS`, the same as in
 * deno.json), and each peer like a user would: the room passphrase in `P2P_PASSPHRASE`, its own
 * configuration directory (`XDG_CONFIG_HOME`) where it makes its identity.
 */
import assert from "node:assert/strict";
import { childEnv, P2pProcess, PEER_ENV } from "../support/proc.ts";
import denoJson from "../../deno.json" with { type: "json" };
import {
  COMPILE_FLAGS,
  noDenort,
  PERMISSION_FLAGS,
  V8_FLAG_ARG,
} from "../../scripts/compile_all.ts";
import { BUNDLE_FLAGS } from "../../lib/roles/join_entry.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const WAIT = 15_000;

async function run(cmd: string[], cwd = ROOT): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    cwd,
    stdout: "piped",
    stderr: "piped",
    clearEnv: true,
    env: childEnv(PEER_ENV),
  })
    .output();
  const dec = new TextDecoder();
  return { code: o.code, out: dec.decode(o.stdout) + dec.decode(o.stderr) };
}

/** Runs a server and two peers from `prefix` (the command that runs p2p) and chats. */
async function chatWith(prefix: string[]): Promise<void> {
  const srv = new P2pProcess([...prefix, "serve", "--host", "127.0.0.1", "--port", "0", "--json"], {
    label: "server",
  });
  const listening = await srv.waitFor((e) => e.event === "listening", WAIT);
  const join = (name: string) =>
    new P2pProcess([
      ...prefix,
      "join",
      "--server",
      String(listening.addr),
      "--room",
      "build",
      "--name",
      name,
      "--bind",
      "127.0.0.1",
      "--json",
    ], {
      label: name,
      env: { P2P_PASSPHRASE: "built from one checkout" },
      configHome: true,
      unsetEnv: PEER_ENV,
    });
  const a = join("a"), b = join("b");
  try {
    await a.waitFor((e) => e.event === "peer" && e.name === "b", WAIT);
    await b.waitFor((e) => e.event === "peer" && e.name === "a", WAIT);
    await a.send("built and working");
    const m = await b.waitFor((e) => e.event === "message", WAIT);
    assert.equal(m.from, "a");
    assert.equal(m.text, "built and working");
    // Each made its own identity in its own configuration directory.
    for (const p of [a, b]) {
      const text = await Deno.readTextFile(`${p.configHome}/p2p/identity`);
      assert.match(text, /^p2p-identity-v1 \S+\n$/);
    }
  } finally {
    await Promise.all([a.close(), b.close(), srv.close()]);
  }
}

Deno.test({
  name: "the deno bundle output is one file that runs server and peers",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "p2p-bundle-" });
    try {
      const file = `${dir}/p2p.js`;
      const b = await run([Deno.execPath(), "bundle", "--quiet", "--output", file, "main.ts"]);
      assert.equal(b.code, 0, b.out);
      const prefix = [Deno.execPath(), "run", ...COMPILE_FLAGS, "--no-config", file];
      const v = await run([...prefix, "--version"], dir);
      assert.equal(v.out.trim(), `p2p ${denoJson.version}`);
      // As README says, from another directory; --new-room prints the line that runs it.
      const readme = await Deno.readTextFile(`${ROOT}/README.md`);
      const asReadme = `deno run ${BUNDLE_FLAGS} dist/p2p.js join`;
      assert.ok(readme.replace(/\s+/g, " ").includes(asReadme), `README says ${asReadme}`);
      const elsewhere = await Deno.makeTempDir({ prefix: "p2p-elsewhere-" });
      try {
        const args = ["join", "--server", "127.0.0.1:9", "--new-room", "--json", "--timeout", "1"];
        const made = await run(
          [Deno.execPath(), "run", ...BUNDLE_FLAGS.split(" "), file, ...args],
          elsewhere,
        );
        const room = JSON.parse(made.out.split("\n")[0]!);
        assert.equal(room.join, `deno run ${BUNDLE_FLAGS} p2p.js join`, made.out);
      } finally {
        await Deno.remove(elsewhere, { recursive: true });
      }
      // Run without --unstable-net, as people do at first: the error names the fix.
      const plain = [Deno.execPath(), "run", "--allow-all", "--no-config", file];
      const bare = await run([...plain, "serve", "--host", "127.0.0.1", "--port", "0"], dir);
      assert.equal(bare.code, 1, bare.out);
      assert.match(bare.out, /--unstable-net/);
      assert.doesNotMatch(bare.out, /is not a function/);
      await chatWith(prefix);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

function denortAvailable(): string | undefined {
  const env = Deno.env.get("DENORT_BIN");
  if (env) return env;
  const home = Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`;
  const zip = `${home}/dl/release/v${Deno.version.deno}/denort-x86_64-unknown-linux-gnu.zip`;
  try {
    Deno.statSync(zip);
    return zip;
  } catch {
    return undefined;
  }
}

const denort = denortAvailable();
if (!denort) {
  console.log(
    "SKIP: deno compile test: no denort runtime (set DENORT_BIN or cache it); the bundle test covers the build",
  );
}

Deno.test({
  name: "deno compile makes a self-contained binary that runs server and peers",
  ignore: !denort || Deno.build.os !== "linux",
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "p2p-compile-" });
    try {
      const bin = `${dir}/p2p`;
      const c = await run([
        Deno.execPath(),
        "compile",
        ...COMPILE_FLAGS,
        "--output",
        bin,
        "main.ts",
      ]);
      assert.equal(c.code, 0, c.out);
      const v = await run([bin, "--version"], dir);
      assert.equal(v.out.trim(), `p2p ${denoJson.version}`);
      await chatWith([bin]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("deno task compile without a usable denort says what to do, in one line", async () => {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["task", "--quiet", "compile"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { DENORT_BIN: "/nonexistent/denort" },
  }).output();
  const err = new TextDecoder().decode(o.stderr).trim();
  assert.equal(o.code, 1, err);
  assert.equal(err, `p2p compile: ${noDenort("/nonexistent/denort")}`);
  assert.match(err, /DENORT_BIN=\/nonexistent\/denort .*deno task bundle/);
  assert.doesNotMatch(err, /Stack backtrace|dns error/);
});

Deno.test("the permissions and V8 flags are the same in deno.json's join task and the compiled binaries", () => {
  const flags = (task: string) => task.split(/\s+/).filter((w) => w.startsWith("--"));
  const join = flags(denoJson.tasks.join);
  assert.deepEqual(join, [...PERMISSION_FLAGS, V8_FLAG_ARG], denoJson.tasks.join);
  assert.deepEqual(COMPILE_FLAGS, [...PERMISSION_FLAGS, "--unstable-net", V8_FLAG_ARG]);
  assert.match(denoJson.tasks.compile, /scripts\/compile_all\.ts --here$/);
  assert.ok(!join.includes("--allow-all") && !join.includes("-A"));
});
