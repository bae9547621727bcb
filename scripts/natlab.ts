/**
 * `deno task natlab`: runs the NAT traversal matrix in network namespaces (needs root, `ip`,
 * `nft`, `conntrack`; the port-mapping cell also `miniupnpd`), prints it as a table and writes
 * it as a Markdown document to a temporary file it names, or to `--out FILE`. It never writes
 * into the checkout unless told to: `deno task natlab:docs` passes `--out docs/nat-matrix.md`.
 *
 * Options (after `--` or directly):
 * - `--trials N` runs each selected cell N times (default 1) and reports per cell the success
 *   rate and the time to the final path (median, worst);
 * - `--only SUBSTRING` (repeatable; bare arguments too) selects cells whose id contains it, e.g.
 *   `deno task natlab -- --only symmetric --trials 10`;
 * - `--jobs K` runs up to K runs at once (default 1; more is faster but loads the machine, which
 *   the timing columns then show);
 * - `--note TEXT` adds TEXT to the document's "Last run" line (e.g. which branches were merged);
 * - `--out FILE` writes the document to FILE (relative to the working directory) instead of a
 *   temporary file.
 *
 * A filtered run prints the table but writes no document. The document is passed through
 * `deno fmt` with the project's settings, so `deno task check` accepts it as written. Exit code
 * 1 if any run failed a check, the lab is unavailable or the document could not be written or
 * formatted; 2 for bad arguments.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { type CellResult, CELLS, markdown, runCell, textTable } from "../tests/support/matrix.ts";
import { labAvailable, missingTools } from "../tests/support/natlab.ts";

function usage(message: string): never {
  console.error(
    `${message}\nusage: deno task natlab [-- [--trials N] [--jobs K] [--only ID]... [--note TEXT] ` +
      "[--out FILE]]",
  );
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    // `deno task natlab -- --trials 3` passes the `--` on (after natlab:docs's own `--out`).
    args: Deno.args.filter((a) => a !== "--"),
    options: {
      trials: { type: "string", default: "1" },
      jobs: { type: "string", default: "1" },
      only: { type: "string", multiple: true, default: [] },
      note: { type: "string", default: "" },
      out: { type: "string" },
    },
    allowPositionals: true,
  });
} catch (e) {
  usage(e instanceof Error ? e.message : String(e));
}
const count = (name: string, v: string, max: number) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) usage(`--${name} must be 1 to ${max}, not ${v}`);
  return n;
};
const trials = count("trials", parsed.values.trials, 1000);
const jobs = count("jobs", parsed.values.jobs, 16);
const only = [...parsed.values.only, ...parsed.positionals];

const cap = labAvailable();
if (!cap.ok) {
  console.error(`NAT lab unavailable: ${cap.reason}`);
  Deno.exit(1);
}
const selected = only.length === 0
  ? CELLS
  : CELLS.filter((c) => only.some((a) => c.id.includes(a)));
if (selected.length === 0) {
  usage(`No cell matches ${only.join(" ")}; ids: ${CELLS.map((c) => c.id).join(" ")}`);
}
// Cells whose tools are missing are skipped, visibly (and the document is then not written).
const cells = selected.filter((c) => {
  const missing = missingTools(c.needs?.tools ?? []);
  if (missing.length > 0) {
    console.error(
      `SKIP ${c.id}: ${missing.join(", ")} not found (apt-get install ${c.needs!.pkg})`,
    );
  }
  return missing.length === 0;
});

// Runs in table order (each cell's trials together), up to `jobs` at a time.
const queue = cells.flatMap((cell) => Array.from({ length: trials }, (_, i) => ({ cell, i })));
const results: (CellResult | undefined)[] = new Array(queue.length);
let next = 0;
async function worker(): Promise<void> {
  while (next < queue.length) {
    const k = next++;
    const { cell, i } = queue[k]!;
    const r = await runCell(cell);
    const time = r.finalMs === null
      ? ""
      : ` (final path ${r.finalPath.join("/")} after ${r.finalMs} ms)`;
    console.error(`${r.error ? "FAIL" : "ok  "} ${cell.id} #${i + 1}/${trials}${time}`);
    if (r.error) console.error(r.error);
    results[k] = r;
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, queue.length) }, worker));
const done = results.filter((r): r is CellResult => r !== undefined);
console.log(textTable(done));

if (cells.length === CELLS.length) {
  const uname = new TextDecoder().decode(
    (await new Deno.Command("uname", { args: ["-sr"], stdout: "piped" }).output()).stdout,
  ).trim();
  const context = `Last run: ${
    new Date().toISOString().slice(0, 10)
  } on ${uname}, Deno ${Deno.version.deno}, ${trials} trial${
    trials === 1 ? "" : "s"
  } per cell, ${jobs} at a time.${parsed.values.note ? ` ${parsed.values.note}` : ""}`;
  const out = parsed.values.out !== undefined
    ? resolve(parsed.values.out)
    : await Deno.makeTempFile({ prefix: "p2p-nat-matrix-", suffix: ".md" });
  try {
    await Deno.writeTextFile(out, markdown(done, context));
  } catch (e) {
    console.error(`Cannot write ${out}: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
  // deno fmt pads the table and wraps the prose, with deno.json's options (whatever the path).
  const root = new URL("..", import.meta.url);
  const fmt = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", "--config", new URL("deno.json", root).pathname, out],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!fmt.success) {
    console.error(`deno fmt ${out} failed (exit code ${fmt.code})`);
    Deno.exit(1);
  }
  console.log(
    `Wrote ${out}${
      parsed.values.out === undefined ? " (deno task natlab:docs writes docs/nat-matrix.md)" : ""
    }`,
  );
} else if (parsed.values.out !== undefined) {
  console.error(
    `Not writing ${parsed.values.out}: only ${cells.length} of ${CELLS.length} cells ran`,
  );
}
Deno.exit(done.some((r) => r.error) ? 1 : 0);
