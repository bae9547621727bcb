/**
 * The I/O boundary, enforced (modelled on tailscale's deptest): only `lib/io/` and `lib/roles/`
 * may touch sockets, files, clocks, timers and randomness, or reach the entry points. Every
 * other module of `lib/` is a pure state machine or codec, so a test can drive it with any
 * time and any random source. This test reads every such module's source and fails, printing
 * `file:line: what` for each violation, when it
 *
 * - imports a module of `lib/io/` or `lib/roles/`, an entry point (`main.ts`, `server.ts`,
 *   `peer.ts`, `mod.ts`) or anything else outside `lib/`;
 * - imports `node:fs`, `node:net`, `node:dgram`, `node:child_process`, `node:os`, `node:http`
 *   or `node:https`, or `randomBytes`, `randomUUID` or `randomFillSync` from `node:crypto`;
 * - uses `Deno.`, `setTimeout`, `setInterval`, `clearTimeout`, `clearInterval`, `Date.now`,
 *   `new Date(`, `performance.now`, `Math.random`, `getRandomValues`, `.randomBytes(`,
 *   `.randomUUID(`, `.randomFillSync(` or `fetch(`.
 *
 * Comments, and the contents of strings, template literals and regular expressions, are
 * blanked before the uses are matched (import specifiers are read from the strings).
 *
 * @module
 */
import assert from "node:assert/strict";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Folders of `lib/` whose modules may do I/O. */
const IO_FOLDERS = ["lib/io/", "lib/roles/"];

/** Entry points; nothing in `lib/` imports them. */
const ENTRY_POINTS = ["main.ts", "server.ts", "peer.ts", "mod.ts"];

/** Modules of Node's standard library that do I/O. */
const IO_NODE_MODULES = [
  "node:fs",
  "node:fs/promises",
  "node:net",
  "node:dgram",
  "node:child_process",
  "node:os",
  "node:http",
  "node:https",
];

/** `node:crypto`'s random sources. */
const NODE_RANDOM = ["randomBytes", "randomUUID", "randomFillSync"];

