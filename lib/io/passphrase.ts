/**
 * Where a room passphrase comes from, in this order:
 *
 * 1. the `P2P_PASSPHRASE` environment variable;
 * 2. `--passphrase-file FILE`: its first line, without the line ending;
 * 3. a prompt (`Room passphrase: ` on stderr) with hidden input, when stdin is a terminal.
 *
 * Otherwise {@link readPassphrase} fails with a usage error (exit code 2). An empty passphrase
 * is refused everywhere. A passphrase file that cannot be read, or is empty, is a runtime
 * failure (exit code 1), like an identity file that cannot be read.
 *
 * @module
 */

/** The environment variable that carries the room passphrase. */
export const PASSPHRASE_ENV = "P2P_PASSPHRASE";

/** The prompt shown on stderr when the passphrase is typed. */
export const PASSPHRASE_PROMPT = "Room passphrase: ";

/** The message when no passphrase can be had (stdin is no terminal and nothing else is set). */
export const NO_PASSPHRASE =
  "no room passphrase: set P2P_PASSPHRASE, use --passphrase-file FILE, or run in a terminal";

/**
 * No passphrase could be had. `kind` tells how `p2p` ends: `"usage"` exits 2 with a usage
 * line, `"failed"` exits 1 with the message, `"interrupted"` (Ctrl-C at the prompt) exits 130.
 */
export class PassphraseError extends Error {
  /** How the program should end. */
  readonly kind: "usage" | "failed" | "interrupted";

  /** Makes an error with a user-facing message. */
  constructor(kind: "usage" | "failed" | "interrupted", message: string) {
    super(message);
    this.name = "PassphraseError";
    this.kind = kind;
  }
}

/** What {@link readPassphrase} needs of stdin (`Deno.stdin` has it). */
export interface PassphraseInput {
  /** Whether a person can type here. */
  isTerminal(): boolean;
  /** Raw mode on or off: no echo, no line editing, Ctrl-C arrives as a byte. */
  setRaw(mode: boolean): void;
  /** Reads some bytes; null at the end of input. */
  read(p: Uint8Array): Promise<number | null>;
}

