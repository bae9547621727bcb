/**
 * The client's routing table: which part of the client a received datagram concerns, decided
 * from its bytes and a few facts about the client (leaving, relay-only, which socket, whether it
 * came from the server or our supernode). Pure: it decodes peer frames but acts on nothing; the
 * {@link Client} (`lib/peer/client.ts`) hands each datagram to the part named here.
 *
 * @module
 */
import { compareBytes } from "../core/bytes.ts";
import { looksLikeStun } from "../nat/stun.ts";
import { hasHeader, MsgType, peekType } from "../wire/header.ts";
import {
  decodeHandshake,
  decodeSealed,
  type HandshakeFrame,
  type SealedFrame,
} from "../wire/peer_frame.ts";

/** Where one datagram goes (see {@link routeOf}). */
export type Route =
  /** Dropped, counted under `reason`. */
  | { kind: "drop"; reason: string }
  /** Ignored without counting (leaving, and the goodbyes are done or it is not sealed). */
  | { kind: "ignore" }
  /** A sealed frame sent directly to our socket `via`: to the remote it comes from. */
  | { kind: "sealed"; frame: SealedFrame; via: number }
  /** A STUN message: to discovery. */
  | { kind: "stun" }
  /** A REACH from the server. */
  | { kind: "reach" }
  /** A handshake message sent directly by a peer. */
  | { kind: "handshake"; frame: HandshakeFrame }
  /** A message from the server. */
  | { kind: "server" }
  /** A message from the supernode we registered with. */
  | { kind: "supernode" }
  /** Something for our supernode role, from a member of our room (type `type`). */
  | { kind: "member"; type: number };

/** What {@link routeOf} needs to know of the client and of the datagram's source. */
export interface RouteFacts {
  /** Our socket it arrived on (0: the main one; n: a birthday search's auxiliary socket). */
  via: number;
  /** We are leaving (the server link is closed). */
  closed: boolean;
  /** Leaving, and the goodbyes are answered or given up on. */
  farewellDone: boolean;
  /** We send nothing directly to peers. */
  relayOnly: boolean;
  /** It came from the server's endpoint. */
  fromServer: boolean;
  /** It came from the supernode we registered with. */
  fromSupernode: boolean;
}

/**
 * Where a datagram that is not the port mapper's goes. Never throws: what does not decode is a
 * `drop` with the decoder's reason.
 */
export function routeOf(data: Uint8Array, f: RouteFacts): Route {
  if (f.closed) {
    // Leaving: only the peers' answers to our goodbyes (sealed, direct) are still read.
    if (f.farewellDone || !hasHeader(data, MsgType.Sealed)) return { kind: "ignore" };
    return sealed(data, f.via);
  }
  if (f.via) {
    if (f.relayOnly || !hasHeader(data, MsgType.Sealed)) {
      return { kind: "drop", reason: "aux-unexpected" };
    }
    return sealed(data, f.via);
  }
  if (looksLikeStun(data)) return { kind: "stun" };
  const t = peekType(data);
  if (!t.ok) return { kind: "drop", reason: t.reason };
  if (t.value === MsgType.Sealed) {
    if (f.relayOnly) return { kind: "drop", reason: "direct-while-relay-only" };
    return sealed(data, 0);
  }
  if (t.value === MsgType.Reach) return { kind: "reach" };
  if (t.value === MsgType.Handshake && !f.fromServer && !f.fromSupernode) {
    // A handshake message sent directly (its answer proves the path; see lib/peer/handshake/handshake.ts).
    if (f.relayOnly) return { kind: "drop", reason: "direct-while-relay-only" };
    const h = decodeHandshake(data);
    if (!h.ok) return { kind: "drop", reason: h.reason };
    return { kind: "handshake", frame: h.value };
  }
  if (f.fromServer) return { kind: "server" };
  if (f.fromSupernode) return { kind: "supernode" };
  return { kind: "member", type: t.value };
}

function sealed(data: Uint8Array, via: number): Route {
  const s = decodeSealed(data);
  return s.ok ? { kind: "sealed", frame: s.value, via } : { kind: "drop", reason: s.reason };
}

/** What a RELAYED message carried (see {@link relayedOf}). */
export type RelayedRoute =
  | { kind: "drop"; reason: string }
  | { kind: "sealed"; frame: SealedFrame }
  | { kind: "handshake"; frame: HandshakeFrame };

/**
 * The peer frame in a RELAYED `payload` from peer `from`: a SEALED or a HANDSHAKE frame whose
 * sender is `from` (else `relay-mismatch`).
 */
export function relayedOf(from: Uint8Array, payload: Uint8Array): RelayedRoute {
  const t = peekType(payload);
  if (!t.ok) return { kind: "drop", reason: t.reason };
  if (t.value === MsgType.Sealed) {
    const s = decodeSealed(payload);
    if (!s.ok) return { kind: "drop", reason: s.reason };
    if (compareBytes(from, s.value.from) !== 0) return { kind: "drop", reason: "relay-mismatch" };
    return { kind: "sealed", frame: s.value };
  }
  const h = decodeHandshake(payload);
  if (!h.ok) return { kind: "drop", reason: h.reason };
  if (compareBytes(from, h.value.from) !== 0) return { kind: "drop", reason: "relay-mismatch" };
  return { kind: "handshake", frame: h.value };
}
