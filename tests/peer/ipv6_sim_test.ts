/**
 * IPv6 paths in the simulator (virtual time; see `support/sim_v6.ts`): dual-stack peers behind
 * IPv4 symmetric NATs and stateful IPv6 firewalls go direct over IPv6; IPv6 beats a punched
 * IPv4 public path; a LAN IPv4 path beats IPv6; a peer without IPv6 never sends to IPv6 and
 * still talks to dual-stack peers.
 */
import assert from "node:assert/strict";
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";
import { addPeer, addServer, SimNat, SimNet, type SimPeer } from "../support/sim.ts";
import { addDualPeer, SimFirewall } from "../support/sim_v6.ts";

const A_LAN = { hostname: "10.1.0.2", port: 5000 };
const B_LAN = { hostname: "10.2.0.2", port: 5000 };
const A_V6 = { hostname: "2001:db8:a::2", port: 6000 };
const B_V6 = { hostname: "2001:db8:b::2", port: 6000 };

function bothDirect(a: SimPeer, b: SimPeer): boolean {
  return a.lastPath("bob")?.path === "direct" && b.lastPath("alice")?.path === "direct";
}

/** Sends `n` numbered lines from `from`, spread over virtual time. */
function chat(net: SimNet, from: SimPeer, tag: string, n: number): string[] {
  const sent: string[] = [];
  for (let i = 1; i <= n; i++) {
    from.client.send(net.now, `${tag} ${i}`);
    sent.push(`${from.client.name}: ${tag} ${i}`);
    net.run(50);
  }
  return sent;
}

function addr(p: SimPeer, name: string): string | undefined {
  const a = p.lastPath(name)?.addr;
  return a ? formatEndpoint(a) : undefined;
}

Deno.test("sim v6 firewall: drops what comes in unasked; lets in replies to what went out", () => {
  const fw = new SimFirewall("2001:db8:a::2", 1_000);
  const far: Endpoint = { hostname: "2001:db8:b::2", port: 6000 };
  assert.equal(fw.inbound(0, far, 6000), undefined);
  assert.deepEqual(fw.outbound(0, A_V6, far), A_V6, "no translation");
  assert.deepEqual(fw.inbound(10, far, 6000), A_V6);
  assert.equal(fw.inbound(10, { ...far, port: 6001 }, 6000), undefined, "another port");
  assert.equal(fw.inbound(10, far, 6001), undefined, "to another local port");
  assert.equal(fw.inbound(2_000, far, 6000), undefined, "expired");
  assert.equal(fw.dropped, 4);
});

Deno.test("sim v6: dual-stack peers behind symmetric NATs and IPv6 firewalls go direct over IPv6", () => {
  const net = new SimNet(61);
  addServer(net);
  const a = addDualPeer(net, "alice", A_LAN, new SimNat("203.0.113.1", "symmetric"), A_V6);
  const b = addDualPeer(net, "bob", B_LAN, new SimNat("203.0.113.2", "symmetric"), B_V6);
  const took = net.runUntilTrue(() => bothDirect(a, b), 10_000);
  assert.ok(took < 1_000, `direct after ${took} ms`);
  assert.equal(addr(a, "bob"), "[2001:db8:b::2]:6000");
  assert.equal(addr(b, "alice"), "[2001:db8:a::2]:6000");
  // Both sides open their firewalls at once (handshake copies go out at the introduction);
  // the firewalls still drop what nobody asked for:
  const stranger = { hostname: "2001:db8:c::9", port: 7000 };
  const before = a.firewall.dropped;
  net.inject(stranger, { hostname: "2001:db8:a::2", port: 6000 }, new Uint8Array([1, 2, 3]));
  net.run(100);
  assert.equal(a.firewall.dropped, before + 1, "unsolicited inbound is dropped");
  const sentA = chat(net, a, "a", 20), sentB = chat(net, b, "b", 20);
  net.run(2_000);
  assert.deepEqual(b.messages(), sentA);
  assert.deepEqual(a.messages(), sentB);
  // Still direct after the idle timeout would have closed an unrefreshed pinhole.
  net.run(60_000);
  assert.equal(a.lastPath("bob")?.path, "direct");
  assert.equal(addr(a, "bob"), "[2001:db8:b::2]:6000");
});

