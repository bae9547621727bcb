/**
 * The V8 flags `p2p join` runs with (the `join` task, and every binary: `scripts/compile_all.ts`
 * builds them in), kept here so that the benches start peers the same way.
 *
 * @module
 */

/**
 * V8 flags `p2p` runs with (deno.json's `join` task and the binaries; tests/e2e/build_test.ts
 * checks), so that a peer's memory stays flat during a long transfer (docs/benchmarks.md, "File
 * transfer"): every datagram's `node:crypto` cipher leaves 4–5 KB of garbage, and with V8's
 * defaults the young generation and the garbage promoted before the first full collection took
 * the resident set of a 2 GB transfer's sender and receiver to 200 and 166 MB.
 * `--optimize-for-size` keeps the heap small (a small young generation, full collections at a
 * lower growth); `--no-concurrent-recompilation` compiles optimized code on the main thread,
 * whose memory the compiler threads' own malloc arenas otherwise kept (6–12 MB). Goodput is
 * unchanged within the noise. V8 reads its flags only at start-up (`node:v8`'s
 * `setFlagsFromString` changes nothing later), so they are given on the command line; `deno
 * run main.ts` without them runs with V8's defaults (or `DENO_V8_FLAGS`).
 */
export const V8_FLAGS: string[] = ["--optimize-for-size", "--no-concurrent-recompilation"];

/** {@link V8_FLAGS} as the one `--v8-flags=...` argument of `deno run` and `deno compile`. */
export const V8_FLAG_ARG: string = `--v8-flags=${V8_FLAGS.join(",")}`;
