/**
 * Fingerprints of long-term identity keys, short enough to read aloud and compare.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { base32 } from "./base32.ts";

/** Bytes of SHA-256 a fingerprint shows: 80 bits. */
export const FINGERPRINT_BYTES = 10;

/**
 * The fingerprint of a public key: the first 80 bits of SHA-256(publicKey) in lowercase
 * base32, as four groups of four characters, such as `"abcd-efgh-ijkl-mnop"`.
 */
export function fingerprint(publicKey: Uint8Array): string {
  const digest = createHash("sha256").update(publicKey).digest().subarray(0, FINGERPRINT_BYTES);
  return base32(digest).match(/.{4}/g)!.join("-");
}

/** Whether `s` has the shape of a {@link fingerprint}. */
export function isFingerprint(s: string): boolean {
  return /^[a-z2-7]{4}(-[a-z2-7]{4}){3}$/.test(s);
}
