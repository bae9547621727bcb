/**
 * A HELLO's owner tag: what binds a name in a room to the identity that registered it.
 *
 * `ownerTag(identityPrivateKey, roomId)` = the first {@link OWNER_TAG_LEN} bytes of
 * HKDF-SHA256(ikm = the identity's 32-byte X25519 private key, salt = the 32-byte room id,
 * info = `"p2p owner tag v1"`). One identity gets the same tag in one room on every run and
 * every machine, and unrelated tags in different rooms (so the server cannot link a person
 * across rooms); nobody without the private key can compute it. The rendezvous point compares
 * tags only: a HELLO for a name held by a member with the same tag is that person coming back
 * (a lost BYE, a crash), and replaces the stale registration instead of getting a `-2` name.
 *
 * An on-path observer of a HELLO sees the tag (HELLOs are in clear); with the room's passphrase
 * as well it could claim the name. Names stay claims (see `docs/protocol.md`, Security
 * considerations); fingerprints are what identifies a peer.
 *
 * Synchronous and free of I/O (node:crypto only).
 *
 * @module
 */
import { hkdfSync } from "node:crypto";

/** Size of an owner tag in bytes (`OWNER_LEN` of `lib/wire/server_msg.ts`). */
export const OWNER_TAG_LEN = 16;

/** The HKDF info of {@link ownerTag}. */
export const OWNER_TAG_INFO = "p2p owner tag v1";

/** The owner tag of the identity with `identityPrivateKey` (32 bytes) in the room `roomId`. */
export function ownerTag(identityPrivateKey: Uint8Array, roomId: Uint8Array): Uint8Array {
  const info = new TextEncoder().encode(OWNER_TAG_INFO);
  return new Uint8Array(hkdfSync("sha256", identityPrivateKey, roomId, info, OWNER_TAG_LEN));
}
