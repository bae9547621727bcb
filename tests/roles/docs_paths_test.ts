/**
 * The documents name only paths that exist: every `lib/…`, `tests/…`, `scripts/…`, `bench/…`,
 * `docs/…` and `deploy/…` path in README.md, docs/architecture.md, docs/protocol.md and docs/usage.md (a file,
 * or a folder when it ends in `/`) is in the checkout, so moving or deleting a module without
 * fixing the documents fails here. Globs and placeholders (`tests/<area>/*_test.ts`) are not
 * paths and are skipped. And the map is whole: docs/architecture.md names every module of `lib/`
 * and every file of `tests/`, so a new one gets its line.
 *
 * @module
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url);
const DOCUMENTS = [
  "README.md",
  "docs/architecture.md",
  "docs/protocol.md",
  "docs/usage.md",
  "docs/churn.md",
  "docs/how-it-works.md",
  "docs/security.md",
  "docs/server.md",
  "docs/doctor.md",
];

/**
 * A path as the documents write it: a known top folder, then path characters; not preceded by
 * a word character, `/` or `.` (so `../../lib/x.ts` in a code sample and URLs are not read as
 * paths of this checkout).
 */
const PATH = /(?<![\w/.-])(?:lib|tests|scripts|bench|docs|deploy)\/[\w./-]*/g;

/** The paths `text` names: trailing punctuation removed, globs and placeholders skipped. */
export function pathsIn(text: string): string[] {
  const out = new Set<string>();
  for (const m of text.matchAll(PATH)) {
    const end = m.index + m[0].length;
    // `tests/<area>/`, `lib/peer/{a,b}.ts`, `tests/*_test.ts`: a pattern, not a path.
    if (/[<*{]/.test(text[end] ?? "")) continue;
    out.add(m[0].replace(/[.,:;]+$/, ""));
  }
  return [...out];
}

async function exists(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(new URL(path, ROOT));
    return path.endsWith("/") ? info.isDirectory : info.isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

Deno.test("pathsIn reads paths and folders, and skips code-relative paths, URLs and patterns", () => {
  assert.deepEqual(
    pathsIn(
      "See `lib/wire/header.ts`, [x](lib/nat/portmap/mapper.ts) and tests/e2e/. " +
        'import "../../lib/io/udp.ts"; https://example.org/lib/a.ts; tests/<area>/*_test.ts; ' +
        "lib/peer/handshake/{handshake,secure_link}.ts; bench/room_bench.ts, scripts/soak.ts:",
    ),
    [
      "lib/wire/header.ts",
      "lib/nat/portmap/mapper.ts",
      "tests/e2e/",
      "bench/room_bench.ts",
      "scripts/soak.ts",
    ],
  );
});

for (const doc of DOCUMENTS) {
  Deno.test(`${doc} names only paths that exist`, async () => {
    const text = await Deno.readTextFile(new URL(doc, ROOT));
    const paths = pathsIn(text);
    assert.ok(paths.length > 0, `${doc} names no path at all: is the pattern still right?`);
    const missing: string[] = [];
    for (const p of paths) if (!await exists(p)) missing.push(p);
    assert.deepEqual(missing, [], `${doc} names paths that are not in the checkout`);
  });
}

/** Every `.ts` file under `dir` (a folder of the checkout, ending in `/`), as checkout paths. */
async function modulesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(dir, ROOT))) {
    if (e.isDirectory) out.push(...await modulesUnder(`${dir}${e.name}/`));
    else if (e.isFile && e.name.endsWith(".ts")) out.push(`${dir}${e.name}`);
  }
  return out.sort();
}

Deno.test("docs/architecture.md names every module of lib/ and every file of tests/", async () => {
  const named = new Set(pathsIn(await Deno.readTextFile(new URL("docs/architecture.md", ROOT))));
  const files = [...await modulesUnder("lib/"), ...await modulesUnder("tests/")];
  assert.ok(files.length > 100, `only ${files.length} modules found: is the walk still right?`);
  const unnamed = files.filter((f) => !named.has(f));
  assert.deepEqual(unnamed, [], "modules docs/architecture.md does not name (add a line each)");
});
