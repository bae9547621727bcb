/**
 * The introduction epochs of one remote peer: the last epoch from each source of introductions
 * (the server, a supernode; at most a few sources), whether an introduction brings a new one (a
 * new handshake), and the epoch the peer said GOODBYE under (an INTRO with that epoch is the
 * server's stale word). {@link RemotePeer} (`lib/peer/remote.ts`) keeps one. Pure.
 *
 * @module
 */
import { idHex } from "../wire/header.ts";
import type { Introduction } from "./remote_context.ts";

/** Sources of introductions remembered at once; one more forgets them all. */
const MAX_SOURCES = 4;

/** One remote's introduction epochs. */
export class IntroEpochs {
  /** The last epoch (hex) from each source of introductions. */
  #epochs = new Map<string, string>();
  /** The epoch it said GOODBYE under. */
  #goodbyeEpoch: string | undefined;

  /** The epochs of a remote first introduced by `intro`. */
  constructor(intro: Introduction) {
    this.#epochs.set(intro.source ?? "server", idHex(intro.epoch));
  }

  /** Records `intro`'s epoch for its source; true when that source had told another one. */
  see(intro: Introduction): boolean {
    const source = intro.source ?? "server";
    const last = this.#epochs.get(source);
    const epoch = idHex(intro.epoch);
    const rekey = last !== undefined && last !== epoch;
    if (!this.#epochs.has(source) && this.#epochs.size >= MAX_SOURCES) this.#epochs.clear();
    this.#epochs.set(source, epoch);
    return rekey;
  }

  /**
   * What a repeated or new introduction `intro` brings to a remote last introduced by `current`
   * (`present`: in the room now): `rekey` when its source tells a new epoch (a new handshake);
   * `ignore` when it is a supernode's word on a present peer that a different source introduced
   * (the server's view of a present peer's endpoints wins; a supernode's counts when it is the
   * one that introduced the peer, the server gone, or with a new epoch); else `update`. The
   * epoch is recorded either way.
   */
  judge(
    intro: Introduction,
    current: Introduction,
    present: boolean,
  ): "rekey" | "ignore" | "update" {
    if (this.see(intro)) return "rekey";
    const source = intro.source ?? "server";
    const counts = source === "server" || source === (current.source ?? "server");
    return !counts && present ? "ignore" : "update";
  }

  /** The peer said GOODBYE under epoch `epoch`. */
  goodbye(epoch: Uint8Array): void {
    this.#goodbyeEpoch = idHex(epoch);
  }

  /** True when the peer said GOODBYE under epoch `epoch` (hex). */
  saidGoodbye(epoch: string): boolean {
    return this.#goodbyeEpoch === epoch;
  }
}
