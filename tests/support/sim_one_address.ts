/**
 * A plain `p2p serve` in the simulator: one address, two ports. The registry and STUN share
 * the main port (STUN told apart by its first bits, as `lib/roles/serve.ts`'s `PrimaryMachine`
 * does); the second port (PORT+1) answers STUN, names itself to clients in ALT-PORT, and sends
 * the reachability probes (only to peers without a NAT, `reachNoNatOnly`).
 *
 * @module
 */
import { looksLikeStun, StunResponder } from "../../lib/nat/stun.ts";
import { Registry, type RegistryOptions } from "../../lib/server/registry.ts";
import type { SansIo } from "../../lib/io/udp.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import { SERVER, type SimNet } from "./sim.ts";

/** The server's second port. */
export const SERVER_PORT2: Endpoint = { hostname: SERVER.hostname, port: SERVER.port + 1 };

/** One of the server's two sockets (role 0: main, 1: second port). */
class Socket implements SansIo {
  readonly out: Transmit[] = [];
  constructor(readonly server: OneAddressServer, readonly role: 0 | 1) {}
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.server.handle(this.role, now, from, data);
  }
  handleTimeout(now: number): void {
    if (this.role === 0) this.server.registry.handleTimeout(now);
  }
  pollTransmit(): Transmit | undefined {
    if (this.role === 0) this.server.pump();
    return this.out.shift();
  }
  nextTimeout(): number | undefined {
    return this.role === 0 ? this.server.registry.nextTimeout() : undefined;
  }
}

/** The registry and the STUN responder on the two sockets. */
export class OneAddressServer {
  readonly registry: Registry;
  readonly stun: StunResponder;
  readonly sockets: [Socket, Socket];

  /** A server whose second port is `withPort2` (false: `--no-alt-port`). */
  constructor(net: SimNet, withPort2: boolean, options: Partial<RegistryOptions> = {}) {
    const reach = withPort2 ? { reachVia: 1, reachNoNatOnly: true } : {};
    this.registry = new Registry({ ...reach, ...options }, (n) => net.bytes(n), net.bytes(32));
    this.stun = new StunResponder({ sockets: withPort2 ? [SERVER, SERVER_PORT2] : [SERVER] });
    this.sockets = [new Socket(this, 0), new Socket(this, 1)];
    net.attach("server", SERVER, this.sockets[0]);
    if (withPort2) net.attach("server port 2", SERVER_PORT2, this.sockets[1]);
  }

  /** A datagram on socket `role`: STUN to the responder, p2p (main port only) to the registry. */
  handle(role: 0 | 1, now: number, from: Endpoint, data: Uint8Array): void {
    if (looksLikeStun(data)) {
      const r = this.stun.handle(now, role, from, data);
      if (r) this.sockets[r.via as 0 | 1].out.push({ to: r.to, data: r.data });
    } else if (role === 0) {
      this.registry.handleDatagram(now, from, data);
    }
  }

  /** Moves the registry's datagrams to the socket each leaves from. */
  pump(): void {
    for (let t = this.registry.pollTransmit(); t; t = this.registry.pollTransmit()) {
      this.sockets[t.via === 1 ? 1 : 0].out.push({ to: t.to, data: t.data });
    }
  }
}
