/**
 * Finding the default gateway (for NAT-PMP and PCP, and to know which SSDP answers to trust)
 * and our own address toward it. Reads `/proc/net/route` (Linux) and the interface list; on
 * any failure, or another OS, returns null and the mapper uses UPnP's SSDP search only.
 *
 * @module
 */

/** The default IPv4 route: its interface and gateway address. */
export interface DefaultRoute {
  iface: string;
  gateway: string;
}

/**
 * The default route in the text of `/proc/net/route` (destination and mask 0, the gateway
 * flag set; addresses are little-endian hex), or null.
 */
export function parseDefaultRoute(text: string): DefaultRoute | null {
  for (const line of text.split("\n").slice(1, 1025)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dest, gw, flags, , , , mask] = f as [string, string, string, string, ...string[]];
    if (dest !== "00000000" || mask !== "00000000") continue;
    if (!/^[0-9A-Fa-f]{8}$/.test(gw) || !/^[0-9A-Fa-f]{1,4}$/.test(flags)) continue;
    if ((parseInt(flags, 16) & 0x3) !== 0x3) continue; // RTF_UP | RTF_GATEWAY
    const n = parseInt(gw, 16);
    const ip = [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join(".");
    if (ip === "0.0.0.0") continue;
    return { iface, gateway: ip };
  }
  return null;
}

/** Where to ask for a port mapping: the gateway and our address on its interface. */
export interface GatewayInfo {
  /** The default gateway, or null when it could not be found. */
  gateway: string | null;
  /** Our IPv4 address toward it (or the bound address). */
  localAddress: string;
  /** The prefix length of that address's subnet. */
  prefixLength: number;
}

/**
 * Finds the default gateway and our address toward it (`bind`: the address the socket is
 * bound to, when not 0.0.0.0). Null when no usable local IPv4 address is known.
 */
export function findGateway(bind = "0.0.0.0"): GatewayInfo | null {
  let route: DefaultRoute | null = null;
  try {
    if (Deno.build.os === "linux") {
      route = parseDefaultRoute(Deno.readTextFileSync("/proc/net/route"));
    }
  } catch {
    route = null;
  }
  let ifaces: Deno.NetworkInterfaceInfo[] = [];
  try {
    ifaces = Deno.networkInterfaces().filter((i) =>
      i.family === "IPv4" && !i.address.startsWith("127.") && !i.address.startsWith("169.254.")
    );
  } catch {
    ifaces = [];
  }
  const pick = bind !== "0.0.0.0"
    ? ifaces.find((i) => i.address === bind)
    : ifaces.find((i) => route !== null && i.name === route.iface) ?? ifaces[0];
  if (!pick) return null;
  const prefix = Number(pick.cidr.split("/")[1]);
  return {
    gateway: route && pick.name === route.iface ? route.gateway : null,
    localAddress: pick.address,
    prefixLength: Number.isInteger(prefix) && prefix >= 8 && prefix <= 32 ? prefix : 24,
  };
}
