/**
 * What one remote peer does with an authenticated inner frame: probes and their answers to the
 * path machine, control frames to {@link ControlFrames} (and an ANNOUNCE's confirmation to the
 * link), birthday frames to the pair's search; DATA, ACK, GOODBYE and file frames handed back as a
 * {@link FrameStep} for the remote's inbox (`lib/peer/remote_inbox.ts`) to act on. A departed peer's
 * frames follow {@link departedFrame}. Pure: the parts it drives are passed in.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import { type InnerFrame, InnerKind } from "../wire/peer_frame.ts";
import type { FileFrame } from "../wire/file_frame.ts";
import type { ControlFrames } from "./control_frames.ts";
import type { SecureLink } from "./handshake/secure_link.ts";
import type { PairSearch } from "./path/pair_search.ts";
import type { PathMachine } from "./path/path.ts";

/** A DATA frame. */
export type DataFrame = Extract<InnerFrame, { kind: typeof InnerKind.Data }>;
/** An ACK frame. */
export type AckFrame = Extract<InnerFrame, { kind: typeof InnerKind.Ack }>;

/**
 * What is left to do with a frame: drop it (counted by `reason`), answer it (`frame` back to
 * where it came from), deliver DATA, take an ACK, pass SERVER_HINT's boot id or GOODBYE_ACK on
 * as events, answer a GOODBYE (and stop there), or nothing more.
 */
export type FrameStep =
  | { kind: "drop"; reason: string }
  | { kind: "reply"; frame: InnerFrame }
  | { kind: "data"; frame: DataFrame }
  | { kind: "ack"; frame: AckFrame }
  | { kind: "server-hint"; boot: Uint8Array }
  | { kind: "goodbye" }
  | { kind: "goodbye-ack" }
  /** A PROBE_ACK to our main socket: where the peer saw it come from (mapping evidence). */
  | { kind: "observed"; observed: Endpoint }
  | { kind: "file"; frame: FileFrame }
  | { kind: "done" };

/** The parts of a present, established remote that its frames drive. */
export interface FrameParts {
  /** Its path machine. */
  path: PathMachine;
  /** ANNOUNCE, CANDIDATES, NAT, RELAYS. */
  control: ControlFrames;
  /** The pair's link (an ANNOUNCE confirms an attempt). */
  secure: SecureLink;
  /** The pair's birthday search. */
  search: PairSearch;
}

/**
 * Hands frame `f` of a present peer, from `from` (null: relayed) to our socket `via`, to the
 * part it is for; what the remote itself must do is returned.
 */
export function presentFrame(
  now: number,
  f: InnerFrame,
  from: Endpoint | null,
  via: number,
  parts: FrameParts,
): FrameStep {
  const { path } = parts;
  switch (f.kind) {
    case InnerKind.Probe:
      if (!from) return { kind: "drop", reason: "probe-via-relay" };
      path.onProbe(now, from, via);
      return { kind: "reply", frame: { kind: InnerKind.ProbeAck, txid: f.txid, observed: from } };
    case InnerKind.ProbeAck:
      if (!from) return { kind: "drop", reason: "probe-via-relay" };
      // Only the answer to our own probe, from where it went, tells where the peer saw us.
      return path.onProbeAck(now, from, f.txid, via) && via === 0
        ? { kind: "observed", observed: f.observed }
        : { kind: "done" };
    case InnerKind.Data:
      return { kind: "data", frame: f };
    case InnerKind.Ack:
      return { kind: "ack", frame: f };
    case InnerKind.Announce:
    case InnerKind.Candidates:
    case InnerKind.Nat:
    case InnerKind.Relays: {
      const effect = parts.control.receive(f);
      if (effect.kind === "confirmed") parts.secure.confirm(effect.attempt);
      else if (effect.kind === "candidates") path.addCandidates(now, effect.endpoints);
      return { kind: "done" };
    }
    case InnerKind.Birthday:
      parts.search.onFrame(now, f, path);
      return { kind: "done" };
    case InnerKind.ServerHint:
      return { kind: "server-hint", boot: f.boot };
    case InnerKind.Goodbye:
      return { kind: "goodbye" };
    case InnerKind.GoodbyeAck:
      return { kind: "goodbye-ack" };
    default:
      return { kind: "file", frame: f };
  }
}

/**
 * A frame from a peer after it departed: DATA and ACK still count, a repeated GOODBYE is
 * answered again (ours was lost); the rest is dropped.
 */
export function departedFrame(f: InnerFrame): FrameStep {
  if (f.kind === InnerKind.Data) return { kind: "data", frame: f };
  if (f.kind === InnerKind.Ack) return { kind: "ack", frame: f };
  if (f.kind === InnerKind.Goodbye) return { kind: "reply", frame: { kind: InnerKind.GoodbyeAck } };
  return { kind: "drop", reason: "departed-peer" };
}
