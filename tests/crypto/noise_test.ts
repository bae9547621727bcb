/**
 * Tests of the Noise handshake: replay of the published snow and cacophony test vectors for
 * every `_25519_ChaChaPoly_SHA256` protocol (both roles, transport messages, handshake hash),
 * rejection of every single-bit flip and of a wrong psk in `Noise_XXpsk0`, a seeded fuzz of
 * readMessage at every stage (no mutated message is accepted, none changes the handshake's
 * state), and a fresh XXpsk0 handshake with transport both ways.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createCipheriv, createPrivateKey, createPublicKey, diffieHellman } from "node:crypto";
import {
  CipherState,
  handshakePattern,
  HandshakeState,
  MAX_MESSAGE,
  parseProtocolName,
  SymmetricState,
} from "../../lib/crypto/noise.ts";
import { isAcceptablePublicKey, x25519PublicKey as publicKeyOf } from "../../lib/crypto/x25519.ts";
import { systemRandom } from "../../lib/io/random.ts";
import { concat } from "../support/bytes.ts";
import { prng, randomBytesFrom, seededRandom } from "../support/prng.ts";

interface VectorMessage {
  payload: string;
  ciphertext: string;
}

interface Vector {
  _file: string;
  protocol_name: string;
  init_prologue: string;
  init_psks?: string[];
  init_static?: string;
  init_ephemeral: string;
  init_remote_static?: string;
  resp_prologue: string;
  resp_psks?: string[];
  resp_static?: string;
  resp_ephemeral?: string;
  resp_remote_static?: string;
  handshake_hash?: string;
  messages: VectorMessage[];
}

interface VectorFile {
  source: { repository: string; commit: string; paths: string[] };
  vectors: Vector[];
}

const VECTORS: VectorFile = JSON.parse(
  Deno.readTextFileSync(new URL("../vectors/noise_25519_chachapoly_sha256.json", import.meta.url)),
);

function unhex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function opt(s: string | undefined): Uint8Array | undefined {
  return s === undefined ? undefined : unhex(s);
}

function party(v: Vector, initiator: boolean): HandshakeState {
  const p = initiator ? "init_" : "resp_";
  const field = (k: string) => (v as unknown as Record<string, string | undefined>)[p + k];
  return new HandshakeState({
    protocolName: v.protocol_name,
    initiator,
    prologue: unhex(field("prologue")!),
    s: opt(field("static")),
    e: opt(field("ephemeral")),
    rs: opt(field("remote_static")),
    psks: ((initiator ? v.init_psks : v.resp_psks) ?? []).map(unhex),
    random: () => {
      throw new Error("a vector must not need fresh randomness");
    },
  });
}

/** Replays one vector: every message written by one role must match and be read by the other. */
function replay(v: Vector): void {
  const init = party(v, true), resp = party(v, false);
  const pattern = parseProtocolName(v.protocol_name).pattern;
  const hsLen = pattern.messages.length;
  assert.ok(v.messages.length > hsLen, "the vector has transport messages");
  for (let i = 0; i < hsLen; i++) {
    const [tx, rx] = i % 2 === 0 ? [init, resp] : [resp, init];
    const m = v.messages[i]!;
    assert.equal(hex(tx.writeMessage(unhex(m.payload))), m.ciphertext, `message ${i}`);
    const read = rx.readMessage(unhex(m.ciphertext));
    assert.ok(read !== null, `message ${i} accepted`);
    assert.equal(hex(read), m.payload);
  }
  assert.ok(init.isComplete && resp.isComplete);
  const hash = hex(init.getHandshakeHash());
  assert.equal(hex(resp.getHandshakeHash()), hash);
  if (v.handshake_hash !== undefined) assert.equal(hash, v.handshake_hash);
  if (v.resp_static) assert.equal(hex(init.remoteStatic!), hex(publicKeyOf(unhex(v.resp_static))));
  if (v.init_static) assert.equal(hex(resp.remoteStatic!), hex(publicKeyOf(unhex(v.init_static))));
  const [i2r, r2i] = init.split();
  const [ri2r, rr2i] = resp.split();
  for (let i = hsLen; i < v.messages.length; i++) {
    const fromInit = pattern.oneWay || i % 2 === 0;
    const [tx, rx] = fromInit ? [i2r, ri2r] : [rr2i, r2i];
    const m = v.messages[i]!;
    const empty = new Uint8Array(0);
    assert.equal(hex(tx.encryptWithAd(empty, unhex(m.payload))), m.ciphertext, `message ${i}`);
    const read = rx.decryptWithAd(empty, unhex(m.ciphertext));
    assert.ok(read !== null, `message ${i} accepted`);
    assert.equal(hex(read), m.payload);
  }
}

