/**
 * Project Wycheproof's vectors (tests/vectors/wycheproof/) through our own modules:
 *
 * - ChaCha20-Poly1305 (`lib/crypto/aead.ts`): every `valid` vector seals to its ciphertext and
 *   tag and opens to its message; every `invalid` one (a modified tag, or a nonce that is not 96
 *   bits) never opens, and sealing with a wrong nonce length throws.
 * - X25519 (`lib/crypto/x25519.ts`, the DH of the Noise handshake): every `valid` vector gives
 *   its shared secret. `acceptable` vectors are the ones RFC 7748 computes but a protocol may
 *   refuse; our decision: public keys on the twist or in non-canonical encoding give RFC 7748's
 *   result, and low-order public keys (whose shared secret is all zeros) are refused, both by
 *   `isAcceptablePublicKey` (which the handshake applies to every received key) and by `x25519`
 *   returning null. Noise permits that refusal. The same vectors also run inside a Noise_N
 *   handshake, whose first message must equal the one derived from the vector's shared secret.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ChaCha20Poly1305, NONCE_LEN, TAG_LEN } from "../../lib/crypto/aead.ts";
import { HandshakeState, SymmetricState } from "../../lib/crypto/noise.ts";
import { isAcceptablePublicKey, x25519, x25519KeyPair } from "../../lib/crypto/x25519.ts";

type Result = "valid" | "invalid" | "acceptable";

interface Group<T> {
  type: string;
  tests: T[];
}

interface VectorFile<G> {
  algorithm: string;
  schema: string;
  numberOfTests: number;
  header: string[];
  testGroups: G[];
}

interface AeadTest {
  tcId: number;
  comment: string;
  flags: string[];
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  result: Result;
}

interface AeadGroup extends Group<AeadTest> {
  ivSize: number;
  keySize: number;
  tagSize: number;
}

interface XdhTest {
  tcId: number;
  comment: string;
  flags: string[];
  public: string;
  private: string;
  shared: string;
  result: Result;
}

interface XdhGroup extends Group<XdhTest> {
  curve: string;
}

function load<G>(name: string): VectorFile<G> {
  const url = new URL(`../vectors/wycheproof/${name}`, import.meta.url);
  return JSON.parse(Deno.readTextFileSync(url));
}

const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const AEAD = load<AeadGroup>("chacha20_poly1305_test.json");
const XDH = load<XdhGroup>("x25519_test.json");

Deno.test("wycheproof: the vector files are the ones described in tests/vectors/wycheproof", () => {
  assert.equal(AEAD.algorithm, "CHACHA20-POLY1305");
  assert.equal(AEAD.schema, "aead_test_schema_v1.json");
  assert.equal(AEAD.numberOfTests, 325);
  assert.equal(XDH.algorithm, "XDH");
  assert.equal(XDH.schema, "xdh_comp_schema_v1.json");
  assert.equal(XDH.numberOfTests, 518);
  assert.ok(XDH.testGroups.every((g) => g.type === "XdhComp" && g.curve === "curve25519"));
  const readme = Deno.readTextFileSync(
    new URL("../vectors/wycheproof/README.md", import.meta.url),
  );
  assert.match(readme, /C2SP\/wycheproof/);
  assert.match(readme, /\b[0-9a-f]{40}\b/, "the README names the source commit");
});

Deno.test("wycheproof: ChaCha20-Poly1305, all 325 vectors through lib/crypto/aead.ts", () => {
  const seen: Record<Result, number> = { valid: 0, invalid: 0, acceptable: 0 };
  for (const g of AEAD.testGroups) {
    assert.equal(g.type, "AeadTest");
    assert.equal(g.keySize, 256);
    assert.equal(g.tagSize, 8 * TAG_LEN);
    for (const t of g.tests) {
      const id = `tcId ${t.tcId} (${t.comment}; ${t.flags.join(", ")})`;
      seen[t.result]++;
      const aead = new ChaCha20Poly1305(unhex(t.key));
      const iv = unhex(t.iv), aad = unhex(t.aad), msg = unhex(t.msg);
      const sealed = unhex(t.ct + t.tag);
      const opened = aead.open(iv, aad, sealed);
      if (g.ivSize !== 8 * NONCE_LEN) {
        // RFC 8439's nonce is 96 bits: other sizes are refused, never stretched or cut.
        assert.equal(t.result, "invalid", id);
        assert.equal(opened, null, id);
        assert.throws(() => aead.seal(iv, aad, msg), RangeError, id);
        continue;
      }
      const mine = aead.seal(iv, aad, msg);
      if (t.result === "valid") {
        assert.equal(hex(mine), t.ct + t.tag, id);
        assert.ok(opened !== null, `${id}: opens`);
        assert.equal(hex(opened), t.msg, id);
      } else {
        // Invalid vectors here carry a modified tag: it must not open, and it is not ours.
        assert.equal(t.result, "invalid", id);
        assert.equal(opened, null, id);
        assert.notEqual(hex(mine), t.ct + t.tag, id);
      }
    }
  }
  assert.deepEqual(seen, { valid: 256, invalid: 69, acceptable: 0 });
});

/** Our decision for a vector: the shared secret we give, or null for a refused public key. */
function expected(t: XdhTest): string | null {
  if (t.result === "valid") return t.shared;
  assert.equal(t.result, "acceptable", `tcId ${t.tcId}: no invalid vectors in this file`);
  // Low-order public keys give the all-zero secret: refused. Every other case: RFC 7748's result.
  return t.flags.includes("ZeroSharedSecret") ? null : t.shared;
}

