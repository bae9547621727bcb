/**
 * Debian's `miniupnpd-nftables` 2.3.1 as a lab router's port-mapping daemon (NAT-PMP, PCP and
 * UPnP IGD on its LAN side): the router's ruleset is replaced by a symmetric NAT with the chains
 * miniupnpd fills (it never creates them), and the daemon runs in the foreground in the router's
 * namespace (the lab kills it with the namespace).
 *
 * Pitfalls (see /work/shared/natlab-recipes.md): miniupnpd refuses every mapping when its WAN
 * address is in a reserved range, documentation ranges included, so build the lab with another
 * `publicPrefix` (the tests use 100.200.0); `enable_natpmp=yes` turns on NAT-PMP and PCP.
 *
 * @module
 */

import type { NatLab, Router } from "./natlab.ts";
import { P2pProcess } from "./proc.ts";

/** The router's ruleset: symmetric NAT for the LAN plus miniupnpd's (empty) chains. */
export function miniupnpdRuleset(lan: string): string {
  return `flush ruleset
table inet filter {
  chain input {
    type filter hook input priority filter; policy accept;
    ct state established,related accept
    jump miniupnpd
    iifname "wan0" ct state new drop
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    ct state established,related accept
    jump miniupnpd
    iifname "wan0" ct state new drop
  }
  chain miniupnpd { }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
    oifname "wan0" ip saddr ${lan}.0/24 masquerade random
  }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`;
}

export function miniupnpdConfig(lan: string): string {
  return [
    "ext_ifname=wan0",
    "listening_ip=lan0",
    "http_port=5000",
    "enable_natpmp=yes", // NAT-PMP and PCP on port 5351 in 2.3.1
    "enable_upnp=yes",
    "ipv6_disable=yes",
    "secure_mode=yes",
    "system_uptime=no",
    "min_lifetime=120",
    "max_lifetime=86400",
    "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b",
    `allow 1024-65535 ${lan}.0/24 1024-65535`,
    "deny 0-65535 0.0.0.0/0 0-65535",
    "",
  ].join("\n");
}

export async function startMiniupnpd(
  lab: NatLab,
  router: Router,
  dir: string,
): Promise<P2pProcess> {
  if (router.ns === null || router.lanPrefix === null) throw new Error("miniupnpd needs a router");
  await Deno.writeTextFile(`${dir}/rules.nft`, miniupnpdRuleset(router.lanPrefix));
  await Deno.writeTextFile(`${dir}/miniupnpd.conf`, miniupnpdConfig(router.lanPrefix));
  await lab.execCheck(router.ns!, "nft", "-f", `${dir}/rules.nft`);
  const d = new P2pProcess(
    ["miniupnpd", "-d", "-f", `${dir}/miniupnpd.conf`, "-P", `${dir}/miniupnpd.pid`],
    { netns: router.ns!, label: "miniupnpd" },
  );
  const deadline = Date.now() + 10_000;
  while (!/Listening for NAT-PMP\/PCP/.test(d.stderr)) {
    if (Date.now() > deadline || d.exitCode !== null) {
      throw new Error(`miniupnpd did not start:\n${d.describe()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return d;
}

/** The mappings miniupnpd has in the router's DNAT chain. */
export async function dnatRules(lab: NatLab, router: Router): Promise<string[]> {
  const out = await lab.execCheck(
    router.ns!,
    "nft",
    "list",
    "chain",
    "inet",
    "filter",
    "prerouting_miniupnpd",
  );
  return out.split("\n").filter((l) => /dnat/.test(l)).map((l) => l.trim());
}
