/**
 * What a remote peer (`lib/peer/remote.ts`) gets from the client that owns it and gives back:
 * the {@link RemoteContext} it reads (who we are, how peers behave, what all peers share, and
 * queries on the rest of the client), the introduction that makes it, and what it reports
 * (datagrams, events, its row in the peer listing). Types only.
 *
 * @module
 */
import type { ChatKind, ChatMessage } from "../wire/chat_message.ts";
import type { BirthdayPool, NatInfo } from "./path/birthday.ts";
import type { NoiseFactory } from "./handshake/handshake.ts";
import type { Candidate, PathOptions, ProbeBudget } from "./path/path.ts";
import type { ReliableOptions } from "./reliable.ts";
import type { TokenBucket } from "../core/limits.ts";
import type { FailureGate } from "./handshake/failure_gate.ts";
import type { Drops } from "./drops.ts";
import type { Warning } from "./identity_policy.ts";
import type { Notice } from "./notices.ts";
import type { RelaysFrame } from "./supernodes.ts";
import type { Endpoint } from "../wire/address.ts";
import type { FileFrame } from "../wire/file_frame.ts";

/**
 * A chat line: `from` its sender's name; `private` when it was sent to us alone (`/msg`);
 * `history` when it was written before we joined and repeated for us by its author, `ago`
 * seconds before it arrived.
 */
export interface MessageEvent {
  /** Always `message`. */
  type: "message";
  /** The sender's name. */
  from: string;
  /** The line. */
  text: string;
  /** Sent to us alone. */
  private?: boolean;
  /** Written before we joined (repeated by its author). */
  history?: boolean;
  /** With `history`: how many seconds before it arrived it was written. */
  ago?: number;
  /** Our own private line's recipient (only in our own view of what we sent). */
  to?: string;
}

/** What a remote peer reports to the user. */
export type RemoteEvent =
  | {
    type: "peer";
    name: string;
    fingerprint: string;
    path: "direct" | "relay";
    addr: Endpoint | null;
    rtt: number | null;
    /** On the relay: the name of the supernode relaying, or null for the server. */
    relayedBy?: string | null;
    /** Relayed by the server, which we reach over TCP or TLS (set by the join role). */
    transport?: "tcp";
  }
  | MessageEvent
  | Warning
  | Notice;

/**
 * What a remote peer reports to the client: its user's events; `direct-lost` when a direct path
 * to it had worked and the pair is on the relay now (if it is our supernode, it is gone);
 * `relay-worse` when the supernode relaying it proved worse than the server's relay (see
 * `lib/peer/relay_watch.ts`; if it is our supernode, we leave it); `observed` when it saw our
 * main socket's probe come from an endpoint (evidence of our NAT's
 * mapping); `identified` when its handshake first showed its identity (an earlier instance of it
 * gives way, see `lib/peer/membership.ts`); `introduced` once, when it is made (it is owed our
 * history before anything else); `server-hint` when it says it registered with the server
 * again (check our own registration); `goodbye` when it says it leaves (it departs);
 * `goodbye-ack` when it answered our own GOODBYE; `chat` for a line it sent (shown once by the
 * client, see `lib/peer/chat_log.ts`); `file` with a file-transfer frame from it.
 */
export type RemoteOutput =
  | RemoteEvent
  | { type: "direct-lost" }
  | { type: "relay-worse"; supernode: string }
  | { type: "identified" }
  | { type: "introduced" }
  | { type: "server-hint"; boot: Uint8Array }
  | { type: "goodbye" }
  | { type: "goodbye-ack" }
  | { type: "chat"; msg: Exclude<ChatMessage, { kind: typeof ChatKind.Nick }> }
  /** It saw our main socket's probe come from `observed` (we sent it to `from`). */
  | { type: "observed"; observed: Endpoint; from: Endpoint }
  | { type: "file"; frame: FileFrame };

/** A datagram a remote peer wants sent. */
export type RemoteTransmit =
  /** Straight to one of the peer's endpoints, from our socket `via` (0: the main one). */
  | { kind: "direct"; to: Endpoint; data: Uint8Array; via: number }
  /** A RELAY of `data` to the peer: through our supernode `through` (its key), or the server. */
  | { kind: "relay"; data: Uint8Array; through: string | null }
  /** A REPUNCH: asks the server to introduce the pair again. */
  | { kind: "repunch" };

