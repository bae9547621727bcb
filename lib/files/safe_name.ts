/**
 * File names from the network made safe to create in a download directory: {@link safeFileName}
 * turns whatever an offer says into one plain name of the directory (never a path),
 * {@link safeRelativePath} a name with directories (a directory sent as its files) into safe
 * components, and {@link numberedName} gives the numbered alternatives used instead of
 * overwriting. Pure.
 *
 * What {@link safeFileName} does, in order:
 *
 * - NFC-normalises the name;
 * - drops format characters (`\p{Cf}`: bidi embeddings, overrides, isolates and marks, zero-width
 *   spaces and joiners, BOM, soft hyphen, tags) and replaces control characters (C0, DEL, C1),
 *   line and paragraph separators, path separators (`/`, `\`) and the characters Windows refuses
 *   (`<>:"|?*`) with `_`, so `../../.ssh/authorized_keys` becomes `.._.._.ssh_authorized_keys`
 *   and then, without its leading dots, `_.._.ssh_authorized_keys`;
 * - strips leading dots and white space (no hidden files, no `.` or `..`, nothing that collides
 *   with the hidden names of partial downloads) and trailing dots and white space (Windows);
 * - prefixes `_` to Windows device names (`CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`,
 *   `LPT0`–`LPT9`, with superscript digits too), with or without an extension;
 * - shortens the name on code points to {@link MAX_SAFE_NAME} bytes of UTF-8, keeping a short
 *   extension, so a numbered form still fits NAME_MAX (255);
 * - names what is left empty `file`.
 *
 * @module
 */

/** Longest safe name in bytes of UTF-8: 255 less room for a ` (9999)` suffix. */
export const MAX_SAFE_NAME = 240;

/** Longest extension kept when a name is shortened, in bytes of UTF-8. */
const MAX_KEPT_EXTENSION = 16;

const utf8 = new TextEncoder();

const DEVICE = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])$/i;

/** Whether a code point is replaced by `_`: controls, separators, Windows-refused characters. */
function replaced(ch: string): boolean {
  const c = ch.codePointAt(0)!;
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029 ||
    '/\\<>:"|?*'.includes(ch);
}

/** Cuts `s` to at most `max` bytes of UTF-8 on a code point boundary. */
function cutBytes(s: string, max: number): string {
  let out = "", n = 0;
  for (const ch of s) {
    const len = utf8.encode(ch).length;
    if (n + len > max) break;
    out += ch;
    n += len;
  }
  return out;
}

/** The part of `name` from its last dot (`.gz`), or "" when it has none past the start. */
function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot) : "";
}

/** A name from the network as one safe file name of a directory (see the module's notes). */
export function safeFileName(raw: string): string {
  let s = "";
  for (const ch of raw.normalize("NFC")) {
    if (/\p{Cf}/u.test(ch)) continue;
    s += replaced(ch) ? "_" : ch;
  }
  s = s.replace(/^[.\s]+/u, "").replace(/[.\s]+$/u, "");
  const base = s.split(".")[0]!;
  if (DEVICE.test(base.trim())) s = "_" + s;
  if (utf8.encode(s).length > MAX_SAFE_NAME) {
    const ext = extensionOf(s);
    const keep = utf8.encode(ext).length <= MAX_KEPT_EXTENSION ? ext : "";
    s = cutBytes(s, MAX_SAFE_NAME - utf8.encode(keep).length).replace(/[.\s]+$/u, "") + keep;
  }
  return s === "" ? "file" : s;
}

/** Most directories above a received file; deeper ones are folded into its name. */
export const MAX_SAFE_DEPTH = 16;

/**
 * A name from the network as a safe relative path of the download directory: its components
 * (split at `/` or `\`, without empty ones, `.` and `..`), each made safe by
 * {@link safeFileName}; the last is the file's name, the others its directories (at most
 * {@link MAX_SAFE_DEPTH}: what lies deeper joins the file's name with `_`). Never empty, never
 * absolute, never above the directory: `../../.ssh/authorized_keys` is `ssh/authorized_keys`.
 */
export function safeRelativePath(raw: string): string[] {
  const parts = raw.split(/[/\\]/).filter((p) => p !== "" && p !== "." && p !== "..");
  if (parts.length === 0) return ["file"];
  const dirs = parts.slice(0, -1), file = parts[parts.length - 1]!;
  const extra = dirs.splice(MAX_SAFE_DEPTH);
  return [...dirs.map(safeFileName), safeFileName([...extra, file].join("_"))];
}

/** The `n`th alternative to a taken name: `report.pdf` → `report (1).pdf`; n = 0 is the name. */
export function numberedName(name: string, n: number): string {
  if (n === 0) return name;
  const ext = extensionOf(name);
  return `${name.slice(0, name.length - ext.length)} (${n})${ext}`;
}
