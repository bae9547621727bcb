/**
 * What a running peer writes to its known peers file (`lib/io/known_peers.ts`): the fingerprint
 * of each peer met for the first time in this room, and what `/trust NAME` accepts. Writes run
 * in the background; {@link KnownFingerprints.settled} waits for them before the process ends.
 *
 * I/O: files (through `KnownPeers`).
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import type { KnownPeers } from "../io/known_peers.ts";

const log = getLogger(["p2p", "join"]);

/** The known peers of the room, as a running peer adds to them. */
export class KnownFingerprints {
  #known: KnownPeers;
  /** Writes of the known-peers file under way. */
  #saving = new Set<Promise<void>>();

  /** Adds to `known` (loaded for this room). */
  constructor(known: KnownPeers) {
    this.#known = known;
  }

  /**
   * Remembers the fingerprint of a peer met for the first time in this room. A name known with
   * another fingerprint keeps the old one (the client warns about the change each time): like
   * SSH, only the user replaces a known key, by removing its entry from the file or with
   * `/trust`. `present(name)`: whether someone of that name is in the room now.
   */
  remember(name: string, fp: string, present: (name: string) => boolean): void {
    const known = this.#known.get(name);
    if (known === fp) return;
    // A known name with another key: the warning says so; only /trust replaces the record.
    if (known !== undefined) return;
    // A name the server suffixed (`bob-2`: "bob" was taken) is no identity's name to keep:
    // the next person suffixed so would set off a changed-identity warning.
    const suffixed = /^(.+)-\d+$/.exec(name);
    if (
      suffixed && (this.#known.get(suffixed[1]!) !== undefined || present(suffixed[1]!))
    ) return;
    this.trust(name, fp);
  }

  /** Writes `name` → `fp` to the known peers file (replacing what was there). */
  trust(name: string, fp: string): void {
    const saving = this.#known.remember(name, fp).catch((e) => {
      log.warning("Cannot remember the fingerprint of {name}: {error}", {
        name,
        error: (e as Error).message,
      });
    }).finally(() => this.#saving.delete(saving));
    this.#saving.add(saving);
  }

  /** Resolves when every write started so far has finished. */
  async settled(): Promise<void> {
    await Promise.all(this.#saving);
  }
}
