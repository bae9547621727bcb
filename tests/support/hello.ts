/**
 * Signed HELLOs for tests that talk to the registry directly: a room key per label (seeded from
 * its SHA-256, no scrypt), peer ids with their id keys ({@link testPeerId}), and a HELLO signed
 * by both.
 */
import { createHash } from "node:crypto";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import {
  COOKIE_LEN,
  helloSigningInput,
  type MsgOf,
  NONCE_LEN,
  OWNER_TAG_LEN,
} from "../../lib/wire/server_msg.ts";
import { type PeerIdKey, peerIdKey } from "../../lib/crypto/peer_id.ts";
import { ed25519FromSeed, ed25519Sign, type SigningKey } from "../../lib/crypto/ed25519.ts";

const rooms = new Map<string, SigningKey>();
/** The id keys of the ids {@link testPeerId} made, by hex. */
const idKeys = new Map<string, PeerIdKey>();

/**
 * A peer id proven by an id key, the same for one `label` (a number or a string) every run: the
 * id tests register with (an id without its key is refused, see `lib/crypto/peer_id.ts`).
 */
export function testPeerId(label: string | number): Uint8Array {
  const key = peerIdKey(new Uint8Array(createHash("sha256").update(`id ${label}`).digest()));
  idKeys.set(hex(key.id), key);
  return key.id.slice();
}

/** The id key of an id from {@link testPeerId}; for any other id, a key that does not prove it. */
export function testIdKey(id: Uint8Array): PeerIdKey {
  return idKeys.get(hex(id)) ?? peerIdKey(new Uint8Array(32).fill(0x5a));
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** The room key of the test room `label` (its `publicKey` is the room id). */
export function testRoom(label: string): SigningKey {
  let k = rooms.get(label);
  if (!k) {
    k = ed25519FromSeed(new Uint8Array(createHash("sha256").update(label).digest()));
    rooms.set(label, k);
  }
  return k;
}

/** What a HELLO carries besides its room id and signature. */
export interface HelloFields {
  id: Uint8Array;
  cookie?: Uint8Array;
  nonce?: Uint8Array;
  flags?: number;
  nameTag: Uint8Array;
  /** The owner tag; by default the id twice (so every peer id is another identity). */
  owner?: Uint8Array;
  privateEndpoints?: Endpoint[];
  /** The id key that signs (by default the one {@link testPeerId} made for `id`). */
  idKey?: PeerIdKey;
  /** The puzzle solution (zeros by default: no puzzle asked). */
  pow?: Uint8Array;
}

/** The owner tag {@link signedHello} gives a peer id by default: the id twice. */
export function defaultOwner(id: Uint8Array): Uint8Array {
  const owner = new Uint8Array(OWNER_TAG_LEN);
  owner.set(id.subarray(0, 8));
  owner.set(id.subarray(0, 8), 8);
  return owner;
}

/** A HELLO into `room` (a label or a key), signed by that room's key. */
export function signedHello(
  room: string | SigningKey,
  f: HelloFields,
): MsgOf<typeof MsgType.Hello> {
  const key = typeof room === "string" ? testRoom(room) : room;
  const idKey = f.idKey ?? testIdKey(f.id);
  const signed = {
    id: f.id,
    cookie: f.cookie ?? new Uint8Array(COOKIE_LEN),
    nonce: f.nonce ?? new Uint8Array(NONCE_LEN).fill(0x4e),
    flags: f.flags ?? 0,
    room: key.publicKey,
    nameTag: f.nameTag,
    owner: f.owner ?? defaultOwner(f.id),
    idKey: idKey.publicKey,
  };
  const input = helloSigningInput(signed);
  return {
    type: MsgType.Hello,
    ...signed,
    signature: ed25519Sign(key.privateKey, input),
    idSignature: idKey.sign(input),
    pow: f.pow ?? new Uint8Array(8),
    privateEndpoints: f.privateEndpoints ?? [],
  };
}
