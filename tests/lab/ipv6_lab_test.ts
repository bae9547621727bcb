/**
 * IPv6 in a network-namespace lab of its own (namespaces `v6-<pid>-<random>-*`, removed in
 * `finally` and by the emergency reaper): a dual-stack `p2p serve` and two dual-stack hosts,
 * each behind a router that is an IPv4 symmetric NAT (`masquerade random`) and an IPv6 stateful
 * firewall (new inbound dropped). Real `p2p join --json` processes must end up direct over
 * IPv6 and deliver 20 messages each way exactly once and in order, with the server given as
 * its IPv4 address and as `[v6]:port`. (Over IPv4 alone this pair can only be relayed.)
 *
 * ```
 *   srv 203.0.113.5, 2001:db8:ff::5 ─┐
 *                                     br0 (ns inet: 203.0.113.1, 2001:db8:ff::1, routes)
 *   rA wan 203.0.113.11, ff::11 ──────┤          rB wan 203.0.113.12, ff::12
 *   └ lan 192.168.1.1, 2001:db8:1::1  │          └ lan 192.168.2.1, 2001:db8:2::1
 *     hA 192.168.1.10, 2001:db8:1::10            hB 192.168.2.10, 2001:db8:2::10
 * ```
 *
 * Needs root, `ip` and `nft` (the NAT lab's requirements); skipped with the reason otherwise,
 * or failed under `CI=true`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { labTest } from "../support/natlab.ts";
import {
  type P2pEvent,
  type P2pProcess,
  prepareProduct,
  registerEmergencyCleanup,
  startPeer,
  startServer,
} from "../support/proc.ts";

const WAIT = 20_000;

async function sh(args: string[], input?: string): Promise<string> {
  const cmd = new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (input !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(input));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  if (out.code !== 0) {
    throw new Error(`${args.join(" ")} failed (${out.code}): ${dec.decode(out.stderr).trim()}`);
  }
  return dec.decode(out.stdout);
}

/** The router's rules: IPv4 symmetric NAT, IPv6 stateful firewall; new inbound dropped. */
function routerRules(lan4: string): string {
  return `
table ip nat {
  chain post { type nat hook postrouting priority srcnat; policy accept;
    oif "wan0" ip saddr ${lan4} masquerade random; }
}
table ip filter {
  chain input { type filter hook input priority filter; policy accept;
    iif "wan0" ct state new drop; }
  chain forward { type filter hook forward priority filter; policy accept;
    iif "wan0" ct state established,related accept;
    iif "wan0" drop; }
}
table ip6 fw6 {
  chain forward { type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct state invalid drop
    iifname "lan0" oifname "wan0" ct state new accept
    iifname "wan0" ct state new counter drop
  }
}
`;
}

/** The lab's namespaces, made and torn down by this test alone. */
class V6Lab implements AsyncDisposable {
  readonly prefix = `v6-${Deno.pid}-${crypto.randomUUID().slice(0, 6)}`;
  readonly made: string[] = [];
  #unregister: () => void;

  constructor() {
    const prefix = this.prefix;
    this.#unregister = registerEmergencyCleanup(() => {
      for (const ns of this.made) {
        new Deno.Command("ip", { args: ["netns", "del", ns], stderr: "null" }).outputSync();
      }
    }, { nsPrefix: prefix });
  }

  ns(name: string): string {
    return `${this.prefix}-${name}`;
  }

  async add(name: string): Promise<string> {
    const ns = this.ns(name);
    await sh(["ip", "netns", "add", ns]);
    this.made.push(ns);
    // No duplicate address detection: else bind() fails with errno 99 for a second or two.
    await sh([
      "ip",
      "netns",
      "exec",
      ns,
      "sysctl",
      "-qw",
      "net.ipv6.conf.default.accept_dad=0",
      "net.ipv6.conf.all.accept_dad=0",
      "net.ipv4.ip_forward=1",
      "net.ipv6.conf.all.forwarding=1",
    ]);
    await sh(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return ns;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const ns of this.made.reverse()) {
      for (const pid of (await sh(["ip", "netns", "pids", ns]).catch(() => "")).split(/\s+/)) {
        if (/^\d+$/.test(pid)) await sh(["kill", "-9", pid]).catch(() => "");
      }
      await sh(["ip", "netns", "del", ns]).catch(() => "");
    }
    this.#unregister();
  }
}

