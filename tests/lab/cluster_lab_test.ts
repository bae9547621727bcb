/**
 * `p2p serve --cluster` in the NAT lab: three servers and a `nats-server` on the public segment,
 * peers behind real Linux NATs spread over them. A room whose members are registered at three
 * different servers chats (every line once, in order); a pair behind symmetric NATs registered
 * at two servers relays through both (one hop between them); then one server is killed
 * mid-conversation: its peers (one of the room, one of the symmetric pair) register at another
 * within 10 s, the room's without a COOKIE round trip (the servers share cookies; only the
 * symmetric peer's new NAT mapping needs a new one), the pair keeps relaying
 * through the surviving servers, nobody sees anyone leave, and every line (before, during and
 * after the failover, both ways) arrives once, in order. Last the
 * engine stops: each server keeps serving the rooms it holds (a newcomer meets its own server's
 * members), and once the engine is back the rooms span the servers again.
 *
 * The servers' metrics are read with `curl` inside the lab (nothing routes out of it). Skipped
 * with the reason unless the lab and `nats-server` are there; fails under `CI=true` without
 * them.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Host, labToolTest, NatLab } from "../support/natlab.ts";
import { NatsServer } from "../support/nats.ts";
import {
  type P2pEvent,
  type P2pProcess,
  prepareProduct,
  type RunningServer,
  startPeer,
  startServer,
} from "../support/proc.ts";
import { lines, sendAll, textsFrom, waitTexts } from "../support/supernode_lab.ts";

const WAIT = 20_000;
const SERVER_PORT = 7777;
const METRICS_PORT = 9100;

/** A server of the lab's cluster: its process, and the host it runs on. */
interface LabServer extends RunningServer {
  host: Host;
}

