/**
 * Tests of peer names (`lib/core/names.ts`): the allowed set, look-alike detection and escaping for
 * display. Pure functions only.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  confusableWith,
  displayName,
  isConfusableWithAny,
  MAX_NAME_BYTES,
  normalizeName,
  skeleton,
} from "../../lib/core/names.ts";

function accepted(raw: string): string {
  const r = normalizeName(raw);
  assert.ok(r.ok, `${JSON.stringify(raw)} should be accepted: ${r.ok ? "" : r.reason}`);
  return r.name;
}

function refused(raw: string): string {
  const r = normalizeName(raw);
  assert.ok(!r.ok, `${JSON.stringify(raw)} should be refused, got ${JSON.stringify(r)}`);
  return r.reason;
}

// ---------------------------------------------------------------------------------------------
// normalizeName

Deno.test("normalizeName: letters and digits of any script, single spaces, -_.'@+", () => {
  for (
    const n of [
      "alice",
      "Bob Smith",
      "Zoë",
      "Борис",
      "李雷",
      "محمد",
      "יוסי",
      "नमस्ते",
      "ปั้น",
      "o'brien",
      "a-b_c.d@e+f",
      "user42",
      "٣٤",
      "x",
    ]
  ) {
    assert.equal(accepted(n), n);
  }
});

Deno.test("normalizeName: NFKC, then trim", () => {
  assert.equal(accepted("  alice  "), "alice");
  assert.equal(accepted("ａｌｉｃｅ"), "alice", "full-width letters fold");
  assert.equal(accepted("ﬁsh"), "fish", "ligatures fold");
  assert.equal(accepted("e\u0301"), "é", "decomposed accents compose");
  assert.equal(accepted("a\u00a0b"), "a b", "a no-break space becomes a space");
  assert.equal(accepted("a\u3000b"), "a b", "an ideographic space becomes a space");
  assert.equal(accepted("\talice\n"), "alice", "white space at the ends is trimmed");
});

Deno.test("normalizeName: 1 to 64 UTF-8 bytes", () => {
  assert.match(refused(""), /empty/);
  assert.match(refused("   "), /empty/);
  assert.equal(accepted("a".repeat(MAX_NAME_BYTES)).length, 64);
  assert.match(refused("a".repeat(MAX_NAME_BYTES + 1)), /65 bytes.*shorter/);
  assert.equal(accepted("李".repeat(21)), "李".repeat(21), "63 bytes");
  assert.match(refused("李".repeat(22)), /66 bytes/);
});

Deno.test("normalizeName: spaces inside only, never two in a row", () => {
  assert.match(refused("a  b"), /two spaces in a row; use single spaces/);
  assert.match(refused("a\u3000 b"), /two spaces/, "two after NFKC");
});

Deno.test("normalizeName: control characters are refused, with what to do", () => {
  for (const raw of ["ev\x1b[2Jil", "a\nb", "a\rb", "a\tb", "a\x00b", "a\x7fb", "a\x85b"]) {
    const reason = refused(raw);
    assert.match(reason, /control character U\+00[0-9A-F]{2}/, reason);
    assert.match(reason, /names may use letters and digits/, reason);
    assert.doesNotMatch(reason, /\p{Cc}/u, "the reason itself is printable");
  }
});

Deno.test("normalizeName: bidi controls, zero-width characters and BOM are refused", () => {
  for (const c of [0x202e, 0x202a, 0x202d, 0x2066, 0x2067, 0x2068, 0x2069, 0x200e, 0x200f]) {
    const reason = refused(`ab${String.fromCodePoint(c)}cd`);
    assert.match(reason, /bidirectional/, reason);
    assert.ok(reason.includes(`U+${c.toString(16).toUpperCase()}`), reason);
  }
  for (const c of [0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, 0x00ad, 0xe0041]) {
    const reason = refused(`ab${String.fromCodePoint(c)}cd`);
    assert.match(reason, /invisible format character/, reason);
  }
});

Deno.test("normalizeName: private use, unassigned, surrogates, separators, symbols", () => {
  assert.match(refused("a\ue000b"), /private-use character U\+E000/);
  assert.match(refused("a\u{e0fff}b"), /unassigned/);
  assert.match(refused("a\u{10ffff}b"), /unassigned/);
  assert.match(refused("a\ud800b"), /lone surrogate U\+D800/);
  assert.match(refused("a\u2028b"), /line or paragraph separator U\+2028/);
  assert.match(refused("a\u2029b"), /line or paragraph separator U\+2029/);
  assert.match(refused("a\u1680b"), /space character U\+1680/);
  for (const s of ["a!b", "a{x}", "a/b", "a\\b", 'a"b', "a<b", "a#b", "a*b", "bob👋", "a$b"]) {
    const reason = refused(s);
    assert.match(reason, /not allowed; names may use/, reason);
  }
});

Deno.test("normalizeName: combining marks only after a letter, not too many", () => {
  assert.equal(accepted("ye\u0306"), "ye\u0306".normalize("NFKC"));
  assert.match(refused("\u0301abc"), /combining mark U\+0301 that does not follow a letter/);
  assert.match(refused("a \u0301b"), /does not follow a letter/);
  assert.match(refused("1\u20e3"), /does not follow a letter/, "keycap on a digit");
  assert.equal(accepted("a\u0316\u0317\u0318\u0319"), "a\u0316\u0317\u0318\u0319");
  assert.match(refused("a\u0316\u0317\u0318\u0319\u031a"), /more than 4 combining marks/);
});

Deno.test("normalizeName: the result is stable and displays unchanged", () => {
  for (const n of ["alice", "Zoë", "नमस्ते", "a b", "ｘｙ", "o'brien"]) {
    const once = accepted(n);
    assert.equal(accepted(once), once, "idempotent");
    assert.equal(displayName(once), once, "printable names pass displayName unchanged");
  }
});

// ---------------------------------------------------------------------------------------------
// skeleton, isConfusableWithAny

Deno.test("skeleton: case and Latin/Cyrillic/Greek look-alikes fold together", () => {
  assert.equal(skeleton("Alice"), skeleton("alice"));
  assert.equal(skeleton("аlice"), "alice", "Cyrillic а");
  for (
    const [latin, other] of [
      ["a", "а"],
      ["e", "е"],
      ["o", "о"],
      ["p", "р"],
      ["c", "с"],
      ["x", "х"],
      ["y", "у"],
      ["i", "і"],
      ["j", "ј"],
      ["s", "ѕ"],
      ["o", "ο"],
      ["a", "α"],
      ["p", "ρ"],
      ["i", "ι"],
      ["B", "В"],
      ["H", "Н"],
      ["M", "М"],
      ["T", "Т"],
      ["N", "Ν"],
      ["o", "0"],
    ]
  ) {
    assert.equal(skeleton(other!), skeleton(latin!), `${latin} / ${other}`);
  }
  assert.equal(skeleton("ＢＯＢ"), "bob", "NFKC first");
  assert.notEqual(skeleton("bob"), skeleton("rob"));
});

Deno.test("skeleton: Unicode's confusables (UTS #39) beyond Latin, Cyrillic and Greek", () => {
  for (
    const [latin, other, script] of [
      ["goog", "ցօօց", "Armenian"],
      ["hnu", "հոս", "Armenian"],
      ["alice", "Ꭺlice", "Cherokee"],
      ["bob", "ꓐob", "Lisu"],
      ["dan", "ԁan", "Cyrillic komi"],
      ["il", "ıl", "dotless i"],
      ["m", "rn", "two Latin letters"],
      ["bell", "be\u00ADll", "a soft hyphen (default-ignorable)"],
    ]
  ) {
    assert.equal(skeleton(other!), skeleton(latin!), `${script}: ${latin} / ${other}`);
  }
  assert.equal(isConfusableWithAny("ցօօց", ["bob", "goog"]), true);
  assert.notEqual(skeleton("ann"), skeleton("anne"));
  assert.notEqual(skeleton("Борис"), skeleton("bopnc"), "a real Cyrillic name is not Latin");
});

Deno.test("isConfusableWithAny: look-alikes and case differences, not identical names", () => {
  assert.equal(isConfusableWithAny("аlice", ["bob", "alice"]), true, "Cyrillic а");
  assert.equal(isConfusableWithAny("ALICE", ["alice"]), true, "case only");
  assert.equal(isConfusableWithAny("рауре", ["paype"]), true, "all Cyrillic");
  assert.equal(isConfusableWithAny("alice", ["alice"]), false, "the same name is no look-alike");
  assert.equal(isConfusableWithAny("alice", ["alicia", "bob"]), false);
  assert.equal(isConfusableWithAny("alice", []), false);
  assert.equal(confusableWith("bоb", new Set(["carol", "bob"])), "bob");
  assert.equal(confusableWith("dave", ["bob"]), null);
});

// ---------------------------------------------------------------------------------------------
// displayName

Deno.test("displayName: control characters, C1 and NEL become \\xNN", () => {
  assert.equal(displayName("ev\x1b[2Jil"), "ev\\x1b[2Jil");
  assert.equal(displayName("a\nb\r\t"), "a\\x0ab\\x0d\\x09");
  assert.equal(displayName("a\x7f\x85\x9b"), "a\\x7f\\x85\\x9b");
});

Deno.test("displayName: bidi, zero-width, separators and other invisibles become \\u{XXXX}", () => {
  assert.equal(displayName("abc\u202Egpj.exe"), "abc\\u{202E}gpj.exe");
  assert.equal(displayName("\u2066a\u2069\u200e\u200f"), "\\u{2066}a\\u{2069}\\u{200E}\\u{200F}");
  assert.equal(displayName("a\u200bb\u200cc\u200dd"), "a\\u{200B}b\\u{200C}c\\u{200D}d");
  assert.equal(displayName("\ufeffa\u2060"), "\\u{FEFF}a\\u{2060}");
  assert.equal(displayName("a\u2028b\u2029"), "a\\u{2028}b\\u{2029}");
  assert.equal(displayName("a\u00a0b\u3000"), "a\\xa0b\\u{3000}", "spaces other than U+0020");
  assert.equal(displayName("\ue000\u{e0fff}\ud800"), "\\u{E000}\\u{E0FFF}\\u{D800}");
  assert.equal(displayName("\u0336x"), "\\u{0336}x", "a mark that follows no letter");
  assert.equal(
    displayName("a\u0300\u0301\u0302\u0303\u0304"),
    "a\u0300\u0301\u0302\u0303\\u{0304}",
  );
});

Deno.test("displayName: a backslash is doubled so escapes cannot be faked", () => {
  assert.equal(displayName("a\\x1bb"), "a\\\\x1bb");
  assert.notEqual(displayName("a\\x1bb"), displayName("a\x1bb"));
});

Deno.test("displayName: printable names, emoji and symbols pass unchanged", () => {
  for (const n of ["alice", "Bob Smith", "Борис", "李雷", "محمد", "नमस्ते", "bob 👋", "{x}", "a!b"]) {
    assert.equal(displayName(n), n);
  }
});

Deno.test("displayName: the output never has an invisible or line-breaking character", () => {
  let all = "";
  for (let c = 0; c < 0x3000; c++) all += String.fromCodePoint(c);
  all += "\ufeff\u{e0001}\u{f0000}\u{10ffff}";
  const out = displayName(all);
  assert.doesNotMatch(out, /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u);
  assert.doesNotMatch(out, /[^\P{Zs} ]/u, "the only space left is U+0020");
});

Deno.test("names: Hangul fillers (letters that show as nothing) are refused in names and escaped on display", () => {
  for (const filler of ["\u3164", "\uffa0", "\u115f", "\u1160"]) {
    const r = normalizeName(`alice${filler}`);
    assert.equal(r.ok, false, `alice + U+${filler.codePointAt(0)!.toString(16)}`);
    assert.ok(!displayName(`alice${filler}`).includes(filler));
  }
});