Deno.test("wycheproof: X25519, all 518 vectors through lib/crypto/x25519.ts (low-order keys refused)", () => {
  const seen = { valid: 0, acceptable: 0, refused: 0 };
  for (const g of XDH.testGroups) {
    for (const t of g.tests) {
      const id = `tcId ${t.tcId} (${t.comment}; ${t.flags.join(", ")})`;
      const want = expected(t);
      const pub = unhex(t.public);
      const shared = x25519(x25519KeyPair(unhex(t.private)).privateKey, pub);
      if (want === null) {
        assert.match(t.shared, /^(00)+$/, `${id}: a refused key is one with a zero secret`);
        assert.equal(shared, null, id);
        assert.equal(isAcceptablePublicKey(pub), false, `${id}: refused before any DH`);
        seen.refused++;
      } else {
        assert.ok(shared !== null, `${id}: computed`);
        assert.equal(hex(shared), want, id);
        assert.equal(isAcceptablePublicKey(pub), true, id);
        seen[t.result as "valid" | "acceptable"]++;
      }
    }
  }
  assert.deepEqual(seen, { valid: 264, acceptable: 223, refused: 31 });
});

const N = "Noise_N_25519_ChaChaPoly_SHA256";
const PAYLOAD = new TextEncoder().encode("wycheproof");

Deno.test("wycheproof: X25519 inside the Noise handshake gives the vectors' secrets, and refuses low-order keys", () => {
  const noRandom = () => {
    throw new Error("the ephemeral key is the vector's");
  };
  let handshakes = 0, refused = 0;
  for (const t of XDH.testGroups.flatMap((g) => g.tests)) {
    const id = `tcId ${t.tcId} (${t.comment})`;
    const want = expected(t);
    const rs = unhex(t.public), e = unhex(t.private);
    // Noise_N: the initiator knows the responder's static key rs, sends e and mixes DH(e, rs).
    const make = () =>
      new HandshakeState({ protocolName: N, initiator: true, e, rs, random: noRandom });
    if (want === null) {
      assert.throws(make, /invalid rs/, id);
      refused++;
      continue;
    }
    const message = make().writeMessage(PAYLOAD);
    // The same message derived by hand from the vector's shared secret.
    const ss = new SymmetricState(N);
    ss.mixHash(new Uint8Array(0)); // the empty prologue
    ss.mixHash(rs);
    const ePub = x25519KeyPair(e).publicKey;
    ss.mixHash(ePub);
    ss.mixKey(unhex(want));
    const ct = ss.encryptAndHash(PAYLOAD);
    assert.equal(hex(message), hex(ePub) + hex(ct), id);
    handshakes++;
  }
  assert.equal(handshakes, 487);
  assert.equal(refused, 31);
});
