/**
 * What a joining peer tells its user besides peers, messages and warnings: one `notice` event
 * per fact, with a machine-readable `kind` (what `--json` readers and tests match) and the
 * English sentence people read. The sentences are written here, once; the machines report
 * facts.
 *
 * @module
 */
import type { PortMapProtocol } from "../nat/portmap/mapper.ts";
import { type Endpoint, formatEndpoint } from "../wire/address.ts";

/** What a notice is about. */
export type NoticeKind =
  /** The wanted name is taken in the room: we registered with a suffix. */
  | "renamed"
  /** The server refused a request after registering. */
  | "refused"
  /** STUN says our NAT maps each destination to its own port (symmetric). */
  | "symmetric-nat"
  /** The router granted a port mapping, offered to peers as a candidate. */
  | "portmap"
  /** `--supernode ask`: the reachability check passed; we serve the room as its supernode. */
  | "supernode"
  /** `--supernode ask`: the check did not pass (or the server cannot check). */
  | "not-supernode"
  /** A peer acknowledged nothing for a minute while messages to it wait (they stay queued). */
  | "not-responding"
  /** A peer that was not responding acknowledged again. */
  | "responding"
  /** A peer's stream skipped lines we never received (it gave them up). */
  | "missed"
  /** A line longer than a message may be was not sent. */
  | "too-long"
  /** A line was not sent to some peers: too much is waiting to be delivered there. */
  | "queue-full"
  /** A peer renamed itself (`/nick`), or we did (`name` null). */
  | "nick"
  /** A private line (`/msg`) named nobody present. */
  | "no-such-peer";

/** A notice event. */
export interface Notice {
  /** Always `notice`. */
  type: "notice";
  /** What it is about. */
  kind: NoticeKind;
  /** The sentence for people. */
  message: string;
}

/** The facts a notice tells, each with what its sentence needs. */
export type NoticeFact =
  | { kind: "renamed"; wanted: string; name: string }
  | { kind: "refused"; reason: string }
  /** The probe's own sentence (see `SYMMETRIC_NOTICE` in `lib/nat/stun_probe.ts`). */
  | { kind: "symmetric-nat"; message: string }
  | { kind: "portmap"; protocol: PortMapProtocol; external: Endpoint }
  | { kind: "supernode" }
  | { kind: "not-supernode" }
  | { kind: "not-responding"; name: string; seconds: number; waiting: number }
  | { kind: "responding"; name: string }
  | { kind: "missed"; name: string; frames: number }
  | { kind: "too-long"; bytes: number; limit: number }
  | { kind: "queue-full"; names: string[] }
  | { kind: "nick"; name: string | null; to: string }
  | { kind: "no-such-peer"; name: string };

/** How the port-mapping protocols are named to the user. */
const PORTMAP_NAMES: Record<PortMapProtocol, string> = {
  pcp: "PCP",
  natpmp: "NAT-PMP",
  upnp: "UPnP",
};

/** The notice event telling `f`. */
export function notice(f: NoticeFact): Notice {
  return { type: "notice", kind: f.kind, message: sentence(f) };
}

/** The sentence for `f`. */
function sentence(f: NoticeFact): string {
  switch (f.kind) {
    case "renamed":
      return `The name "${f.wanted}" is taken in this room; you are "${f.name}"`;
    case "refused":
      return `The server refused a request: ${f.reason}`;
    case "symmetric-nat":
      return f.message;
    case "portmap":
      return `Router port mapping (${PORTMAP_NAMES[f.protocol]}): ${
        formatEndpoint(f.external)
      } → you`;
    case "supernode":
      return "Reachable from the Internet: serving as a supernode of this room";
    case "not-supernode":
      return "Not serving as a supernode: the server did not find this address reachable from the Internet (a server with one address checks only hosts without a NAT; with --alt-host it checks NATs too)";
    case "not-responding":
      return `${f.name} is not responding (nothing acknowledged for ${f.seconds} s); ${
        plural(f.waiting, "message part")
      } ${f.waiting === 1 ? "waits" : "wait"} for it`;
    case "responding":
      return `${f.name} is responding again`;
    case "missed":
      return `Missed lines from ${f.name}: ${
        plural(f.frames, "frame")
      } of theirs never arrived (they gave them up)`;
    case "too-long":
      return `Message is ${f.bytes} bytes; the limit is ${f.limit}. Not sent.`;
    case "queue-full":
      return `Not sent to ${f.names.join(", ")}: too much is waiting to be delivered there`;
    case "nick":
      return f.name === null ? `You are now ${f.to}` : `${f.name} is now known as ${f.to}`;
    case "no-such-peer":
      return `Nobody called ${f.name} is here; not sent (see /peers)`;
  }
}

/** `1 frame`, `2 frames`. */
export function plural(n: number, word: string): string {
  return `${n} ${n === 1 ? word : `${word}s`}`;
}
