/**
 * What one step of the client learned that its end (the client's `#drive`, `lib/peer/client.ts`)
 * acts on: a peer's SERVER_HINT (check our registration), the peers whose GOODBYE came (they
 * depart), our supernode's direct path failing (it is gone), and how many registrations our
 * server link has seen (a new one after the first: tell the peers). Pure.
 *
 * @module
 */
import type { RemotePeer } from "./remote.ts";

/** One step's news for the end of the step. Record with the `note*` methods, read with `take*`. */
export class DriveState {
  /** Registrations of our server link seen. */
  #registrations = 0;
  /** A peer's SERVER_HINT came in this step. */
  #hinted = false;
  /** Peers whose GOODBYE came in this step. */
  #goodbyes: RemotePeer[] = [];
  /** Our supernode's key, when the direct path to it failed in this step. */
  #supernodeFailed: string | undefined;

  /** A SERVER_HINT that matters came in. */
  noteHint(): void {
    this.#hinted = true;
  }

  /** Peer `r` said GOODBYE. */
  noteGoodbye(r: RemotePeer): void {
    this.#goodbyes.push(r);
  }

  /** The direct path to our supernode `key` failed. */
  noteSupernodeFailed(key: string): void {
    this.#supernodeFailed = key;
  }

  /** The supernode whose direct path failed in this step, if any (then forgotten). */
  takeSupernodeFailed(): string | undefined {
    const failed = this.#supernodeFailed;
    this.#supernodeFailed = undefined;
    return failed;
  }

  /** The peers whose GOODBYE came in this step, in order (then forgotten). */
  takeGoodbyes(): RemotePeer[] {
    return this.#goodbyes.splice(0);
  }

  /** Whether a SERVER_HINT came in this step (then forgotten). */
  takeHint(): boolean {
    const hinted = this.#hinted;
    this.#hinted = false;
    return hinted;
  }

  /**
   * Records that our server link has seen `n` registrations; true when that is a new one after
   * the first (we registered again: the peers are told).
   */
  registeredAgain(n: number): boolean {
    if (n === this.#registrations) return false;
    const again = this.#registrations > 0;
    this.#registrations = n;
    return again;
  }
}
