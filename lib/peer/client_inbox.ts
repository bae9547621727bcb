/**
 * Where a client's incoming datagrams go: each to the one machine it concerns (see
 * `lib/peer/client_routes.ts` for the rules): the port mapper's answers, STUN, the server's
 * messages (or our supernode's, while the server is silent) to the link and membership, REACH to
 * the supernode side, members of our room talking to us as their supernode, and HANDSHAKE and
 * SEALED frames (direct or relayed) to the remote they come from; a relayed frame from a peer we
 * do not know asks the server to resync. What the machines queue is drained through the
 * client's {@link ClientDrain}. Pure.
 *
 * @module
 */
import { compareBytes } from "../core/bytes.ts";
import type { Endpoint } from "../wire/address.ts";
import { toHex } from "../wire/codec.ts";
import { idHex } from "../wire/header.ts";
import type { HandshakeFrame, SealedFrame } from "../wire/peer_frame.ts";
import { decodeServerMsg, type ServerMsg } from "../wire/server_msg.ts";
import type { ClientDrain } from "./client_drain.ts";
import type { MadeParts } from "./client_options.ts";
import { relayedOf, routeOf } from "./client_routes.ts";
import { serverIntake, serverStep } from "./client_server.ts";
import type { Farewell } from "./farewell.ts";
import { ReachHelper } from "./reach_helper.ts";
import type { SupernodeLink } from "./supernode.ts";

/** What an inbox routes to and drains through. */
export interface InboxParts {
  /** The client's parts. */
  readonly parts: MadeParts;
  /** Where their outputs go. */
  readonly drain: ClientDrain;
  /** Our own goodbyes (after they are done, nothing is taken). */
  readonly farewell: Farewell;
  /** Relayed only (`--relay-only`): direct frames are refused. */
  readonly relayOnly: boolean;
  /** We offered to serve: serving, we send the REACHes of the server's checks (`ReachHelper`). */
  readonly helps: boolean;
  /** Our private endpoints (a peer on our site is one behind the same public address). */
  readonly privates: readonly Endpoint[];
}

/** The client's incoming datagrams, each to its machine. */
export class ClientInbox {
  #p: MadeParts;
  #drain: ClientDrain;
  #farewell: Farewell;
  #relayOnly: boolean;
  #helper: ReachHelper;
  #privates: readonly Endpoint[];

  /** An inbox over the parts in `i`. */
  constructor(i: InboxParts) {
    this.#p = i.parts;
    this.#drain = i.drain;
    this.#farewell = i.farewell;
    this.#relayOnly = i.relayOnly;
    this.#helper = new ReachHelper(i.helps && !i.relayOnly);
    this.#privates = i.privates;
  }

  /** Routes one datagram from `from` on our socket `via` to the machine it concerns. */
  handle(now: number, from: Endpoint, data: Uint8Array, via: number): void {
    const { discovery, link, supernodes: sn } = this.#p;
    // NAT-PMP, PCP and SSDP answers (never starting with p2p's magic "p2") go to the mapper.
    if (
      via === 0 && !(data[0] === 0x70 && data[1] === 0x32) &&
      discovery.handleMapper(now, from, data)
    ) {
      return this.#drain.discovery(now);
    }
    const sup = sn.linkFrom(from);
    const r = routeOf(data, {
      via,
      closed: link.closed,
      farewellDone: this.#farewell.done,
      relayOnly: this.#relayOnly,
      fromServer: link.isServer(from),
      fromSupernode: sup !== undefined,
    });
    switch (r.kind) {
      case "drop":
        return this.#drain.drop(r.reason);
      case "ignore":
        return;
      case "sealed":
        return this.#sealed(now, r.frame, from, r.via);
      case "stun":
        if (!discovery.handleStun(now, from, data)) this.#drain.drop("stun-unsolicited");
        return this.#drain.discovery(now);
      case "reach":
        return this.#reach(now, data);
      case "handshake":
        return this.#handshake(now, r.frame, from);
      case "server":
        return this.fromLink(now, data, undefined, from);
      case "supernode":
        return this.fromLink(now, data, sup);
      case "member":
        // Members of our room talking to us as their supernode.
        if (!sn.handleMember(now, from, r.type, data)) this.#drain.drop("unexpected-source");
    }
  }

