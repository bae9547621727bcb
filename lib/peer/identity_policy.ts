/**
 * Who a peer is, and what the user is told about it. A completed handshake proves a peer holds
 * the room's secret and a static key; the policy decides what that key and the name it claims
 * mean: a name that is not normalised, or our own key (a second process with our identity), is
 * refused for good; a known name with a new key, or a name another present peer already shows,
 * is accepted with a warning, so the user can compare fingerprints. Frames that do not
 * authenticate are counted, and warned about when they come in a row; two handshakes of one
 * pair that show different keys mean someone with the room secret interferes.
 *
 * Pure decisions from facts (the remote peer gathers them): no I/O, no clock but the `now`
 * given, no state but one peer's warning budget ({@link PeerWarnings}).
 *
 * @module
 */
import { bytesEqual } from "../core/bytes.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { normalizeName } from "../core/names.ts";

/** Failed frames in a row (since the last good one) that make us warn about tampering. */
export const TAMPER_THRESHOLD = 5;
/** Least time between two `auth-failed` warnings about one peer, in ms. */
export const WARN_INTERVAL = 60_000;

/** What a warning is about. */
export type WarningKind =
  /** A known name (or this peer) shows another identity than before. */
  | "identity-changed"
  /** A peer uses our own identity (a second process with the same key). */
  | "identity-shared"
  /** A peer could not be authenticated, or was refused (bad name, two identities). */
  | "auth-failed"
  /** A peer left and was forgotten with messages to it never acknowledged. */
  | "undelivered"
  /** Two present peers claim the same name. */
  | "name-clash";

/** A warning event: something the user should look at. */
export interface Warning {
  /** Always `warning`. */
  type: "warning";
  /** What it is about. */
  kind: WarningKind;
  /** The peer's name, when it is known (and proven). */
  name: string | null;
  /** The sentence for people. */
  message: string;
}

/** What the policy looks at when a peer's handshake completes. */
export interface HandshakeFacts {
  /** The name its handshake carried. */
  name: string;
  /** Its static public key. */
  key: Uint8Array;
  /** Our own identity's public key. */
  ourKey: Uint8Array;
  /** The fingerprint remembered for that name in this room (known_peers), if any. */
  known: string | undefined;
  /** The fingerprint this peer showed before (an earlier handshake of the pair), if any. */
  previous: string | undefined;
  /** The fingerprint of another present peer already called that name, if any. */
  holder: string | undefined;
}

/** The policy's decision on a completed handshake. */
export interface Verdict {
  /** The key's fingerprint. */
  fingerprint: string;
  /** False: refuse the peer for good (a warning says why). */
  accept: boolean;
  /** What to tell the user, in order. */
  warnings: Warning[];
}

/** How a peer is named in a warning: its name, or the start of its id before it proved one. */
export interface Who {
  /** Its proven name, or "" before its handshake completed. */
  name: string;
  /** Hex of its id. */
  key: string;
}

/** Decides what a completed handshake's key and name mean (see the module's description). */
export function judgeHandshake(f: HandshakeFacts): Verdict {
  const fp = fingerprint(f.key);
  const checked = normalizeName(f.name);
  if (!checked.ok || checked.name !== f.name) {
    // Honest clients only send normalised names from the allowed set.
    const why = checked.ok ? "not normalised" : checked.reason;
    const w = warning("auth-failed", null, `Refused peer ${fp}: its name is not allowed (${why})`);
    return { fingerprint: fp, accept: false, warnings: [w] };
  }
  if (bytesEqual(f.key, f.ourKey)) {
    const w = warning(
      "identity-shared",
      null,
      `Another p2p process uses your identity (${fp}) in this room; give each its own with --identity FILE`,
    );
    return { fingerprint: fp, accept: false, warnings: [w] };
  }
  const warnings: Warning[] = [];
  if ((f.known !== undefined && f.known !== fp) || (f.previous && f.previous !== fp)) {
    warnings.push(warning(
      "identity-changed",
      f.name,
      `${f.name} has a new identity (${fp}, was ${
        f.known ?? f.previous
      }); check the fingerprint with them before trusting it`,
    ));
  }
  if (f.holder !== undefined && f.holder !== fp) {
    // Names are unique by tag at the server, but a member could claim another's name in its
    // handshake: both show their fingerprints, so the user can tell who is who.
    warnings.push(nameClash(f.name, f.holder, fp));
  }
  return { fingerprint: fp, accept: true, warnings };
}

/** The warning for two present peers called `name`, with fingerprints `first` and `second`. */
export function nameClash(name: string, first: string, second: string): Warning {
  return warning(
    "name-clash",
    name,
    `Two peers call themselves ${name}: fingerprints ${first} and ${second}; ask them which is real`,
  );
}

/** The warning for a pair whose two handshakes showed different keys (it is refused). */
export function twoIdentities(who: Who, first: Uint8Array, second: Uint8Array): Warning {
  return warning(
    "auth-failed",
    who.name || null,
    `Refused a peer whose two handshakes showed different identities (${fingerprint(first)} and ${
      fingerprint(second)
    }): someone with the room secret is interfering; check fingerprints with your peers`,
  );
}

/** The warning for a peer forgotten with `parts` message parts to it never acknowledged. */
export function undelivered(who: Who, parts: number): Warning {
  return warning(
    "undelivered",
    who.name || null,
    `${label(who)} left and did not come back; ${parts} message ${
      parts === 1 ? "part" : "parts"
    } to it ${parts === 1 ? "was" : "were"} never delivered`,
  );
}

/**
 * One peer's warning budget: frames that fail to authenticate are counted (a warning after
 * {@link TAMPER_THRESHOLD} in a row; every failed handshake warns), and `auth-failed` warnings
 * come at most once per {@link WARN_INTERVAL}.
 */
export class PeerWarnings {
  #failures = 0;
  #lastWarn = -Infinity;

  /** A frame or handshake authenticated: the count of failures in a row starts again. */
  authenticated(): void {
    this.#failures = 0;
  }

  /** A handshake or frame that did not authenticate: the warning it is worth now, if any. */
  failed(now: number, what: "handshake" | "frame", who: Who): Warning | null {
    if (what === "frame" && ++this.#failures < TAMPER_THRESHOLD) return null;
    return this.pass(
      now,
      warning(
        "auth-failed",
        who.name || null,
        `Could not authenticate ${label(who)}: tampered introduction or wrong room secret`,
      ),
    );
  }

  /** `w` when it may be shown now (an `auth-failed` one not within a minute of the last). */
  pass(now: number, w: Warning): Warning | null {
    if (now - this.#lastWarn < WARN_INTERVAL && w.kind === "auth-failed") return null;
    this.#lastWarn = now;
    return w;
  }
}

function warning(kind: WarningKind, name: string | null, message: string): Warning {
  return { type: "warning", kind, name, message };
}

function label(who: Who): string {
  return who.name || `peer ${who.key.slice(0, 8)}`;
}
