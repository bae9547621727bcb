/**
 * Who one remote peer is, as its handshakes prove it: its name and fingerprint once a handshake
 * completed and the identity policy (`lib/peer/identity_policy.ts`) accepted it, the warnings
 * its handshakes and frames are worth (within the warning budget), and whether it is refused for
 * good (a bad name, our own identity, two identities in one pair). {@link RemotePeer}
 * (`lib/peer/remote.ts`) owns one per peer. Pure.
 *
 * @module
 */
import type { Half } from "./handshake/handshake.ts";
import type { RemoteContext } from "./remote_context.ts";
import { normalizeName } from "../core/names.ts";
import {
  judgeHandshake,
  nameClash,
  PeerWarnings,
  twoIdentities,
  type Warning,
} from "./identity_policy.ts";

/** What the admission of a completed handshake checks against. */
export interface AdmissionFacts {
  /** Our own identity's public key. */
  ourKey: Uint8Array;
  /** The fingerprint remembered for `name` in this room (known_peers), if any. */
  known(name: string): string | undefined;
  /** The fingerprint of another present peer already called `name`, if any. */
  holder(name: string): string | undefined;
}

/** The facts the remote whose id is `key` (hex) is admitted against, from its context `ctx`. */
export function admissionFacts(
  ctx: Pick<RemoteContext, "self" | "view">,
  remote: { readonly key: string },
): AdmissionFacts {
  return {
    ourKey: ctx.self.identityKey,
    known: (name) => ctx.self.knownPeers.get(name),
    holder: (name) => ctx.view.nameHolder(name, remote),
  };
}

/**
 * One peer's admission.
 *
 * Driving it: after {@link admit}, {@link failed} or {@link mismatch}, drain {@link pollEvent}
 * until undefined (or {@link drainInto}).
 */
export class PeerAdmission {
  /** Hex of the peer's id (how warnings name it before it proved a name). */
  readonly key: string;
  /** Its name in the room, as its accepted handshake told it ("" until then). */
  name = "";
  /** Its identity's fingerprint, once a handshake was accepted. */
  fingerprint: string | undefined;
  #warnings = new PeerWarnings();
  #blocked = false;
  #events: Warning[] = [];

  /** The admission of the peer whose id is `key` (hex). */
  constructor(key: string) {
    this.key = key;
  }

  /** The next warning to show, if any. */
  pollEvent(): Warning | undefined {
    return this.#events.shift();
  }

  /** Moves the warnings to show into `out`. */
  drainInto(out: { push(w: Warning): unknown }): void {
    for (let w = this.#events.shift(); w; w = this.#events.shift()) out.push(w);
  }

  /** True once it is refused for good. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** Refuses it for good. */
  refuse(): void {
    this.#blocked = true;
  }

  /** A frame or handshake from it authenticated. */
  authenticated(): void {
    this.#warnings.authenticated();
  }

  /** A handshake or frame that did not authenticate: many in a row are worth a warning. */
  failed(now: number, what: "handshake" | "frame"): void {
    const w = this.#warnings.failed(now, what, this);
    if (w) this.#events.push(w);
  }

  /** Its two handshakes showed the keys `first` and `second`: refused, with a warning. */
  mismatch(now: number, first: Uint8Array, second: Uint8Array): void {
    this.#warn(now, twoIdentities(this, first, second));
    this.refuse();
  }

  /**
   * Our handshake completed with `e`: the identity policy judges it against `facts`. `refused`
   * (for good), `first` (its first accepted handshake) or `again`.
   */
  admit(now: number, e: Half, facts: AdmissionFacts): "refused" | "first" | "again" {
    const verdict = judgeHandshake({
      name: e.name,
      key: e.remoteStatic,
      ourKey: facts.ourKey,
      known: facts.known(e.name),
      previous: this.fingerprint,
      holder: facts.holder(e.name),
    });
    for (const w of verdict.warnings) this.#warn(now, w);
    if (!verdict.accept) {
      this.refuse();
      return "refused";
    }
    this.name = e.name;
    const first = this.fingerprint === undefined;
    this.fingerprint = verdict.fingerprint;
    this.#warnings.authenticated();
    return first ? "first" : "again";
  }

  /**
   * The peer says it is called `name` now (NICK): true when the name is allowed (normalised,
   * like a handshake's). Another present peer `holder` (its fingerprint) with that name is
   * worth the same warning as at a handshake.
   */
  rename(now: number, name: string, holder: string | undefined): boolean {
    const checked = normalizeName(name);
    if (!checked.ok || checked.name !== name || this.fingerprint === undefined) return false;
    if (holder !== undefined && holder !== this.fingerprint) {
      this.#warn(now, nameClash(name, holder, this.fingerprint));
    }
    this.name = name;
    return true;
  }

  /** Shows `w` unless the warning budget holds it back. */
  #warn(now: number, w: Warning): void {
    const shown = this.#warnings.pass(now, w);
    if (shown) this.#events.push(shown);
  }
}