/** Options of {@link readPassphrase}. */
export interface ReadPassphraseOptions {
  /** The environment (only `P2P_PASSPHRASE` is read). */
  env: { readonly [name: string]: string | undefined };
  /** `--passphrase-file`, if given. */
  file?: string | undefined;
  /** Standard input, for the prompt. */
  stdin: PassphraseInput;
  /** Writes prompt text (default: to stderr). */
  write?: (text: string) => void;
  /** The prompt (default {@link PASSPHRASE_PROMPT}). */
  prompt?: string;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The first line of `text` without its line ending. */
export function firstLine(text: string): string {
  const nl = text.indexOf("\n");
  const line = nl < 0 ? text : text.slice(0, nl);
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}

/**
 * Gets the room passphrase from `P2P_PASSPHRASE`, the passphrase file, or a hidden prompt (see
 * the module documentation). Throws {@link PassphraseError}.
 */
export async function readPassphrase(o: ReadPassphraseOptions): Promise<string> {
  const fromEnv = o.env[PASSPHRASE_ENV];
  if (fromEnv !== undefined) {
    if (fromEnv.trim() === "") {
      throw new PassphraseError("usage", `${PASSPHRASE_ENV} is empty or only spaces`);
    }
    return fromEnv;
  }
  if (o.file !== undefined) {
    const line = firstLine(await readPassphraseFile(o.file));
    if (line.trim() === "") {
      throw new PassphraseError(
        "failed",
        `Passphrase file ${o.file} starts with an empty line (or only spaces)`,
      );
    }
    return line;
  }
  if (!o.stdin.isTerminal()) throw new PassphraseError("usage", NO_PASSPHRASE);
  const write = o.write ?? writeStderr;
  for (let attempt = 0; attempt < 3; attempt++) {
    const typed = await promptHidden(o.stdin, write, o.prompt ?? PASSPHRASE_PROMPT);
    if (typed.trim() !== "") return typed;
    write("The passphrase must not be empty or only spaces.\n");
  }
  throw new PassphraseError("failed", "No room passphrase was entered");
}

/** Most bytes read from a passphrase file: a passphrase is one short line. */
export const MAX_PASSPHRASE_FILE = 4096;

/**
 * The text of a passphrase (or ticket) file: a regular file (not a FIFO or device that could block or never
 * end), at most {@link MAX_PASSPHRASE_FILE} bytes read, valid UTF-8 (two files with different
 * bytes must never give the same passphrase), a UTF-8 byte order mark dropped.
 */
export async function readPassphraseFile(path: string, what = "passphrase"): Promise<string> {
  const fail = (why: string) =>
    new PassphraseError("failed", `Cannot read ${what} file ${path}: ${why}`);
  let file: Deno.FsFile;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw fail("not a regular file (a pipe or device is not read)");
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw e instanceof PassphraseError ? e : fail(describe(e));
  }
  const buf = new Uint8Array(MAX_PASSPHRASE_FILE);
  let n = 0;
  try {
    while (n < buf.length) {
      const got = await file.read(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
  } catch (e) {
    throw fail(describe(e));
  } finally {
    file.close();
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(buf.subarray(0, n));
  } catch {
    // A cut at the size limit may split a character; only the first line matters then.
    const nl = buf.subarray(0, n).indexOf(0x0a);
    try {
      if (nl < 0) throw new Error();
      text = new TextDecoder("utf-8", { fatal: true }).decode(buf.subarray(0, nl));
    } catch {
      throw fail("not UTF-8 text; save it as UTF-8");
    }
  }
  return text;
}

function writeStderr(text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let n = 0; n < bytes.length;) n += Deno.stderr.writeSync(bytes.subarray(n));
}

/**
 * Shows {@link PASSPHRASE_PROMPT} and reads one line in raw mode without echo. Enter ends it,
 * Backspace deletes a character, Ctrl-U the whole line, Ctrl-C throws an `"interrupted"`
 * {@link PassphraseError}, Ctrl-D or the end of input on an empty line ends it empty. The
 * terminal mode is restored in any case. Bytes typed after Enter in the same read are dropped.
 */
async function promptHidden(
  stdin: PassphraseInput,
  write: (text: string) => void,
  prompt: string,
): Promise<string> {
  write(prompt);
  const typed: number[] = [];
  const buf = new Uint8Array(256);
  stdin.setRaw(true);
  try {
    for (;;) {
      const n = await stdin.read(buf);
      if (n === null) break;
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) return finish(typed);
        if (b === 0x03) throw new PassphraseError("interrupted", "Interrupted");
        if (b === 0x04) {
          if (typed.length === 0) return finish(typed);
        } else if (b === 0x7f || b === 0x08) {
          // Drop one whole UTF-8 character: continuation bytes, then its first byte.
          while (typed.length > 0 && (typed.at(-1)! & 0xc0) === 0x80) typed.pop();
          typed.pop();
        } else if (b === 0x15) {
          typed.length = 0;
        } else if (b >= 0x20 || b === 0x09) {
          typed.push(b);
        }
      }
    }
    return finish(typed);
  } finally {
    stdin.setRaw(false);
    write("\n");
    buf.fill(0);
  }
}

function finish(typed: number[]): string {
  const text = new TextDecoder().decode(Uint8Array.from(typed));
  typed.fill(0);
  return text;
}

/** Quotes `s` for a POSIX shell when it needs it. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_.:@%+=,/-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The command line to pass on so that others join a new room:
 * `P2P_PASSPHRASE='…' p2p join --server S --room R`.
 */
export function shareLine(server: string, room: string, passphrase: string): string {
  return `${PASSPHRASE_ENV}='${passphrase.replaceAll("'", `'\\''`)}' p2p join --server ${
    shellQuote(server)
  } --room ${shellQuote(room)}`;
}