const ip = (ns: string, ...args: string[]) => sh(["ip", "-n", ns, ...args]);

/** Builds the topology in the module documentation; returns the host namespaces. */
async function build(lab: V6Lab): Promise<{ srv: string; hA: string; hB: string }> {
  const inet = await lab.add("inet");
  await ip(inet, "link", "add", "br0", "type", "bridge");
  await ip(inet, "link", "set", "br0", "up");
  await ip(inet, "addr", "add", "203.0.113.1/24", "dev", "br0");
  await ip(inet, "addr", "add", "2001:db8:ff::1/64", "dev", "br0", "nodad");
  const wan = async (ns: string, n: string, v4: string, v6: string) => {
    await ip(ns, "link", "add", "wan0", "type", "veth", "peer", "name", `w${n}`, "netns", inet);
    await ip(inet, "link", "set", `w${n}`, "master", "br0", "up");
    await ip(ns, "addr", "add", `${v4}/24`, "dev", "wan0");
    await ip(ns, "addr", "add", `${v6}/64`, "dev", "wan0", "nodad");
    await ip(ns, "link", "set", "wan0", "up");
    await ip(ns, "-6", "route", "add", "default", "via", "2001:db8:ff::1");
  };
  const srv = await lab.add("srv");
  await wan(srv, "s", "203.0.113.5", "2001:db8:ff::5");
  const hosts: string[] = [];
  for (const i of [1, 2]) {
    const r = await lab.add(`r${i}`), h = await lab.add(`h${i}`);
    await wan(r, `${i}`, `203.0.113.1${i}`, `2001:db8:ff::1${i}`);
    await ip(r, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", h);
    await ip(r, "addr", "add", `192.168.${i}.1/24`, "dev", "lan0");
    await ip(r, "addr", "add", `2001:db8:${i}::1/64`, "dev", "lan0", "nodad");
    await ip(r, "link", "set", "lan0", "up");
    await ip(h, "addr", "add", `192.168.${i}.10/24`, "dev", "eth0");
    await ip(h, "addr", "add", `2001:db8:${i}::10/64`, "dev", "eth0", "nodad");
    await ip(h, "link", "set", "eth0", "up");
    await ip(h, "route", "add", "default", "via", `192.168.${i}.1`);
    await ip(h, "-6", "route", "add", "default", "via", `2001:db8:${i}::1`);
    await ip(inet, "-6", "route", "add", `2001:db8:${i}::/64`, "via", `2001:db8:ff::1${i}`);
    await sh(["ip", "netns", "exec", r, "nft", "-f", "-"], routerRules(`192.168.${i}.0/24`));
    hosts.push(h);
  }
  return { srv, hA: hosts[0]!, hB: hosts[1]! };
}

function isDirectPeer(name: string) {
  return (e: P2pEvent) => e.event === "peer" && e.name === name && e.path === "direct";
}

async function exchange(a: P2pProcess, b: P2pProcess, tag: string): Promise<void> {
  const lines = (who: string) => Array.from({ length: 20 }, (_, i) => `${tag} ${who} ${i + 1}`);
  const la = lines("ann"), lb = lines("ben");
  for (const l of la) await a.send(l);
  for (const l of lb) await b.send(l);
  const got = (p: P2pProcess, from: string) =>
    p.eventsOf("message").filter((e) => e.from === from && String(e.text).startsWith(tag))
      .map((e) => String(e.text));
  await b.waitFor((e) => e.event === "message" && e.text === la.at(-1), WAIT, "ann's last");
  await a.waitFor((e) => e.event === "message" && e.text === lb.at(-1), WAIT, "ben's last");
  assert.deepEqual(got(b, "ann"), la, b.describe());
  assert.deepEqual(got(a, "ben"), lb, a.describe());
}

/** Runs ann in hA and ben in hB against `server`; returns ms from start to both direct. */
async function pair(
  hA: string,
  hB: string,
  server: string,
  room: string,
  publicRe: RegExp,
): Promise<number> {
  const started = performance.now();
  const a = startPeer({ server, room, name: "ann", netns: hA });
  const b = startPeer({ server, room, name: "ben", netns: hB });
  try {
    const ra = await a.waitFor((e) => e.event === "ready", WAIT, "ready");
    await b.waitFor((e) => e.event === "ready", WAIT, "ready");
    assert.match(String(ra.public), publicRe, a.describe());
    const ab = await a.waitFor(isDirectPeer("ben"), WAIT, "ben direct");
    const ba = await b.waitFor(isDirectPeer("ann"), WAIT, "ann direct");
    const took = Math.max(a.receivedAt(ab)!, b.receivedAt(ba)!) - started;
    assert.match(String(ab.addr), /^\[2001:db8:2::10\]:\d+$/, a.describe());
    assert.match(String(ba.addr), /^\[2001:db8:1::10\]:\d+$/, b.describe());
    await exchange(a, b, room);
    // Never relayed, never another path: the first peer event was already the IPv6 one.
    for (const [p, other] of [[a, "ben"], [b, "ann"]] as const) {
      const paths = p.eventsOf("peer").filter((e) => e.name === other);
      assert.ok(paths.every((e) => e.path === "direct"), p.describe());
    }
    return took;
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
}

Deno.test(labTest(
  "ipv6 lab: dual-stack peers behind IPv4 symmetric NATs and IPv6 firewalls go direct over IPv6 (server as IPv4 and as [v6]:port)",
  async () => {
    await prepareProduct();
    await using lab = new V6Lab();
    const { srv, hA, hB } = await build(lab);
    const server = await startServer({ host: "0.0.0.0", port: 7777, netns: srv });
    try {
      const listening = server.proc.eventsOf("listening")[0]!;
      assert.equal(listening.addr, "0.0.0.0:7777");
      assert.equal(listening.addr6, "[::]:7777");
      const v4 = await pair(hA, hB, "203.0.113.5:7777", "v4srv", /^203\.0\.113\.11:\d+$/);
      const v6 = await pair(hA, hB, "[2001:db8:ff::5]:7777", "v6srv", /^\[2001:db8:1::10\]:\d+$/);
      console.log(
        `ipv6 lab: direct over IPv6 after ${Math.round(v4)} ms (server over IPv4), ` +
          `${Math.round(v6)} ms (server over IPv6), from process start`,
      );
      // The firewall is real: an unsolicited IPv6 datagram from the server's host to hB is
      // dropped and counted. (The peers' own first packets may all pass: both sides open
      // their firewalls at the same moment.)
      const dropped = async () => {
        const counters = await sh([
          "ip",
          "netns",
          "exec",
          lab.ns("r2"),
          "nft",
          "list",
          "table",
          "ip6",
          "fw6",
        ]);
        return Number(/ct state new counter packets (\d+)/.exec(counters)?.[1] ?? 0);
      };
      const before = await dropped();
      await sh([
        "ip",
        "netns",
        "exec",
        srv,
        Deno.execPath(),
        "eval",
        "--unstable-net",
        "const c = Deno.listenDatagram({ hostname: '::', port: 0, transport: 'udp' });" +
        "await c.send(new Uint8Array([1]), { transport: 'udp', hostname: '2001:db8:2::10', port: 9 });" +
        "c.close();",
      ]);
      assert.equal(await dropped(), before + 1, "unsolicited inbound IPv6 is dropped");
    } finally {
      await server.proc.close();
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
));
