/**
 * A second implementation of the cryptographic constructions `docs/protocol.md` specifies,
 * written from the document with node:crypto primitives only (no code of `lib/`): room key
 * derivation, name tags, owner tags, HELLO signatures, address cookies, REACH MACs, roster digests,
 * fingerprints, the pair prologue and handshake payloads, Noise_XXpsk0_25519_ChaChaPoly_SHA256
 * (handshake messages, handshake hash, split) and SEALED frames. The vector generator
 * (`scripts/protocol_vectors.ts`) refuses to write vectors on which this and the code disagree,
 * and `protocol_vectors_test.ts` holds both to the committed file.
 *
 * Keys are imported through their DER forms (RFC 8410), not the JWK route `lib/crypto` takes.
 *
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  scryptSync,
  sign,
} from "node:crypto";

const utf8 = new TextEncoder();

/** Lowercase hex. */
export function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** Bytes of a hex string. */
export function unhex(s: string): Uint8Array {
  if (s.length % 2 !== 0 || !/^[0-9a-f]*$/.test(s)) throw new Error(`not hex: ${s}`);
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** Concatenation. */
export function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), o += p.length);
  return out;
}

function u32be(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v);
  return b;
}

function u64be(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v);
  return b;
}

function hmac(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
  const h = createHmac("sha256", key);
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

function sha256(...data: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
}

// ---------------------------------------------------------------------------------------------
// Room keys (protocol.md, "Room key derivation")

/** Every intermediate value of the room key derivation. */
export interface RoomKeysRef {
  salt: Uint8Array;
  ikm: Uint8Array;
  signSeed: Uint8Array;
  roomId: Uint8Array;
  psk: Uint8Array;
  nameKey: Uint8Array;
}

const ED25519_PKCS8 = unhex("302e020100300506032b657004220420");
const X25519_PKCS8 = unhex("302e020100300506032b656e04220420");
const X25519_SPKI = unhex("302a300506032b656e032100");

function ed25519Private(seed: Uint8Array) {
  return createPrivateKey({
    key: Buffer.from(cat(ED25519_PKCS8, seed)),
    format: "der",
    type: "pkcs8",
  });
}

/** scrypt(NFKC(passphrase), "p2p room v1" ‖ 0x00 ‖ NFKC(room)), then HKDF-SHA256 expansions. */
export function roomKeysRef(room: string, passphrase: string): RoomKeysRef {
  const salt = cat(
    utf8.encode("p2p room v1"),
    new Uint8Array([0]),
    utf8.encode(room.normalize("NFKC")),
  );
  const ikm = new Uint8Array(
    scryptSync(utf8.encode(passphrase.normalize("NFKC")), salt, 32, {
      N: 32768,
      r: 8,
      p: 1,
      maxmem: 64 * 1024 * 1024,
    }),
  );
  const expand = (info: string) =>
    new Uint8Array(hkdfSync("sha256", ikm, new Uint8Array(0), utf8.encode(info), 32));
  const signSeed = expand("p2p room v1 sign");
  const spki = createPublicKey(ed25519Private(signSeed)).export({ format: "der", type: "spki" });
  return {
    salt,
    ikm,
    signSeed,
    roomId: new Uint8Array(spki.subarray(spki.length - 32)),
    psk: expand("p2p room v1 psk"),
    nameKey: expand("p2p room v1 name key"),
  };
}

/** The first 8 bytes of HMAC-SHA256(nameKey, UTF-8 of the name). */
export function nameTagRef(nameKey: Uint8Array, name: string): Uint8Array {
  return hmac(nameKey, utf8.encode(name)).slice(0, 8);
}

/**
 * "p2p hello v3" ‖ 0x00 ‖ id ‖ cookie ‖ nonce ‖ flags ‖ room id ‖ name tag ‖ owner tag ‖ id key.
 */
export function helloSigningInputRef(
  id: Uint8Array,
  cookie: Uint8Array,
  nonce: Uint8Array,
  flags: number,
  room: Uint8Array,
  tag: Uint8Array,
  owner: Uint8Array,
  idKey: Uint8Array,
): Uint8Array {
  return cat(
    utf8.encode("p2p hello v3"),
    new Uint8Array([0]),
    id,
    cookie,
    nonce,
    new Uint8Array([flags]),
    room,
    tag,
    owner,
    idKey,
  );
}

/** The raw Ed25519 public key (RFC 8032) of `seed`, from its SPKI DER form. */
export function ed25519PublicRef(seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(ed25519Private(seed)).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

/** The registration puzzle's hash: SHA-256("p2p pow v1" ‖ 0x00 ‖ cookie ‖ id ‖ nonce ‖ pow). */
export function puzzleDigestRef(
  cookie: Uint8Array,
  id: Uint8Array,
  nonce: Uint8Array,
  pow: Uint8Array,
): Uint8Array {
  const input = cat(utf8.encode("p2p pow v1"), new Uint8Array([0]), cookie, id, nonce, pow);
  return new Uint8Array(createHash("sha256").update(input).digest());
}

/** A peer id: the first 8 bytes of SHA-256("p2p id v1" ‖ 0x00 ‖ id key). */
export function peerIdRef(idKey: Uint8Array): Uint8Array {
  const h = createHash("sha256").update(cat(utf8.encode("p2p id v1"), new Uint8Array([0]), idKey));
  return new Uint8Array(h.digest()).slice(0, 8);
}

/**
 * The owner tag: trunc_16(HKDF-SHA256(ikm = identity private key, salt = room id,
 * info = "p2p owner tag v1")), computed step by step from RFC 5869 with HMAC (extract, then
 * the first block of expand), not with `hkdfSync`.
 */
export function ownerTagRef(identityPrivate: Uint8Array, roomId: Uint8Array): Uint8Array {
  const prk = hmac(roomId, identityPrivate);
  return hmac(prk, utf8.encode("p2p owner tag v1"), new Uint8Array([1])).slice(0, 16);
}

/** The Ed25519 signature (RFC 8032, deterministic) of `data` by the key of `seed`. */
export function ed25519SignRef(seed: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, data, ed25519Private(seed)));
}

