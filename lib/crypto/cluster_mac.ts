/**
 * The MAC of a cluster message (`docs/protocol.md` 21): servers of one cluster that share a
 * secret (`P2P_CLUSTER_SECRET`, `--cluster-secret-file`) tag everything they publish through the
 * engine with `trunc_16(HMAC-SHA256(key, message))`, where `key` is derived once from the
 * secret ({@link clusterKey}); and they share their cookie master ({@link clusterCookieKey}).
 * Synchronous and free of I/O; compare tags with `constantTimeEqual`.
 *
 * @module
 */
import { createHmac, hkdfSync } from "node:crypto";

/** Size of a cluster message's MAC in bytes. */
export const CLUSTER_MAC_LEN = 16;

/** The HKDF info that derives the MAC key from the shared secret. */
const KEY_INFO = "p2p cluster mac v1";

/** The MAC key of a cluster whose servers share `secret` (any length; at least 16 bytes wise). */
export function clusterKey(secret: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", secret, new Uint8Array(0), KEY_INFO, 32));
}

/** The HKDF info that derives the shared cookie key from the shared secret. */
const COOKIE_INFO = "p2p cluster cookie v1";

/**
 * The cookie master of a cluster whose servers share `secret` (`docs/protocol.md` 6.2, 23): in
 * place of each server's random one, so that a cookie one server issued is valid at the others.
 */
export function clusterCookieKey(secret: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync("sha256", secret, new Uint8Array(0), COOKIE_INFO, 32));
}

/** `trunc_16(HMAC-SHA256(key, data))`. */
export function clusterMac(key: Uint8Array, data: Uint8Array): Uint8Array {
  const mac = createHmac("sha256", key).update(data).digest();
  return new Uint8Array(mac.subarray(0, CLUSTER_MAC_LEN));
}
