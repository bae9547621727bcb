/**
 * Builds one self-contained `p2p` executable per OS with `deno compile`.
 *
 * `deno compile` needs the `denort` runtime for each target; it downloads it unless
 * `DENORT_BIN` points at one (which then serves only the host's own target). Output goes to
 * `dist/p2p-<target>[.exe]`. Exits 1 if any target fails, listing which.
 *
 * @module
 */

import { V8_FLAG_ARG, V8_FLAGS } from "../lib/roles/v8_flags.ts";

/** Targets `deno compile` supports. */
export const TARGETS = [
  "x86_64-unknown-linux-gnu",
  "aarch64-unknown-linux-gnu",
  "x86_64-apple-darwin",
  "aarch64-apple-darwin",
  "x86_64-pc-windows-msvc",
] as const;

/**
 * The permissions `p2p` needs, nothing more: the network, host name and interfaces (`sys`),
 * environment variables (`P2P_PASSPHRASE`, `XDG_CONFIG_HOME`, `HOME`), and files. Reads and
 * writes are not scoped: the identity and known-peers files live under a directory chosen at
 * run time (`$XDG_CONFIG_HOME`, `$HOME`, `--identity FILE`) and `--passphrase-file` names any
 * file, while a binary's permissions are fixed when it is built. The same flags are in
 * deno.json's `join` and `compile` tasks (tests/e2e/build_test.ts checks).
 */
export const PERMISSION_FLAGS = [
  "--allow-net",
  "--allow-sys",
  "--allow-env",
  "--allow-read",
  "--allow-write",
];

export { V8_FLAG_ARG, V8_FLAGS };

/** Flags every binary is built with: {@link PERMISSION_FLAGS}, UDP support and {@link V8_FLAGS}. */
export const COMPILE_FLAGS = [...PERMISSION_FLAGS, "--unstable-net", V8_FLAG_ARG];

/** What to do when `deno compile` cannot get its runtime. */
export const NO_DENORT = "deno compile needs the denort runtime for the target and could not " +
  "download it (no access to dl.deno.land from here). Either set DENORT_BIN to a denort " +
  "binary of this Deno version for this machine, or use the single-file build instead: " +
  "`deno task bundle`, then `deno run --allow-all --unstable-net dist/p2p.js serve` (any " +
  "machine with Deno)";

/** {@link NO_DENORT}, or when `DENORT_BIN` names a file deno compile cannot use, that. */
export function noDenort(denortBin: string | undefined): string {
  if (!denortBin) return NO_DENORT;
  return `deno compile cannot use DENORT_BIN=${denortBin} (no denort binary of Deno ` +
    `${Deno.version.deno} for this machine there). Point DENORT_BIN at one, or use the ` +
    "single-file build instead: `deno task bundle`, then `deno run --allow-all --unstable-net " +
    "dist/p2p.js serve` (any machine with Deno)";
}

/**
 * Compiles `main.ts` for `target` (this machine's when undefined) into `output` (default
 * `dist/p2p-<target>`); returns the output path or throws with what went wrong and what to do.
 */
export async function compile(target?: string, output?: string): Promise<string> {
  output ??= `dist/p2p-${target}${target?.includes("windows") ? ".exe" : ""}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      ...COMPILE_FLAGS,
      ...(target ? ["--target", target] : []),
      "--output",
      output,
      "main.ts",
    ],
    stdout: "inherit",
    stderr: "piped",
  }).output();
  if (out.success) return output;
  const err = new TextDecoder().decode(out.stderr);
  if (/denort|dl\.deno\.land|dns error|download/i.test(err)) {
    throw new Error(noDenort(Deno.env.get("DENORT_BIN")));
  }
  await Deno.stderr.write(out.stderr);
  throw new Error(`deno compile for ${target ?? "this machine"} failed (exit ${out.code})`);
}

if (import.meta.main && Deno.args[0] === "--here") {
  // `deno task compile`: this machine's binary as dist/p2p.
  try {
    console.log(`Built ${await compile(undefined, "dist/p2p")}`);
  } catch (e) {
    console.error(`p2p compile: ${(e as Error).message}`);
    Deno.exit(1);
  }
} else if (import.meta.main) {
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
