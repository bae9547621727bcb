/**
 * The server's MACs: return-routability cookies for HELLO ({@link addressCookie}) and the
 * MAC of a reachability probe, REACH ({@link reachMac}). Both are truncated HMAC-SHA256
 * through `node:crypto`; their lengths are defined here and used by the codecs of
 * `lib/wire/server_msg.ts`. Compare them with `constantTimeEqual` (`lib/crypto/constant_time.ts`).
 *
 * Synchronous and free of I/O.
 *
 * @module
 */
import { createHmac } from "node:crypto";

/** Size of a return-routability cookie in bytes. */
export const COOKIE_LEN = 8;

/** Size of a REACH's MAC (truncated HMAC-SHA256 keyed by the registration token), in bytes. */
export const REACH_MAC_LEN = 16;

/** The label that starts the input of {@link reachMac}. */
const REACH_LABEL = "p2p reach v1";

/**
 * The return-routability cookie for peer `id` at the address `where`: the first
 * {@link COOKIE_LEN} bytes of HMAC-SHA256(secret, id ‖ UTF-8(where)). `where` is the address
 * as `formatEndpoint` of `lib/wire/address.ts` writes it, `"IP:PORT"` (IPv6 in brackets). Only
 * whoever receives at that address can learn the cookie.
 */
export function addressCookie(secret: Uint8Array, id: Uint8Array, where: string): Uint8Array {
  const mac = createHmac("sha256", secret).update(id).update(where, "utf8").digest();
  return new Uint8Array(mac.subarray(0, COOKIE_LEN));
}

/**
 * The MAC of a reachability probe (REACH): `HMAC-SHA256(token, "p2p reach v1" ‖ nonce)`
 * truncated to {@link REACH_MAC_LEN} bytes. Only the server and the registered peer know the
 * token, so nobody else can make a REACH the peer believes.
 */
export function reachMac(token: Uint8Array, nonce: Uint8Array): Uint8Array {
  const mac = createHmac("sha256", token).update(REACH_LABEL).update(nonce).digest();
  return new Uint8Array(mac.subarray(0, REACH_MAC_LEN));
}
