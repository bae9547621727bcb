/** Where the room passphrase comes from: environment, file, hidden prompt, or a usage error. */
import assert from "node:assert/strict";
import {
  firstLine,
  NO_PASSPHRASE,
  PassphraseError,
  type PassphraseInput,
  readPassphrase,
  shareLine,
  shellQuote,
} from "../../lib/io/passphrase.ts";

/** A scripted stdin: `isTerminal` as given, reads return the chunks in order, then EOF. */
class FakeStdin implements PassphraseInput {
  raw: boolean[] = [];
  #chunks: Uint8Array[];
  #terminal: boolean;
  constructor(terminal: boolean, ...chunks: (string | number[])[]) {
    this.#terminal = terminal;
    this.#chunks = chunks.map((c) =>
      typeof c === "string" ? new TextEncoder().encode(c) : Uint8Array.from(c)
    );
  }
  isTerminal(): boolean {
    return this.#terminal;
  }
  setRaw(mode: boolean): void {
    this.raw.push(mode);
  }
  read(p: Uint8Array): Promise<number | null> {
    const c = this.#chunks.shift();
    if (!c) return Promise.resolve(null);
    p.set(c);
    return Promise.resolve(c.length);
  }
}

async function failure(p: Promise<unknown>): Promise<PassphraseError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof PassphraseError, String(e));
    return e;
  }
  assert.fail("expected a PassphraseError");
}

const noTty = new FakeStdin(false);

Deno.test("passphrase: P2P_PASSPHRASE first, then the file; empty values are refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2p-pass-test-" });
  try {
    const file = `${dir}/pass`;
    await Deno.writeTextFile(file, "from file\r\nsecond line\n");
    assert.equal(
      await readPassphrase({ env: { P2P_PASSPHRASE: "from env" }, file, stdin: noTty }),
      "from env",
    );
    assert.equal(await readPassphrase({ env: {}, file, stdin: noTty }), "from file");
    await Deno.writeTextFile(file, "  spaces kept  ");
    assert.equal(await readPassphrase({ env: {}, file, stdin: noTty }), "  spaces kept  ");

    const empty = await failure(
      readPassphrase({ env: { P2P_PASSPHRASE: "" }, file, stdin: noTty }),
    );
    assert.equal(empty.kind, "usage");
    assert.match(empty.message, /P2P_PASSPHRASE is empty/);
    await Deno.writeTextFile(file, "\nsecret on line two\n");
    const blank = await failure(readPassphrase({ env: {}, file, stdin: noTty }));
    assert.equal(blank.kind, "failed");
    assert.ok(blank.message.includes(file) && /empty/.test(blank.message), blank.message);
    const missing = await failure(readPassphrase({ env: {}, file: `${dir}/nope`, stdin: noTty }));
    assert.equal(missing.kind, "failed");
    assert.ok(
      missing.message.startsWith(`Cannot read passphrase file ${dir}/nope: `),
      missing.message,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("passphrase: without env, file or terminal it is a one-line usage error", async () => {
  const e = await failure(readPassphrase({ env: {}, stdin: noTty }));
  assert.equal(e.kind, "usage");
  assert.equal(e.message, NO_PASSPHRASE);
  assert.equal(
    NO_PASSPHRASE,
    "no room passphrase: set P2P_PASSPHRASE, use --passphrase-file FILE, or run in a terminal",
  );
});

Deno.test("passphrase prompt: hidden, with backspace and Ctrl-U; raw mode restored", async () => {
  let shown = "";
  const write = (t: string) => shown += t;
  // "wrong", Ctrl-U, "s3cr", "x", Backspace, "ét" (two bytes for é, one backspace), Enter.
  const stdin = new FakeStdin(
    true,
    "wrong",
    [0x15],
    "s3cr",
    "x",
    [0x7f],
    "e\u0301\u00e9",
    [0x7f],
    "t\r",
    "ignored",
  );
  assert.equal(await readPassphrase({ env: {}, stdin, write }), "s3cre\u0301t");
  assert.equal(shown, "Room passphrase: \n", "nothing typed is echoed");
  assert.deepEqual(stdin.raw, [true, false]);
});

Deno.test("passphrase prompt: Ctrl-C is 'interrupted'; empty entries are asked again", async () => {
  const ctrlC = new FakeStdin(true, "abc", [0x03]);
  const e = await failure(readPassphrase({ env: {}, stdin: ctrlC, write: () => {} }));
  assert.equal(e.kind, "interrupted");
  assert.deepEqual(ctrlC.raw, [true, false]);

  let shown = "";
  const retry = new FakeStdin(true, "\r", "ok\n");
  assert.equal(await readPassphrase({ env: {}, stdin: retry, write: (t) => shown += t }), "ok");
  assert.match(shown, /must not be empty/);
  const never = new FakeStdin(true, "\r", "\r", [0x04]);
  const gaveUp = await failure(readPassphrase({ env: {}, stdin: never, write: () => {} }));
  assert.equal(gaveUp.kind, "failed");
  assert.deepEqual(never.raw, [true, false, true, false, true, false]);
});

Deno.test("passphrase helpers: first line, shell quoting, the line to share", () => {
  assert.equal(firstLine("a\r\nb"), "a");
  assert.equal(firstLine("a"), "a");
  assert.equal(shellQuote("203.0.113.7:7777"), "203.0.113.7:7777");
  assert.equal(shellQuote("my room"), "'my room'");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
  assert.equal(
    shareLine("203.0.113.7:7777", "friends", "abcd-efgh"),
    "P2P_PASSPHRASE='abcd-efgh' p2p join --server 203.0.113.7:7777 --room friends",
  );
  assert.equal(
    shareLine("h:1", "our room", "x"),
    "P2P_PASSPHRASE='x' p2p join --server h:1 --room 'our room'",
  );
});

Deno.test("passphrase file: pipes and devices are not read; BOM dropped; bytes not UTF-8 refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2p-pass-" });
  try {
    const read = (file: string, env = {}) => readPassphrase({ env, file, stdin: noTty });
    // /dev/zero would be read for ever, a FIFO would block for ever: refused at once.
    for (const file of ["/dev/zero"]) {
      const e = await failure(read(file));
      assert.equal(e.kind, "failed");
      assert.match(e.message, /not a regular file/);
    }
    const fifo = `${dir}/fifo`;
    const mk = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assert.ok(mk.success);
    assert.match((await failure(read(fifo))).message, /not a regular file/);
    // A BOM (Windows editors) is not part of the passphrase.
    await Deno.writeTextFile(`${dir}/bom`, "\uFEFFsecret words\r\n");
    assert.equal(await read(`${dir}/bom`), "secret words");
    // Latin-1 bytes would collapse to U+FFFD: two different files, one room. Refused.
    await Deno.writeFile(`${dir}/latin1`, new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x0a]));
    assert.match((await failure(read(`${dir}/latin1`))).message, /not UTF-8/);
    // Only spaces is no passphrase, in the file and in the environment.
    await Deno.writeTextFile(`${dir}/spaces`, "   \n");
    assert.match((await failure(read(`${dir}/spaces`))).message, /only spaces/);
    assert.equal((await failure(read(`${dir}/bom`, { P2P_PASSPHRASE: "  " }))).kind, "usage");
    // A huge file: only the first 4 KiB are read; its first line is the passphrase.
    await Deno.writeTextFile(`${dir}/big`, "first line\n" + "x".repeat(10_000_000));
    assert.equal(await read(`${dir}/big`), "first line");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
