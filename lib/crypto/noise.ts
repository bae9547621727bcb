/**
 * The Noise Protocol Framework (revision 34), handshake and transport ciphers, for
 * `Noise_<pattern>_25519_ChaChaPoly_SHA256` protocols only.
 *
 * Pure and synchronous, every primitive from `node:crypto`: X25519 for DH
 * (`lib/crypto/x25519.ts`), ChaCha20-Poly1305 with the nonce 0x00000000 ‖ little-endian 64-bit
 * counter (`lib/crypto/aead.ts`), SHA-256 for HASH and HMAC-SHA256 HKDF.
 *
 * Supported handshake patterns: the one-way N, K, X; the interactive NN, NK, NX, XN, XK, XX, KN,
 * KK, KX, IN, IK, IX; the deferred variants (NK1, X1K1, I1X1, …); each with any `pskN` modifiers
 * joined by `+` (e.g. `XXpsk0`, `NNpsk0+psk2`). The fallback modifier is not supported.
 *
 * Hostile input never throws: {@link HandshakeState.readMessage} and
 * {@link CipherState.decryptWithAd} return null on any malformed or unauthenticated input, and a
 * rejected handshake message leaves the handshake untouched (a forged datagram cannot abort it).
 * Received public keys of low order (whose DH result would be all zeros) are rejected. Only
 * programmer errors throw: bad options, writing out of turn, splitting before completion.
 *
 * Ephemeral keys come from the caller's `random` ({@link HandshakeOptions.random}): this module
 * draws no randomness of its own.
 *
 * @module
 */
import { concatBytes } from "../core/bytes.ts";
import { createHash, hkdfSync } from "node:crypto";
import { ChaCha20Poly1305, NONCE_LEN, TAG_LEN } from "./aead.ts";
import {
  DHLEN,
  isAcceptablePublicKey,
  x25519,
  type X25519KeyPair,
  x25519KeyPair,
} from "./x25519.ts";

// Length of an X25519 public key and of a DH result.
export { DHLEN };
/** Length of a SHA-256 digest. */
export const HASHLEN = 32;
/** Length of a ChaCha20-Poly1305 authentication tag. */
export const TAGLEN = TAG_LEN;
/** Largest Noise message, handshake or transport. */
export const MAX_MESSAGE = 65535;
/** Length of a pre-shared key. */
export const PSKLEN = 32;

const MAX_NONCE = 2n ** 64n - 1n;
const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------
// Primitives