/** One sample of `name` (with its labels, as the page writes them) from `s`'s metrics. */
async function metric(lab: NatLab, s: LabServer, name: string): Promise<number> {
  const url = `http://${s.host.ip}:${METRICS_PORT}/metrics`;
  const text = await lab.execCheck(s.host.ns, "curl", "-s", "--max-time", "5", url);
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

/** Polls `s`'s metric `name` (every 200 ms, at most WAIT) until `ok`. */
async function waitMetric(
  lab: NatLab,
  s: LabServer,
  name: string,
  ok: (v: number) => boolean,
): Promise<number> {
  const until = performance.now() + WAIT;
  for (;;) {
    const v = await metric(lab, s, name);
    if (ok(v)) return v;
    if (performance.now() > until) throw new Error(`${name} at ${s.host.name} is ${v}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function isPeer(name: string, path?: string) {
  return (e: P2pEvent) => e.event === "peer" && e.name === name && (!path || e.path === path);
}

/** `p` says lines tagged `tag` into `said`, one every 200 ms, until `stop()`. */
function talk(p: P2pProcess, tag: string, said: string[], stop: () => boolean) {
  return (async () => {
    for (let i = 0; !stop() && i < 500; i++) {
      said.push(`${tag} ${i}`);
      await p.send(said.at(-1)!);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
}

Deno.test(labToolTest(
  "cluster lab: a room across three servers chats, symmetric peers relay across two, a killed server's peers (one of a relayed symmetric pair) move within 10 s, an engine outage heals",
  ["nats-server", "curl"],
  "nats-server curl",
  async () => {
    const t0 = performance.now();
    await prepareProduct();
    await using lab = await NatLab.create();
    const natsHost = await lab.addPublicHost("nats");
    const srvHosts = [
      await lab.addPublicHost("srv0"),
      await lab.addPublicHost("srv1"),
      await lab.addPublicHost("srv2"),
    ];
    const home = async (nat: "port-restricted" | "symmetric", name: string) =>
      lab.addHost(await lab.addRouter({ nat, name: `r${name}` }), name);
    const [annH, benH, catH] = [
      await home("port-restricted", "ann"),
      await home("port-restricted", "ben"),
      await home("port-restricted", "cat"),
    ];
    const [samH, sydH] = [await home("symmetric", "sam"), await home("symmetric", "syd")];
    await using nats = await new NatsServer(4222, { netns: natsHost.ns, host: natsHost.ip })
      .start();
    const servers: LabServer[] = [];
    const peers: P2pProcess[] = [];
    let talking = false, talking_: Promise<unknown> = Promise.resolve();
    try {
      for (const [i, host] of srvHosts.entries()) {
        const s = await startServer({
          host: host.ip,
          port: SERVER_PORT,
          netns: host.ns,
          label: `srv${i}`,
          extraArgs: [
            "--cluster",
            nats.url,
            "--summary",
            "0",
            "--metrics",
            `${host.ip}:${METRICS_PORT}`,
          ],
          env: { P2P_CLUSTER_SECRET: "the cluster lab's secret" },
        });
        servers.push({ ...s, host });
      }
      // Each server heard the other two (peers then learn of them from SERVERS).
      for (const s of servers) await waitMetric(lab, s, "p2p_cluster_servers", (v) => v === 2);
      const join = (name: string, host: Host, s: LabServer, room: string) => {
        const p = startPeer({
          server: s.addr,
          room,
          name,
          netns: host.ns,
          extraArgs: ["--port", "4000"],
        });
        peers.push(p);
        return p;
      };

      // (a) One room, its members at three servers.
      const ann = join("ann", annH, servers[0]!, "cluster-lab");
      const ben = join("ben", benH, servers[1]!, "cluster-lab");
      const cat = join("cat", catH, servers[2]!, "cluster-lab");
      const trio = [["ann", ann], ["ben", ben], ["cat", cat]] as const;
      for (const [name, p] of trio) {
        for (const [other] of trio) if (other !== name) await p.waitFor(isPeer(other), WAIT);
      }
      const said = new Map<string, string[]>(trio.map(([n]) => [n, lines(`${n} a`, 10)]));
      await Promise.all(trio.map(([n, p]) => sendAll(p, said.get(n)!)));
      for (const [name, p] of trio) {
        for (const [other] of trio) {
          if (other === name) continue;
          await waitTexts(p, other, 10, WAIT);
          assert.deepEqual(textsFrom(p, other), said.get(other), `${name} from ${other}`);
        }
      }
      const joined = performance.now();

      // (b) Symmetric behind symmetric, at two servers: relayed through both.
      const sam = join("sam", samH, servers[1]!, "cluster-lab-sym");
      const syd = join("syd", sydH, servers[2]!, "cluster-lab-sym");
      await sam.waitFor(isPeer("syd", "relay"), WAIT, "sam: syd relayed");
      await syd.waitFor(isPeer("sam", "relay"), WAIT, "syd: sam relayed");
      const sl = lines("sam", 10), yl = lines("syd", 10);
      await Promise.all([sendAll(sam, sl), sendAll(syd, yl)]);
      await Promise.all([waitTexts(syd, "sam", 10, WAIT), waitTexts(sam, "syd", 10, WAIT)]);
      assert.deepEqual(textsFrom(syd, "sam"), sl);
      assert.deepEqual(textsFrom(sam, "syd"), yl);
      const out1 = await metric(lab, servers[1]!, 'p2p_cluster_relay_bytes_total{direction="out"}');
      const in2 = await metric(lab, servers[2]!, 'p2p_cluster_relay_bytes_total{direction="in"}');
      assert.ok(out1 > 0 && in2 > 0, `across servers: out ${out1}, in ${in2}`);
      const relayed = performance.now();

      // (c) All three keep talking, and so do sam and syd; cat's and syd's server dies under them.
      const cookies = async () =>
        await metric(lab, servers[0]!, "p2p_cookies_total") +
        await metric(lab, servers[1]!, "p2p_cookies_total");
      const cookiesBefore = await cookies();
      const more = new Map<string, string[]>(trio.map(([n]) => [n, []]));
      talking = true;
      const stop = () => !talking;
      const pair = [["sam", sam, sl], ["syd", syd, yl]] as const;
      talking_ = Promise.all([
        ...trio.map(([n, p]) => talk(p, `${n} c`, more.get(n)!, stop)),
        ...pair.map(([n, p, l]) => talk(p, `${n} c`, l, stop)),
      ]);
      await waitTexts(ann, "cat", 15, WAIT);
      await waitTexts(sam, "syd", 15, WAIT);
      const across = async () =>
        await metric(lab, servers[0]!, 'p2p_cluster_relay_bytes_total{direction="in"}') +
        await metric(lab, servers[1]!, 'p2p_cluster_relay_bytes_total{direction="in"}');
      const relayedBytes = async () => {
        let sum = 0;
        for (const s of servers.slice(0, 2)) {
          sum += await metric(lab, s, "p2p_relayed_bytes_total") +
            await metric(lab, s, 'p2p_cluster_relay_bytes_total{direction="out"}');
        }
        return sum;
      };
      servers[2]!.proc.kill("SIGKILL");
      const killed = performance.now();
      const back = (e: P2pEvent) => e.event === "server" && e.state === "back";
      await cat.waitFor(back, WAIT, "cat: back");
      const moved = performance.now() - killed;
      await syd.waitFor(back, WAIT, "syd: back");
      const sydMoved = performance.now() - killed;
      assert.ok(moved < 10_000, `cat registered again after ${Math.round(moved)} ms`);
      assert.ok(sydMoved < 10_000, `syd registered again after ${Math.round(sydMoved)} ms`);
      const relayedAtMove = await relayedBytes(), acrossAtMove = await across();
      // Talk on a little at the new servers, then stop and count.
      await waitTexts(ben, "cat", 10 + more.get("cat")!.length + 5, WAIT);
      await waitTexts(sam, "syd", yl.length + 5, WAIT);
      await waitTexts(syd, "sam", sl.length + 5, WAIT);
      talking = false;
      await talking_;
      for (const [name, p, l] of pair) {
        const [other, o] = name === "sam" ? ["syd", syd] : ["sam", sam];
        await waitTexts(o, name, l.length, WAIT);
        assert.deepEqual(textsFrom(o, name), l, `${other} from ${name}: once, in order`);
        assert.equal(p.eventsOf("left").length, 0, `${name} saw nobody leave`);
        assert.ok(
          !p.eventsOf("peer").some((e) => e.path && e.path !== "relay"),
          `${name}: relayed`,
        );
      }
      const relayedAfter = await relayedBytes() - relayedAtMove;
      assert.ok(relayedAfter > 0, "the pair relayed through the surviving servers");
      // syd fails over to srv0 (the next in her list), sam stays at srv1: still one hop between.
      const acrossAfter = await across() - acrossAtMove;
      assert.ok(acrossAfter > 0, "the pair relayed across the surviving servers");
      const held = [
        await metric(lab, servers[0]!, "p2p_peers"),
        await metric(lab, servers[1]!, "p2p_peers"),
      ];
      for (const [name, p] of trio) {
        for (const [other] of trio) {
          if (other === name) continue;
          const all = [...said.get(other)!, ...more.get(other)!];
          await waitTexts(p, other, all.length, WAIT);
          assert.deepEqual(textsFrom(p, other), all, `${name} from ${other}: once, in order`);
        }
        assert.equal(p.eventsOf("left").length, 0, `${name} saw nobody leave`);
      }
      const round = await cookies() - cookiesBefore;
      // The cookie covers the source endpoint: cat's NAT keeps hers, so she keeps her cookie; syd's
      // symmetric NAT maps her anew (a random port) for the new server, which costs one COOKIE.
      assert.equal(round, 1, "cat kept her cookie, syd's new mapping cost one COOKIE round trip");

      // (d) The engine stops: each server keeps serving the rooms it holds; back, they converge.
      await nats.stop();
      const live = servers.slice(0, 2);
      for (const s of live) await waitMetric(lab, s, "p2p_cluster_engine_up", (v) => v === 0);
      const dan = join("dan", await lab.addHost(annH.router, "dan"), servers[0]!, "cluster-lab");
      const eve = join("eve", await lab.addHost(benH.router, "eve"), servers[1]!, "cluster-lab");
      await dan.waitFor(isPeer("ann"), WAIT, "dan: ann (one server, no engine)");
      await eve.waitFor(isPeer("ben"), WAIT, "eve: ben (one server, no engine)");
      await dan.send("dan alone");
      await waitTexts(ann, "dan", 1, WAIT);
      assert.ok(!dan.eventsOf("peer").some((e) => e.name === "eve"), "no engine, no news of eve");
      await nats.start();
      const restarted = performance.now();
      await dan.waitFor(isPeer("eve"), WAIT, "dan: eve (the engine back)");
      await eve.waitFor(isPeer("dan"), WAIT, "eve: dan (the engine back)");
      const converged = performance.now() - restarted;
      await eve.send("eve back");
      await waitTexts(dan, "eve", 1, WAIT);
      assert.deepEqual(textsFrom(dan, "eve"), ["eve back"]);
      console.log(
        `cluster lab: room across three servers after ${Math.round((joined - t0) / 1000)} s; ` +
          `symmetric pair relayed across servers (${out1} bytes out of srv1) after ${
            Math.round((relayed - t0) / 1000)
          } s; cat registered again ${Math.round(moved)} ms after her server died, ` +
          `${more.get("cat")!.length} lines from her meanwhile, ${round} COOKIE round trips; ` +
          `syd (symmetric) registered again ${Math.round(sydMoved)} ms after (srv0, srv1 hold ${
            held.join(", ")
          } peers), ` +
          `${sl.length}+${yl.length} lines relayed once, in order, ${relayedAfter} bytes through the ` +
          `surviving servers (${acrossAfter} between them) after the move; ` +
          `rooms across servers again ${Math.round(converged)} ms after the engine's restart; ` +
          `${Math.round((performance.now() - t0) / 1000)} s in all`,
      );
    } finally {
      talking = false;
      await talking_.catch(() => {});
      await Promise.all(peers.map((p) => p.close()));
      await Promise.all(servers.map((s) => s.proc.close()));
    }
  },
  { sanitizeResources: false, sanitizeOps: false },
));
