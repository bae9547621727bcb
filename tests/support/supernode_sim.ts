/**
 * Simulator helpers for supernode tests: a server with a second address (as `p2p serve
 * --alt-host` has) from which reachability probes leave, and a room of peers behind chosen NATs.
 *
 * @module
 */
import { Registry, type RegistryOptions } from "../../lib/server/registry.ts";
import type { SansIo } from "../../lib/io/udp.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import type { ClientOptions } from "../../lib/peer/client.ts";
import { addPeer, SERVER, type SimNet, type SimPeer } from "./sim.ts";
import { type NatType, SimNat } from "./sim_nat.ts";

/** The server's second address (a different IP than {@link SERVER}). */
export const SERVER_ALT: Endpoint = { hostname: "198.51.100.2", port: 7777 };
/** The second port of the server's one address (a plain `p2p serve`: PORT+1). */
export const SERVER_ALT_PORT: Endpoint = { hostname: SERVER.hostname, port: SERVER.port + 1 };

/** The alternate socket: sends what the registry marks `via` 2, receives nothing. */
class AltSocket implements SansIo {
  readonly out: Transmit[] = [];
  handleDatagram(): void {}
  handleTimeout(): void {}
  pollTransmit(): Transmit | undefined {
    return this.out.shift();
  }
  nextTimeout(): number | undefined {
    return undefined;
  }
}

/** The registry on {@link SERVER}, its REACH probes leaving from {@link SERVER_ALT}. */
class ServerWithAlt implements SansIo {
  constructor(readonly registry: Registry, readonly alt: AltSocket) {}
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.registry.handleDatagram(now, from, data);
  }
  handleTimeout(now: number): void {
    this.registry.handleTimeout(now);
  }
  pollTransmit(): Transmit | undefined {
    for (let t = this.registry.pollTransmit(); t; t = this.registry.pollTransmit()) {
      if (!t.via) return t;
      this.alt.out.push({ to: t.to, data: t.data });
    }
    return undefined;
  }
  nextTimeout(): number | undefined {
    return this.registry.nextTimeout();
  }
}

/**
 * Adds a server that checks reachability (`alt` true: from a second address; `"port"`: from
 * the second port of its one address, as a plain `p2p serve` does; false: it cannot, as
 * `p2p serve --no-alt-port`). Returns the registry and the machine attached (for
 * {@link SimNet.detach}).
 */
export function addCheckingServer(
  net: SimNet,
  alt: boolean | "port" = true,
  options: Partial<RegistryOptions> = {},
): { registry: Registry; machine: SansIo } {
  const secret = net.bytes(32);
  const reach = alt === "port"
    ? { reachVia: 1, reachNoNatOnly: true }
    : { reachVia: alt ? 2 : undefined };
  const registry = new Registry({ ...reach, ...options }, (n) => net.bytes(n), secret);
  const altSocket = new AltSocket();
  const machine = new ServerWithAlt(registry, altSocket);
  net.attach("server", SERVER, machine);
  net.attach("server-alt", alt === "port" ? SERVER_ALT_PORT : SERVER_ALT, altSocket);
  return { registry, machine };
}

let natIp = 1;

/** Where each peer made by {@link addRoomPeer} sits (its public address when public). */
export const addressOf: WeakMap<SimPeer, Endpoint> = new WeakMap();

/**
 * Adds a peer `name` on the public Internet (`public`) or behind its own NAT of `nat`, with
 * its own LAN address.
 */
export function addRoomPeer(
  net: SimNet,
  name: string,
  nat: NatType | "public",
  opts: Partial<ClientOptions> = {},
): SimPeer {
  const n = natIp++;
  const local = { hostname: nat === "public" ? `192.0.2.${n}` : `10.${n}.0.2`, port: 5000 };
  const router = nat === "public" ? undefined : new SimNat(`203.0.113.${n}`, nat, undefined, n);
  const peer = addPeer(net, name, local, router, opts);
  addressOf.set(peer, local);
  return peer;
}
