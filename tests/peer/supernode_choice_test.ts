/**
 * Which supernode a member registers with (issue 17 #5): by the relayed path it measures, not
 * by the lowest id. The choice itself, then members in virtual time with a distant (or
 * hostile, slow) supernode whose id is the lowest.
 */
import assert from "node:assert/strict";
import { chooseSupernode, TIE } from "../../lib/peer/supernode_choice.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { SimNet, type SimPeer } from "../support/sim.ts";
import { addCheckingServer, addressOf, addRoomPeer } from "../support/supernode_sim.ts";

const c = (key: string, rtt: number | null) => ({ key, rtt });

Deno.test("supernode choice: the closest measured, ties by lowest id, the one in use kept while tied", () => {
  assert.equal(chooseSupernode([]), undefined);
  // Nothing measured yet: the one in use, else the lowest id.
  assert.equal(chooseSupernode([c("b0", null), c("a0", null)]), "a0");
  assert.equal(chooseSupernode([c("b0", null), c("a0", null)], "b0"), "b0");
  assert.equal(chooseSupernode([c("b0", null), c("a0", null)], "gone"), "a0");
  // A closer one wins over a lower id; one not measured counts only when none is.
  assert.equal(chooseSupernode([c("01", 300), c("ff", 20)]), "ff");
  assert.equal(chooseSupernode([c("01", null), c("ff", 20)]), "ff");
  // Within the tie (10 ms or a quarter, whichever is more): the lowest id, so a room converges.
  assert.equal(chooseSupernode([c("ff", 20), c("01", 24)]), "01");
  assert.equal(chooseSupernode([c("ff", 100), c("01", 100 + TIE.share * 100)]), "01");
  assert.equal(chooseSupernode([c("ff", 100), c("01", 100 + TIE.share * 100 + 1)]), "ff");
  // The one in use stays while tied with the best (noise moves nobody), not when clearly worse.
  assert.equal(chooseSupernode([c("01", 20), c("ff", 25)], "ff"), "ff");
  assert.equal(chooseSupernode([c("01", 20), c("ff", 80)], "ff"), "01");
  // In use but not measured, others measured: the measured one.
  assert.equal(chooseSupernode([c("01", 20), c("00", null)], "00"), "01");
});

function idHexOf(p: SimPeer): string {
  return [...p.client.id].map((x) => x.toString(16).padStart(2, "0")).join("");
}

/**
 * Two public supernodes; the one with the lower id is `slow` ms further away each way (distant,
 * or hostile and slow on purpose); three members behind symmetric NATs (their pairs relayed).
 */
function twoSupernodes(seed: number, slow: number) {
  const net = new SimNet(seed);
  const server = addCheckingServer(net);
  const a = addRoomPeer(net, "sa", "public");
  const b = addRoomPeer(net, "sb", "public");
  const [low, high] = idHexOf(a) < idHexOf(b) ? [a, b] : [b, a];
  const highName = high === a ? "sa" : "sb";
  const far = addressOf.get(low)!.hostname;
  net.delay = (from, to) => (from.hostname === far || to.hostname === far ? slow : 0);
  // Both serve before the members come: the server names both at once.
  net.runUntilTrue(() => a.client.supernode && b.client.supernode, 10_000);
  net.run(5_000);
  const members = ["m1", "m2", "m3"].map((n) =>
    addRoomPeer(net, n, "symmetric-random", { supernode: "off" })
  );
  return { net, server, low, high, highName, members };
}

for (const seed of [40, 41, 42]) {
  Deno.test(`supernode choice: members pass over a distant supernode with the lowest id for a closer one (seed ${seed})`, () => {
    const { net, low, high, highName, members } = twoSupernodes(seed, 150);
    net.run(15_000);
    assert.ok(low.client.supernode && high.client.supernode, "both are supernodes");
    for (const m of members) {
      assert.equal(m.client.supernodeKey, idHexOf(high), "a member uses the closer one");
    }
    // Chosen first, not moved to later: no member ever registered with the distant one.
    const lowAt = addressOf.get(low)!;
    const hellos = net.log.filter((d) =>
      d.data[3] === MsgType.Hello && d.to.hostname === lowAt.hostname && d.to.port === lowAt.port
    );
    assert.equal(hellos.length, 0, "HELLOs to the distant supernode");
    // Their relayed pairs go through it, and their lines arrive.
    assert.equal(members[0]!.lastPath("m2")?.relayedBy, highName);
    const before = high.client.supernodeStats()!.relayedBytes;
    members[0]!.client.send(net.now, "through the closer supernode");
    net.run(2_000);
    assert.ok(members[1]!.messages().includes("m1: through the closer supernode"));
    assert.ok(high.client.supernodeStats()!.relayedBytes > before);
  });
}

Deno.test("supernode choice: with about the same RTTs, members converge on the lowest id", () => {
  const { net, low, members } = twoSupernodes(43, 2);
  net.run(15_000);
  for (const m of members) assert.equal(m.client.supernodeKey, idHexOf(low));
});
