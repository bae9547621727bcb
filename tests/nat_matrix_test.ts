/**
 * The NAT traversal matrix as tests: every cell of `tests/support/matrix.ts` must reach the
 * path theory predicts, see the other side's real address on direct paths, and deliver every
 * message exactly once and in order. The table is printed at the end.
 */
import { type CellResult, CELLS, runCell, textTable } from "./support/matrix.ts";
import { labTest } from "./support/natlab.ts";

const results: CellResult[] = [];

for (const cell of CELLS) {
  Deno.test(labTest(`nat matrix: ${cell.title} → ${cell.expect}`, async () => {
    const r = await runCell(cell);
    results.push(r);
    if (r.error) throw new Error(r.error);
  }, { sanitizeResources: false, sanitizeOps: false }));
}

// The whole table once every cell has run (visible in CI output).
globalThis.addEventListener("unload", () => {
  if (results.length > 0) console.log(`\nNAT matrix:\n${textTable(results)}\n`);
});
