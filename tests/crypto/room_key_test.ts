/**
 * Room keys, name tags, room secrets and fingerprints (pure). The known answers were computed
 * once and cross-checked with an independent implementation (Python's hashlib.scrypt and an
 * HMAC-based HKDF); the test also recomputes them with node:crypto's primitives directly. The
 * room id (an Ed25519 public key) and the signature pin were computed with node:crypto from a
 * PKCS#8 DER encoding of the seed (RFC 8410), not through the JWK route the code takes.
 */
import assert from "node:assert/strict";
import {
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  hkdfSync,
  scryptSync,
  sign,
  verify,
} from "node:crypto";
import { base32 } from "../../lib/crypto/base32.ts";
import { fingerprint, isFingerprint } from "../../lib/crypto/fingerprint.ts";
import { systemRandom } from "../../lib/io/random.ts";
import {
  canonicalRoom,
  canonicalSecret,
  deriveRoomKeys,
  deriveRoomKeysAsync,
  nameTag,
  newRoomSecret,
  ROOM_KDF,
  roomSalt,
  roomSign,
} from "../../lib/crypto/room_key.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const enc = new TextEncoder();
const unhex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));

const ROOM = "friends", PASS = "correct horse battery staple";
const KNOWN = {
  /** HKDF under "p2p room v1 sign": the RFC 8032 seed of the room's Ed25519 key. */
  seed: "dc3bb2555c833d6d3eac3500f38405bd97a3b283e27d2fdd474d8aeccbf31e15",
  /** The room id: that key's public key. */
  id: "a7fcbd8e852b99efd12ed6067eb4f4d1fbc536b92ac5eaab219eb472e6d1f7c3",
  /** The room key's (deterministic) Ed25519 signature of "hello". */
  helloSig: "fc84cc0fc837bf9eddd36f751e7c431aaa88648ebc260138c94bfeabb5d0d56c" +
    "3f080df89fd16f9d262ff1145e87dceefd8c557e7c3e7d0dec3415f811712e0a",
  psk: "48524c03b592977a5207f57d5da942d570e35ec7cafbb86b27e298f5df93ecfe",
  nameKey: "368816ac5f9bb67a8de2e68996d20b7ba8af8812a47773c8c0982304711e94ad",
  aliceTag: "5b1fdb7bfb4ccbbd",
};

// One derivation takes ~0.1 s: share the fixed one.
const keys = deriveRoomKeys(ROOM, PASS);

/** node's Ed25519 private key for a 32-byte seed, from its PKCS#8 DER (RFC 8410) encoding. */
function pkcs8Ed25519(seed: Uint8Array) {
  const prefix = unhex("302e020100300506032b657004220420");
  return createPrivateKey({
    key: Buffer.from(Uint8Array.from([...prefix, ...seed])),
    format: "der",
    type: "pkcs8",
  });
}

Deno.test("room keys: the known answer for a fixed room and passphrase", () => {
  assert.equal(keys.id.length, 32);
  assert.equal(keys.psk.length, 32);
  assert.equal(keys.nameKey.length, 32);
  assert.equal(hex(keys.id), KNOWN.id);
  assert.equal(hex(keys.psk), KNOWN.psk);
  assert.equal(hex(keys.nameKey), KNOWN.nameKey);
  assert.equal(hex(nameTag(keys, "alice")), KNOWN.aliceTag);
  assert.equal(hex(roomSign(keys, enc.encode("hello"))), KNOWN.helloSig);
});

Deno.test("room keys: the derivation off the main thread gives the same keys, and the event loop runs meanwhile", async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  try {
    const got = await deriveRoomKeysAsync(ROOM, PASS);
    assert.equal(hex(got.id), KNOWN.id);
    assert.equal(hex(got.psk), KNOWN.psk);
    assert.equal(hex(got.nameKey), KNOWN.nameKey);
    assert.deepEqual(
      got.signKey.export({ format: "der", type: "pkcs8" }),
      keys.signKey.export({
        format: "der",
        type: "pkcs8",
      }),
    );
    assert.ok(ticks > 0, "timers fired while scrypt ran");
  } finally {
    clearInterval(timer);
  }
  await assert.rejects(() => deriveRoomKeysAsync(ROOM, "  "), /passphrase is empty/);
});

