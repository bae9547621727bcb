/**
 * Our part in another peer's reachability check on a server with one address
 * (`docs/protocol.md` 6.8): the server's CHECK asks us, a supernode of our room, to send a REACH
 * it made (a nonce and a MAC only the candidate can verify) to a candidate in another room,
 * which never contacted our address. We send it from our main socket as it is, to a usable IPv4
 * endpoint, at most {@link HELP_RATE} a second (burst {@link HELP_BURST}), and only while we
 * serve as a supernode (our address is known to be reachable then); a relay-only peer or
 * `--no-supernode` never helps, since helping shows our address to a stranger. Pure.
 *
 * @module
 */
import { TokenBucket } from "../core/limits.ts";
import { type Endpoint, isUsableCandidate } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import { encodeServerMsg, type MsgOf } from "../wire/server_msg.ts";
import type { Transmit } from "../wire/transmit.ts";

/** REACHes we send for the server's checks, a second at most. */
export const HELP_RATE = 1;
/** ... and in a burst (a server asks no more: `HELPER_BURST` in `lib/server/reach.ts`). */
export const HELP_BURST = 8;

/** Sends the REACHes the server's CHECKs ask for, within bounds. */
export class ReachHelper {
  #helps: boolean;
  #bucket: TokenBucket | undefined;

  /** A helper that acts only when `helps` (we offered to serve our room). */
  constructor(helps: boolean) {
    this.#helps = helps;
  }

  /**
   * The REACH to send for the server's CHECK `m` (already checked: our token, a fresh sequence
   * number, from the server itself) while we are `serving` as a supernode, or a reason not to.
   */
  handle(
    now: number,
    m: MsgOf<typeof MsgType.Check>,
    serving: boolean,
  ): { ok: true; transmit: Transmit } | { ok: false; reason: string } {
    if (!this.#helps) return { ok: false, reason: "check-unwanted" };
    if (!serving) return { ok: false, reason: "check-not-serving" };
    const to: Endpoint = m.target;
    if (to.hostname.includes(":") || !isUsableCandidate(to)) {
      return { ok: false, reason: "check-bad-target" };
    }
    this.#bucket ??= new TokenBucket(HELP_RATE, HELP_BURST, now);
    if (!this.#bucket.take(now, 1)) return { ok: false, reason: "check-rate" };
    const data = encodeServerMsg({ type: MsgType.Reach, nonce: m.nonce, mac: m.mac });
    return { ok: true, transmit: { to: { hostname: to.hostname, port: to.port }, data } };
  }
}
