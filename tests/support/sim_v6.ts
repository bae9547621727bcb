/**
 * IPv6 for the network simulator (`sim.ts`), without changing it: a stateful IPv6 firewall
 * (no address translation; a datagram from outside gets in only from an endpoint the host sent
 * to from that port, within the idle timeout, like `ct state established,related accept` and
 * nothing else), and dual-stack hosts: one client reachable on a LAN IPv4 address (behind an
 * IPv4 NAT) and on a global IPv6 address (behind a firewall).
 *
 * The simulator attaches a machine at one address; a dual-stack client is attached twice, once
 * per family, through a splitter that hands each attachment the client's datagrams for its
 * family (the IPv4 one also runs the timers).
 *
 * @module
 */
import type { ClientOptions } from "../../lib/peer/client.ts";
import type { SansIo } from "../../lib/io/udp.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import { addPeer, type SimNet, type SimPeer } from "./sim.ts";
import { NAT_TIMEOUT, type NatBehaviour, SimNat } from "./sim_nat.ts";

/** A stateful firewall as NAT behaviours (see {@link SimFirewall}). */
const FIREWALL: NatBehaviour = {
  mapping: "endpoint-independent",
  filtering: "address-and-port-dependent",
  ports: "preserve",
};

/**
 * A stateful IPv6 firewall in front of one host (`ip`): outbound datagrams pass unchanged and
 * open the way back for replies from their destination to their source port; nothing else
 * gets in. Entries expire after `timeout` ms without traffic.
 *
 * It is the simulator's NAT with the host's own address as its public one, an
 * endpoint-independent mapping that keeps the host's port (each local port has its own
 * mapping, so the port is always free) and address-and-port-dependent filtering: a datagram
 * leaves untranslated and only replies to a flow the host opened come in.
 */
export class SimFirewall extends SimNat {
  /** Unsolicited datagrams it dropped. */
  dropped = 0;

  /** A firewall for the host at `ip`. */
  constructor(ip: string, timeout: number = NAT_TIMEOUT) {
    super(ip, FIREWALL, timeout);
  }

  /** Lets a datagram in only on a flow the host opened (counting the others). */
  override inbound(now: number, src: Endpoint, port: number): Endpoint | undefined {
    const local = super.inbound(now, src, port);
    if (!local) this.dropped++;
    return local;
  }
}

function isV6(ep: Endpoint): boolean {
  return ep.hostname.includes(":");
}

/** Hands a machine's IPv4 and IPv6 datagrams to two attachments. */
class FamilySplit {
  #q4: Transmit[] = [];
  #q6: Transmit[] = [];
  readonly v4: SansIo;
  readonly v6: SansIo;

  constructor(m: SansIo) {
    const pull = () => {
      for (let t = m.pollTransmit(); t; t = m.pollTransmit()) {
        (isV6(t.to) ? this.#q6 : this.#q4).push(t);
      }
    };
    this.v4 = {
      handleDatagram: (now, from, data) => m.handleDatagram(now, from, data),
      handleTimeout: (now) => m.handleTimeout(now),
      pollTransmit: () => (pull(), this.#q4.shift()),
      nextTimeout: () => m.nextTimeout(),
    };
    this.v6 = {
      handleDatagram: (now, from, data) => m.handleDatagram(now, from, data),
      handleTimeout: () => {},
      pollTransmit: () => (pull(), this.#q6.shift()),
      nextTimeout: () => undefined,
    };
  }
}

/** A dual-stack simulated peer and its IPv6 firewall. */
export interface DualPeer extends SimPeer {
  /** The firewall in front of its IPv6 address. */
  firewall: SimFirewall;
}

/**
 * Adds a client on `lan4` (behind `nat`, if given) that also has the global IPv6 endpoint `v6`
 * behind a stateful firewall; both are in its HELLO's private list (IPv4 first).
 */
export function addDualPeer(
  net: SimNet,
  name: string,
  lan4: Endpoint,
  nat: SimNat | undefined,
  v6: Endpoint,
  opts: Partial<ClientOptions> = {},
): DualPeer {
  const peer = addPeer(net, name, lan4, nat, { privateEndpoints: [lan4, v6], ...opts });
  const split = new FamilySplit(peer.client);
  net.replace(peer.client, split.v4);
  const firewall = new SimFirewall(v6.hostname);
  net.attach(`${name}/v6`, v6, split.v6, firewall);
  return Object.assign(peer, { firewall });
}