  /**
   * A datagram from the server (`sup` absent; `from`: which of its endpoints, a transport of
   * the server in use) or from our supernode `sup`.
   */
  fromLink(now: number, data: Uint8Array, sup?: SupernodeLink, from?: Endpoint): void {
    const { supernodes: sn, discovery } = this.#p;
    const link = sup ? sup.link : this.#p.link;
    const d = decodeServerMsg(data);
    if (!d.ok) return this.#drain.drop(d.reason);
    const got = serverIntake(now, d.value, link, sup, sn, from);
    if (!sup) this.#drain.link();
    if (got.kind === "drop") return this.#drain.drop(got.reason);
    // A PONG may have changed an RTT.
    if (got.kind === "mine") {
      if (!sup && link.registered) discovery.handleRegistered(now);
      return sn.relaysCheck();
    }
    this.#serverMsg(now, got.msg, sup);
  }

  /** Acts on a server message that passed the checks (see {@link serverStep}). */
  #serverMsg(now: number, m: ServerMsg, sup?: SupernodeLink): void {
    const { id, ipv6, link, members, supernodes: sn } = this.#p;
    const local = { public: link.public, privates: this.#privates };
    const step = serverStep(m, { id, ipv6, serverHealthy: link.healthy, local }, sup);
    switch (step.kind) {
      case "drop":
        return this.#drain.drop(step.reason);
      case "intro":
        // Only peers a supernode introduced can be relayed to through it.
        if (sup) sup.introduce(step.key);
        else sn.handleServerWord(now, step.key, step.supernodeAt);
        members.intro(now, step.intro, sup !== undefined, bootHex(link.bootId));
        return this.#drain.members();
      case "left":
        sup?.introduced.delete(step.key);
        members.left(now, step.key, step.reason, sup !== undefined, step.inCharge);
        this.#drain.members();
        if (!sup) sn.handleServerWord(now, step.key, null);
        return;
      case "roster":
        members.roster(now, step.ids, step.inCharge, link.registered, bootHex(link.bootId));
        return this.#drain.members();
      case "relayed":
        return this.#relayed(now, step.from, step.payload);
      case "check": {
        const r = this.#helper.handle(now, step.msg, this.#p.supernodes.host !== undefined);
        if (r.ok) this.#drain.out.push(r.transmit);
        else this.#drain.drop(r.reason);
        return;
      }
    }
  }

  /** A peer frame the server relayed: a HANDSHAKE or a SEALED frame. */
  #relayed(now: number, from: Uint8Array, payload: Uint8Array): void {
    const r = relayedOf(from, payload);
    if (r.kind === "drop") return this.#drain.drop(r.reason);
    if (r.kind === "sealed") return this.#sealed(now, r.frame, null);
    this.#handshake(now, r.frame, null);
  }

  /** Routes a HANDSHAKE frame, relayed (`from` null) or direct, to the remote it comes from. */
  #handshake(now: number, f: HandshakeFrame, from: Endpoint | null): void {
    if (compareBytes(f.to, this.#p.id) !== 0) return this.#drain.drop("not-for-us");
    const r = this.#p.peers.get(idHex(f.from));
    if (!r || !r.present) {
      this.#drain.drop("unknown-peer");
      // A relayed handshake from someone we were never introduced to: our INTRO may have been
      // lost (a direct one may come from anyone, so it asks nothing of the server).
      if (!from) this.#resync(now);
      return;
    }
    r.handleHandshake(now, f, from);
    this.#drain.remote(r);
  }

  /** Routes a sealed frame to the remote it comes from (`from` null: relayed), on socket `via`. */
  #sealed(now: number, s: SealedFrame, from: Endpoint | null, via = 0): void {
    if (compareBytes(s.to, this.#p.id) !== 0) return this.#drain.drop("not-for-us");
    const r = this.#p.peers.sealedFrom(s.from);
    // Our view of the room may be stale (a lost INTRO): ask the server to resync.
    if (!r || !r.present) this.#resync(now);
    if (!r) return this.#drain.drop("unknown-peer");
    r.handleSealed(now, s, from, via);
    this.#drain.remote(r);
  }

  /**
   * A REACH: the server found us reachable (see `Supernodes.handleReach`); the STUN probe may
   * ask the server's other address now, and we serve our room as its supernode.
   */
  #reach(now: number, data: Uint8Array): void {
    const { supernodes: sn, discovery } = this.#p;
    if (!sn.handleReach(data)) return;
    discovery.releaseOther(now);
    this.#drain.discovery(now);
    sn.serve(now);
  }

  /** Asks the server to resync our view of the room (see `ServerLink.resync`). */
  #resync(now: number): void {
    this.#p.link.resync(now);
    this.#drain.link();
  }
}

/** A server run's boot id as hex, if known. */
function bootHex(boot: Uint8Array | null): string | undefined {
  return boot ? toHex(boot) : undefined;
}