Deno.test("room keys: the documented construction, rebuilt from node's scrypt and HKDF", () => {
  assert.deepEqual(
    { N: ROOM_KDF.N, r: ROOM_KDF.r, p: ROOM_KDF.p, len: ROOM_KDF.keyLength },
    { N: 32768, r: 8, p: 1, len: 32 },
  );
  const salt = Uint8Array.from([...enc.encode("p2p room v1"), 0, ...enc.encode(ROOM)]);
  assert.deepEqual(roomSalt(ROOM), salt);
  const ikm = scryptSync(PASS, salt, 32, { N: 32768, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
  const expand = (info: string, n: number) =>
    hex(new Uint8Array(hkdfSync("sha256", ikm, new Uint8Array(0), info, n)));
  assert.equal(expand("p2p room v1 sign", 32), KNOWN.seed);
  const priv = pkcs8Ed25519(unhex(KNOWN.seed));
  const spki = createPublicKey(priv).export({ format: "der", type: "spki" });
  assert.equal(hex(new Uint8Array(spki.subarray(12))), KNOWN.id);
  assert.equal(hex(new Uint8Array(sign(null, enc.encode("hello"), priv))), KNOWN.helloSig);
  // The code's signatures verify under the room id, and only over what was signed.
  const pub = createPublicKey(priv);
  assert.ok(verify(null, enc.encode("x"), pub, roomSign(keys, enc.encode("x"))));
  assert.ok(!verify(null, enc.encode("y"), pub, roomSign(keys, enc.encode("x"))));
  assert.equal(expand("p2p room v1 psk", 32), KNOWN.psk);
  assert.equal(expand("p2p room v1 name key", 32), KNOWN.nameKey);
  const tag = createHmac("sha256", unhex(KNOWN.nameKey)).update("alice").digest();
  assert.equal(hex(tag.subarray(0, 8)), KNOWN.aliceTag);
});

Deno.test("room keys: other rooms and passphrases give unrelated keys; NFKC is applied", () => {
  const others = [
    deriveRoomKeys("friends2", PASS),
    deriveRoomKeys(ROOM, PASS + "!"),
    deriveRoomKeys(PASS, ROOM), // Swapped: the salt binds which is which.
  ];
  const all = [keys, ...others];
  const seen = new Set<string>();
  for (const k of all) {
    for (const part of [k.id, k.psk, k.nameKey]) seen.add(hex(part));
    // The three parts of one room are unrelated to each other as well.
    assert.notEqual(hex(k.psk), hex(k.id));
  }
  assert.equal(seen.size, all.length * 3);
  // Composed and decomposed "é", and the "ﬁ" ligature, normalise to the same keys.
  const a = deriveRoomKeys("caf\u00e9", "\ufb01ne");
  const b = deriveRoomKeys("cafe\u0301", "fine");
  assert.deepEqual([a.id, a.psk, a.nameKey], [b.id, b.psk, b.nameKey]);
  assert.deepEqual(roomSign(a, enc.encode("x")), roomSign(b, enc.encode("x")));
  assert.throws(() => deriveRoomKeys(ROOM, ""), /empty/);
});

Deno.test("room keys: name tags are 8 bytes, per name and per room", () => {
  const other = deriveRoomKeys("elsewhere", PASS);
  const tags = [nameTag(keys, "alice"), nameTag(keys, "bob"), nameTag(other, "alice")];
  for (const t of tags) assert.equal(t.length, 8);
  assert.equal(new Set(tags.map(hex)).size, 3);
  assert.deepEqual(nameTag(keys, "alice"), nameTag(keys, "alice"));
});

Deno.test("room secrets: 120 bits as six groups of four base32 characters", () => {
  assert.equal(newRoomSecret(() => new Uint8Array(15)), "aaaa-aaaa-aaaa-aaaa-aaaa-aaaa");
  assert.equal(
    newRoomSecret((n) => new Uint8Array(n).fill(255)),
    "7777-7777-7777-7777-7777-7777",
  );
  assert.throws(() => newRoomSecret(() => new Uint8Array(4)));
  const secrets = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const s = newRoomSecret(systemRandom);
    assert.match(s, /^[a-z2-7]{4}(-[a-z2-7]{4}){5}$/);
    secrets.add(s);
  }
  assert.equal(secrets.size, 50);
});

Deno.test("base32 matches RFC 4648 test vectors (lowercase, no padding)", () => {
  const cases: [string, string][] = [
    ["", ""],
    ["f", "my"],
    ["fo", "mzxq"],
    ["foo", "mzxw6"],
    ["foob", "mzxw6yq"],
    ["fooba", "mzxw6ytb"],
    ["foobar", "mzxw6ytboi"],
  ];
  for (const [input, out] of cases) assert.equal(base32(enc.encode(input)), out, input);
});

Deno.test("fingerprints: first 80 bits of SHA-256 in four groups of four", () => {
  assert.equal(fingerprint(new Uint8Array(32)), "mzuh-vlpy-mk6x-o3ep");
  const key = new Uint8Array(32).fill(9);
  const digest = createHash("sha256").update(key).digest().subarray(0, 10);
  assert.equal(fingerprint(key), base32(digest).match(/.{4}/g)!.join("-"));
  assert.equal(fingerprint(key), "rqgm-c6qe-sqwm-j6ha");
  assert.ok(isFingerprint(fingerprint(key)));
  assert.ok(!isFingerprint("abcd-efgh-ijkl"));
  assert.ok(!isFingerprint("ABCD-efgh-ijkl-mnop"));
  assert.notEqual(fingerprint(key), fingerprint(new Uint8Array(32).fill(8)));
});

Deno.test("room key: the slips people make lead into the same room; other inputs do not", () => {
  const gen = "k3xq-7hmd-p2ra-wt5n-b6fz-c4ej";
  assert.equal(canonicalSecret("K3XQ-7HMD-P2RA-WT5N-B6FZ-C4EJ"), gen);
  assert.equal(canonicalSecret("k3xq7hmdp2rawt5nb6fzc4ej"), gen);
  assert.equal(canonicalSecret(" k3xq 7hmd p2ra wt5n b6fz c4ej \n"), gen);
  assert.equal(canonicalSecret("correct horse battery staple "), "correct horse battery staple");
  assert.equal(canonicalRoom(" Friends "), "friends");
  const a = deriveRoomKeys("friends", gen);
  const b = deriveRoomKeys("Friends ", "K3XQ 7HMD P2RA WT5N B6FZ C4EJ");
  assert.deepEqual(b.id, a.id);
  // A different secret (one character) or room is still another room.
  assert.notDeepEqual(deriveRoomKeys("friends", "k3xq-7hmd-p2ra-wt5n-b6fz-c4ek").id, a.id);
  assert.notDeepEqual(deriveRoomKeys("friend", gen).id, a.id);
});
