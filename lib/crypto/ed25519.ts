/**
 * Ed25519 signatures (RFC 8032) through `node:crypto`: the room key that signs every HELLO
 * (`lib/crypto/room_key.ts`) and the server's check of those signatures.
 *
 * Where the primitive runs: Node.js hands Ed25519 to OpenSSL; Deno's `node:crypto` to
 * ed25519-dalek. Raw keys are wrapped in their fixed PKCS #8 and SPKI DER prefixes (RFC 8410).
 *
 * Synchronous and free of I/O.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";

/** Length of an Ed25519 seed (the RFC 8032 private key) and of a public key. */
export const ED25519_KEY_LEN = 32;
/** Length of an Ed25519 signature. */
export const ED25519_SIGNATURE_LEN = 64;

/** PKCS #8 `PrivateKeyInfo` of an Ed25519 key, up to its 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
/** SPKI `SubjectPublicKeyInfo` of an Ed25519 key, up to its 32 raw bytes (RFC 8410). */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** An Ed25519 key pair made from a 32-byte seed (RFC 8032 private key). */
export interface SigningKey {
  /** The 32-byte public key. */
  publicKey: Uint8Array;
  /** The private key. */
  privateKey: KeyObject;
}

/** The Ed25519 key pair whose RFC 8032 private key is the 32-byte `seed`. */
export function ed25519FromSeed(seed: Uint8Array): SigningKey {
  if (seed.length !== ED25519_KEY_LEN) throw new RangeError("An Ed25519 seed is 32 bytes");
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return { publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)), privateKey };
}

/** The 64-byte Ed25519 signature of `data` under `key`. */
export function ed25519Sign(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, key));
}

/** The Ed25519 public key object of the 32 bytes `raw`, or undefined (never throws). */
export function ed25519PublicKey(raw: Uint8Array): KeyObject | undefined {
  if (raw.length !== ED25519_KEY_LEN) return undefined;
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: "der", type: "spki" });
  } catch {
    return undefined;
  }
}

/** True when `signature` is `key`'s Ed25519 signature of `data`. Never throws. */
export function ed25519Verify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== ED25519_SIGNATURE_LEN) return false;
  try {
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}
