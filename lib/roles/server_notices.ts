/**
 * What a `p2p join` peer says about how it reaches its server: a failover to the next server
 * (or a supernode), a move between UDP and TCP or TLS (with the peers the server relays for us
 * shown again), the server being tried while registering, and `transport: "tcp"` on relayed
 * peers' events and `/peers` rows while the server is reached over a stream.
 *
 * @module
 */
import type { Client, ClientEvent } from "../peer/client.ts";
import type { PeerInfo } from "../peer/remote_context.ts";
import { type Endpoint, formatEndpoint } from "../wire/address.ts";
import type { ServerTransports } from "./transports.ts";
import type { PeerView } from "./view.ts";

/** A peer's announcements about its server, made after each driver step. */
export class ServerNotices {
  #client: Client;
  #view: PeerView;
  #transports: ServerTransports | undefined;
  #print: (lines: readonly string[]) => void;
  /** The server last seen in use, as shown, to announce a failover. */
  #shown: string | null = null;
  /** The server in use last seen, to announce a move between UDP and TCP. */
  #inUse: Endpoint | undefined;

  /** Notices about `client`'s server, shown through `view` and `print`. */
  constructor(
    client: Client,
    view: PeerView,
    transports: ServerTransports | undefined,
    print: (lines: readonly string[]) => void,
  ) {
    this.#client = client;
    this.#view = view;
    this.#transports = transports;
    this.#print = print;
  }

  /**
   * After a driver step (before its events are shown): a failover to another `--server` (or a
   * supernode) is announced, not silent; once `ready`, so is a move between UDP and TCP.
   */
  afterStep(ready: boolean): void {
    const inUse = this.#client.serverInUse;
    const using = this.serverText(inUse, false);
    if (this.#shown !== null && using !== this.#shown) {
      this.#print(this.#view.notice(`Trying the next server: ${using}`, "failover"));
    } else if (
      ready && this.#inUse && (this.#inUse.stream === undefined) !== (inUse.stream === undefined)
    ) {
      this.#transportChanged(inUse);
    }
    this.#shown = using;
    this.#inUse = inUse;
  }

  /** Registered: over TCP or TLS, that is said (and again whenever it changes). */
  registered(): void {
    if (this.#inUse?.stream !== undefined) this.#print(this.#transportNotice(this.#inUse));
  }

  /** The `waiting` notice: which server is being tried. */
  stillTrying(): void {
    const at = this.serverText(this.#client.serverInUse, false);
    this.#print(this.#view.notice(`Still trying ${at}…`, "waiting"));
  }

  /**
   * Server `ep` as the user named it (the group's first entry with `transport` false: failover
   * is between servers; a move between UDP and TCP is announced apart).
   */
  serverText(ep: Endpoint, transport: boolean): string {
    const t = this.#transports;
    if (!t) return formatEndpoint(ep);
    if (transport) return t.describe(ep);
    const g = t.groupOf(ep);
    const first = g < 0 ? ep : t.servers[t.groups.indexOf(g)]!;
    return formatEndpoint({ hostname: first.hostname, port: first.port });
  }

  /** A relayed peer event says when our server relays over TCP (`transport: "tcp"`). */
  withTransport(e: Extract<ClientEvent, { type: "peer" }>): ClientEvent {
    return this.#overStream(e) ? { ...e, transport: "tcp" } : e;
  }

  /** A `/peers` row says when our server relays to that peer over TCP. */
  row(p: PeerInfo): PeerInfo {
    return this.#overStream(p) ? { ...p, transport: "tcp" } : p;
  }

  /** Whether our server relays to `p` over a stream. */
  #overStream(p: { path: string; relayedBy?: string | null | undefined }): boolean {
    return p.path === "relay" && (p.relayedBy ?? null) === null &&
      this.#client.serverInUse.stream !== undefined;
  }

  /** The `transport` notice: how the server in use, `ep`, is reached. */
  #transportNotice(ep: Endpoint): string[] {
    const how = ep.stream === undefined
      ? "UDP gets through: the server is reached over UDP"
      : `The server is reached over ${
        this.serverText(ep, true)
      } (UDP is tried again in the background)`;
    return this.#view.notice(how, "transport");
  }

  /** Our server moved between UDP and TCP: said once, with the peers it relays for us. */
  #transportChanged(ep: Endpoint): void {
    this.#print(this.#transportNotice(ep));
    for (const p of this.#client.peers()) {
      if (p.path !== "relay" || (p.relayedBy ?? null) !== null) continue;
      const { outstanding: _, ...shown } = p;
      if (shown.path === "pending") continue;
      this.#print(
        this.#view.event(this.withTransport({ ...shown, type: "peer", path: shown.path })),
      );
    }
  }
}
