/**
 * Tests that need an external tool (`promtool`, `systemd-analyze`, `script`): run where the tool
 * is installed; otherwise skipped with a visible `SKIP:` line, except under `CI=true`, where they
 * fail with the reason (`.ci/run` installs the tools).
 *
 * @module
 */

/** Whether `tool` can be started (it is looked up on `PATH`). */
export function hasTool(tool: string, probe: string[] = ["--version"]): boolean {
  try {
    new Deno.Command(tool, { args: probe, stdout: "null", stderr: "null", stdin: "null" })
      .outputSync();
    return true;
  } catch {
    return false;
  }
}

function isCi(): boolean {
  try {
    return Deno.env.get("CI") === "true";
  } catch {
    return false;
  }
}

/**
 * Definition of a test that needs `tool` (Debian package `pkg`), for
 * `Deno.test(toolTest(...))`: see the module documentation for what happens without it.
 */
export function toolTest(
  tool: string,
  pkg: string,
  name: string,
  fn: (t: Deno.TestContext) => void | Promise<void>,
): Deno.TestDefinition {
  if (hasTool(tool)) return { name, fn };
  const reason = `${tool} not found (apt-get install ${pkg})`;
  if (isCi()) {
    return {
      name,
      fn: () => {
        throw new Error(`${reason}; CI=true, so this fails`);
      },
    };
  }
  console.log(`SKIP: ${name}: ${reason}`);
  return { name, ignore: true, fn };
}

/** Runs `cmd` with `args` and `stdin`; returns its exit code and decoded output. */
export async function run(
  cmd: string,
  args: string[],
  o: { stdin?: string; env?: Record<string, string> } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: o.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    ...(o.env ? { env: o.env } : {}),
  }).spawn();
  if (o.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(o.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}
