/**
 * Room keys from a room name and the passphrase its members share.
 *
 * A room is entered with a passphrase: {@link deriveRoomKeys} stretches it with scrypt (so a
 * captured room id or name tag cannot be brute-forced cheaply) and expands the result with
 * HKDF-SHA256 into independent keys:
 *
 * - `signKey`: an Ed25519 private key whose RFC 8032 seed is the 32-byte HKDF output under
 *   `"p2p room v1 sign"`; every HELLO is signed with it ({@link roomSign}), so the server
 *   registers only peers who know the passphrase;
 * - `id` (32 bytes): the room id the server sees instead of the room name: `signKey`'s public
 *   key, with which the server checks those signatures;
 * - `psk` (32 bytes): the pre-shared key mixed into the peers' Noise handshakes, so only
 *   members who know the passphrase can complete one;
 * - `nameKey` (32 bytes): keys {@link nameTag}, the opaque tag under which the server checks
 *   that names in a room are unique without learning them.
 *
 * Parameters ({@link ROOM_KDF}): scrypt N = 2^15, r = 8, p = 1 (32 MiB of memory, about 0.1 s
 * on one core of a 2020s laptop), 32 bytes out, over the NFKC-normalised passphrase, with the
 * salt `"p2p room v1" ‖ 0x00 ‖ NFKC(room)` (UTF-8). HKDF-SHA256 then uses that output as input
 * key material, an empty salt and the infos `"p2p room v1 sign"`, `"p2p room v1 psk"` and
 * `"p2p room v1 name key"`. The same room name and passphrase give the same keys on every
 * machine; another room name with the same passphrase gives unrelated keys.
 *
 * Synchronous and free of I/O (node:crypto only); {@link newRoomSecret} takes its randomness
 * from the caller.
 *
 * @module
 */
import { createHmac, hkdfSync, type KeyObject, scrypt, scryptSync } from "node:crypto";
import { base32 } from "./base32.ts";
import { ed25519FromSeed, ed25519Sign } from "./ed25519.ts";

/** The keys of one room, all derived from its name and passphrase by {@link deriveRoomKeys}. */
export interface RoomKeys {
  /** 32 bytes: the room id sent to the server, the Ed25519 public key of `signKey`. */
  id: Uint8Array;
  /** The room's Ed25519 private key: signs every HELLO ({@link roomSign}). */
  signKey: KeyObject;
  /** 32 bytes: the Noise pre-shared key of every handshake in the room. */
  psk: Uint8Array;
  /** 32 bytes: the key of {@link nameTag}. */
  nameKey: Uint8Array;
}

/** The fixed parameters of {@link deriveRoomKeys}; changing any of them changes every room. */
export const ROOM_KDF = {
  /** Bound into the scrypt salt and every HKDF info. */
  label: "p2p room v1",
  /** scrypt CPU/memory cost (2^15). */
  N: 1 << 15,
  /** scrypt block size. */
  r: 8,
  /** scrypt parallelisation. */
  p: 1,
  /** Bytes of scrypt output (the HKDF input key material). */
  keyLength: 32,
  /** Memory limit passed to scrypt: twice the 128·N·r·p bytes (32 MiB) it needs. */
  maxmem: 2 * 128 * (1 << 15) * 8,
  /** HKDF info of the Ed25519 seed of the room's signing key (whose public key is the id). */
  signInfo: "p2p room v1 sign",
  /** HKDF info of the Noise PSK. */
  pskInfo: "p2p room v1 psk",
  /** HKDF info of the name-tag key. */
  nameKeyInfo: "p2p room v1 name key",
  /** Bytes of the room id (an Ed25519 public key). */
  idLength: 32,
  /** Bytes of the signing seed, the PSK and the name-tag key. */
  keyBytes: 32,
  /** Bytes of a name tag. */
  tagLength: 8,
} as const;

const utf8 = new TextEncoder();

/** The scrypt salt for `room`: `"p2p room v1" ‖ 0x00 ‖ NFKC(room)`, UTF-8. */
export function roomSalt(room: string): Uint8Array {
  const label = utf8.encode(ROOM_KDF.label);
  const name = utf8.encode(canonicalRoom(room));
  const salt = new Uint8Array(label.length + 1 + name.length);
  salt.set(label);
  salt.set(name, label.length + 1);
  return salt;
}

function expand(ikm: Uint8Array, info: string, length: number): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", ikm, new Uint8Array(0), info, length));
}

/**
 * A room name as the keys are derived from it: NFKC, white space at the ends removed,
 * lowercase: `Friends` and `friends ` are one room.
 */
export function canonicalRoom(room: string): string {
  return room.normalize("NFKC").trim().toLowerCase();
}