Deno.test("the vector file holds only 25519/ChaChaPoly/SHA256 vectors and names its source", () => {
  assert.match(VECTORS.source.repository, /^[\w.-]+\/[\w.-]+$/);
  assert.match(VECTORS.source.commit, /^[0-9a-f]{40}$/);
  assert.ok(VECTORS.source.paths.length > 0);
  assert.ok(VECTORS.vectors.every((v) => v.protocol_name.endsWith("_25519_ChaChaPoly_SHA256")));
  const names = new Set(VECTORS.vectors.map((v) => v.protocol_name.split("_")[1]!));
  for (const need of ["NN", "XX", "IK", "NNpsk0", "XXpsk3", "XXpsk0+psk3"]) {
    assert.ok(names.has(need), `vectors include ${need}`);
  }
  assert.ok(VECTORS.vectors.some((v) => v.handshake_hash !== undefined));
});

for (const v of VECTORS.vectors) {
  Deno.test(`vector ${v.protocol_name} (${v._file})`, () => replay(v));
}

Deno.test("protocol names: the supported suite parses, others are refused clearly", () => {
  const p = parseProtocolName("Noise_XXpsk0_25519_ChaChaPoly_SHA256").pattern;
  assert.deepEqual(p.messages, [["psk", "e"], ["e", "ee", "s", "es"], ["s", "se"]]);
  assert.deepEqual(handshakePattern("NNpsk0+psk2").messages, [["psk", "e"], ["e", "ee", "psk"]]);
  assert.deepEqual(handshakePattern("IKpsk2").preResponder, ["s"]);
  assert.throws(() => parseProtocolName("Noise_XX_448_ChaChaPoly_SHA256"), /DH function: 448/);
  assert.throws(() => parseProtocolName("Noise_XX_25519_AESGCM_SHA256"), /cipher: AESGCM/);
  assert.throws(() => parseProtocolName("Noise_XX_25519_ChaChaPoly_BLAKE2s"), /hash: BLAKE2s/);
  assert.throws(() => parseProtocolName("Noise_XY_25519_ChaChaPoly_SHA256"), /pattern: XY/);
  assert.throws(() => parseProtocolName("Noise_XXpsk4_25519_ChaChaPoly_SHA256"), /psk4/);
  assert.throws(() => parseProtocolName("Noise_NNpsk0+psk0_25519_ChaChaPoly_SHA256"), /psk0/);
  assert.throws(() => parseProtocolName("Noise_XXfallback_25519_ChaChaPoly_SHA256"), /pattern/);
  assert.throws(() => parseProtocolName("NoisePSK_XX_25519_ChaChaPoly_SHA256"), /malformed/);
});

// ---------------------------------------------------------------------------------------------
// Noise_XXpsk0: a deterministic handshake, tampering, wrong psk, fuzzing

const XXPSK0 = "Noise_XXpsk0_25519_ChaChaPoly_SHA256";
const PROLOGUE = new TextEncoder().encode("p2p noise test");
const PSK = new Uint8Array(32).fill(7);
const I_STATIC = new Uint8Array(32).fill(0x11), R_STATIC = new Uint8Array(32).fill(0x22);

function xxpsk0(initiator: boolean, psk = PSK, seed = initiator ? 1 : 2): HandshakeState {
  return new HandshakeState({
    protocolName: XXPSK0,
    initiator,
    prologue: PROLOGUE,
    s: initiator ? I_STATIC : R_STATIC,
    psks: [psk],
    random: seededRandom(seed),
  });
}

const PAYLOADS = ["hello", "", "third"].map((s) => new TextEncoder().encode(s));

/** The three genuine handshake messages of the seeded XXpsk0 run. */
function genuine(): Uint8Array[] {
  const init = xxpsk0(true), resp = xxpsk0(false);
  const out: Uint8Array[] = [];
  for (let i = 0; i < 3; i++) {
    const [tx, rx] = i % 2 === 0 ? [init, resp] : [resp, init];
    out.push(tx.writeMessage(PAYLOADS[i]));
    assert.deepEqual(rx.readMessage(out[i]!), PAYLOADS[i]);
  }
  return out;
}

