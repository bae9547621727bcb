/**
 * Peer ids bound to a key (`docs/protocol.md` 5.3): a peer draws an Ed25519 key pair per run
 * (the _id key_), and its id is the first 8 bytes of SHA-256(`"p2p id v1"` ‖ 0x00 ‖ id key).
 * Every HELLO carries the id key and its signature, so the rendezvous point registers an id only
 * for the holder of the key it came from: nobody can take another peer's id (after a server
 * restart, or the owner's expiry), and nobody can choose an id (the lowest one, say) short of
 * about 2^64 key generations.
 *
 * Synchronous and free of I/O (node:crypto only); the seed comes from the caller.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { ed25519FromSeed, ed25519Sign } from "./ed25519.ts";

/** The label hashed before the id key. */
export const PEER_ID_LABEL = "p2p id v1";
/** Length of a peer id. */
const ID_LEN = 8;

/** The peer id of the Ed25519 public key `idKey` (32 bytes). */
export function peerIdOf(idKey: Uint8Array): Uint8Array {
  const h = createHash("sha256").update(PEER_ID_LABEL).update(new Uint8Array([0])).update(idKey);
  return new Uint8Array(h.digest().subarray(0, ID_LEN));
}

/** A peer's id key for one run: its public half, the id it gives, and signing with it. */
export interface PeerIdKey {
  /** The peer id ({@link peerIdOf} the public key). */
  readonly id: Uint8Array;
  /** The Ed25519 public key, sent in every HELLO. */
  readonly publicKey: Uint8Array;
  /** The 64-byte Ed25519 signature of `data` with the id key. */
  sign(data: Uint8Array): Uint8Array;
}

/** The id key whose Ed25519 seed is the 32 bytes `seed` (drawn at random per run). */
export function peerIdKey(seed: Uint8Array): PeerIdKey {
  const k = ed25519FromSeed(seed);
  return {
    id: peerIdOf(k.publicKey),
    publicKey: k.publicKey,
    sign: (data) => ed25519Sign(k.privateKey, data),
  };
}
