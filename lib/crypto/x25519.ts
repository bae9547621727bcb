/**
 * X25519 (RFC 7748) through `node:crypto`: key pairs from raw 32-byte private keys, and the
 * Diffie-Hellman function of the Noise handshake.
 *
 * Where the primitive runs: Node.js hands X25519 to OpenSSL; Deno's `node:crypto` to
 * x25519-dalek. Raw keys are wrapped in their fixed PKCS #8 and SPKI DER prefixes (RFC 8410),
 * the cheapest import `node:crypto` offers.
 *
 * Low-order public keys: a DH with one of the few public keys of small order (and their
 * non-canonical encodings) gives the all-zero shared secret, whatever the private key, so it
 * would let whoever chose that key know the "secret". Noise allows an implementation to reject
 * it; this one does, twice: {@link isAcceptablePublicKey} refuses those keys by value (the
 * handshake checks every received key with it), and {@link x25519} returns null for an all-zero
 * result (as OpenSSL and Deno's `node:crypto` also do, by throwing). Every other input gives
 * RFC 7748's result: the top bit of the public key is ignored, u-coordinates of p and above are
 * taken modulo p, and points on the twist are accepted (tests/crypto/wycheproof_test.ts runs
 * Wycheproof's vectors through this module).
 *
 * Synchronous and free of I/O.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, diffieHellman, type KeyObject } from "node:crypto";

/** Length of an X25519 private key, public key and shared secret. */
export const DHLEN = 32;

/** PKCS #8 `PrivateKeyInfo` of an X25519 key, up to its 32 raw bytes (RFC 8410). */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
/** SPKI `SubjectPublicKeyInfo` of an X25519 key, up to its 32 raw bytes (RFC 8410). */
const SPKI_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

/** `prefix ‖ raw` as a Buffer (what `node:crypto` key imports take). */
function der(prefix: Uint8Array, raw: Uint8Array): Buffer {
  const out = Buffer.alloc(prefix.length + raw.length);
  out.set(prefix);
  out.set(raw, prefix.length);
  return out;
}

/** An imported X25519 private key and its raw public key. */
export interface X25519KeyPair {
  /** The private key, ready for {@link x25519}. */
  readonly privateKey: KeyObject;
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array;
}

/**
 * Scalar multiplications done so far (each {@link x25519KeyPair} and each {@link x25519}): the
 * costly work, counted so tests can hold forged input to none of it.
 */
export const x25519Work = { keyPairs: 0, agreements: 0 };

/** The key pair of the raw 32-byte private key `d` (any 32 bytes: X25519 clamps them). */
export function x25519KeyPair(d: Uint8Array): X25519KeyPair {
  if (d.length !== DHLEN) throw new RangeError(`An X25519 private key is ${DHLEN} bytes`);
  x25519Work.keyPairs++;
  const privateKey = createPrivateKey({ key: der(PKCS8_PREFIX, d), format: "der", type: "pkcs8" });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  return { privateKey, publicKey: new Uint8Array(spki.subarray(SPKI_PREFIX.length)) };
}

/** The raw public key of the raw 32-byte private key `d`. Throws RangeError on another length. */
export function x25519PublicKey(d: Uint8Array): Uint8Array {
  return x25519KeyPair(d).publicKey;
}

/**
 * X25519(privateKey, publicKey): the 32-byte shared secret, or null when `publicKey` is not 32
 * bytes or the result is all zeros (a low-order public key). Never throws.
 */
export function x25519(privateKey: KeyObject, publicKey: Uint8Array): Uint8Array | null {
  if (publicKey.length !== DHLEN) return null;
  x25519Work.agreements++;
  try {
    const pub = createPublicKey({ key: der(SPKI_PREFIX, publicKey), format: "der", type: "spki" });
    const shared = new Uint8Array(diffieHellman({ privateKey, publicKey: pub }));
    let acc = 0;
    for (const b of shared) acc |= b;
    return shared.length === DHLEN && acc !== 0 ? shared : null;
  } catch {
    return null;
  }
}

const P25519 = 2n ** 255n - 19n;

// The u-coordinates of the points of order dividing 8 on Curve25519 and its twist (0, 1, the two
// of order 8, p − 1) and the non-canonical encodings p and p + 1. X25519 ignores the top bit and
// clamps every scalar to a multiple of 8, so DH with any other key is never all zeros.
const SMALL_ORDER = [
  0n,
  1n,
  325606250916557431795983626356110631294008115727848805560023387167927233504n,
  39382357235489614581723060781553021112529911719440698176882885853963445705823n,
  P25519 - 1n,
  P25519,
  P25519 + 1n,
].map((u) => Uint8Array.from({ length: DHLEN }, (_, i) => Number((u >> BigInt(8 * i)) & 255n)));

/**
 * True when `pub` is 32 bytes and not of small order, i.e. no DH with it can give all zeros.
 * Received keys are checked before use, so a later DH with them cannot fail. (Public keys are
 * public: the comparison need not hide which one matched.)
 */
export function isAcceptablePublicKey(pub: Uint8Array): boolean {
  if (pub.length !== DHLEN) return false;
  return !SMALL_ORDER.some((bad) => {
    let diff = (bad[31]! ^ pub[31]!) & 0x7f;
    for (let i = 0; i < 31; i++) diff |= bad[i]! ^ pub[i]!;
    return diff === 0;
  });
}
