/**
 * Identities, transport sessions and the byte helpers shared by the protocol cores.
 *
 * An {@link Identity} is a user's long-term X25519 key pair (its private half feeds the Noise
 * handshake of `lib/peer/handshake/handshake.ts`). A {@link PairSession} carries the two transport ciphers a
 * completed handshake gives, numbers outgoing frames and keeps the replay window for incoming
 * ones. Also: address cookies, Ed25519 room signatures, constant-time comparison.
 *
 * Synchronous and free of I/O, so the pure state machines can use it directly.
 *
 * @module
 */
import {
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from "node:crypto";
import { HmacSha256 } from "./sha256.ts";
import { type Endpoint, formatEndpoint } from "../wire/address.ts";
import { COOKIE_LEN, REACH_MAC_LEN } from "../wire/server_msg.ts";

/** Base64url without padding (JWK key fields). */
export function b64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** Decodes base64url (JWK key fields). */
export function unb64url(s: string): Uint8Array {
  const bin = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Returns `n` cryptographically random bytes. */
export function randomId(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

/** A peer's X25519 key pair. */
export class Identity {
  #raw: Uint8Array;
  /** The raw 32-byte public key. */
  readonly publicKey: Uint8Array;

  private constructor(raw: Uint8Array, pub: Uint8Array) {
    this.#raw = raw;
    this.publicKey = pub;
  }

  /** Makes a fresh random identity. */
  static generate(): Identity {
    const { privateKey } = generateKeyPairSync("x25519");
    return Identity.fromPrivate(unb64url(privateKey.export({ format: "jwk" }).d ?? ""));
  }

  /** Rebuilds an identity from a 32-byte private scalar (a stored identity, or tests). */
  static fromPrivate(d: Uint8Array): Identity {
    const priv = createPrivateKey({
      key: { kty: "OKP", crv: "X25519", d: b64url(d), x: "" },
      format: "jwk",
    });
    const jwk = createPublicKey(priv).export({ format: "jwk" });
    return new Identity(d.slice(), unb64url(jwk.x ?? ""));
  }

  /** The raw private scalar, for the Noise handshake (never leaves the process). */
  get privateKey(): Uint8Array {
    return this.#raw;
  }
}

/** Byte equality in time independent of where the inputs differ (for secrets such as cookies). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Lexicographic byte comparison. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** How far behind the highest counter seen a frame may arrive and still be accepted. */
export const REPLAY_WINDOW = 1024n;

/** One direction's AEAD with explicit 64-bit nonces (the sealed frame carries the counter). */
export interface TransportCipher {
  /** Encrypts `plaintext` under nonce `counter` with `aad` bound in: ciphertext then tag. */
  seal(counter: bigint, aad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Decrypts and authenticates; null on any failure. */
  open(counter: bigint, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null;
}

/** {@link REPLAY_WINDOW} as a number of bits. */
const WINDOW_BITS = Number(REPLAY_WINDOW);
/** Counters up to here are exact as numbers. */
const MAX_SAFE_COUNTER = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * Directional transport ciphers shared by two peers. Outgoing counters never repeat within a
 * session; incoming ones are checked against a sliding replay window (a ring of
 * {@link REPLAY_WINDOW} bits below the highest counter accepted, as RFC 6479 describes), so a
 * captured frame cannot be played back.
 */
export class PairSession {
  #send: TransportCipher;
  #recv: TransportCipher;
  #counter = 0n;
  /** Highest counter accepted (counters stay far below 2^53: numbers are exact). */
  #highest = 0;
  /** Bit `c % WINDOW_BITS` set: counter `c` (within the window below #highest) was accepted. */
  #seen = new Uint32Array(WINDOW_BITS / 32);

  /** A session from the two directions' ciphers (from a completed handshake). */
  constructor(send: TransportCipher, recv: TransportCipher) {
    this.#send = send;
    this.#recv = recv;
  }

  /** Takes the next nonce counter for an outgoing frame. */
  nextCounter(): bigint {
    return ++this.#counter;
  }

  /** Encrypts `plaintext` with `aad` bound in; returns ciphertext followed by the tag. */
  seal(counter: bigint, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    return this.#send.seal(counter, aad, plaintext);
  }

  /** False when `counter` was already accepted or is too old for the window (a replay). */
  fresh(counter: bigint): boolean {
    // 2^53 frames would take centuries at any rate; beyond, a counter is never fresh.
    if (counter <= 0n || counter > MAX_SAFE_COUNTER) return false;
    const c = Number(counter);
    if (c > this.#highest) return true;
    if (c + WINDOW_BITS <= this.#highest) return false;
    const bit = c % WINDOW_BITS;
    return (this.#seen[bit >>> 5]! & (1 << (bit & 31))) === 0;
  }

  /** Decrypts and authenticates; returns null on any failure, including a replayed counter. */
  open(counter: bigint, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    if (!this.fresh(counter)) return null;
    const plain = this.#recv.open(counter, aad, sealed);
    if (!plain) return null;
    // Only authenticated frames move the window.
    const c = Number(counter);
    if (c > this.#highest) {
      // Forget the counters the window slides past (they are now too old anyway).
      if (c - this.#highest >= WINDOW_BITS) this.#seen.fill(0);
      else {
        for (let x = this.#highest + 1; x <= c; x++) {
          const bit = x % WINDOW_BITS;
          this.#seen[bit >>> 5]! &= ~(1 << (bit & 31));
        }
      }
      this.#highest = c;
    }
    const bit = c % WINDOW_BITS;
    this.#seen[bit >>> 5]! |= 1 << (bit & 31);
    return plain;
  }
}

/**
 * The return-routability cookie for peer `id` at `addr`: the first bytes of
 * HMAC-SHA256(secret, id ‖ "IP:PORT"). Only whoever receives at `addr` can learn it.
 */
export function addressCookie(secret: Uint8Array, id: Uint8Array, addr: Endpoint): Uint8Array {
  const where = ascii(formatEndpoint(addr));
  if (id.length + where.length > MAX_COOKIE_INPUT) {
    // Never for an id and an address; kept exact for any input.
    const mac = createHmac("sha256", secret).update(id).update(where).digest();
    return new Uint8Array(mac.subarray(0, COOKIE_LEN));
  }
  return cookieMac(secret).mac(id, where).slice(0, COOKIE_LEN);
}

/** Most bytes {@link HmacSha256.mac} takes (an id and "[IPv6]:port" are far below). */
const MAX_COOKIE_INPUT = 183;

/** The last secrets' prepared MACs (a server has two at a time), by the secret's bytes. */
const cookieMacs: { secret: Uint8Array; mac: HmacSha256 }[] = [];

function cookieMac(secret: Uint8Array): HmacSha256 {
  for (const c of cookieMacs) if (sameBytes(c.secret, secret)) return c.mac;
  const mac = new HmacSha256(secret);
  cookieMacs.unshift({ secret: secret.slice(), mac });
  if (cookieMacs.length > 4) cookieMacs.pop();
  return mac;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

const asciiScratch = new Uint8Array(MAX_COOKIE_INPUT);

/** The bytes of an ASCII string (an endpoint's text) in a scratch buffer, or UTF-8 otherwise. */
function ascii(s: string): Uint8Array {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f || i >= asciiScratch.length) return new TextEncoder().encode(s);
    asciiScratch[i] = c;
  }
  return asciiScratch.subarray(0, s.length);
}

/**
 * The MAC of a reachability probe (REACH): `HMAC-SHA256(token, "p2p reach v1" ‖ nonce)`
 * truncated to {@link REACH_MAC_LEN} bytes. Only the server and the registered peer know the
 * token, so nobody else can make a REACH the peer believes.
 */
export function reachMac(token: Uint8Array, nonce: Uint8Array): Uint8Array {
  const mac = createHmac("sha256", token).update("p2p reach v1").update(nonce).digest();
  return new Uint8Array(mac.subarray(0, REACH_MAC_LEN));
}

/** An Ed25519 key pair made from a 32-byte seed (RFC 8032 private key). */
export interface SigningKey {
  /** The 32-byte public key. */
  publicKey: Uint8Array;
  /** The private key. */
  privateKey: KeyObject;
}

/** The Ed25519 key pair whose RFC 8032 private key is the 32-byte `seed`. */
export function ed25519FromSeed(seed: Uint8Array): SigningKey {
  if (seed.length !== 32) throw new RangeError("An Ed25519 seed is 32 bytes");
  const privateKey = createPrivateKey({
    key: { kty: "OKP", crv: "Ed25519", d: b64url(seed), x: "" },
    format: "jwk",
  });
  const jwk = createPublicKey(privateKey).export({ format: "jwk" });
  return { publicKey: unb64url(jwk.x!), privateKey };
}

/** The 64-byte Ed25519 signature of `data` under `key`. */
export function ed25519Sign(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, key));
}

/** The Ed25519 public key object of the 32 bytes `raw`, or undefined (never throws). */
export function ed25519PublicKey(raw: Uint8Array): KeyObject | undefined {
  if (raw.length !== 32) return undefined;
  try {
    return createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: b64url(raw) }, format: "jwk" });
  } catch {
    return undefined;
  }
}

/** True when `signature` is `key`'s Ed25519 signature of `data`. Never throws. */
export function ed25519Verify(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}
