/**
 * The relay over TCP with real processes behind real Linux NATs: ann sits behind a
 * port-restricted router that drops all UDP (a network that blocks it), bob behind another
 * port-restricted one. ann is given the server as a plain `HOST:PORT`: her UDP gets no answer,
 * so she registers over TCP by herself, sees bob relayed over TCP (`"transport": "tcp"`) and
 * they chat both ways. Then ann's router passes UDP again: within 30 s her registration moves to
 * UDP (and the pair, port-restricted on both sides, goes direct), while both keep talking;
 * every message arrives exactly once, in order.
 *
 * @module
 */
import assert from "node:assert/strict";
import { labTest, NatLab } from "../support/natlab.ts";
import {
  type P2pEvent,
  type P2pProcess,
  prepareProduct,
  startPeer,
  startServer,
} from "../support/proc.ts";
import { lines, sendAll, textsFrom, waitTexts } from "../support/supernode_lab.ts";

const BLOCK = "p2pblockudp";

Deno.test(labTest(
  "tcp lab: a host whose router drops UDP joins over TCP, chats relayed, moves to UDP within 30 s once UDP passes",
  async () => {
    await prepareProduct();
    await using lab = await NatLab.create();
    const srv = await lab.addPublicHost("srv");
    const ra = await lab.addRouter({ nat: "port-restricted", name: "ra" });
    const rb = await lab.addRouter({ nat: "port-restricted", name: "rb" });
    const annHost = await lab.addHost(ra, "ann");
    const bobHost = await lab.addHost(rb, "bob");
    // ann's network forwards no UDP at all, either way.
    await lab.execCheck(ra.ns!, "nft", "add", "table", "inet", BLOCK);
    await lab.execCheck(
      ra.ns!,
      "nft",
      "add chain inet " + BLOCK + " blk { type filter hook forward priority -300; policy accept; }",
    );
    await lab.execCheck(
      ra.ns!,
      "nft",
      "add",
      "rule",
      "inet",
      BLOCK,
      "blk",
      "meta",
      "l4proto",
      "udp",
      "drop",
    );
    const server = await startServer({ host: srv.ip, port: 7777, netns: srv.ns });
    const peers: P2pProcess[] = [];
    let talking = false, talk: Promise<void> = Promise.resolve();
    const a2: string[] = [], b2: string[] = [];
    try {
      const ann = startPeer({
        server: server.addr,
        room: "tcp-lab",
        name: "ann",
        netns: annHost.ns,
        extraArgs: ["--port", "4000"],
      });
      peers.push(ann);
      const bob = startPeer({
        server: server.addr,
        room: "tcp-lab",
        name: "bob",
        netns: bobHost.ns,
        extraArgs: ["--port", "4000"],
      });
      peers.push(bob);
      const t0 = performance.now();
      await ann.waitFor((e) => e.event === "ready", 15_000, "ann registered (over TCP)");
      const registeredAfter = performance.now() - t0;
      const relayedTcp = (e: P2pEvent) =>
        e.event === "peer" && e.name === "bob" && e.path === "relay" && e.transport === "tcp";
      await ann.waitFor(relayedTcp, 15_000, "ann: bob relayed over TCP");
      await bob.waitFor(
        (e) => e.event === "peer" && e.name === "ann" && e.path === "relay",
        15_000,
        "bob: ann relayed",
      );
      assert.match(server.proc.stderr, /registered in room .* from tcp:\/\//);
      const a1 = lines("ann tcp", 20), b1 = lines("bob tcp", 20);
      await Promise.all([sendAll(ann, a1), sendAll(bob, b1)]);
      await Promise.all([waitTexts(bob, "ann", 20), waitTexts(ann, "bob", 20)]);
      assert.deepEqual(textsFrom(bob, "ann"), a1);
      assert.deepEqual(textsFrom(ann, "bob"), b1);

      // Both keep talking (a line each every 250 ms) for 20 s with UDP still blocked (ann's
      // background tries over UDP are 20 s apart by then), and on across the move.
      talking = true;
      talk = (async () => {
        for (let i = 0; talking && i < 400; i++) {
          a2.push(`ann ${i}`);
          b2.push(`bob ${i}`);
          await Promise.all([ann.send(a2.at(-1)!), bob.send(b2.at(-1)!)]);
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      await waitTexts(bob, "ann", a1.length + 80, 40_000);
      assert.equal(
        ann.eventsOf("notice").some((e) => e.kind === "transport"),
        false,
        "no move while UDP is blocked",
      );
      // UDP passes again.
      await lab.execCheck(ra.ns!, "nft", "delete", "table", "inet", BLOCK);
      const unblocked = performance.now();
      const moved = await ann.waitFor(
        (e) => e.event === "notice" && e.kind === "transport" && /over UDP/.test(String(e.message)),
        30_000,
        "ann: the server reached over UDP again",
      );
      const movedAfter = performance.now() - unblocked;
      assert.ok(moved);
      const direct = await ann.waitFor(
        (e) => e.event === "peer" && e.name === "bob" && e.path === "direct",
        30_000,
        "ann: bob direct",
      );
      const directAfter = performance.now() - unblocked;
      assert.ok(directAfter < 30_000, `direct after ${Math.round(directAfter)} ms`);
      assert.ok(direct);
      talking = false;
      await talk;
      await Promise.all([
        waitTexts(bob, "ann", a1.length + a2.length, 20_000),
        waitTexts(ann, "bob", b1.length + b2.length, 20_000),
      ]);
      assert.deepEqual(textsFrom(bob, "ann"), [...a1, ...a2], "nothing lost or duplicated");
      assert.deepEqual(textsFrom(ann, "bob"), [...b1, ...b2], "nothing lost or duplicated");
      console.log(
        `tcp lab: registered over TCP after ${Math.round(registeredAfter)} ms; UDP again ` +
          `${Math.round(movedAfter)} ms after unblocking, direct after ${
            Math.round(directAfter)
          } ms; ` +
          `${a2.length} lines each way, ${Math.round((performance.now() - t0) / 1000)} s in all`,
      );
    } finally {
      talking = false;
      await talk.catch(() => {});
      await Promise.all(peers.map((p) => p.close()));
      await server.proc.close();
    }
  },
));