// ---------------------------------------------------------------------------------------------
// Server-side MACs (protocol.md, "Cookies" and "Reachability checks")

/** The text form of an endpoint the cookie covers: `a.b.c.d:port` or `[v6]:port`. */
export function endpointText(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}

/** The first 8 bytes of HMAC-SHA256(secret, id ‖ ASCII "IP:PORT"). */
export function addressCookieRef(secret: Uint8Array, id: Uint8Array, text: string): Uint8Array {
  return hmac(secret, id, utf8.encode(text)).slice(0, 8);
}

/** The secret of cookie period `period`: HMAC-SHA256(master, ASCII decimal of the period). */
export function periodSecretRef(master: Uint8Array, period: number): Uint8Array {
  return hmac(master, utf8.encode(String(period)));
}

/** The first 16 bytes of HMAC-SHA256(token, "p2p reach v1" ‖ nonce). */
export function reachMacRef(token: Uint8Array, nonce: Uint8Array): Uint8Array {
  return hmac(token, utf8.encode("p2p reach v1"), nonce).slice(0, 16);
}

/**
 * A cluster's MAC key (section 21): HKDF-SHA256(secret, empty salt, "p2p cluster mac v1", 32),
 * written as RFC 5869's two steps.
 */
export function clusterKeyRef(secret: Uint8Array): Uint8Array {
  const prk = hmac(new Uint8Array(32), secret);
  return hmac(prk, utf8.encode("p2p cluster mac v1"), new Uint8Array([1]));
}

/**
 * A cluster's shared cookie master (section 23): HKDF-SHA256(secret, empty salt,
 * "p2p cluster cookie v1", 32), written as RFC 5869's two steps.
 */
export function clusterCookieKeyRef(secret: Uint8Array): Uint8Array {
  const prk = hmac(new Uint8Array(32), secret);
  return hmac(prk, utf8.encode("p2p cluster cookie v1"), new Uint8Array([1]));
}

/** A cluster message's MAC: the first 16 bytes of HMAC-SHA256(key, the message before it). */
export function clusterMacRef(key: Uint8Array, body: Uint8Array): Uint8Array {
  return hmac(key, body).slice(0, 16);
}

/** 32-bit FNV-1a of one id. */
export function idDigestRef(id: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of id) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h >>> 0;
}

/** XOR of the ids' FNV-1a digests (0 for none). */
export function rosterDigestRef(ids: Uint8Array[]): number {
  return ids.reduce((acc, id) => (acc ^ idDigestRef(id)) >>> 0, 0);
}

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";

/** The first 80 bits of SHA-256(public key), base32 lowercase, four groups of four. */
export function fingerprintRef(publicKey: Uint8Array): string {
  const d = sha256(publicKey).subarray(0, 10);
  let bits = "";
  for (const b of d) bits += b.toString(2).padStart(8, "0");
  let s = "";
  for (let i = 0; i < 80; i += 5) s += BASE32[parseInt(bits.slice(i, i + 5), 2)];
  return s.match(/.{4}/g)!.join("-");
}

// ---------------------------------------------------------------------------------------------
// The pair handshake (protocol.md, "Handshake")

/** "p2p v5 pair" ‖ room id ‖ initiator id ‖ responder id. */
export function prologueRef(roomId: Uint8Array, initiator: Uint8Array, responder: Uint8Array) {
  return cat(utf8.encode("p2p v5 pair"), roomId, initiator, responder);
}