/** A fresh party that has processed messages 0..stage-1 and now expects message `stage`. */
function atStage(stage: number, msgs: Uint8Array[], psk = PSK): HandshakeState {
  const hs = xxpsk0(stage % 2 === 1, psk);
  for (let i = 0; i < stage; i++) {
    if (hs.isMyTurn) assert.deepEqual(hs.writeMessage(PAYLOADS[i]), msgs[i]);
    else assert.deepEqual(hs.readMessage(msgs[i]!), PAYLOADS[i]);
  }
  return hs;
}

/** A party of the seeded run that has finished the handshake. */
function completed(initiator: boolean, msgs: Uint8Array[]): HandshakeState {
  const hs = xxpsk0(initiator);
  for (let i = 0; i < 3; i++) {
    if (hs.isMyTurn) assert.deepEqual(hs.writeMessage(PAYLOADS[i]), msgs[i]);
    else assert.deepEqual(hs.readMessage(msgs[i]!), PAYLOADS[i]);
  }
  assert.ok(hs.isComplete);
  return hs;
}

Deno.test("XXpsk0: every single-bit flip of every handshake message is rejected", () => {
  const msgs = genuine();
  let flips = 0;
  for (let stage = 0; stage < 3; stage++) {
    const hs = atStage(stage, msgs);
    const m = msgs[stage]!;
    for (let bit = 0; bit < m.length * 8; bit++) {
      const bad = m.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(hs.readMessage(bad), null, `stage ${stage} bit ${bit}`);
      flips++;
    }
    // Rejected messages changed nothing: the genuine one is still accepted.
    assert.deepEqual(hs.readMessage(m), PAYLOADS[stage]);
  }
  assert.equal(flips, msgs.reduce((n, m) => n + m.length * 8, 0));
});

Deno.test("XXpsk0: a wrong psk on either side fails the handshake without throwing", () => {
  const msgs = genuine();
  const wrong = new Uint8Array(32).fill(8);
  assert.equal(atStage(0, msgs, wrong).readMessage(msgs[0]!), null);
  const badInit = xxpsk0(true, wrong);
  assert.equal(xxpsk0(false).readMessage(badInit.writeMessage(PAYLOADS[0])), null);
  // Even an empty payload is authenticated in message 1, since psk0 keys the cipher at once.
  assert.equal(xxpsk0(false).readMessage(xxpsk0(true, wrong).writeMessage()), null);
});

function mutate(rng: () => number, base: Uint8Array, others: Uint8Array[]): Uint8Array {
  const r = Math.floor(rng() * 7);
  const at = Math.floor(rng() * (base.length + 1));
  const len = Math.floor(rng() * 200);
  const m = base.slice();
  if (r === 0) m[Math.min(at, m.length - 1)]! ^= 1 + Math.floor(rng() * 255);
  if (r === 1) return m.subarray(0, at);
  if (r === 2) return new Uint8Array([...m, ...randomBytesFrom(rng, 1 + len)]);
  if (r === 3) return others[Math.floor(rng() * others.length)]!;
  if (r === 4) return randomBytesFrom(rng, len);
  if (r === 5) return new Uint8Array([...randomBytesFrom(rng, 32), ...m.subarray(32)]);
  if (r === 6) { for (let k = 0; k < 1 + len % 8; k++) m[Math.floor(rng() * m.length)] = 0; }
  return m;
}

/**
 * Feeds `n` mutations of `base` (never `base` itself) to `read`; counts those it accepted.
 * After every rejected input, `state()` (what the receiver's next read depends on) must be as
 * it was: a forged message changes nothing.
 */
function fuzz(
  rng: () => number,
  n: number,
  base: Uint8Array,
  others: Uint8Array[],
  read: (m: Uint8Array) => Uint8Array | null,
  state: () => string,
): number {
  const before = state();
  let accepted = 0;
  for (let k = 0; k < n; k++) {
    let input = mutate(rng, base, others);
    while (same(input, base)) input = mutate(rng, base, others);
    if (read(input) !== null) accepted++;
    else if (state() !== before) assert.fail(`input ${k} (${hex(input)}) moved the state`);
  }
  return accepted;
}

/** What a handshake's next read depends on: its hash, whose turn it is, whether it is done. */
function handshakeState(hs: HandshakeState): string {
  return `${hex(hs.getHandshakeHash())} ${hs.isMyTurn} ${hs.isComplete} ${
    hex(hs.remoteStatic ?? new Uint8Array(0))
  }`;
}