/**
 * A passphrase as the keys are derived from it: a secret `--new-room` made, however it was
 * retyped (upper case, dashes dropped or spaces instead), in its generated form; anything else
 * NFKC with white space at the ends removed.
 */
export function canonicalSecret(passphrase: string): string {
  const squeezed = passphrase.toLowerCase().replace(/[\s-]/g, "");
  if (/^[a-z2-7]{24}$/.test(squeezed)) return squeezed.match(/.{4}/g)!.join("-");
  return passphrase.normalize("NFKC").trim();
}

/**
 * Derives the keys of `room` from its `passphrase` (see the module documentation for the
 * exact construction). Deliberately slow: about 0.1 s and 32 MiB per call. Throws if the
 * passphrase is empty.
 */
export function deriveRoomKeys(room: string, passphrase: string): RoomKeys {
  const secret = roomSecret(passphrase);
  const { N, r, p, maxmem, keyLength } = ROOM_KDF;
  return roomKeysOf(
    new Uint8Array(scryptSync(utf8.encode(secret), roomSalt(room), keyLength, { N, r, p, maxmem })),
  );
}

/**
 * {@link deriveRoomKeys} with scrypt off the main thread: the same keys, while the program
 * goes on (a chat screen stays responsive). Rejects if the passphrase is empty.
 */
export async function deriveRoomKeysAsync(room: string, passphrase: string): Promise<RoomKeys> {
  const secret = roomSecret(passphrase);
  const { N, r, p, maxmem, keyLength } = ROOM_KDF;
  const ikm = await new Promise<Uint8Array>((resolve, reject) =>
    scrypt(utf8.encode(secret), roomSalt(room), keyLength, { N, r, p, maxmem }, (e, key) => {
      if (e) reject(e);
      else resolve(new Uint8Array(key));
    })
  );
  return roomKeysOf(ikm);
}

/** The canonical secret of `passphrase`; throws if it is empty. */
function roomSecret(passphrase: string): string {
  const secret = canonicalSecret(passphrase);
  if (secret.length === 0) throw new Error("The room passphrase is empty");
  return secret;
}

/** The room's keys from scrypt's output `ikm` (wiped after). */
function roomKeysOf(ikm: Uint8Array): RoomKeys {
  const seed = expand(ikm, ROOM_KDF.signInfo, ROOM_KDF.keyBytes);
  try {
    const signer = ed25519FromSeed(seed);
    return {
      id: signer.publicKey,
      signKey: signer.privateKey,
      psk: expand(ikm, ROOM_KDF.pskInfo, ROOM_KDF.keyBytes),
      nameKey: expand(ikm, ROOM_KDF.nameKeyInfo, ROOM_KDF.keyBytes),
    };
  } finally {
    ikm.fill(0);
    seed.fill(0);
  }
}

/** The room key's 64-byte Ed25519 signature of `data` (a HELLO's signing input). */
export function roomSign(keys: RoomKeys, data: Uint8Array): Uint8Array {
  return ed25519Sign(keys.signKey, data);
}

/**
 * The opaque 8-byte tag of `name` in a room: the first bytes of
 * HMAC-SHA256(nameKey, UTF-8 of `name`, not normalised). The server keeps names unique by
 * these tags; without the passphrase it cannot tell which name a tag stands for.
 */
export function nameTag(keys: RoomKeys, name: string): Uint8Array {
  const mac = createHmac("sha256", keys.nameKey).update(utf8.encode(name)).digest();
  return new Uint8Array(mac.subarray(0, ROOM_KDF.tagLength));
}

/** Bytes of randomness in a {@link newRoomSecret}: 120 bits. */
export const ROOM_SECRET_BYTES = 15;

/**
 * A fresh passphrase for a new room: 120 random bits as 24 lowercase base32 characters in six
 * groups of four, such as `"k3xq-7hmd-p2ra-wt5n-b6fz-c4ej"`: easy to read out, type and paste
 * into a shell (no quoting needed). `random(n)` returns `n` random bytes: the roles pass
 * `systemRandom` of `lib/io/random.ts`, tests seeded sources.
 */
export function newRoomSecret(random: (n: number) => Uint8Array): string {
  const bytes = random(ROOM_SECRET_BYTES);
  if (bytes.length !== ROOM_SECRET_BYTES) {
    throw new Error(`newRoomSecret: needs ${ROOM_SECRET_BYTES} random bytes`);
  }
  return secretText(bytes);
}

/** The text of a generated secret's bytes: base32 in groups of four joined by dashes. */
export function secretText(bytes: Uint8Array): string {
  return base32(bytes).match(/.{1,4}/g)!.join("-");
}
