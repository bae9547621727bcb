/**
 * What every path of a peer's server link (`lib/peer/server_link.ts`) shares: its lifecycle state
 * ({@link ServerLinkState}), its parts (HELLO credentials, registration facts, name, servers, PING
 * schedule, transport moves), its outputs (datagrams for the server in use, events), and the steps
 * its timers and the server's messages alike take: send a HELLO or a PING, register again, move
 * on to the next server, note that the server answers. {@link LinkCore} holds them; the link
 * decides when. Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import { MsgType } from "../wire/header.ts";
import { encodeServerMsg, type ServerMsg } from "../wire/server_msg.ts";
import type { Transmit } from "../wire/transmit.ts";
import { HelloCredentials } from "./server_link_hello.ts";
import { PingSchedule } from "./server_link_keepalive.ts";
import { TransportMoves } from "./server_link_moves.ts";
import { RegisteredName, ServerList } from "./server_link_parts.ts";
import { Registration } from "./server_link_registration.ts";
import type { ServerLinkEvent, ServerLinkOptions, ServerLinkState } from "./server_link_types.ts";

/** The link's state while registered. */
export type Registered = Extract<ServerLinkState, { kind: "registered" }>;

/**
 * The state, parts and outputs of one server link, and the steps its paths share.
 *
 * Call order: the link drains {@link out} and {@link events} after each of its calls; the steps
 * ({@link sendHello}, {@link sendPing}, {@link tryUdp}, {@link registerAgain}, {@link next},
 * {@link alive}) may be taken in any state (each does nothing where it does not apply).
 */
export class LinkCore {
  /** The link's options. */
  readonly o: ServerLinkOptions;
  /** The roster digest of the peers this side knows, sent in every PING. */
  readonly digest: () => number;
  /** Datagrams for the server, oldest first. */
  readonly out: Transmit[] = [];
  /** Events for the user, oldest first. */
  readonly events: ServerLinkEvent[] = [];
  /** Where the link is in its lifecycle. */
  state: ServerLinkState = { kind: "closed" };
  /**
   * When the first registration last heard from the server (it started then): its deadline
   * counts only time with no answer at all, so a busy server that answers slowly is waited for.
   */
  heardAt = 0;
  /** The cookie, puzzle and nonce of our requests, and our HELLOs. */
  readonly hello: HelloCredentials;
  /** The token, sequence numbers, public endpoint and count of our registrations. */
  readonly reg = new Registration();
  /** The name we register under. */
  readonly name: RegisteredName;
  /** The server first, then the fallbacks; the one in use; their boot ids. */
  readonly servers: ServerList;
  /** When to PING, how long a PONG may be missing, the round-trip times. */
  readonly pings: PingSchedule;
  /** The moves between the transports of the server in use. */
  readonly moves = new TransportMoves();

  /** The parts of a link with `options`; `digest` as {@link digest}. */
  constructor(options: ServerLinkOptions, digest: () => number) {
    this.o = options;
    this.digest = digest;
    this.name = new RegisteredName(options.name);
    this.hello = new HelloCredentials(options);
    this.servers = new ServerList(options.server, options.fallbacks ?? [], options.serverGroups);
    this.pings = new PingSchedule(options.keepalive);
  }

  /** The server in use. */
  get server(): Endpoint {
    return this.servers.current;
  }

  /** True while the server has us registered. */
  get registered(): boolean {
    return this.state.kind === "registered";
  }

  /** Queues `m` for the server in use. */
  send(m: ServerMsg): void {
    this.out.push({ to: this.server, data: encodeServerMsg(m) });
  }

  /** Registering: a HELLO, the next one after a backoff (250 ms doubling to 2 s). */
  sendHello(now: number): void {
    const s = this.state;
    if (s.kind !== "registering") return;
    this.send(this.hello.hello(this.name.current));
    s.tries++;
    s.nextHello = now + Math.min(250 * 2 ** (s.tries - 1), 2_000);
  }

  /** A PING with our token, cookie and roster digest. */
  sendPing(now: number): void {
    this.pings.rtt.pinged(now);
    this.send({
      type: MsgType.Ping,
      id: this.o.id,
      token: this.reg.token,
      cookie: this.hello.cookie,
      digest: this.digest(),
    });
  }

  /** Registered over a stream: a PING to the same server over UDP (see {@link TransportMoves}). */
  tryUdp(): void {
    const ping = { id: this.o.id, token: this.reg.token, digest: this.digest() };
    const t = this.moves.udpPing(this.servers, this.registered, ping);
    if (t) this.out.push(t);
  }

  /** Registers again with the same id: the server forgot us, or the next server is tried. */
  registerAgain(now: number, lost: boolean): void {
    this.state = { kind: "registering", tries: 0, since: now, nextHello: now, again: true, lost };
    this.sendHello(now);
  }

  /**
   * Moves on to the next server (a fallback) or to entry `to`, with a fresh nonce, and without
   * the cookie unless both are servers of one cluster (which may share cookies: then the HELLO
   * needs no COOKIE round trip; if not, it gets a COOKIE as it would without one).
   */
  next(now: number, to?: number): void {
    const from = this.servers.index;
    const sibling = this.servers.next(now, to);
    this.moves.stop();
    this.pings.rtt.reset();
    this.hello.forget(this.servers.clustered(from, this.servers.index));
    // The same server over another transport: the same attempt, so that a slow stream's late
    // WELCOME still counts (see ServerLink.handle).
    if (!sibling) this.hello.newNonce();
  }

  /** Registered, the server answered at `now`: the next PING, and "back" if it was lost. */
  alive(now: number): void {
    const s = this.state;
    if (s.kind !== "registered") return;
    if (s.awaitingSince !== undefined) s.nextPing = this.pings.answered(now);
    s.awaitingSince = undefined;
    this.moves.answered();
    if (s.lost) {
      s.lost = false;
      this.events.push({ type: "server-back", public: this.reg.public!, restarted: false });
    }
  }
}