Deno.test("XXpsk0: 100,000 random and mutated inputs at every stage: none accepted, none moves the state", () => {
  const msgs = genuine();
  const rng = prng(20260522);
  const huge = new Uint8Array(MAX_MESSAGE + 1), empty = new Uint8Array(0);
  const report: string[] = [];
  let accepted = 0, t = performance.now();
  const tally = (label: string, n: number) => {
    accepted += n;
    report.push(`${label} ${(performance.now() - t).toFixed(0)} ms`);
    t = performance.now();
  };
  // Three handshake stages, 25,000 inputs each; rejected inputs leave the state as it was.
  for (let stage = 0; stage < 3; stage++) {
    const hs = atStage(stage, msgs);
    const others = [...msgs.filter((_, i) => i !== stage), huge, empty];
    tally(
      `message ${stage + 1}`,
      fuzz(rng, 25_000, msgs[stage]!, others, (m) => hs.readMessage(m), () => handshakeState(hs)),
    );
    assert.deepEqual(hs.readMessage(msgs[stage]!), PAYLOADS[stage]);
  }
  // And 25,000 to the transport cipher after the handshake.
  const [i2r] = completed(true, msgs).split();
  const [ri2r] = completed(false, msgs).split();
  const sealed = i2r.encryptWithAd(empty, PAYLOADS[0]!);
  tally(
    "transport",
    fuzz(rng, 25_000, sealed, msgs, (m) => ri2r.decryptWithAd(empty, m), () => `${ri2r.nonce}`),
  );
  assert.deepEqual(ri2r.decryptWithAd(empty, sealed), PAYLOADS[0]);
  console.log(`noise fuzz: 100000 inputs, ${accepted} accepted; ${report.join(", ")}`);
  assert.equal(accepted, 0);
});

// ---------------------------------------------------------------------------------------------
// Every pattern, fresh handshakes, low-order keys, programmer errors, CipherState

const BASE_PATTERNS = (
  "N K X NN NK NX XN XK XX KN KK KX IN IK IX NK1 NX1 X1N X1K XK1 X1K1 X1X XX1 X1X1 " +
  "K1N K1K KK1 K1K1 K1X KX1 K1X1 I1N I1K IK1 I1K1 I1X IX1 I1X1"
).split(" ");

/** Runs a full handshake and returns both parties; `payload(i)` is message i's payload. */
function handshake(name: string, seed: number, payload: (i: number) => Uint8Array) {
  const p = handshakePattern(name);
  const rng = seededRandom(seed);
  const sI = rng(32), sR = rng(32);
  const psks = p.messages.flat().filter((t) => t === "psk").map(() => rng(32));
  const make = (initiator: boolean) =>
    new HandshakeState({
      protocolName: `Noise_${name}_25519_ChaChaPoly_SHA256`,
      initiator,
      prologue: PROLOGUE,
      s: initiator ? sI : sR,
      rs: (initiator ? p.preResponder : p.preInitiator).includes("s")
        ? publicKeyOf(initiator ? sR : sI)
        : undefined,
      psks,
      random: rng,
    });
  const init = make(true), resp = make(false);
  const lengths: number[] = [];
  for (let i = 0; !init.isComplete; i++) {
    const [tx, rx] = i % 2 === 0 ? [init, resp] : [resp, init];
    const m = tx.writeMessage(payload(i));
    lengths.push(m.length);
    assert.deepEqual(rx.readMessage(m), payload(i), `${name} message ${i}`);
  }
  assert.ok(resp.isComplete);
  assert.deepEqual(init.getHandshakeHash(), resp.getHandshakeHash());
  const sends = (odd: number) => p.messages.some((m, i) => i % 2 === odd && m.includes("s"));
  const rI = p.preResponder.includes("s") || sends(1),
    rR = p.preInitiator.includes("s") || sends(0);
  assert.deepEqual(init.remoteStatic, rI ? publicKeyOf(sR) : null, `${name}: initiator's rs`);
  assert.deepEqual(resp.remoteStatic, rR ? publicKeyOf(sI) : null, `${name}: responder's rs`);
  return { init, resp, lengths, pattern: p };
}