/** Uses matched in code (comments and literal contents blanked), by what they are called. */
const USES: [string, RegExp][] = [
  ["Deno.", /\bDeno\./g],
  ["setTimeout", /\bsetTimeout\b/g],
  ["setInterval", /\bsetInterval\b/g],
  ["clearTimeout", /\bclearTimeout\b/g],
  ["clearInterval", /\bclearInterval\b/g],
  ["Date.now", /\bDate\.now\b/g],
  ["new Date(", /\bnew\s+Date\s*\(/g],
  ["performance.now", /\bperformance\.now\b/g],
  ["Math.random", /\bMath\.random\b/g],
  ["getRandomValues", /\bgetRandomValues\b/g],
  [".randomBytes(", /\.\s*randomBytes\s*\(/g],
  [".randomUUID(", /\.\s*randomUUID\s*\(/g],
  [".randomFillSync(", /\.\s*randomFillSync\s*\(/g],
  ["fetch(", /(?<![\w$#.])fetch\s*\(/g],
];

/** One violation. */
interface Violation {
  file: string;
  line: number;
  what: string;
}

/** What {@link blank} returns: the source with comments blanked, and also literals blanked. */
interface Blanked {
  /** Comments replaced by spaces (line breaks kept); strings as they are. */
  noComments: string;
  /** Comments and the contents of strings, templates and regular expressions as spaces. */
  code: string;
}

const KEYWORDS_BEFORE_REGEX = new Set([
  "return",
  "typeof",
  "case",
  "do",
  "else",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "yield",
  "await",
]);

/**
 * Blanks comments and literal contents of TypeScript source, keeping every character's
 * position (so line numbers stay right). A `/` starts a regular expression where an operand is
 * expected: after an operator, an opening bracket, a comma, a keyword like `return`, or at the
 * start.
 */
export function blank(src: string): Blanked {
  const nc: string[] = [];
  const code: string[] = [];
  const keep = (c: string) => {
    nc.push(c);
    code.push(c);
  };
  /** Inside a literal: the character for noComments, a space (or line break) for code. */
  const literal = (c: string) => {
    nc.push(c);
    code.push(c === "\n" ? "\n" : " ");
  };
  const comment = (c: string) => {
    const b = c === "\n" ? "\n" : " ";
    nc.push(b);
    code.push(b);
  };
  /** For each open `${`: the brace depth inside it. */
  const templates: number[] = [];
  const regexAllowed = () => {
    let k = code.length - 1;
    while (k >= 0 && /\s/.test(code[k]!)) k--;
    if (k < 0) return true;
    const c = code[k]!;
    if ("(,=:[!&|?{};+-*%<>~^".includes(c)) return true;
    if (!/[\w$]/.test(c)) return false;
    let w = "";
    while (k >= 0 && /[\w$]/.test(code[k]!)) w = code[k--] + w;
    return KEYWORDS_BEFORE_REGEX.has(w);
  };
  let i = 0;
  /** Reads a template literal's text from `i` (after its backtick or a `}`). */
  const templateText = () => {
    while (i < src.length) {
      const c = src[i]!;
      if (c === "\\") {
        literal(c);
        if (i + 1 < src.length) literal(src[i + 1]!);
        i += 2;
      } else if (c === "`") {
        keep(c);
        i++;
        return;
      } else if (c === "$" && src[i + 1] === "{") {
        keep("$");
        keep("{");
        i += 2;
        templates.push(0);
        return;
      } else {
        literal(c);
        i++;
      }
    }
  };
  while (i < src.length) {
    const c = src[i]!;
    const next = src[i + 1];
    if (c === "/" && next === "/") {
      while (i < src.length && src[i] !== "\n") comment(src[i++]!);
    } else if (c === "/" && next === "*") {
      const end = src.indexOf("*/", i + 2);
      const stop = end < 0 ? src.length : end + 2;
      while (i < stop) comment(src[i++]!);
    } else if (c === "'" || c === '"') {
      keep(c);
      i++;
      while (i < src.length && src[i] !== c && src[i] !== "\n") {
        if (src[i] === "\\" && i + 1 < src.length) literal(src[i++]!);
        literal(src[i++]!);
      }
      if (i < src.length) keep(src[i++]!);
    } else if (c === "`") {
      keep(c);
      i++;
      templateText();
    } else if (c === "/" && regexAllowed()) {
      keep(c);
      i++;
      let inClass = false;
      while (i < src.length && src[i] !== "\n") {
        const r = src[i]!;
        if (r === "\\" && i + 1 < src.length) {
          literal(r);
          literal(src[i + 1]!);
          i += 2;
          continue;
        }
        if (r === "/" && !inClass) break;
        if (r === "[") inClass = true;
        else if (r === "]") inClass = false;
        literal(r);
        i++;
      }
      if (i < src.length && src[i] === "/") keep(src[i++]!);
    } else if (c === "{" && templates.length > 0) {
      templates[templates.length - 1]!++;
      keep(c);
      i++;
    } else if (c === "}" && templates.length > 0 && templates.at(-1) === 0) {
      templates.pop();
      keep(c);
      i++;
      templateText();
    } else {
      if (c === "}" && templates.length > 0) templates[templates.length - 1]!--;
      keep(c);
      i++;
    }
  }
  return { noComments: nc.join(""), code: code.join("") };
}

function lineOf(text: string, index: number): number {
  let n = 1;
  for (let k = text.indexOf("\n"); k >= 0 && k < index; k = text.indexOf("\n", k + 1)) n++;
  return n;
}

/** Every import specifier of `noComments`, with the names a static import binds and where. */
function imports(noComments: string): { spec: string; names: string; index: number }[] {
  const out: { spec: string; names: string; index: number }[] = [];
  const patterns = [
    /\b(?:import|export)\b([^;'"`]*?)\bfrom\s*(['"])([^'"\n]+)\2/g,
    /\bimport\s*()(['"])([^'"\n]+)\2/g,
    /\bimport\s*\(\s*()(['"])([^'"\n]+)\2\s*\)/g,
  ];
  for (const re of patterns) {
    for (const m of noComments.matchAll(re)) {
      out.push({ spec: m[3]!, names: m[1]!, index: m.index! + m[0].indexOf(m[2]!) });
    }
  }
  return out;
}

/** The violations of the module at `file` (relative to the root) with source `src`. */
export function violations(file: string, src: string): Violation[] {
  const { noComments, code } = blank(src);
  const found: Violation[] = [];
  const add = (index: number, what: string) => found.push({ file, line: lineOf(src, index), what });
  for (const { spec, names, index } of imports(noComments)) {
    if (spec.startsWith(".")) {
      const target = relative(ROOT, join(ROOT, dirname(file), spec)).replaceAll("\\", "/");
      if (IO_FOLDERS.some((f) => target.startsWith(f))) add(index, `imports ${target}`);
      else if (ENTRY_POINTS.includes(target)) add(index, `imports ${target}`);
      else if (!target.startsWith("lib/")) add(index, `imports ${target} (outside lib/)`);
    } else if (IO_NODE_MODULES.includes(spec)) {
      add(index, `imports ${spec}`);
    } else if (spec === "node:crypto") {
      for (const name of NODE_RANDOM) {
        if (new RegExp(`\\b${name}\\b`).test(names)) add(index, `import ${name} from node:crypto`);
      }
    }
  }
  for (const [what, re] of USES) {
    for (const m of code.matchAll(re)) add(m.index!, what);
  }
  return found.sort((a, b) => a.line - b.line);
}

/** Every `.ts` module under `lib/` outside the I/O folders, relative to the root. */
async function pureModules(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(join(ROOT, dir))) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) await walk(path);
      else if (e.isFile && e.name.endsWith(".ts")) out.push(path);
    }
  };
  await walk("lib");
  return out.filter((f) => !IO_FOLDERS.some((io) => f.startsWith(io))).sort();
}

Deno.test("boundary: no module outside lib/io and lib/roles does I/O or imports them", async () => {
  const modules = await pureModules();
  assert.ok(modules.length >= 30, `${modules.length} modules`);
  const all: Violation[] = [];
  for (const file of modules) {
    all.push(...violations(file, await Deno.readTextFile(join(ROOT, file))));
  }
  const problems = all.map((v) => `${v.file}:${v.line}: ${v.what}`);
  assert.deepEqual(
    problems,
    [],
    `I/O outside lib/io and lib/roles (pass clocks, timers and randomness in from the roles):\n${
      problems.join("\n")
    }`,
  );
});

Deno.test("boundary: comments and literals are not code; code inside templates is", () => {
  const what = (src: string) => violations("lib/core/x.ts", src).map((v) => `${v.line}: ${v.what}`);
  assert.deepEqual(what("// Date.now() in a comment\n/* Math.random() */ const a = 1;"), []);
  assert.deepEqual(what("const s = \"Deno.exit(1)\"; const t = 'setTimeout';"), []);
  assert.deepEqual(what("const r = /Date.now()\\/fetch(x)/g; const d = a / b / c;"), []);
  assert.deepEqual(what("const u = /https?:\\/\\//; const x = Date.now();"), ["1: Date.now"]);
  assert.deepEqual(what("const t = `at ${Date.now()} and ${`${Math.random()}`}`;"), [
    "1: Date.now",
    "1: Math.random",
  ]);
  assert.deepEqual(what("const t = `Deno.${ {a: 1}.a } x`;\nperformance.now();"), [
    "2: performance.now",
  ]);
  assert.deepEqual(what("return /x/.test(s) ? new Date(0) : 0;"), ["1: new Date("]);
  assert.deepEqual(what("x.fetch(1); this.#fetch(2); fetch(3);"), ["1: fetch("]);
  assert.deepEqual(what('import { randomBytes as r, createHash } from "node:crypto";'), [
    "1: import randomBytes from node:crypto",
  ]);
  assert.deepEqual(what('import { createHash } from "node:crypto";\ncrypto.randomUUID();'), [
    "2: .randomUUID(",
  ]);
  assert.deepEqual(
    what(
      'import type { SansIo } from "../io/udp.ts";\nimport {\n  a,\n} from "../roles/view.ts";\n' +
        'export { b } from "../../main.ts";\nconst m = await import("../../tests/x.ts");\n' +
        'import "node:fs";\nimport { c } from "../wire/wire.ts";',
    ),
    [
      "1: imports lib/io/udp.ts",
      "4: imports lib/roles/view.ts",
      "5: imports main.ts",
      "6: imports tests/x.ts (outside lib/)",
      "7: imports node:fs",
    ],
  );
});
