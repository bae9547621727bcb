/**
 * The long-term identity key of a user, kept in a file.
 *
 * Where: `--identity FILE`, else `$XDG_CONFIG_HOME/p2p/identity`, else
 * `$HOME/.config/p2p/identity` (on Windows, without either, `%APPDATA%\p2p\identity`).
 *
 * Format: one line of text, `p2p-identity-v1 <base64 of the 32-byte X25519 private key>`,
 * written with mode 0600 in a directory created with mode 0700. A file other users may read
 * or write (any group or other permission bit) is refused, like SSH refuses such keys: its key
 * can no longer be trusted to be yours alone. (Windows has no such modes; there no check is
 * made.)
 *
 * @module
 */
import { notOwnFile } from "./own_file.ts";
import { toHex } from "../wire/codec.ts";
import { systemRandom } from "./random.ts";
import { dirname, join } from "node:path";

/** The first word of an identity file: names the format and its version. */
export const IDENTITY_HEADER = "p2p-identity-v1";

/** Bytes of an X25519 private key. */
export const PRIVATE_KEY_BYTES = 32;

/** An identity file that cannot be used; the message says what to do. */
export class IdentityError extends Error {
  /** Makes an error with a user-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "IdentityError";
  }
}

/** Environment variables {@link identityPath} looks at. */
export interface ConfigEnv {
  /** The XDG base directory for configuration (used when absolute). */
  XDG_CONFIG_HOME?: string | undefined;
  /** The home directory. */
  HOME?: string | undefined;
  /** Windows: the roaming application data directory. */
  APPDATA?: string | undefined;
}

/**
 * The identity file to use: `override` (from `--identity`) if given, else
 * `$XDG_CONFIG_HOME/p2p/identity` (an absolute XDG_CONFIG_HOME only, as the XDG spec says),
 * else `$HOME/.config/p2p/identity`, else `%APPDATA%/p2p/identity`. Throws
 * {@link IdentityError} when none of them is set.
 */
export function identityPath(env: ConfigEnv, override?: string): string {
  if (override !== undefined && override !== "") return override;
  const xdg = env.XDG_CONFIG_HOME;
  if (xdg && (xdg.startsWith("/") || /^[A-Za-z]:[\\/]/.test(xdg))) {
    return join(xdg, "p2p", "identity");
  }
  if (env.HOME) return join(env.HOME, ".config", "p2p", "identity");
  if (env.APPDATA) return join(env.APPDATA, "p2p", "identity");
  throw new IdentityError(
    "Cannot find a configuration directory: set HOME or XDG_CONFIG_HOME, or use --identity FILE",
  );
}

/** The text of an identity file holding `privateKey`. */
export function formatIdentity(privateKey: Uint8Array): string {
  if (privateKey.length !== PRIVATE_KEY_BYTES) {
    throw new Error(`An identity key has ${PRIVATE_KEY_BYTES} bytes, not ${privateKey.length}`);
  }
  return `${IDENTITY_HEADER} ${btoa(String.fromCharCode(...privateKey))}\n`;
}

/** The private key in an identity file's text, or null when the text is malformed. */
export function parseIdentity(text: string): Uint8Array | null {
  const m = /^p2p-identity-v1 ([A-Za-z0-9+/]{43}=)\r?\n?$/.exec(text);
  if (!m) return null;
  try {
    const key = Uint8Array.from(atob(m[1]!), (c) => c.charCodeAt(0));
    return key.length === PRIVATE_KEY_BYTES ? key : null;
  } catch {
    return null;
  }
}

/** What {@link loadOrCreateIdentity} found. */
export interface LoadedIdentity {
  /** The 32-byte X25519 private key (build the identity with `Identity.fromPrivate`). */
  privateKey: Uint8Array;
  /** True when the file did not exist and was made now. */
  created: boolean;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Reads the identity at `path`, or makes a new random one there (directory 0700, file 0600)
 * if the file does not exist. Two processes creating it at once end up with the same key: the
 * file appears complete, with a hard link, or not at all. Throws {@link IdentityError} (with
 * what to do) for a file that others may access, a malformed file, or one that cannot be read
 * or written.
 */
export async function loadOrCreateIdentity(
  path: string,
  random: (n: number) => Uint8Array = systemRandom,
): Promise<LoadedIdentity> {
  const existing = await readIdentity(path);
  if (existing) return { privateKey: existing, created: false };
  const privateKey = random(PRIVATE_KEY_BYTES);
  const text = formatIdentity(privateKey);
  const dir = dirname(path);
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new IdentityError(`Cannot create directory ${dir} for the identity: ${describe(e)}`);
  }
  const temp = `${path}.${toHex(random(6))}.tmp`;
  try {
    await Deno.writeTextFile(temp, text, { createNew: true, mode: 0o600 });
    await Deno.link(temp, path);
  } catch (e) {
    if (!(e instanceof Deno.errors.AlreadyExists)) {
      throw new IdentityError(`Cannot write identity file ${path}: ${describe(e)}`);
    }
    // Another process made it first: use that one.
    const theirs = await readIdentity(path);
    if (theirs) return { privateKey: theirs, created: false };
    throw new IdentityError(`Identity file ${path} vanished while it was being created`);
  } finally {
    await Deno.remove(temp).catch(() => {});
  }
  return { privateKey, created: true };
}

/** The key in the identity file at `path`; null if there is no file. */
async function readIdentity(path: string): Promise<Uint8Array | null> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw new IdentityError(`Cannot read identity file ${path}: ${describe(e)}`);
  }
  const notOwn = notOwnFile(info);
  if (notOwn) throw new IdentityError(`Identity file ${path} ${notOwn}; use your own file`);
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    const mode = (info.mode & 0o777).toString(8).padStart(3, "0");
    throw new IdentityError(
      `Identity file ${path} is accessible by other users (mode ${mode}); ` +
        `if the key is still yours alone, run: chmod 600 ${path}`,
    );
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new IdentityError(`Cannot read identity file ${path}: ${describe(e)}`);
  }
  const key = parseIdentity(text);
  if (!key) {
    throw new IdentityError(
      `Identity file ${path} is malformed (expected one line "${IDENTITY_HEADER} <base64 key>"); ` +
        `move it away to make a new identity (your fingerprint will change)`,
    );
  }
  return key;
}
