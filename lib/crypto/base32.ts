/**
 * Lowercase RFC 4648 base32 without padding: the text of room passphrases
 * (`lib/crypto/room_key.ts`) and of key fingerprints (`lib/crypto/fingerprint.ts`).
 *
 * @module
 */

/** RFC 4648 base32 alphabet, lowercase: its digits are 2 to 7, so no `0` or `1` to misread. */
export const BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** Lowercase RFC 4648 base32 of `bytes` without padding (the last character may be partial). */
export function base32(bytes: Uint8Array): string {
  let out = "", acc = 0, bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += BASE32_ALPHABET[(acc >>> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += BASE32_ALPHABET[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * The bytes of lowercase base32 text without padding (what {@link base32} writes); null for a
 * character outside the alphabet, or a last character whose spare bits are not zero (so each
 * text has one reading: a changed character can never decode to the same bytes).
 */
export function fromBase32(text: string): Uint8Array | null {
  const out: number[] = [];
  let acc = 0, bits = 0;
  for (const c of text) {
    const v = BASE32_ALPHABET.indexOf(c);
    if (v < 0) return null;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 255);
      acc &= (1 << bits) - 1;
    }
  }
  if (bits >= 5 || acc !== 0) return null;
  return Uint8Array.from(out);
}