/** One row of the peer listing. */
export interface PeerInfo {
  /** Peer's name. */
  name: string;
  /** Its identity's fingerprint. */
  fingerprint: string;
  /** Current path, or `pending` while the first punch round runs. */
  path: "direct" | "relay" | "pending";
  /** Direct endpoint, if direct. */
  addr: Endpoint | null;
  /** Direct path RTT in ms, if direct. */
  rtt: number | null;
  /** On the relay: the name of the supernode relaying, or null (or absent) for the server. */
  relayedBy?: string | null;
  /** Relayed by the server, which we reach over TCP or TLS (set by the join role). */
  transport?: "tcp";
  /** Messages queued or in flight to this peer. */
  outstanding: number;
}

/** An introduction from the server, as the remote peer needs it. */
export interface Introduction {
  /** Its peer id. */
  id: Uint8Array;
  /** The pair's introduction epoch (new when either side registers anew). */
  epoch: Uint8Array;
  /** Either side asked never to punch. */
  relayOnly: boolean;
  /** Endpoints to punch to. */
  candidates: Candidate[];
  /**
   * Who introduced it: `server` (default) or `supernode:<id>`. Epochs are compared per
   * source, so a second rendezvous point introducing the same pair never forces a new
   * handshake; a new epoch from the same source (either side registered there anew) does.
   */
  source?: string;
}

/** Who we are, as a remote peer needs it. */
export interface LocalPeer {
  /** Our peer id. */
  readonly id: Uint8Array;
  /** The opaque room id (bound into every handshake). */
  readonly roomId: Uint8Array;
  /** Our identity's public key (to notice a second process using it). */
  readonly identityKey: Uint8Array;
  /** Our name, sent inside handshakes. */
  name(): string;
  /** Makes Noise handshakes with our identity and the room's secret. */
  readonly noise: NoiseFactory;
  /** Names and fingerprints seen before in this room. */
  readonly knownPeers: ReadonlyMap<string, string>;
}

/** How remote peers behave (the client's options). */
export interface RemoteSettings {
  /** We never send directly. */
  readonly relayOnly: boolean;
  /** We can send to IPv6 addresses (else nothing goes to one). */
  readonly ipv6: boolean;
  /** Path machine options. */
  readonly path: Partial<PathOptions>;
  /** Reliable channel options. */
  readonly reliable: Partial<ReliableOptions> | undefined;
}

/** What all remote peers of a client share. */
export interface SharedResources {
  /** The budget for probes to endpoints that never answered. */
  readonly probeBudget: ProbeBudget;
  /**
   * The budget for direct handshake copies (and direct answers) to endpoints that never
   * answered: separate, so opening NATs does not eat the probes that upgrade later.
   */
  readonly handshakeBudget: ProbeBudget;
  /**
   * The budget for reading direct message 2s that echo no cookie of ours: each costs a
   * Diffie-Hellman before it can fail, and ids and attempts travel in clear.
   */
  readonly uncookied: TokenBucket;
  /** Handshake messages that failed to authenticate, per source: who may still cost work. */
  readonly failures: FailureGate;
  /** The owner of auxiliary sockets for birthday searches. */
  readonly birthday: BirthdayPool;
  /** Randomness (handshake cookies, birthday probe ports). */
  readonly random: (n: number) => Uint8Array;
  /** Where dropped datagrams are counted. */
  readonly drops: Drops;
}

/** What a remote peer reads of the rest of the client (queries only: nothing changes). */
export interface ClientView {
  /** Addresses STUN servers or the router gave us beyond the server's view, to tell peers. */
  extraCandidates(): Endpoint[];
  /** What we know of our own NAT's mapping (from STUN). */
  nat(): NatInfo;
  /** The fingerprint of another present peer already called `name`, if there is one. */
  nameHolder(name: string, except: { readonly key: string }): string | undefined;
  /**
   * The supernode (its key) that relays to peer `key` now, or null for the server; a
   * supernode that let this pair stall (`stalledOn`) does not.
   */
  supernodeFor(key: string, stalledOn: string | null): string | null;
  /** The name of supernode `key`, as shown to the user. */
  supernodeName(key: string): string;
  /** Our RTTs to the server and our supernode, to tell peers (null: nothing measured yet). */
  relays(): RelaysFrame | null;
}

/** What a remote peer works with, in four parts. */
export interface RemoteContext {
  /** Who we are. */
  readonly self: LocalPeer;
  /** How remote peers behave. */
  readonly settings: RemoteSettings;
  /** Budgets, sockets, randomness and counters all remote peers share. */
  readonly shared: SharedResources;
  /** What it reads of the rest of the client. */
  readonly view: ClientView;
}