Deno.test("sim v6: the same pair without IPv6 sockets relays (the IPv6 path is what made it direct)", () => {
  const net = new SimNet(61);
  addServer(net);
  const a = addDualPeer(net, "alice", A_LAN, new SimNat("203.0.113.1", "symmetric"), A_V6, {
    ipv6: false,
  });
  const b = addDualPeer(net, "bob", B_LAN, new SimNat("203.0.113.2", "symmetric"), B_V6, {
    ipv6: false,
  });
  net.runUntilTrue(() => a.lastPath("bob") !== undefined && b.lastPath("alice") !== undefined);
  net.run(5_000);
  assert.equal(a.lastPath("bob")?.path, "relay");
  assert.ok(!net.log.some((d) => d.to.hostname.includes(":")), "nothing went to IPv6");
});

Deno.test("sim v6: IPv6 wins over a punched IPv4 public path", () => {
  const net = new SimNet(62);
  addServer(net);
  const a = addDualPeer(net, "alice", A_LAN, new SimNat("203.0.113.1", "port-restricted"), A_V6);
  const b = addDualPeer(net, "bob", B_LAN, new SimNat("203.0.113.2", "port-restricted"), B_V6);
  net.runUntilTrue(() => bothDirect(a, b), 10_000);
  net.run(5_000);
  assert.equal(addr(a, "bob"), "[2001:db8:b::2]:6000");
  assert.equal(addr(b, "alice"), "[2001:db8:a::2]:6000");
});

Deno.test("sim v6: a LAN IPv4 path wins over IPv6", () => {
  const net = new SimNet(63);
  addServer(net);
  const nat = new SimNat("203.0.113.1", "port-restricted");
  const lanB = { hostname: "10.1.0.3", port: 5000 };
  const a = addDualPeer(net, "alice", A_LAN, nat, A_V6);
  const b = addDualPeer(net, "bob", lanB, nat, B_V6);
  net.runUntilTrue(() => bothDirect(a, b), 10_000);
  net.run(5_000);
  assert.equal(addr(a, "bob"), "10.1.0.3:5000");
  assert.equal(addr(b, "alice"), "10.1.0.2:5000");
});

Deno.test("sim v6: a peer without IPv6 never sends to IPv6 and talks to a dual-stack peer over IPv4", () => {
  const net = new SimNet(64);
  addServer(net);
  const a = addDualPeer(net, "alice", A_LAN, new SimNat("203.0.113.1", "port-restricted"), A_V6);
  const c = addPeer(
    net,
    "carol",
    { hostname: "10.3.0.2", port: 5000 },
    new SimNat("203.0.113.3", "full-cone"),
  );
  net.runUntilTrue(
    () => a.lastPath("carol")?.path === "direct" && c.lastPath("alice")?.path === "direct",
    10_000,
  );
  net.run(5_000);
  assert.equal(c.lastPath("alice")?.addr?.hostname, "203.0.113.1");
  assert.equal(a.lastPath("carol")?.addr?.hostname, "203.0.113.3");
  // carol's NAT's address never sent to, nor received from, any IPv6 address.
  const carolV6 = net.log.filter((d) =>
    d.from.hostname === "203.0.113.3" && d.to.hostname.includes(":")
  );
  assert.deepEqual(carolV6, []);
  assert.equal(c.client.drops["no-ipv6"], undefined, "alice's IPv6 was never even a candidate");
  const sent = chat(net, c, "c", 10), back = chat(net, a, "a", 10);
  net.run(2_000);
  assert.deepEqual(a.messages(), sent);
  assert.deepEqual(c.messages(), back);
});

Deno.test("sim v6: a link-local address in a peer's list is never probed", () => {
  const net = new SimNet(65);
  addServer(net);
  const linkLocal = { hostname: "fe80::2", port: 6000 };
  let toLinkLocal = 0;
  net.block = (_from, to) => {
    if (to.hostname.startsWith("fe80:")) toLinkLocal++;
    return false;
  };
  const a = addDualPeer(net, "alice", A_LAN, new SimNat("203.0.113.1", "symmetric"), A_V6, {
    privateEndpoints: [A_LAN, linkLocal, A_V6],
  });
  const b = addDualPeer(net, "bob", B_LAN, new SimNat("203.0.113.2", "symmetric"), B_V6);
  net.runUntilTrue(() => bothDirect(a, b), 10_000);
  net.run(5_000);
  assert.equal(addr(b, "alice"), "[2001:db8:a::2]:6000");
  assert.equal(toLinkLocal, 0);
});
