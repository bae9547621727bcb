import assert from "node:assert/strict";
import {
  MAX_SAFE_DEPTH,
  MAX_SAFE_NAME,
  numberedName,
  safeFileName,
  safeRelativePath,
} from "../../lib/files/safe_name.ts";

Deno.test("names from the network become one plain, visible file name", () => {
  const cases: [string, string][] = [
    ["report.pdf", "report.pdf"],
    ["../../.ssh/authorized_keys", "_.._.ssh_authorized_keys"],
    ["/etc/passwd", "_etc_passwd"],
    ["C:\\Windows\\system32\\x.dll", "C__Windows_system32_x.dll"],
    ["..", "file"],
    [".", "file"],
    ["", "file"],
    [".bashrc", "bashrc"],
    ["CON", "_CON"],
    ["nul.txt", "_nul.txt"],
    ["com1.tar.gz", "_com1.tar.gz"],
    ["LPT¹", "_LPT¹"],
    ["console.log", "console.log"],
    ["a\u0000b\u001bc\u007fd\u0085e", "a_b_c_d_e"],
    ["evil\u202Etxt.exe", "eviltxt.exe"],
    ["zero\u200Bwidth\u2066x\u2069", "zerowidthx"],
    ["line\u2028break", "line_break"],
    ['what?<>|*:"', "what_______"],
    ["trailing. . ", "trailing"],
    ["e\u0301", "\u00e9"],
  ];
  for (const [raw, want] of cases) assert.equal(safeFileName(raw), want, JSON.stringify(raw));
});

Deno.test("over-long names are cut on code points, keeping a short extension", () => {
  const long = "ä".repeat(300) + ".txt";
  const s = safeFileName(long);
  assert.ok(new TextEncoder().encode(s).length <= MAX_SAFE_NAME);
  assert.ok(s.endsWith(".txt"));
  assert.ok(!s.includes("\uFFFD"));
  assert.ok(new TextEncoder().encode(numberedName(s, 9999)).length <= 255);
});

Deno.test("numbered names never replace the original", () => {
  assert.equal(numberedName("report.pdf", 0), "report.pdf");
  assert.equal(numberedName("report.pdf", 1), "report (1).pdf");
  assert.equal(numberedName("README", 2), "README (2)");
  assert.equal(numberedName("a.tar.gz", 3), "a.tar (3).gz");
});

Deno.test("safeRelativePath: directories kept as safe components, never above the directory", () => {
  const cases: [string, string[]][] = [
    ["album/sub/b.jpg", ["album", "sub", "b.jpg"]],
    ["a.txt", ["a.txt"]],
    ["../../.ssh/authorized_keys", ["ssh", "authorized_keys"]],
    ["/etc/passwd", ["etc", "passwd"]],
    ["C:\\Windows\\system.ini", ["C_", "Windows", "system.ini"]],
    ["a/./b//c", ["a", "b", "c"]],
    ["..", ["file"]],
    ["/", ["file"]],
    ["con/aux.txt", ["_con", "_aux.txt"]],
    ["x\u202e/gpj.exe", ["x", "gpj.exe"]],
  ];
  for (const [raw, want] of cases) {
    assert.deepEqual(safeRelativePath(raw), want, JSON.stringify(raw));
  }
  for (const [raw] of cases) {
    for (const part of safeRelativePath(raw)) {
      assert.equal(part, safeFileName(part), "each component is a safe name");
      assert.ok(part !== "." && part !== ".." && !part.includes("/"));
    }
  }
  const deep = Array.from({ length: 40 }, (_, i) => `d${i}`).join("/") + "/f.txt";
  const parts = safeRelativePath(deep);
  assert.equal(parts.length, MAX_SAFE_DEPTH + 1);
  assert.ok(parts[MAX_SAFE_DEPTH]!.endsWith("_f.txt"), parts[MAX_SAFE_DEPTH]);
});
