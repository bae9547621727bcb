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