/** attempt u32 big-endian ‖ UTF-8 name (no name in message 1). */
export function payloadRef(attempt: number, name?: string): Uint8Array {
  return cat(u32be(attempt), name === undefined ? new Uint8Array(0) : utf8.encode(name));
}

/** The X25519 public key of a 32-byte private key. */
export function x25519Public(priv: Uint8Array): Uint8Array {
  const key = createPrivateKey({
    key: Buffer.from(cat(X25519_PKCS8, priv)),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(key).export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

function x25519(priv: Uint8Array, pub: Uint8Array): Uint8Array {
  const privateKey = createPrivateKey({
    key: Buffer.from(cat(X25519_PKCS8, priv)),
    format: "der",
    type: "pkcs8",
  });
  const publicKey = createPublicKey({
    key: Buffer.from(cat(X25519_SPKI, pub)),
    format: "der",
    type: "spki",
  });
  return new Uint8Array(diffieHellman({ privateKey, publicKey }));
}

/** The 12-byte ChaCha20-Poly1305 nonce of Noise counter `n`: 4 zero bytes ‖ little-endian n. */
export function noiseNonce(n: bigint): Uint8Array {
  const b = new Uint8Array(12);
  new DataView(b.buffer).setBigUint64(4, n, true);
  return b;
}

/** ChaCha20-Poly1305 (RFC 8439): ciphertext ‖ tag. */
export function aeadSeal(key: Uint8Array, n: bigint, ad: Uint8Array, pt: Uint8Array): Uint8Array {
  const c = createCipheriv("chacha20-poly1305", key, noiseNonce(n), { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: pt.length });
  return cat(
    new Uint8Array(c.update(pt)),
    new Uint8Array(c.final()),
    new Uint8Array(c.getAuthTag()),
  );
}

/** ChaCha20-Poly1305 opening; null when it does not authenticate. */
export function aeadOpen(
  key: Uint8Array,
  n: bigint,
  ad: Uint8Array,
  ct: Uint8Array,
): Uint8Array | null {
  if (ct.length < 16) return null;
  const d = createDecipheriv("chacha20-poly1305", key, noiseNonce(n), { authTagLength: 16 });
  d.setAAD(ad, { plaintextLength: ct.length - 16 });
  d.setAuthTag(ct.subarray(ct.length - 16));
  try {
    return cat(new Uint8Array(d.update(ct.subarray(0, ct.length - 16))), new Uint8Array(d.final()));
  } catch {
    return null;
  }
}

/** Noise's HKDF: HMAC-SHA256 chained from HMAC(ck, ikm), `n` outputs of 32 bytes. */
function noiseHkdf(ck: Uint8Array, ikm: Uint8Array, n: 2 | 3): Uint8Array[] {
  const temp = hmac(ck, ikm);
  const o1 = hmac(temp, new Uint8Array([1]));
  const o2 = hmac(temp, o1, new Uint8Array([2]));
  if (n === 2) return [o1, o2];
  return [o1, o2, hmac(temp, o2, new Uint8Array([3]))];
}

/** Noise's SymmetricState for one handshake (the CipherState folded in). */
class Symmetric {
  ck: Uint8Array;
  h: Uint8Array;
  k: Uint8Array | null = null;
  n = 0n;
  constructor(name: string) {
    const b = utf8.encode(name);
    this.h = b.length <= 32 ? cat(b, new Uint8Array(32 - b.length)) : sha256(b);
    this.ck = this.h;
  }
  mixHash(data: Uint8Array): void {
    this.h = sha256(this.h, data);
  }
  mixKey(ikm: Uint8Array): void {
    const [ck, k] = noiseHkdf(this.ck, ikm, 2);
    this.ck = ck!;
    this.k = k!;
    this.n = 0n;
  }
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, th, k] = noiseHkdf(this.ck, ikm, 3);
    this.ck = ck!;
    this.mixHash(th!);
    this.k = k!;
    this.n = 0n;
  }
  encryptAndHash(pt: Uint8Array): Uint8Array {
    const ct = this.k ? aeadSeal(this.k, this.n++, this.h, pt) : pt;
    this.mixHash(ct);
    return ct;
  }
  decryptAndHash(ct: Uint8Array): Uint8Array {
    const pt = this.k ? aeadOpen(this.k, this.n++, this.h, ct) : ct;
    if (!pt) throw new Error("reference handshake: a message does not authenticate");
    this.mixHash(ct);
    return pt;
  }
  split(): [Uint8Array, Uint8Array] {
    const [k1, k2] = noiseHkdf(this.ck, new Uint8Array(0), 2);
    return [k1!, k2!];
  }
}

/** Everything one XXpsk0 handshake produces. */
export interface HandshakeRef {
  /** Messages 1, 2 and 3 (the Noise messages, without the HANDSHAKE frame). */
  messages: [Uint8Array, Uint8Array, Uint8Array];
  /** The handshake hash h after message 3 (a channel binding value). */
  handshakeHash: Uint8Array;
  /** The transport keys: initiator to responder, responder to initiator. */
  initiatorToResponder: Uint8Array;
  responderToInitiator: Uint8Array;
}

/** One side's keys for a reference handshake. */
export interface PartyRef {
  /** X25519 static private key. */
  s: Uint8Array;
  /** X25519 ephemeral private key. */
  e: Uint8Array;
  /** Its three payloads are taken from `payloads`. */
}

/**
 * Runs Noise_XXpsk0_25519_ChaChaPoly_SHA256 between `i` (initiator) and `r` (responder) with
 * `psk`, `prologue` and payloads `[p1, p2, p3]`, computing both sides and checking they agree.
 */
export function xxpsk0Ref(o: {
  prologue: Uint8Array;
  psk: Uint8Array;
  i: PartyRef;
  r: PartyRef;
  payloads: [Uint8Array, Uint8Array, Uint8Array];
}): HandshakeRef {
  const name = "Noise_XXpsk0_25519_ChaChaPoly_SHA256";
  const I = new Symmetric(name), R = new Symmetric(name);
  const ie = x25519Public(o.i.e), is = x25519Public(o.i.s);
  const re = x25519Public(o.r.e), rs = x25519Public(o.r.s);
  for (const s of [I, R]) s.mixHash(o.prologue);
  // Message 1, initiator: psk, e; payload.
  I.mixKeyAndHash(o.psk);
  I.mixHash(ie);
  I.mixKey(ie);
  const m1 = cat(ie, I.encryptAndHash(o.payloads[0]));
  // Responder reads it.
  R.mixKeyAndHash(o.psk);
  const ie2 = m1.subarray(0, 32);
  R.mixHash(ie2);
  R.mixKey(ie2);
  expectSame(R.decryptAndHash(m1.subarray(32)), o.payloads[0]);
  // Message 2, responder: e, ee, s, es; payload.
  R.mixHash(re);
  R.mixKey(re);
  R.mixKey(x25519(o.r.e, ie));
  const rsCt = R.encryptAndHash(rs);
  R.mixKey(x25519(o.r.s, ie));
  const m2 = cat(re, rsCt, R.encryptAndHash(o.payloads[1]));
  // Initiator reads it.
  const re2 = m2.subarray(0, 32);
  I.mixHash(re2);
  I.mixKey(re2);
  I.mixKey(x25519(o.i.e, re2));
  const rs2 = I.decryptAndHash(m2.subarray(32, 80));
  I.mixKey(x25519(o.i.e, rs2));
  expectSame(I.decryptAndHash(m2.subarray(80)), o.payloads[1]);
  // Message 3, initiator: s, se; payload.
  const isCt = I.encryptAndHash(is);
  I.mixKey(x25519(o.i.s, re2));
  const m3 = cat(isCt, I.encryptAndHash(o.payloads[2]));
  // Responder reads it.
  const is2 = R.decryptAndHash(m3.subarray(0, 48));
  R.mixKey(x25519(o.r.e, is2));
  expectSame(R.decryptAndHash(m3.subarray(48)), o.payloads[2]);
  const [i1, i2] = I.split(), [r1, r2] = R.split();
  expectSame(i1, r1);
  expectSame(i2, r2);
  expectSame(I.h, R.h);
  return {
    messages: [m1, m2, m3],
    handshakeHash: I.h,
    initiatorToResponder: i1,
    responderToInitiator: i2,
  };
}

function expectSame(a: Uint8Array, b: Uint8Array): void {
  if (hex(a) !== hex(b)) throw new Error(`reference handshake: ${hex(a)} != ${hex(b)}`);
}

// ---------------------------------------------------------------------------------------------
// SEALED (protocol.md, "SEALED frames")

/** 0x70 0x32 version (8) 0x20 ‖ from ‖ to ‖ counter u64 big-endian. */
export function sealedHeaderRef(from: Uint8Array, to: Uint8Array, counter: bigint): Uint8Array {
  return cat(new Uint8Array([0x70, 0x32, 8, 0x20]), from, to, u64be(counter));
}

/** A whole SEALED frame: header ‖ ChaCha20-Poly1305(key, nonce(counter), header, inner). */
export function sealedRef(
  key: Uint8Array,
  from: Uint8Array,
  to: Uint8Array,
  counter: bigint,
  inner: Uint8Array,
): Uint8Array {
  const header = sealedHeaderRef(from, to, counter);
  return cat(header, aeadSeal(key, counter, header, inner));
}
