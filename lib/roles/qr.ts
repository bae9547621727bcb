/**
 * A ticket as a QR code on the terminal, for `p2p join --new-room --qr`: the encoding comes from
 * the `qrcode-generator` package; this module only draws it with half-block characters (two
 * module rows per text row) inside the four-module quiet zone scanners need. Tickets ignore
 * case, so they are encoded upper-case without dashes: QR's alphanumeric mode, the densest
 * for them.
 *
 * @module
 */
import qrcode from "qrcode-generator";

/** Rows of text that draw `text` as a QR code (dark modules as `█`, light as spaces). */
export function qrLines(text: string): string[] {
  const q = qrcode(0, "M");
  q.addData(text.toUpperCase().replace(/[\s-]/g, ""), "Alphanumeric");
  q.make();
  const n = q.getModuleCount(), quiet = 4;
  const dark = (r: number, c: number) => r >= 0 && c >= 0 && r < n && c < n && q.isDark(r, c);
  const lines: string[] = [];
  for (let r = -quiet; r < n + quiet; r += 2) {
    let line = "";
    for (let c = -quiet; c < n + quiet; c++) {
      const top = dark(r, c), bottom = dark(r + 1, c);
      line += top ? (bottom ? "█" : "▀") : (bottom ? "▄" : " ");
    }
    lines.push(line);
  }
  return lines;
}
