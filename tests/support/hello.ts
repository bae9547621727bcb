/**
 * Signed HELLOs for tests that talk to the registry directly: a room key per label (seeded from
 * its SHA-256, no scrypt), and a HELLO signed by it.
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
import { ed25519FromSeed, ed25519Sign, type SigningKey } from "../../lib/crypto/ed25519.ts";

const rooms = new Map<string, SigningKey>();

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
  const signed = {
    id: f.id,
    cookie: f.cookie ?? new Uint8Array(COOKIE_LEN),
    nonce: f.nonce ?? new Uint8Array(NONCE_LEN).fill(0x4e),
    flags: f.flags ?? 0,
    nameTag: f.nameTag,
    owner: f.owner ?? defaultOwner(f.id),
  };
  return {
    type: MsgType.Hello,
    ...signed,
    room: key.publicKey,
    signature: ed25519Sign(key.privateKey, helloSigningInput(signed)),
    privateEndpoints: f.privateEndpoints ?? [],
  };
}
