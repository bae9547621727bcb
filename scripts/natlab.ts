/**
 * `deno task natlab`: runs the NAT traversal matrix in network namespaces (needs root, `ip`,
 * `nft`, `conntrack`), prints it as a table and writes `docs/nat-matrix.md`.
 *
 * Arguments filter cells by id substring (e.g. `deno task natlab symmetric`); a filtered run
 * prints but does not rewrite the document. The document is passed through `deno fmt`, so
 * `deno task check` accepts it as written. Exit code 1 if any cell failed, the lab is
 * unavailable or the document could not be formatted.
 *
 * @module
 */
import { CELLS, markdown, runCell, textTable } from "../tests/support/matrix.ts";
import { labAvailable } from "../tests/support/natlab.ts";

const cap = labAvailable();
if (!cap.ok) {
  console.error(`NAT lab unavailable: ${cap.reason}`);
  Deno.exit(1);
}
const cells = Deno.args.length === 0
  ? CELLS
  : CELLS.filter((c) => Deno.args.some((a) => c.id.includes(a)));
if (cells.length === 0) {
  console.error(`No cell matches ${Deno.args.join(" ")}; ids: ${CELLS.map((c) => c.id).join(" ")}`);
  Deno.exit(2);
}
const results = [];
for (const cell of cells) {
  const r = await runCell(cell);
  console.error(`${r.error ? "FAIL" : "ok  "} ${cell.id}`);
  if (r.error) console.error(r.error);
  results.push(r);
}
console.log(textTable(results));
if (cells === CELLS) {
  const uname = new TextDecoder().decode(
    (await new Deno.Command("uname", { args: ["-sr"], stdout: "piped" }).output()).stdout,
  ).trim();
  const context = `Last run: ${
    new Date().toISOString().slice(0, 10)
  } on ${uname}, Deno ${Deno.version.deno}.`;
  const doc = "docs/nat-matrix.md";
  const root = new URL("..", import.meta.url);
  await Deno.writeTextFile(new URL(doc, root), markdown(results, context));
  // deno fmt pads the table and wraps the prose; run from the root so deno.json's options apply.
  const fmt = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", doc],
    cwd: root,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!fmt.success) {
    console.error(`deno fmt ${doc} failed (exit code ${fmt.code})`);
    Deno.exit(1);
  }
  console.log(`Wrote ${doc}`);
}
Deno.exit(results.some((r) => r.error) ? 1 : 0);