Deno.test("every pattern, with and without psks, completes; empty messages are minLengths long", () => {
  let runs = 0;
  for (const base of BASE_PATTERNS) {
    const n = handshakePattern(base).messages.length;
    for (const mod of ["", "psk0", `psk${n}`, n > 1 ? "psk0+psk1+psk2" : "psk0+psk1"]) {
      const name = base + mod;
      const { init, resp, lengths, pattern } = handshake(name, runs, () => new Uint8Array(0));
      assert.deepEqual(lengths, pattern.minLengths, name);
      const [i2r, r2i] = init.split(), [ri2r, rr2i] = resp.split();
      const ad = new Uint8Array([1, 2]), text = new TextEncoder().encode(name);
      assert.deepEqual(ri2r.decryptWithAd(ad, i2r.encryptWithAd(ad, text)), text);
      if (!pattern.oneWay) {
        assert.deepEqual(r2i.decryptWithAd(ad, rr2i.encryptWithAd(ad, text)), text);
      }
      runs++;
    }
  }
  assert.equal(runs, BASE_PATTERNS.length * 4);
});

Deno.test("XXpsk0 between two fresh states with system randomness, transport both ways", () => {
  const sI = systemRandom(32), sR = systemRandom(32);
  const psk = systemRandom(32);
  const make = (initiator: boolean) =>
    new HandshakeState({
      protocolName: XXPSK0,
      initiator,
      prologue: PROLOGUE,
      s: initiator ? sI : sR,
      psks: [psk],
      random: systemRandom,
    });
  const init = make(true), resp = make(false);
  const enc = new TextEncoder();
  assert.equal(init.remoteStatic, null);
  assert.deepEqual(resp.readMessage(init.writeMessage(enc.encode("hi"))), enc.encode("hi"));
  assert.deepEqual(init.readMessage(resp.writeMessage(enc.encode("yo"))), enc.encode("yo"));
  assert.equal(init.isComplete, false);
  assert.deepEqual(resp.readMessage(init.writeMessage()), new Uint8Array(0));
  assert.ok(init.isComplete && resp.isComplete);
  assert.deepEqual(init.remoteStatic, publicKeyOf(sR));
  assert.deepEqual(resp.remoteStatic, publicKeyOf(sI));
  assert.deepEqual(init.getHandshakeHash(), resp.getHandshakeHash());
  const [iSend, iRecv] = init.split();
  const [rRecv, rSend] = resp.split();
  const ad = new Uint8Array(0);
  for (let i = 0; i < 50; i++) {
    const a = enc.encode(`to responder ${i}`), b = enc.encode(`to initiator ${i}`);
    const ca = iSend.encryptWithAd(ad, a), cb = rSend.encryptWithAd(ad, b);
    assert.equal(ca.length, a.length + 16);
    assert.deepEqual(rRecv.decryptWithAd(ad, ca), a);
    assert.deepEqual(iRecv.decryptWithAd(ad, cb), b);
    assert.equal(rRecv.decryptWithAd(ad, ca), null, "a replayed message fails: the nonce moved on");
  }
  assert.equal(iSend.nonce, 50n);
  assert.equal(rRecv.nonce, 50n);
});

/** The 7 small-order X25519 u-coordinates, each with the top bit clear and set. */
function smallOrderKeys(): Uint8Array[] {
  const p = 2n ** 255n - 19n;
  const us = [
    0n,
    1n,
    325606250916557431795983626356110631294008115727848805560023387167927233504n,
    39382357235489614581723060781553021112529911719440698176882885853963445705823n,
    p - 1n,
    p,
    p + 1n,
  ];
  return us.flatMap((u) =>
    [u, u | (1n << 255n)].map((v) =>
      Uint8Array.from({ length: 32 }, (_, i) => Number((v >> BigInt(8 * i)) & 255n))
    )
  );
}

Deno.test("small-order keys: refused on receipt and as rs, and their DH is all zeros indeed", () => {
  const priv = createPrivateKey({
    key: Buffer.from(concat(unhex("302e020100300506032b656e04220420"), systemRandom(32))),
    format: "der",
    type: "pkcs8",
  });
  for (const key of smallOrderKeys()) {
    assert.equal(isAcceptablePublicKey(key), false);
    const pub = createPublicKey({
      key: Buffer.from(concat(unhex("302a300506032b656e032100"), key)),
      format: "der",
      type: "spki",
    });
    // node:crypto refuses to output the all-zero shared secret.
    assert.throws(() => diffieHellman({ privateKey: priv, publicKey: pub }));
    const resp = new HandshakeState({
      protocolName: "Noise_NN_25519_ChaChaPoly_SHA256",
      initiator: false,
      random: systemRandom,
    });
    assert.equal(resp.readMessage(concat(key, [1, 2, 3])), null);
    assert.equal(resp.isMyTurn, false, "still waiting for a genuine first message");
    const msgs = genuine();
    const init = atStage(1, msgs);
    assert.equal(init.readMessage(concat(key, msgs[1]!.subarray(32))), null);
    assert.throws(
      () =>
        new HandshakeState({
          protocolName: "Noise_NK_25519_ChaChaPoly_SHA256",
          initiator: true,
          rs: key,
          random: systemRandom,
        }),
      /invalid rs/,
    );
  }
  for (let i = 0; i < 100; i++) {
    assert.ok(isAcceptablePublicKey(publicKeyOf(systemRandom(32))));
  }
  assert.equal(isAcceptablePublicKey(new Uint8Array(31)), false);
});

