/**
 * Builds one self-contained `p2p` executable per OS with `deno compile`.
 *
 * `deno compile` needs the `denort` runtime for each target; it downloads it unless
 * `DENORT_BIN` points at one (which then serves only the host's own target). Output goes to
 * `dist/p2p-<target>[.exe]`. Exits 1 if any target fails, listing which.
 *
 * @module
 */

/** Targets `deno compile` supports. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/** Flags every binary is built with: the permissions p2p needs, nothing more. */
export const COMPILE_FLAGS = ["--allow-net", "--allow-sys", "--allow-env", "--unstable-net"];

/** Compiles `main.ts` for `target` into `dist/`; returns the output path or throws. */
export async function compile(target: string): Promise<string> {
  const output = `dist/p2p-${target}${target.includes("windows") ? ".exe" : ""}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["compile", ...COMPILE_FLAGS, "--target", target, "--output", output, "main.ts"],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`deno compile for ${target} failed (exit ${out.code})`);
  return output;
}

if (import.meta.main) {
  const wanted = Deno.args.length > 0 ? Deno.args : [...TARGETS];
  const failed: string[] = [];
  for (const t of wanted) {
    try {
      console.log(`Built ${await compile(t)}`);
    } catch (e) {
      console.error((e as Error).message);
      failed.push(t);
    }
  }
  if (failed.length > 0) {
    console.error(`Failed targets: ${failed.join(", ")}`);
    Deno.exit(1);
  }
}