function hash(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

/**
 * The spec's HKDF(chaining_key, input_key_material, num_outputs) over HMAC-SHA256. Its outputs are
 * exactly RFC 5869 HKDF with salt = chaining_key and empty info (temp_key = HMAC(ck, ikm) is the
 * extract step, output_i = HMAC(temp_key, output_{i-1} ‖ i) the expand step), so one native
 * hkdfSync call computes them.
 */
function hkdf(ck: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const okm = new Uint8Array(hkdfSync("sha256", ikm, ck, EMPTY, outputs * HASHLEN));
  return Array.from({ length: outputs }, (_, i) => okm.slice(i * HASHLEN, (i + 1) * HASHLEN));
}

const nonceScratch = new Uint8Array(NONCE_LEN);
const nonceView = new DataView(nonceScratch.buffer);

/**
 * The ChaCha20-Poly1305 nonce of counter `n`: 32 zero bits, then `n` little-endian, in a
 * scratch buffer (node:crypto copies the nonce when a cipher is made, and all here is
 * synchronous).
 */
function chachaNonce(n: bigint): Uint8Array {
  nonceView.setBigUint64(4, n, true);
  return nonceScratch;
}

// ---------------------------------------------------------------------------------------------
// CipherState

/**
 * The spec's CipherState: a key `k` (or none) and a 64-bit nonce counter `n`. After
 * {@link HandshakeState.split} one CipherState encrypts each direction's transport messages.
 */
export class CipherState {
  #k: Uint8Array | null = null;
  /** The AEAD under #k. */
  #aead: ChaCha20Poly1305 | null = null;
  #n = 0n;

  /** InitializeKey(key): a state with `key` (or no key) and nonce 0. */
  constructor(key: Uint8Array | null = null) {
    this.initializeKey(key);
  }

  /** InitializeKey(key): sets the key (32 bytes, or null for none) and resets the nonce to 0. */
  initializeKey(key: Uint8Array | null): void {
    if (key !== null && key.length !== 32) throw new RangeError("cipher key must be 32 bytes");
    this.#k = key === null ? null : key.slice();
    this.#aead = key === null ? null : new ChaCha20Poly1305(key);
    this.#n = 0n;
  }

  /** HasKey(). */
  hasKey(): boolean {
    return this.#k !== null;
  }

  /** The next nonce to be used. */
  get nonce(): bigint {
    return this.#n;
  }

  /** SetNonce(n), for out-of-order transports that carry the nonce explicitly. */
  setNonce(n: bigint): void {
    if (n < 0n || n > MAX_NONCE) throw new RangeError("nonce out of range");
    this.#n = n;
  }

  /**
   * EncryptWithAd(ad, plaintext): ciphertext ‖ tag, or the plaintext itself when there is no
   * key. Throws when the nonce is exhausted (2^64 − 1 messages) or the plaintext is too long.
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    if (this.#aead === null) return plaintext.slice();
    const out = new Uint8Array(plaintext.length + TAGLEN);
    this.encryptWithAdInto(ad, plaintext, out, 0);
    return out;
  }

  /**
   * {@link encryptWithAd} written into `out` at `at` (which needs `plaintext.length + TAGLEN`
   * bytes with a key, `plaintext.length` without), so a transport frame is built without
   * copying its ciphertext. Throws as encryptWithAd does, and RangeError without room.
   */
  encryptWithAdInto(ad: Uint8Array, plaintext: Uint8Array, out: Uint8Array, at: number): void {
    if (this.#aead === null) {
      if (at < 0 || at + plaintext.length > out.length) throw new RangeError("No room in output");
      out.set(plaintext, at);
      return;
    }
    if (this.#n >= MAX_NONCE) throw new Error("Noise nonce exhausted");
    if (plaintext.length + TAGLEN > MAX_MESSAGE) throw new RangeError("Noise message too long");
    this.#aead.sealInto(chachaNonce(this.#n), ad, plaintext, out, at);
    this.#n++;
  }

  /**
   * DecryptWithAd(ad, ciphertext): the plaintext, or null when authentication fails, the input is
   * too short or long, or the nonce is exhausted. A failure leaves the nonce unchanged.
   */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array | null {
    if (ciphertext.length > MAX_MESSAGE) return null;
    if (this.#k === null) return ciphertext.slice();
    if (this.#n >= MAX_NONCE) return null;
    const out = this.#aead!.open(chachaNonce(this.#n), ad, ciphertext);
    if (out !== null) this.#n++;
    return out;
  }

  /** Rekey(): k = the first 32 bytes of ENCRYPT(k, 2^64 − 1, empty, 32 zero bytes). */
  rekey(): void {
    if (this.#k === null) throw new Error("Noise rekey without a key");
    // The nonce carries on (unlike InitializeKey).
    this.#k = this.#aead!.seal(chachaNonce(MAX_NONCE), EMPTY, new Uint8Array(32)).slice(0, 32);
    this.#aead = new ChaCha20Poly1305(this.#k);
  }

  /** An independent copy. */
  clone(): CipherState {
    const c = new CipherState(this.#k);
    c.#n = this.#n;
    return c;
  }
}

// ---------------------------------------------------------------------------------------------
// SymmetricState

/** The spec's SymmetricState: chaining key `ck`, handshake hash `h` and a CipherState. */
export class SymmetricState {
  #cs = new CipherState();
  #ck: Uint8Array;
  #h: Uint8Array;

  /** InitializeSymmetric(protocolName). */
  constructor(protocolName: string | Uint8Array) {
    const name = typeof protocolName === "string"
      ? new TextEncoder().encode(protocolName)
      : protocolName;
    this.#h = name.length <= HASHLEN
      ? concatBytes([name, new Uint8Array(HASHLEN - name.length)])
      : hash(name);
    this.#ck = this.#h.slice();
  }

  /** MixKey(ikm). */
  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.#ck, ikm, 2) as [Uint8Array, Uint8Array];
    this.#ck = ck;
    this.#cs.initializeKey(k);
  }

  /** MixHash(data). */
  mixHash(data: Uint8Array): void {
    this.#h = hash(concatBytes([this.#h, data]));
  }

  /** MixKeyAndHash(ikm), used for pre-shared keys. */
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, h, k] = hkdf(this.#ck, ikm, 3) as [Uint8Array, Uint8Array, Uint8Array];
    this.#ck = ck;
    this.mixHash(h);
    this.#cs.initializeKey(k);
  }

  /** GetHandshakeHash(): the current `h`. */
  getHandshakeHash(): Uint8Array {
    return this.#h.slice();
  }

  /** True once a key has been mixed in (payloads are then encrypted). */
  hasKey(): boolean {
    return this.#cs.hasKey();
  }

  /** EncryptAndHash(plaintext). */
  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ct = this.#cs.encryptWithAd(this.#h, plaintext);
    this.mixHash(ct);
    return ct;
  }

  /** DecryptAndHash(ciphertext): the plaintext, or null (and no change) on failure. */
  decryptAndHash(ciphertext: Uint8Array): Uint8Array | null {
    const pt = this.#cs.decryptWithAd(this.#h, ciphertext);
    if (pt !== null) this.mixHash(ciphertext);
    return pt;
  }

  /** Split(): [initiator → responder, responder → initiator] transport CipherStates. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = hkdf(this.#ck, EMPTY, 2) as [Uint8Array, Uint8Array];
    return [new CipherState(k1), new CipherState(k2)];
  }

  /** An independent copy. */
  clone(): SymmetricState {
    const c = new SymmetricState(EMPTY);
    c.#cs = this.#cs.clone();
    c.#ck = this.#ck;
    c.#h = this.#h;
    return c;
  }
}

// ---------------------------------------------------------------------------------------------
// Handshake patterns

/** A token of a handshake pattern. */
export type Token = "e" | "s" | "ee" | "es" | "se" | "ss" | "psk";

/** A handshake pattern: pre-message keys and messages alternating from the initiator. */
export interface HandshakePattern {
  /** The pattern's full name with modifiers, e.g. `XXpsk0`. */
  readonly name: string;
  /** Keys the initiator's peer knows beforehand (`s` and/or `e`). */
  readonly preInitiator: readonly Token[];
  /** Keys the responder's peer knows beforehand. */
  readonly preResponder: readonly Token[];
  /** Message i is sent by the initiator when i is even, by the responder when odd. */
  readonly messages: readonly (readonly Token[])[];
  /** True for the one-way patterns N, K, X: all transport traffic goes initiator → responder. */
  readonly oneWay: boolean;
  /** The length of each handshake message with an empty payload: the shortest it can be. */
  readonly minLengths: readonly number[];
}

// name: initiator pre-message / responder pre-message / message 1 / message 2 / ...
const PATTERNS: Record<string, string> = {
  N: "/s/e es",
  K: "s/s/e es ss",
  X: "/s/e es s ss",
  NN: "//e/e ee",
  NK: "/s/e es/e ee",
  NX: "//e/e ee s es",
  XN: "//e/e ee/s se",
  XK: "/s/e es/e ee/s se",
  XX: "//e/e ee s es/s se",
  KN: "s//e/e ee se",
  KK: "s/s/e es ss/e ee se",
  KX: "s//e/e ee se s es",
  IN: "//e s/e ee se",
  IK: "/s/e es s ss/e ee se",
  IX: "//e s/e ee se s es",
  NK1: "/s/e/e ee es",
  NX1: "//e/e ee s/es",
  X1N: "//e/e ee/s/se",
  X1K: "/s/e es/e ee/s/se",
  XK1: "/s/e/e ee es/s se",
  X1K1: "/s/e/e ee es/s/se",
  X1X: "//e/e ee s es/s/se",
  XX1: "//e/e ee s/es s se",
  X1X1: "//e/e ee s/es s/se",
  K1N: "s//e/e ee/se",
  K1K: "s/s/e es/e ee/se",
  KK1: "s/s/e/e ee se es",
  K1K1: "s/s/e/e ee es/se",
  K1X: "s//e/e ee s es/se",
  KX1: "s//e/e ee se s/es",
  K1X1: "s//e/e ee s/se es",
  I1N: "//e s/e ee/se",
  I1K: "/s/e es s/e ee/se",
  IK1: "/s/e s/e ee se es",
  I1K1: "/s/e s/e ee es/se",
  I1X: "//e s/e ee s es/se",
  IX1: "//e s/e ee se s/es",
  I1X1: "//e s/e ee s/se es",
};

function tokens(s: string): Token[] {
  return s === "" ? [] : s.split(" ") as Token[];
}

/**
 * The handshake pattern for a name such as `XX`, `IKpsk2` or `NNpsk0+psk2`, with the psk
 * modifiers applied (psk0 first in message 1, pskN last in message N). Throws on an unknown
 * pattern or an impossible modifier.
 */
export function handshakePattern(name: string): HandshakePattern {
  const m = /^([A-Z0-9]+)((?:psk\d+)(?:\+psk\d+)*)?$/.exec(name);
  const spec = m ? PATTERNS[m[1]!] : undefined;
  if (!m || spec === undefined) throw new Error(`unsupported Noise handshake pattern: ${name}`);
  const [preI = "", preR = "", ...msgs] = spec.split("/");
  const messages = msgs.map(tokens);
  const seen = new Set<number>();
  for (const mod of m[2] ? m[2].split("+") : []) {
    const n = Number(mod.slice(3));
    if (seen.has(n) || n > messages.length) {
      throw new Error(`invalid psk modifier ${mod} in Noise pattern ${name}`);
    }
    seen.add(n);
    if (n === 0) messages[0]!.unshift("psk");
    else messages[n - 1]!.push("psk");
  }
  return {
    name,
    preInitiator: tokens(preI),
    preResponder: tokens(preR),
    messages,
    oneWay: messages.length === 1,
    minLengths: minLengths(messages, seen.size > 0),
  };
}

/** Message lengths with empty payloads: keys are encrypted (+ tag) once any key is mixed in. */
function minLengths(messages: Token[][], psk: boolean): number[] {
  let keyed = false;
  return messages.map((msg) => {
    let n = 0;
    for (const t of msg) {
      if (t === "e") n += DHLEN;
      if (t === "s") n += keyed ? DHLEN + TAGLEN : DHLEN;
      if (t !== "s" && (t !== "e" || psk)) keyed = true;
    }
    return keyed ? n + TAGLEN : n;
  });
}

/** A parsed protocol name. */
export interface Protocol {
  /** The full name, e.g. `Noise_XXpsk0_25519_ChaChaPoly_SHA256`. */
  readonly name: string;
  /** The handshake pattern, modifiers applied. */
  readonly pattern: HandshakePattern;
}

/**
 * Parses `Noise_<pattern>_25519_ChaChaPoly_SHA256`. Throws on a malformed name, an unknown
 * pattern, or any DH function, cipher or hash other than 25519, ChaChaPoly and SHA256.
 */
export function parseProtocolName(name: string): Protocol {
  const parts = name.split("_");
  if (parts.length !== 5 || parts[0] !== "Noise") {
    throw new Error(`malformed Noise protocol name: ${name}`);
  }
  const [, pattern, dhName, cipher, hashName] = parts as [string, string, string, string, string];
  if (dhName !== "25519") throw new Error(`unsupported Noise DH function: ${dhName}`);
  if (cipher !== "ChaChaPoly") throw new Error(`unsupported Noise cipher: ${cipher}`);
  if (hashName !== "SHA256") throw new Error(`unsupported Noise hash: ${hashName}`);
  return { name, pattern: handshakePattern(pattern) };
}

// ---------------------------------------------------------------------------------------------
// HandshakeState

/** Options for {@link HandshakeState}. Keys are raw 32-byte X25519 values. */
export interface HandshakeOptions {
  /** Full protocol name, e.g. `Noise_XXpsk0_25519_ChaChaPoly_SHA256`. */
  protocolName: string;
  /** True for the initiator (who sends the first message). */
  initiator: boolean;
  /** Data both sides must agree on; mixed into the handshake hash. Default empty. */
  prologue?: Uint8Array;
  /**
   * The local static private key, when the pattern uses one; or its key pair, imported once
   * ({@link x25519KeyPair}) so that starting a handshake costs no scalar multiplication.
   */
  s?: Uint8Array | X25519KeyPair;
  /** A fixed local ephemeral private key: for test vectors only. */
  e?: Uint8Array;
  /** The remote static public key, when the pattern has it as a pre-message. */
  rs?: Uint8Array;
  /**
   * The remote ephemeral public key, when the pattern has it as a pre-message (no built-in
   * pattern does: giving it to them throws).
   */
  re?: Uint8Array;
  /** Pre-shared keys of 32 bytes, one per psk token, in the order the tokens occur. */
  psks?: Uint8Array[];
  /**
   * `n` random bytes, for ephemeral keys (never called when `e` is given). The roles pass
   * `systemRandom` of `lib/io/random.ts`; simulations pass seeded sources.
   */
  random: (n: number) => Uint8Array;
}

/** What a read works on; committed to the HandshakeState only when the whole message is good. */
interface Draft {
  ss: SymmetricState;
  re: Uint8Array | null;
  rs: Uint8Array | null;
  psk: number;
  at: number;
}

/**
 * The spec's HandshakeState: runs one handshake as initiator or responder. Alternate
 * {@link writeMessage} and {@link readMessage} as the pattern dictates; once
 * {@link isComplete}, {@link split} gives the transport CipherStates.
 */
export class HandshakeState {
  #ss: SymmetricState;
  #pattern: HandshakePattern;
  #initiator: boolean;
  #s: X25519KeyPair | null;
  #e: X25519KeyPair | null;
  #rs: Uint8Array | null;
  #re: Uint8Array | null;
  #psks: Uint8Array[];
  #random: (n: number) => Uint8Array;
  #next = 0;
  #psk = 0;
  #split = false;

  /** Initialize(): throws on an unsupported protocol or keys that do not fit the pattern. */
  constructor(options: HandshakeOptions) {
    const { pattern } = parseProtocolName(options.protocolName);
    this.#pattern = pattern;
    this.#initiator = options.initiator;
    const s = options.s;
    this.#s = s === undefined ? null : s instanceof Uint8Array ? x25519KeyPair(s) : s;
    this.#e = options.e ? x25519KeyPair(options.e) : null;
    this.#rs = options.rs?.slice() ?? null;
    this.#re = options.re?.slice() ?? null;
    this.#psks = (options.psks ?? []).map((p) => p.slice());
    this.#random = options.random;
    this.#validate();
    this.#ss = new SymmetricState(options.protocolName);
    this.#ss.mixHash(options.prologue ?? EMPTY);
    this.#mixPre(pattern.preInitiator, this.#initiator ? "local" : "remote");
    this.#mixPre(pattern.preResponder, this.#initiator ? "remote" : "local");
  }

  #validate(): void {
    const p = this.#pattern;
    const localPre = this.#initiator ? p.preInitiator : p.preResponder;
    const remotePre = this.#initiator ? p.preResponder : p.preInitiator;
    const mine = p.messages.filter((_, i) => (i % 2 === 0) === this.#initiator).flat();
    const usesS = localPre.includes("s") || mine.includes("s") ||
      p.messages.flat().some((t) => t === "ss" || t === (this.#initiator ? "se" : "es"));
    if (usesS && this.#s === null) throw new Error(`${p.name} needs the local static key s`);
    for (const k of ["s", "e"] as const) {
      const given = k === "s" ? this.#rs : this.#re;
      if (remotePre.includes(k) !== (given !== null)) {
        throw new Error(`${p.name}: r${k} must be given exactly when it is a pre-message`);
      }
      if (given !== null && !isAcceptablePublicKey(given)) throw new Error(`invalid r${k}`);
    }
    if (localPre.includes("e") && this.#e === null) throw new Error(`${p.name} needs e`);
    const pskTokens = p.messages.flat().filter((t) => t === "psk").length;
    if (this.#psks.length !== pskTokens || this.#psks.some((k) => k.length !== PSKLEN)) {
      throw new Error(`${p.name} needs ${pskTokens} pre-shared keys of ${PSKLEN} bytes`);
    }
  }

  #mixPre(pre: readonly Token[], whose: "local" | "remote"): void {
    for (const t of pre) {
      const key = whose === "local"
        ? (t === "s" ? this.#s : this.#e)!.publicKey
        : (t === "s" ? this.#rs : this.#re)!;
      this.#ss.mixHash(key);
      if (t === "e" && this.#psks.length > 0) this.#ss.mixKey(key);
    }
  }

  /** True for the initiator. */
  get isInitiator(): boolean {
    return this.#initiator;
  }

  /** The handshake pattern in use, modifiers applied. */
  get pattern(): HandshakePattern {
    return this.#pattern;
  }

  /** True once every handshake message has been written or read. */
  get isComplete(): boolean {
    return this.#next >= this.#pattern.messages.length;
  }

  /** True when the next handshake message is ours to write. */
  get isMyTurn(): boolean {
    return !this.isComplete && (this.#next % 2 === 0) === this.#initiator;
  }

  /** The remote party's static public key, once known (pre-message or received). */
  get remoteStatic(): Uint8Array | null {
    return this.#rs?.slice() ?? null;
  }

  /** The local static public key, if any. */
  get localStatic(): Uint8Array | null {
    return this.#s?.publicKey.slice() ?? null;
  }

  /** The handshake hash `h` so far; after completion, the channel binding value. */
  getHandshakeHash(): Uint8Array {
    return this.#ss.getHandshakeHash();
  }

  /**
   * WriteMessage(payload): the next handshake message. Throws when it is not our turn, the
   * handshake is complete, or the message would exceed {@link MAX_MESSAGE} bytes.
   */
  writeMessage(payload: Uint8Array = EMPTY): Uint8Array {
    if (!this.isMyTurn) throw new Error("Noise writeMessage out of turn");
    if (this.#pattern.minLengths[this.#next]! + payload.length > MAX_MESSAGE) {
      throw new RangeError("Noise handshake message too long");
    }
    const parts: Uint8Array[] = [];
    for (const t of this.#pattern.messages[this.#next]!) parts.push(this.#writeToken(t));
    parts.push(this.#ss.encryptAndHash(payload));
    this.#next++;
    return concatBytes(parts);
  }

  #writeToken(t: Token): Uint8Array {
    if (t === "e") {
      this.#e ??= x25519KeyPair(this.#random(DHLEN));
      this.#ss.mixHash(this.#e.publicKey);
      if (this.#psks.length > 0) this.#ss.mixKey(this.#e.publicKey);
      return this.#e.publicKey;
    }
    if (t === "s") return this.#ss.encryptAndHash(this.#s!.publicKey);
    if (t === "psk") {
      this.#ss.mixKeyAndHash(this.#psks[this.#psk++]!);
      return EMPTY;
    }
    const [local, remote] = this.#dhKeys(t, this.#re, this.#rs);
    const shared = local && remote ? x25519(local.privateKey, remote) : null;
    // Remote keys were checked when received or given, so this is a broken local key.
    if (shared === null) throw new Error(`Noise ${t} DH failed`);
    this.#ss.mixKey(shared);
    return EMPTY;
  }

  /** The local key pair and remote public key a DH token combines. */
  #dhKeys(t: Token, re: Uint8Array | null, rs: Uint8Array | null) {
    const i = this.#initiator;
    const local = t === "ee" || (t === "es" && i) || (t === "se" && !i) ? this.#e : this.#s;
    const remote = t === "ee" || (t === "se" && i) || (t === "es" && !i) ? re : rs;
    return [local, remote] as const;
  }

  /**
   * ReadMessage(message): the payload, or null when the message is malformed, fails
   * authentication, carries an unacceptable key, or is not expected now. A rejected message
   * changes nothing, so the handshake can go on with the genuine one.
   */
  readMessage(message: Uint8Array): Uint8Array | null {
    if (this.isComplete || this.isMyTurn || message.length > MAX_MESSAGE) return null;
    if (message.length < this.#pattern.minLengths[this.#next]!) return null;
    const d: Draft = { ss: this.#ss.clone(), re: this.#re, rs: this.#rs, psk: this.#psk, at: 0 };
    for (const t of this.#pattern.messages[this.#next]!) {
      if (!this.#readToken(t, d, message)) return null;
    }
    const payload = d.ss.decryptAndHash(message.subarray(d.at));
    if (payload === null) return null;
    this.#ss = d.ss;
    this.#re = d.re;
    this.#rs = d.rs;
    this.#psk = d.psk;
    this.#next++;
    return payload;
  }

  #readToken(t: Token, d: Draft, message: Uint8Array): boolean {
    if (t === "e" || t === "s") {
      const len = t === "s" && d.ss.hasKey() ? DHLEN + TAGLEN : DHLEN;
      if (message.length - d.at < len || (t === "e" ? d.re : d.rs) !== null) return false;
      const field = message.subarray(d.at, d.at + len);
      d.at += len;
      const key = t === "e" ? field.slice() : d.ss.decryptAndHash(field);
      if (key === null || !isAcceptablePublicKey(key)) return false;
      if (t === "s") d.rs = key;
      else {
        d.re = key;
        d.ss.mixHash(key);
        if (this.#psks.length > 0) d.ss.mixKey(key);
      }
      return true;
    }
    if (t === "psk") {
      d.ss.mixKeyAndHash(this.#psks[d.psk++]!);
      return true;
    }
    const [local, remote] = this.#dhKeys(t, d.re, d.rs);
    const shared = local && remote ? x25519(local.privateKey, remote) : null;
    if (shared === null) return false;
    d.ss.mixKey(shared);
    return true;
  }

  /**
   * Split(): the transport CipherStates `[initiator → responder, responder → initiator]`.
   * Throws before the handshake is complete, and on a second call (one pair per handshake).
   */
  split(): [CipherState, CipherState] {
    if (!this.isComplete) throw new Error("Noise split before the handshake is complete");
    if (this.#split) throw new Error("Noise split called twice");
    this.#split = true;
    return this.#ss.split();
  }
}
