/**
 * A peer's server link moving between the transports of one server (`lib/peer/server_link.ts`
 * drives it): registered over TCP or TLS, PINGs to the same server over UDP in the background
 * (with the cookie the server gives our UDP endpoint) until a PONG comes back there, which means
 * the server moved our registration; registered over UDP and the server lost, its other transport
 * is tried once with the same registration before any other server. {@link TransportMoves}
 * decides; the link acts. Pure.
 *
 * @module
 */
import { constantTimeEqual } from "../crypto/constant_time.ts";
import { MsgType } from "../wire/header.ts";
import { encodeServerMsg, type ServerMsg } from "../wire/server_msg.ts";
import { type Transmit } from "../wire/transmit.ts";
import { type ServerList, UdpReturn } from "./server_link_parts.ts";

/**
 * What a message from the server in use over another transport asks of a registered link:
 * nothing (`ignore`), a PING over UDP with the new cookie now (`ping-udp`), using that transport
 * from now on (`moved`: the server has our registration there), or handling it as the server's
 * own (`as-usual`).
 */
export type SiblingAnswer = "ignore" | "ping-udp" | "moved" | "as-usual";

/** What a PING carries besides its cookie. */
export interface PingFields {
  /** Our peer id. */
  id: Uint8Array;
  /** The registration's token. */
  token: Uint8Array;
  /** The roster digest of the peers we know. */
  digest: number;
}

/**
 * One server link's moves between the transports of the server in use.
 *
 * Call order: {@link start} on registering (and after a move in a loss), {@link answered} on
 * every sign of life, {@link stop} when the link leaves the server in use; when {@link at} is
 * due, {@link due} then {@link udpPing}; {@link answer} for every message from the server in use
 * over another transport; {@link lossMove} once the server counts as lost.
 */
export class TransportMoves {
  /** Registered over a stream: the background attempts over UDP (see {@link UdpReturn}). */
  #udp = new UdpReturn();
  /** The current loss was already met by moving to the same server's other transport. */
  #movedInLoss = false;

  /** When the next background PING over UDP is due, if one is planned. */
  get at(): number | undefined {
    return this.#udp.at;
  }

  /** The cookie the server gave our UDP endpoint (zeros until it did). */
  get cookie(): Uint8Array {
    return this.#udp.cookie;
  }

  /** True when the current loss was already met by moving to the other transport. */
  get movedInLoss(): boolean {
    return this.#movedInLoss;
  }

  /** Registered (again) at `now`: background PINGs over UDP when in use is a stream. */
  start(now: number, servers: ServerList): void {
    if (servers.udpSibling() >= 0) this.#udp.start(now);
  }

  /** The server answered: the loss, if any, is over. */
  answered(): void {
    this.#movedInLoss = false;
  }

  /** The link leaves the server in use (or UDP works): no more background PINGs. */
  stop(): void {
    this.#udp.stop();
  }

  /** True when a background PING over UDP is due at `now` (the next one is planned then). */
  due(now: number): boolean {
    return this.#udp.due(now);
  }

  /**
   * The background PING over UDP to the server in use, or undefined (and no more attempts) when
   * the link is not `registered` or the server has no UDP endpoint.
   */
  udpPing(servers: ServerList, registered: boolean, ping: PingFields): Transmit | undefined {
    const j = servers.udpSibling();
    if (j < 0 || !registered) {
      this.#udp.stop();
      return undefined;
    }
    const cookie = this.#udp.cookie;
    return { to: servers.all[j]!, data: encodeServerMsg({ type: MsgType.Ping, ...ping, cookie }) };
  }

  /**
   * A message `m` from entry `j` of `servers` (not the endpoint in use) while registered with
   * `token`: its COOKIE is for that endpoint, and a PONG there means the server moved our
   * registration there (then entry `j` is in use from now on). See {@link SiblingAnswer}.
   */
  answer(
    now: number,
    m: ServerMsg,
    j: number,
    servers: ServerList,
    token: Uint8Array,
  ): SiblingAnswer {
    if (m.type === MsgType.Cookie) {
      if (j < 0 || !constantTimeEqual(m.echo, token)) return "ignore";
      return this.#udp.cookied(now, m.cookie) ? "ping-udp" : "ignore";
    }
    if (m.type === MsgType.Pong && servers.sibling(j) && constantTimeEqual(m.token, token)) {
      servers.use(j);
      this.#udp.stop();
      return "moved";
    }
    return "as-usual";
  }

  /**
   * The server in use counts as lost: the entry of its other transport to try first with the
   * same registration, or -1 (none, or already tried in this loss).
   */
  lossMove(servers: ServerList): number {
    const other = this.#movedInLoss ? -1 : servers.otherTransport();
    this.#movedInLoss = other >= 0;
    return other;
  }
}
