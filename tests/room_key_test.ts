/**
 * Room keys, name tags, room secrets and fingerprints (pure). The known answers were computed
 * once and cross-checked with an independent implementation (Python's hashlib.scrypt and an
 * HMAC-based HKDF); the test also recomputes them with node:crypto's primitives directly.
 */
import assert from "node:assert/strict";
import { createHash, createHmac, hkdfSync, scryptSync } from "node:crypto";
import { fingerprint, isFingerprint } from "../lib/fingerprint.ts";
import {
  base32,
  deriveRoomKeys,
  nameTag,
  newRoomSecret,
  ROOM_KDF,
  roomSalt,
} from "../lib/room_key.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const enc = new TextEncoder();
const unhex = (s: string) => Uint8Array.from(s.match(/../g)!, (h) => parseInt(h, 16));

const ROOM = "friends", PASS = "correct horse battery staple";
const KNOWN = {
  id: "794d81de26041908dec64c891432ee6e",
  psk: "48524c03b592977a5207f57d5da942d570e35ec7cafbb86b27e298f5df93ecfe",
  nameKey: "368816ac5f9bb67a8de2e68996d20b7ba8af8812a47773c8c0982304711e94ad",
  aliceTag: "5b1fdb7bfb4ccbbd",
};

// One derivation takes ~0.1 s: share the fixed one.
const keys = deriveRoomKeys(ROOM, PASS);

Deno.test("room keys: the known answer for a fixed room and passphrase", () => {
  assert.equal(keys.id.length, 16);
  assert.equal(keys.psk.length, 32);
  assert.equal(keys.nameKey.length, 32);
  assert.equal(hex(keys.id), KNOWN.id);
  assert.equal(hex(keys.psk), KNOWN.psk);
  assert.equal(hex(keys.nameKey), KNOWN.nameKey);
  assert.equal(hex(nameTag(keys, "alice")), KNOWN.aliceTag);
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
  assert.equal(expand("p2p room v1 id", 16), KNOWN.id);
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
    assert.notEqual(hex(k.psk).slice(0, 32), hex(k.id));
  }
  assert.equal(seen.size, all.length * 3);
  // Composed and decomposed "é", and the "ﬁ" ligature, normalise to the same keys.
  const a = deriveRoomKeys("caf\u00e9", "\ufb01ne");
  const b = deriveRoomKeys("cafe\u0301", "fine");
  assert.deepEqual(a, b);
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
    const s = newRoomSecret();
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
