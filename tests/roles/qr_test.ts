/** Tests of the terminal QR code (`lib/roles/qr.ts`): the drawing holds the code's modules. */
import assert from "node:assert/strict";
import qrcode from "qrcode-generator";
import { qrLines } from "../../lib/roles/qr.ts";

Deno.test("qr: a ticket is drawn with its quiet zone, two module rows per line, module for module", () => {
  const ticket = "p2p-aeaqo-ztsnf-sw4zd-tk3xq-7hmdp-2rawt-5nb6f-zc4ej-aecmw-adra4-pgdye-pktwa";
  const lines = qrLines(ticket);
  const q = qrcode(0, "M");
  q.addData(ticket.toUpperCase().replaceAll("-", ""), "Alphanumeric");
  q.make();
  const n = q.getModuleCount();
  assert.equal(lines[0]!.length, n + 8);
  assert.equal(lines.length, Math.ceil((n + 8) / 2));
  assert.match(lines[0]!, /^ +$/, "quiet zone");
  // Read the modules back from the half blocks and compare.
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      const ch = lines[Math.floor((r + 4) / 2)]![c + 4]!;
      const top = (r + 4) % 2 === 0;
      const shown = ch === "█" || (top ? ch === "▀" : ch === "▄");
      assert.equal(shown, q.isDark(r, c), `module ${r},${c}`);
    }
  }
});