Deno.test("programmer errors throw; unexpected network input returns null", () => {
  const nn = (initiator: boolean) =>
    new HandshakeState({
      protocolName: "Noise_NN_25519_ChaChaPoly_SHA256",
      initiator,
      random: systemRandom,
    });
  const init = nn(true), resp = nn(false);
  assert.throws(() => resp.writeMessage(), /out of turn/);
  assert.equal(init.readMessage(new Uint8Array(48)), null, "initiator reads before writing");
  assert.throws(() => init.split(), /before the handshake is complete/);
  const m1 = init.writeMessage();
  assert.throws(() => init.writeMessage(), /out of turn/);
  resp.readMessage(m1);
  init.readMessage(resp.writeMessage());
  assert.ok(init.isComplete);
  assert.throws(() => init.writeMessage(), /out of turn/);
  assert.equal(init.readMessage(m1), null, "reading after completion");
  init.split();
  assert.throws(() => init.split(), /twice/);
  const mk = (o: Partial<ConstructorParameters<typeof HandshakeState>[0]>) => () =>
    new HandshakeState({
      protocolName: XXPSK0,
      initiator: true,
      psks: [PSK],
      s: I_STATIC,
      random: systemRandom,
      ...o,
    });
  assert.throws(mk({ s: undefined }), /static key s/);
  assert.throws(mk({ psks: [] }), /pre-shared keys/);
  assert.throws(mk({ psks: [new Uint8Array(31)] }), /pre-shared keys/);
  assert.throws(mk({ rs: publicKeyOf(R_STATIC) }), /rs must be given exactly/);
  assert.throws(mk({ s: new Uint8Array(31) }), /32 bytes/);
  assert.throws(mk({ protocolName: "Noise_IK_25519_ChaChaPoly_SHA256", psks: [] }), /rs must/);
  assert.throws(() => init.writeMessage(new Uint8Array(MAX_MESSAGE)), /out of turn/);
  const big = nn(true);
  assert.throws(() => big.writeMessage(new Uint8Array(MAX_MESSAGE)), /too long/);
  assert.equal(nn(false).readMessage(new Uint8Array(MAX_MESSAGE + 1)), null);
});

Deno.test("CipherState: little-endian nonce, failures keep the nonce, rekey, no key = plaintext", () => {
  const key = new Uint8Array(32).fill(3), ad = new Uint8Array([9]), text = new Uint8Array([1, 2]);
  const cs = new CipherState(key);
  cs.setNonce(0x0102030405n);
  const nonce = unhex("000000000504030201000000");
  const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  c.setAAD(ad, { plaintextLength: text.length });
  const expected = concat(c.update(text), c.final(), c.getAuthTag());
  assert.deepEqual(cs.encryptWithAd(ad, text), expected);
  const rx = new CipherState(key);
  rx.setNonce(0x0102030405n);
  const bad = expected.slice();
  bad[0]! ^= 1;
  assert.equal(rx.decryptWithAd(ad, bad), null);
  assert.equal(rx.decryptWithAd(ad, expected.subarray(0, 15)), null);
  assert.equal(rx.nonce, 0x0102030405n);
  assert.deepEqual(rx.decryptWithAd(ad, expected), text);
  cs.rekey();
  rx.rekey();
  const after = cs.encryptWithAd(ad, text);
  assert.deepEqual(rx.decryptWithAd(ad, after), text);
  assert.equal(new CipherState(key).decryptWithAd(ad, after), null, "rekey changed the key");
  cs.setNonce(2n ** 64n - 1n);
  assert.throws(() => cs.encryptWithAd(ad, text), /exhausted/);
  const none = new CipherState();
  assert.equal(none.hasKey(), false);
  assert.deepEqual(none.encryptWithAd(ad, text), text);
  const ss = new SymmetricState("Noise_NN_25519_ChaChaPoly_SHA256");
  assert.deepEqual(
    ss.getHandshakeHash(),
    concat(new TextEncoder().encode("Noise_NN_25519_ChaChaPoly_SHA256")),
  );
});
