/**
 * What a peer's server link (`lib/peer/server_link.ts`) knows of its registration with the
 * server: the token WELCOME gave it (every later message carries it, both ways), the sequence
 * numbers of the server's INTRO, LEFT, ROSTER and CHECK acted on ({@link SeqWindow}), where the
 * server sees our UDP endpoint (WELCOME's and PONG's `observed`), and how many registrations have
 * completed. {@link Registration} holds them. Pure.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import type { Endpoint } from "../wire/address.ts";
import { TOKEN_LEN } from "../wire/server_msg.ts";
import { SeqWindow } from "./server_link_parts.ts";

/**
 * The facts of one server link's registration.
 *
 * Call order: {@link welcomed} for each WELCOME that completes a registration; {@link seen} for
 * each believed PONG; {@link fresh} for each believed sequenced server message.
 */
export class Registration {
  /** The registration's secret from WELCOME; zero until registered. */
  #token: Uint8Array = new Uint8Array(TOKEN_LEN);
  /** The sequence numbers of this registration's INTRO, LEFT, ROSTER and CHECK acted on. */
  #seq = new SeqWindow();
  /** Our public endpoint as the server last saw it. */
  #public: Endpoint | undefined;
  /** Registrations completed (WELCOMEs that began one). */
  #count = 0;

  /** The registration's token (zeros before the first WELCOME). */
  get token(): Uint8Array {
    return this.#token;
  }

  /** Registrations completed so far. */
  get count(): number {
    return this.#count;
  }

  /** Where the server last saw us (WELCOME's or PONG's `observed`), once it said. */
  get public(): Endpoint | undefined {
    return this.#public;
  }

  /** True when `token` is this registration's (compared in constant time). */
  matches(token: Uint8Array): boolean {
    return constantTimeEqual(token, this.#token);
  }

  /** True the first time `seq` is seen and it is not far behind the newest (see SeqWindow). */
  fresh(seq: number): boolean {
    return this.#seq.fresh(seq);
  }

  /** The server sees us at `observed` now (a NAT may have given us another port). */
  seen(observed: Endpoint): void {
    this.#public = observed;
  }

  /**
   * A WELCOME completed a registration with `token`, seeing us at `observed`: a new token is a
   * new registration, whose messages the server numbers from 1 again.
   */
  welcomed(token: Uint8Array, observed: Endpoint): void {
    this.#public = observed;
    if (!this.matches(token)) this.#seq.reset();
    this.#token = token;
    this.#count++;
  }
}
