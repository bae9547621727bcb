/**
 * ChaCha20-Poly1305 (RFC 8439) in TypeScript, for the transport frames of `lib/crypto/noise.ts`.
 *
 * `node:crypto` makes a cipher object per call (a dozen ops and Buffers: ~10 µs per frame
 * whatever its size); this one costs a few hundred nanoseconds plus the work proportional to
 * the bytes, so it is several times faster for the sub-kilobyte frames peers exchange. Checked
 * against the RFC 8439 vectors and against `node:crypto` on random inputs
 * (tests/crypto/crypto_test.ts).
 *
 * Poly1305 uses ten 13-bit limbs (as in TweetNaCl), so every product and sum stays exact in
 * JavaScript numbers. The tag comparison runs in time independent of where tags differ.
 *
 * @module
 */

/** Length of a key. */
export const KEY_LEN = 32;
/** Length of a nonce. */
export const NONCE_LEN = 12;
/** Length of an authentication tag. */
export const TAG_LEN = 16;

/** Reused scratch space (everything here is synchronous). */
const block = new Uint32Array(16);
const polyKey = new Uint8Array(32);
const lastBlock = new Uint8Array(16);
const lengths = new Uint8Array(16);
const tagScratch = new Uint8Array(16);

function u32le(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

/** The ChaCha20 block for `key` (8 words), `counter` and `nonce` (3 words) into `block`. */
function chachaBlock(key: Uint32Array, counter: number, n0: number, n1: number, n2: number) {
  const j0 = 0x61707865, j1 = 0x3320646e, j2 = 0x79622d32, j3 = 0x6b206574;
  const j4 = key[0]!, j5 = key[1]!, j6 = key[2]!, j7 = key[3]!;
  const j8 = key[4]!, j9 = key[5]!, j10 = key[6]!, j11 = key[7]!;
  const j12 = counter >>> 0, j13 = n0, j14 = n1, j15 = n2;
  let x0 = j0, x1 = j1, x2 = j2, x3 = j3, x4 = j4, x5 = j5, x6 = j6, x7 = j7;
  let x8 = j8, x9 = j9, x10 = j10, x11 = j11, x12 = j12, x13 = j13, x14 = j14, x15 = j15;
  let u: number;
  for (let i = 0; i < 20; i += 2) {
    // Column rounds.
    x0 = (x0 + x4) | 0, u = x12 ^ x0, x12 = (u << 16) | (u >>> 16);
    x8 = (x8 + x12) | 0, u = x4 ^ x8, x4 = (u << 12) | (u >>> 20);
    x0 = (x0 + x4) | 0, u = x12 ^ x0, x12 = (u << 8) | (u >>> 24);
    x8 = (x8 + x12) | 0, u = x4 ^ x8, x4 = (u << 7) | (u >>> 25);
    x1 = (x1 + x5) | 0, u = x13 ^ x1, x13 = (u << 16) | (u >>> 16);
    x9 = (x9 + x13) | 0, u = x5 ^ x9, x5 = (u << 12) | (u >>> 20);
    x1 = (x1 + x5) | 0, u = x13 ^ x1, x13 = (u << 8) | (u >>> 24);
    x9 = (x9 + x13) | 0, u = x5 ^ x9, x5 = (u << 7) | (u >>> 25);
    x2 = (x2 + x6) | 0, u = x14 ^ x2, x14 = (u << 16) | (u >>> 16);
    x10 = (x10 + x14) | 0, u = x6 ^ x10, x6 = (u << 12) | (u >>> 20);
    x2 = (x2 + x6) | 0, u = x14 ^ x2, x14 = (u << 8) | (u >>> 24);
    x10 = (x10 + x14) | 0, u = x6 ^ x10, x6 = (u << 7) | (u >>> 25);
    x3 = (x3 + x7) | 0, u = x15 ^ x3, x15 = (u << 16) | (u >>> 16);
    x11 = (x11 + x15) | 0, u = x7 ^ x11, x7 = (u << 12) | (u >>> 20);
    x3 = (x3 + x7) | 0, u = x15 ^ x3, x15 = (u << 8) | (u >>> 24);
    x11 = (x11 + x15) | 0, u = x7 ^ x11, x7 = (u << 7) | (u >>> 25);
    // Diagonal rounds.
    x0 = (x0 + x5) | 0, u = x15 ^ x0, x15 = (u << 16) | (u >>> 16);
    x10 = (x10 + x15) | 0, u = x5 ^ x10, x5 = (u << 12) | (u >>> 20);
    x0 = (x0 + x5) | 0, u = x15 ^ x0, x15 = (u << 8) | (u >>> 24);
    x10 = (x10 + x15) | 0, u = x5 ^ x10, x5 = (u << 7) | (u >>> 25);
    x1 = (x1 + x6) | 0, u = x12 ^ x1, x12 = (u << 16) | (u >>> 16);
    x11 = (x11 + x12) | 0, u = x6 ^ x11, x6 = (u << 12) | (u >>> 20);
    x1 = (x1 + x6) | 0, u = x12 ^ x1, x12 = (u << 8) | (u >>> 24);
    x11 = (x11 + x12) | 0, u = x6 ^ x11, x6 = (u << 7) | (u >>> 25);
    x2 = (x2 + x7) | 0, u = x13 ^ x2, x13 = (u << 16) | (u >>> 16);
    x8 = (x8 + x13) | 0, u = x7 ^ x8, x7 = (u << 12) | (u >>> 20);
    x2 = (x2 + x7) | 0, u = x13 ^ x2, x13 = (u << 8) | (u >>> 24);
    x8 = (x8 + x13) | 0, u = x7 ^ x8, x7 = (u << 7) | (u >>> 25);
    x3 = (x3 + x4) | 0, u = x14 ^ x3, x14 = (u << 16) | (u >>> 16);
    x9 = (x9 + x14) | 0, u = x4 ^ x9, x4 = (u << 12) | (u >>> 20);
    x3 = (x3 + x4) | 0, u = x14 ^ x3, x14 = (u << 8) | (u >>> 24);
    x9 = (x9 + x14) | 0, u = x4 ^ x9, x4 = (u << 7) | (u >>> 25);
  }
  block[0] = x0 + j0, block[1] = x1 + j1, block[2] = x2 + j2, block[3] = x3 + j3;
  block[4] = x4 + j4, block[5] = x5 + j5, block[6] = x6 + j6, block[7] = x7 + j7;
  block[8] = x8 + j8, block[9] = x9 + j9, block[10] = x10 + j10, block[11] = x11 + j11;
  block[12] = x12 + j12, block[13] = x13 + j13, block[14] = x14 + j14, block[15] = x15 + j15;
}

/** XORs the ChaCha20 keystream from block `counter` on into `src`, writing `dst` at `at`. */
function chachaXor(
  key: Uint32Array,
  n0: number,
  n1: number,
  n2: number,
  counter: number,
  src: Uint8Array,
  dst: Uint8Array,
  at: number,
): void {
  const len = src.length;
  for (let o = 0; o < len; o += 64, counter++) {
    chachaBlock(key, counter, n0, n1, n2);
    const end = Math.min(64, len - o);
    let i = 0;
    for (let w = 0; i + 4 <= end; i += 4, w++) {
      const k = block[w]!, s = o + i, d = at + s;
      dst[d] = src[s]! ^ (k & 0xff);
      dst[d + 1] = src[s + 1]! ^ ((k >>> 8) & 0xff);
      dst[d + 2] = src[s + 2]! ^ ((k >>> 16) & 0xff);
      dst[d + 3] = src[s + 3]! ^ (k >>> 24);
    }
    for (; i < end; i++) {
      dst[at + o + i] = src[o + i]! ^ ((block[i >>> 2]! >>> ((i & 3) * 8)) & 0xff);
    }
  }
}

/** Poly1305 over the AEAD's MAC input, with full (zero-padded) 16-byte blocks only. */
class Poly1305 {
  #r = new Uint16Array(10);
  #h = new Uint16Array(10);
  #pad = new Uint16Array(8);

  /** Starts a MAC under the 32-byte one-time key `k`. */
  init(k: Uint8Array): void {
    const r = this.#r;
    const t0 = k[0]! | (k[1]! << 8), t1 = k[2]! | (k[3]! << 8);
    const t2 = k[4]! | (k[5]! << 8), t3 = k[6]! | (k[7]! << 8);
    const t4 = k[8]! | (k[9]! << 8), t5 = k[10]! | (k[11]! << 8);
    const t6 = k[12]! | (k[13]! << 8), t7 = k[14]! | (k[15]! << 8);
    r[0] = t0 & 0x1fff;
    r[1] = ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
    r[2] = ((t1 >>> 10) | (t2 << 6)) & 0x1f03;
    r[3] = ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
    r[4] = ((t3 >>> 4) | (t4 << 12)) & 0x00ff;
    r[5] = (t4 >>> 1) & 0x1ffe;
    r[6] = ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
    r[7] = ((t5 >>> 11) | (t6 << 5)) & 0x1f81;
    r[8] = ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
    r[9] = (t7 >>> 5) & 0x007f;
    for (let i = 0; i < 8; i++) this.#pad[i] = k[16 + 2 * i]! | (k[17 + 2 * i]! << 8);
    this.#h.fill(0);
  }

  /** Absorbs `m` zero-padded to a multiple of 16 bytes. */
  padded(m: Uint8Array): void {
    const full = m.length & ~15;
    if (full > 0) this.#blocks(m, 0, full);
    if (full < m.length) {
      lastBlock.fill(0);
      lastBlock.set(m.subarray(full));
      this.#blocks(lastBlock, 0, 16);
    }
  }

  /** Absorbs 16-byte blocks (each with the 2^128 bit), `bytes` a multiple of 16. */
  #blocks(m: Uint8Array, pos: number, bytes: number): void {
    const hibit = 1 << 11;
    const h = this.#h, r = this.#r;
    let h0 = h[0]!, h1 = h[1]!, h2 = h[2]!, h3 = h[3]!, h4 = h[4]!;
    let h5 = h[5]!, h6 = h[6]!, h7 = h[7]!, h8 = h[8]!, h9 = h[9]!;
    const r0 = r[0]!, r1 = r[1]!, r2 = r[2]!, r3 = r[3]!, r4 = r[4]!;
    const r5 = r[5]!, r6 = r[6]!, r7 = r[7]!, r8 = r[8]!, r9 = r[9]!;
    const s1 = 5 * r1, s2 = 5 * r2, s3 = 5 * r3, s4 = 5 * r4, s5 = 5 * r5;
    const s6 = 5 * r6, s7 = 5 * r7, s8 = 5 * r8, s9 = 5 * r9;
    let c: number, d0: number, d1: number, d2: number, d3: number, d4: number;
    let d5: number, d6: number, d7: number, d8: number, d9: number;
    while (bytes >= 16) {
      const t0 = m[pos]! | (m[pos + 1]! << 8), t1 = m[pos + 2]! | (m[pos + 3]! << 8);
      const t2 = m[pos + 4]! | (m[pos + 5]! << 8), t3 = m[pos + 6]! | (m[pos + 7]! << 8);
      const t4 = m[pos + 8]! | (m[pos + 9]! << 8), t5 = m[pos + 10]! | (m[pos + 11]! << 8);
      const t6 = m[pos + 12]! | (m[pos + 13]! << 8), t7 = m[pos + 14]! | (m[pos + 15]! << 8);
      h0 += t0 & 0x1fff;
      h1 += ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
      h2 += ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
      h3 += ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
      h4 += ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
      h5 += (t4 >>> 1) & 0x1fff;
      h6 += ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
      h7 += ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
      h8 += ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
      h9 += (t7 >>> 5) | hibit;

      // h *= r (mod 2^130 - 5); each sum is split in two halves so `>>>` sees < 2^32.
      d0 = h0 * r0 + h1 * s9 + h2 * s8 + h3 * s7 + h4 * s6;
      c = d0 >>> 13, d0 &= 0x1fff;
      d0 += h5 * s5 + h6 * s4 + h7 * s3 + h8 * s2 + h9 * s1;
      c += d0 >>> 13, d0 &= 0x1fff;

      d1 = c + h0 * r1 + h1 * r0 + h2 * s9 + h3 * s8 + h4 * s7;
      c = d1 >>> 13, d1 &= 0x1fff;
      d1 += h5 * s6 + h6 * s5 + h7 * s4 + h8 * s3 + h9 * s2;
      c += d1 >>> 13, d1 &= 0x1fff;

      d2 = c + h0 * r2 + h1 * r1 + h2 * r0 + h3 * s9 + h4 * s8;
      c = d2 >>> 13, d2 &= 0x1fff;
      d2 += h5 * s7 + h6 * s6 + h7 * s5 + h8 * s4 + h9 * s3;
      c += d2 >>> 13, d2 &= 0x1fff;

      d3 = c + h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s9;
      c = d3 >>> 13, d3 &= 0x1fff;
      d3 += h5 * s8 + h6 * s7 + h7 * s6 + h8 * s5 + h9 * s4;
      c += d3 >>> 13, d3 &= 0x1fff;

      d4 = c + h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0;
      c = d4 >>> 13, d4 &= 0x1fff;
      d4 += h5 * s9 + h6 * s8 + h7 * s7 + h8 * s6 + h9 * s5;
      c += d4 >>> 13, d4 &= 0x1fff;

      d5 = c + h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1;
      c = d5 >>> 13, d5 &= 0x1fff;
      d5 += h5 * r0 + h6 * s9 + h7 * s8 + h8 * s7 + h9 * s6;
      c += d5 >>> 13, d5 &= 0x1fff;

      d6 = c + h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2;
      c = d6 >>> 13, d6 &= 0x1fff;
      d6 += h5 * r1 + h6 * r0 + h7 * s9 + h8 * s8 + h9 * s7;
      c += d6 >>> 13, d6 &= 0x1fff;

      d7 = c + h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3;
      c = d7 >>> 13, d7 &= 0x1fff;
      d7 += h5 * r2 + h6 * r1 + h7 * r0 + h8 * s9 + h9 * s8;
      c += d7 >>> 13, d7 &= 0x1fff;

      d8 = c + h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4;
      c = d8 >>> 13, d8 &= 0x1fff;
      d8 += h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * s9;
      c += d8 >>> 13, d8 &= 0x1fff;

      d9 = c + h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5;
      c = d9 >>> 13, d9 &= 0x1fff;
      d9 += h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
      c += d9 >>> 13, d9 &= 0x1fff;

      c = ((c << 2) + c) | 0;
      c = (c + d0) | 0;
      d0 = c & 0x1fff;
      c = c >>> 13;
      d1 += c;

      h0 = d0, h1 = d1, h2 = d2, h3 = d3, h4 = d4;
      h5 = d5, h6 = d6, h7 = d7, h8 = d8, h9 = d9;
      pos += 16;
      bytes -= 16;
    }
    h[0] = h0, h[1] = h1, h[2] = h2, h[3] = h3, h[4] = h4;
    h[5] = h5, h[6] = h6, h[7] = h7, h[8] = h8, h[9] = h9;
  }

  /** Writes the 16-byte tag into `out`. */
  finish(out: Uint8Array): void {
    const h = this.#h;
    const g = new Uint16Array(10);
    let c = h[1]! >>> 13;
    h[1]! &= 0x1fff;
    for (let i = 2; i < 10; i++) {
      h[i]! += c;
      c = h[i]! >>> 13;
      h[i]! &= 0x1fff;
    }
    h[0]! += c * 5;
    c = h[0]! >>> 13;
    h[0]! &= 0x1fff;
    h[1]! += c;
    c = h[1]! >>> 13;
    h[1]! &= 0x1fff;
    h[2]! += c;

    g[0] = h[0]! + 5;
    c = g[0]! >>> 13;
    g[0]! &= 0x1fff;
    for (let i = 1; i < 10; i++) {
      g[i] = h[i]! + c;
      c = g[i]! >>> 13;
      g[i]! &= 0x1fff;
    }
    g[9]! -= 1 << 13;

    // h + 5 reached 2^130 (carry 1): take g = h - (2^130 - 5); else keep h. Constant time.
    let mask = (c ^ 1) - 1;
    for (let i = 0; i < 10; i++) g[i]! &= mask;
    mask = ~mask;
    for (let i = 0; i < 10; i++) h[i] = (h[i]! & mask) | g[i]!;

    h[0] = (h[0]! | (h[1]! << 13)) & 0xffff;
    h[1] = ((h[1]! >>> 3) | (h[2]! << 10)) & 0xffff;
    h[2] = ((h[2]! >>> 6) | (h[3]! << 7)) & 0xffff;
    h[3] = ((h[3]! >>> 9) | (h[4]! << 4)) & 0xffff;
    h[4] = ((h[4]! >>> 12) | (h[5]! << 1) | (h[6]! << 14)) & 0xffff;
    h[5] = ((h[6]! >>> 2) | (h[7]! << 11)) & 0xffff;
    h[6] = ((h[7]! >>> 5) | (h[8]! << 8)) & 0xffff;
    h[7] = ((h[8]! >>> 8) | (h[9]! << 5)) & 0xffff;

    let f = h[0]! + this.#pad[0]!;
    h[0] = f & 0xffff;
    for (let i = 1; i < 8; i++) {
      f = (((h[i]! + this.#pad[i]!) | 0) + (f >>> 16)) | 0;
      h[i] = f & 0xffff;
    }
    for (let i = 0; i < 8; i++) {
      out[2 * i] = h[i]! & 0xff;
      out[2 * i + 1] = h[i]! >>> 8;
    }
  }
}

const poly = new Poly1305();

/** The tag of `aad` and `ciphertext` under `key` and the nonce words, into `out`. */
function tag(
  key: Uint32Array,
  n0: number,
  n1: number,
  n2: number,
  aad: Uint8Array,
  ciphertext: Uint8Array,
  out: Uint8Array,
): void {
  chachaBlock(key, 0, n0, n1, n2);
  for (let w = 0; w < 8; w++) {
    const k = block[w]!;
    polyKey[4 * w] = k & 0xff;
    polyKey[4 * w + 1] = (k >>> 8) & 0xff;
    polyKey[4 * w + 2] = (k >>> 16) & 0xff;
    polyKey[4 * w + 3] = k >>> 24;
  }
  poly.init(polyKey);
  poly.padded(aad);
  poly.padded(ciphertext);
  lengths.fill(0);
  writeLength(aad.length, 0);
  writeLength(ciphertext.length, 8);
  poly.padded(lengths);
  poly.finish(out);
}

function writeLength(n: number, at: number): void {
  for (let i = 0; i < 6; i++, n = Math.floor(n / 256)) lengths[at + i] = n & 0xff;
}

/** One key's ChaCha20-Poly1305 AEAD (RFC 8439). */
export class ChaCha20Poly1305 {
  #key = new Uint32Array(8);

  /** An AEAD under the 32-byte `key`. Throws on another length. */
  constructor(key: Uint8Array) {
    if (key.length !== KEY_LEN) throw new RangeError(`A ChaCha20-Poly1305 key is ${KEY_LEN} bytes`);
    for (let i = 0; i < 8; i++) this.#key[i] = u32le(key, 4 * i);
  }

  /** Encrypts `plaintext` with `aad` bound in: ciphertext followed by the 16-byte tag. */
  seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    const out = new Uint8Array(plaintext.length + TAG_LEN);
    this.sealInto(nonce, aad, plaintext, out, 0);
    return out;
  }

  /**
   * {@link seal} into `out` at `at` (it needs `plaintext.length + TAG_LEN` bytes there; throws
   * RangeError when they are not, since writes past a typed array's end vanish silently).
   */
  sealInto(
    nonce: Uint8Array,
    aad: Uint8Array,
    plaintext: Uint8Array,
    out: Uint8Array,
    at: number,
  ): void {
    if (nonce.length !== NONCE_LEN) throw new RangeError(`A nonce is ${NONCE_LEN} bytes`);
    if (!Number.isInteger(at) || at < 0 || at + plaintext.length + TAG_LEN > out.length) {
      throw new RangeError("No room in the output for the ciphertext and tag");
    }
    const n0 = u32le(nonce, 0), n1 = u32le(nonce, 4), n2 = u32le(nonce, 8);
    chachaXor(this.#key, n0, n1, n2, 1, plaintext, out, at);
    const ct = out.subarray(at, at + plaintext.length);
    tag(this.#key, n0, n1, n2, aad, ct, out.subarray(at + plaintext.length));
  }

  /** Authenticates and decrypts ciphertext ‖ tag; null when it does not authenticate. */
  open(nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    if (nonce.length !== NONCE_LEN || sealed.length < TAG_LEN) return null;
    const n0 = u32le(nonce, 0), n1 = u32le(nonce, 4), n2 = u32le(nonce, 8);
    const ct = sealed.subarray(0, sealed.length - TAG_LEN);
    tag(this.#key, n0, n1, n2, aad, ct, tagScratch);
    let diff = 0;
    for (let i = 0; i < TAG_LEN; i++) diff |= tagScratch[i]! ^ sealed[ct.length + i]!;
    if (diff !== 0) return null;
    const out = new Uint8Array(ct.length);
    chachaXor(this.#key, n0, n1, n2, 1, ct, out, 0);
    return out;
  }
}
