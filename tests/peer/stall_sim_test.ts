/**
 * Processes that stop (SIGSTOP, a suspended laptop) and wake up with datagrams waiting in their
 * socket (issue 21), over the simulated network with virtual time: nothing given up on either
 * side, no path flipped to the relay by our own silence, ACKs from a peer the server expired
 * still clearing what waited for it; a peer that leaves meanwhile tells it what it missed.
 */
import assert from "node:assert/strict";
import {
  type Client,
  type ClientEvent,
  DEPARTED_KEEP,
  UNANSWERED_AFTER,
} from "../../lib/peer/client.ts";
import type { SansIo } from "../../lib/io/udp.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import { Registry } from "../../lib/server/registry.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { UNLISTED_GRACE } from "../../lib/peer/membership.ts";
import { addPeer, addServer, SERVER, SimNet, type SimPeer } from "../support/sim.ts";

const at = (n: number) => ({ hostname: `192.0.2.${10 * n}`, port: 1000 * n });

/**
 * A client that can be stopped as SIGSTOP stops a process: it sends nothing, no timer fires,
 * and what arrives waits in its socket; on waking its overdue timer runs first (the worst
 * order), then the datagrams that waited.
 */
class Stoppable implements SansIo {
  #held: Array<[Endpoint, Uint8Array, number]> = [];
  stopped = false;
  constructor(readonly client: Client) {}
  handleDatagram(now: number, from: Endpoint, data: Uint8Array, via = 0): void {
    if (this.stopped) this.#held.push([from, data.slice(), via]);
    else this.client.handleDatagram(now, from, data, via);
  }
  handleTimeout(now: number): void {
    if (!this.stopped) this.client.handleTimeout(now);
  }
  nextTimeout(): number | undefined {
    return this.stopped ? undefined : this.client.nextTimeout();
  }
  pollTransmit(): Transmit | undefined {
    return this.stopped ? undefined : this.client.pollTransmit();
  }
  pollRelease(): number | undefined {
    return this.stopped ? undefined : this.client.pollRelease();
  }
  /** SIGCONT at `now`. */
  wake(now: number): void {
    this.stopped = false;
    this.client.handleTimeout(now);
    for (const [from, data, via] of this.#held.splice(0)) {
      this.client.handleDatagram(now, from, data, via);
    }
  }
}

/** A peer that can be stopped. */
function stoppable(net: SimNet, name: string, n: number): SimPeer & { stop: Stoppable } {
  const p = addPeer(net, name, at(n));
  const stop = new Stoppable(p.client);
  net.replace(p.client, stop);
  return Object.assign(p, { stop });
}

function kinds(events: ClientEvent[], type: string): string[] {
  return events.flatMap((e) => e.type === type && "kind" in e ? [e.kind] : []);
}

Deno.test("a peer stopped 90 s gives nothing up and flips no path on waking; its peers neither", () => {
  const net = new SimNet(2110);
  addServer(net, { expireAfter: 75_000 });
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  const c = addPeer(net, "carol", at(3));
  const all = [a, b, c];
  net.runUntilTrue(() =>
    all.every((p) => p.client.peers().filter((i) => i.path === "direct").length === 2)
  );
  net.run(5_000);
  const from = new Map(all.map((p) => [p, p.drain().length]));
  // bob types a line that alice does not get: he is checking his path to her when he is
  // stopped (a wake-up that acts on its timers first would find it dead). alice and carol type
  // on meanwhile.
  net.block = (from, to) => from.port === at(2).port && to.port === at(1).port;
  b.client.send(net.now, "bob before");
  net.run(1_000);
  net.block = () => false;
  b.stop.stopped = true;
  const stoppedAt = net.now;
  for (let i = 1; i <= 3; i++) {
    a.client.send(net.now, `alice ${i}`);
    c.client.send(net.now, `carol ${i}`);
    net.run(2_000);
  }
  net.runUntil(stoppedAt + 90_000);
  b.stop.wake(net.now);
  net.run(20_000);
  const after = (p: SimPeer) => p.drain().slice(from.get(p)!);
  const bob = after(b);
  assert.deepEqual(
    bob.filter((e) => e.type === "peer" && e.path === "relay"),
    [],
    "bob flips no path to the relay",
  );
  assert.deepEqual(kinds(bob, "warning"), [], "bob gives nothing up");
  for (const who of ["alice", "carol"]) {
    assert.deepEqual(
      b.messages().filter((m) => m.startsWith(who)),
      [1, 2, 3].map((i) => `${who}: ${who} ${i}`),
      `bob shows every line of ${who} once, in order`,
    );
  }
  for (const p of [a, c]) {
    const seen = after(p);
    assert.deepEqual(kinds(seen, "warning"), [], `${p.client.name}: nothing given up`);
    assert.equal(p.client.undelivered, 0);
    assert.equal(p.client.outstanding, 0, `${p.client.name}: bob acknowledged everything`);
    assert.deepEqual(p.messages().filter((m) => m.startsWith("bob")), ["bob: bob before"]);
    assert.ok(
      !seen.some((e) => e.type === "peer" && e.name === "bob" && e.path === "relay"),
      `${p.client.name} never claimed bob relayed`,
    );
  }
});

Deno.test("a goodbye reaches a stopped peer through its socket when the server cannot relay it", () => {
  const net = new SimNet(2111);
  const server = addServer(net);
  const a = addPeer(net, "alice", at(1), undefined, { keepalive: 5_000 });
  const b = stoppable(net, "bob", 2);
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && b.lastPath("alice") !== undefined);
  net.run(2_000);
  b.stop.stopped = true;
  // The server restarts while bob sleeps: it will never relay anything to him.
  const fresh = new Registry({}, (n) => net.bytes(n), net.bytes(32));
  net.replace(server, fresh);
  net.run(30_000); // alice's path to bob has died long since
  a.client.leave(net.now);
  net.runUntilTrue(() => a.client.farewellDone, 2_000);
  net.detach(a.client);
  net.run(10_000);
  const from = b.drain().length;
  b.stop.wake(net.now);
  net.run(3_000);
  assert.deepEqual(
    b.drain().slice(from).flatMap((e) => e.type === "left" ? [[e.name, e.reason]] : []),
    [["alice", "bye"]],
    "read from the socket on waking: no ghost",
  );
});

Deno.test("a peer that leaves while another is stopped: the stopped one is told what it missed", () => {
  const net = new SimNet(2116);
  addServer(net);
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && b.lastPath("alice") !== undefined);
  net.run(2_000);
  b.stop.stopped = true;
  for (const line of ["one", "two", "three", "four"]) {
    a.client.send(net.now, line);
    net.run(2_000);
  }
  assert.equal(a.client.outstanding, 4, "nothing acknowledged");
  a.client.leave(net.now);
  net.runUntilTrue(() => a.client.farewellDone, 2_000);
  net.detach(a.client);
  const from = b.drain().length;
  b.stop.wake(net.now);
  net.run(3_000);
  const seen = b.drain().slice(from);
  // alice's oldest line was retried into bob's socket; the others never left her queue.
  assert.deepEqual(b.messages(), ["alice: one"]);
  assert.deepEqual(
    seen.flatMap((e) => e.type === "notice" && e.kind === "missed" ? [e.message] : []),
    ["Missed lines from alice: 3 frames of theirs never arrived (they gave them up)"],
  );
  assert.deepEqual(
    seen.flatMap((e) => e.type === "left" ? [[e.name, e.reason]] : []),
    [["alice", "bye"]],
  );
  assert.deepEqual(Object.keys(b.client.drops).filter((k) => k.startsWith("chat")), []);
});

Deno.test("a peer that leaves acknowledges with its goodbye what it read: its lost ACKs leave nothing outstanding", () => {
  const net = new SimNet(2116);
  addServer(net);
  const a = addPeer(net, "alice", at(1));
  const b = addPeer(net, "bob", at(2));
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && b.lastPath("alice") !== undefined);
  net.run(2_000);
  // bob's lines reach alice; every ACK of hers is lost on the way back.
  let lost = true;
  net.block = (from, to) => lost && from.port === at(1).port && to.port === at(2).port;
  b.client.send(net.now, "one");
  b.client.send(net.now, "two");
  net.runUntilTrue(() => a.drain().filter((e) => e.type === "message").length === 2, 2_000);
  net.run(50);
  assert.equal(b.client.outstanding, 2, "bob heard no ACK");
  lost = false;
  a.client.leave(net.now);
  net.runUntilTrue(() => a.client.farewellDone, 2_000);
  net.detach(a.client);
  net.runUntilTrue(() => b.drain().some((e) => e.type === "left" && e.name === "alice"), 2_000);
  assert.equal(
    b.client.outstanding + b.client.departedOutstanding,
    0,
    "her goodbye said what she read",
  );
});

Deno.test("a departed peer's ACKs still count; a warning only when it is forgotten, for what it never got", () => {
  const net = new SimNet(2117);
  addServer(net, { expireAfter: 75_000 });
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && b.lastPath("alice") !== undefined);
  net.run(2_000);
  b.stop.stopped = true;
  a.client.send(net.now, "one"); // retried into bob's socket while he sleeps
  net.run(10_000);
  a.client.send(net.now, "two"); // waits behind it: bob answers nothing
  const warnings = () => a.drain().flatMap((e) => e.type === "warning" ? [e.message] : []);
  // The server expires bob; his direct path died long ago: alice departs him.
  net.runUntilTrue(() => a.drain().some((e) => e.type === "left" && e.name === "bob"), 120_000);
  const departedAt = net.now;
  assert.equal(a.client.departedOutstanding, 2, "both lines wait for bob, departed");
  // bob wakes but cannot reach the server any more: alice holds him departed all along.
  net.block = (from, to) => from.port === at(2).port && to.port === SERVER.port;
  b.stop.wake(net.now);
  net.run(5_000);
  assert.deepEqual(b.messages(), ["alice: one"]);
  assert.equal(a.client.departedOutstanding, 1, "bob's ACK of the line he read cleared it");
  net.runUntil(departedAt + DEPARTED_KEEP - 1_000);
  assert.deepEqual(warnings(), [], "nothing given up while bob may come back");
  net.runUntil(departedAt + DEPARTED_KEEP + 1_000);
  assert.deepEqual(warnings(), [
    "bob left and did not come back; 1 message part to it was never delivered",
  ]);
  assert.equal(a.client.undelivered, 1);
  assert.equal(a.client.departedOutstanding, 0);
});

/** alice, a stoppable bob and carol, each direct with the other two (the server expires at 75 s). */
function threeDirect(net: SimNet) {
  addServer(net, { expireAfter: 75_000 });
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  const c = addPeer(net, "carol", at(3));
  net.runUntilTrue(() =>
    [a, b, c].every((p) => p.client.peers().filter((i) => i.path === "direct").length === 2)
  );
  return { a, b, c };
}

Deno.test("a peer waking from a long stop lists no one who left meanwhile for long", () => {
  const net = new SimNet(2118);
  const { b, c } = threeDirect(net);
  net.run(2_000);
  b.stop.stopped = true;
  // The server expires bob (no LEFT reaches him), carol departs him (no goodbye either), then
  // carol leaves; the server's LEFT goes to alice alone.
  net.run(85_000);
  c.client.leave(net.now);
  net.runUntilTrue(() => c.client.farewellDone, 2_000);
  net.detach(c.client);
  net.run(5_000);
  const from = b.drain().length;
  const woke = net.now;
  b.stop.wake(net.now);
  // bob registers again; the same run of the server no longer lists carol, and nothing reaches
  // her: she is gone now, not after a grace.
  net.runUntilTrue(() => !b.client.peers().some((p) => p.name === "carol"), 40_000);
  assert.ok(net.now - woke <= 5_000, `carol listed ${net.now - woke} ms after waking`);
  const seen = b.drain().slice(from);
  assert.deepEqual(
    seen.flatMap((e) => e.type === "left" ? [[e.name, e.reason]] : []),
    [["carol", "gone"]],
  );
  net.run(UNLISTED_GRACE);
  assert.deepEqual(b.client.peers().map((p) => p.name), ["alice"], "alice stays");
});

Deno.test("a roster that waited in the socket does not keep a departed peer listed for the grace", () => {
  const net = new SimNet(2119);
  const { b, c } = threeDirect(net);
  net.run(2_000);
  // carol leaves; her goodbye and the server's LEFT never reach bob (his socket overflowed).
  net.block = (from, to) => to.port === at(2).port && from.port !== at(1).port;
  c.client.leave(net.now);
  net.runUntilTrue(() => c.client.farewellDone, 2_000);
  net.detach(c.client);
  net.run(1_000);
  net.block = () => false;
  // bob's next PING (carol still in his digest) gets a ROSTER without her; he is stopped before
  // reading it, and sleeps 30 s (the server keeps him).
  net.tamper = (_from, to, data) => {
    if (to.port === at(2).port && data[3] === MsgType.Roster) b.stop.stopped = true;
    return data;
  };
  net.runUntilTrue(() => b.stop.stopped, 30_000);
  net.tamper = (_from, _to, data) => data;
  net.run(30_000);
  const from = b.drain().length;
  const woke = net.now;
  b.stop.wake(net.now);
  net.runUntilTrue(() => !b.client.peers().some((p) => p.name === "carol"), 40_000);
  assert.ok(net.now - woke <= 5_000, `carol listed ${net.now - woke} ms after waking`);
  assert.deepEqual(
    b.drain().slice(from).flatMap((e) => e.type === "left" ? [[e.name, e.reason]] : []),
    [["carol", "gone"]],
  );
  assert.deepEqual(b.client.peers().map((p) => p.name), ["alice"]);
});

Deno.test("a peer waking from a stop judges no one unlisted by its own silence", () => {
  const net = new SimNet(2112);
  const server = addServer(net);
  const a = stoppable(net, "alice", 1);
  const c = stoppable(net, "carol", 3);
  net.runUntilTrue(() =>
    a.lastPath("carol")?.path === "direct" && c.lastPath("alice") !== undefined
  );
  net.run(5_000);
  const from = a.drain().length;
  c.stop.stopped = true;
  a.client.send(net.now, "carol?"); // unanswered: alice's path to carol dies
  net.run(10_000);
  // The server restarts; alice registers again (carol, asleep, does not) and then sleeps too.
  const fresh = new Registry({}, (n) => net.bytes(n), net.bytes(32));
  net.replace(server, fresh);
  net.runUntilTrue(() => fresh.peerCount === 1 && a.client.registered, 30_000);
  net.run(1_000); // her roster is in: carol is unlisted
  a.stop.stopped = true;
  net.run(100_000);
  // carol wakes first and registers again; nothing of hers reaches alice until alice's own
  // timers have run (carol's view of alice is as stale as alice's of her).
  net.block = (from, to) => from.port === at(3).port && to.port === at(1).port;
  c.stop.wake(net.now);
  net.run(3_000);
  a.stop.wake(net.now);
  net.run(3_000);
  net.block = () => false;
  net.run(40_000);
  const seen = a.drain().slice(from);
  assert.deepEqual(seen.filter((e) => e.type === "left"), [], "carol never left");
  assert.ok(a.client.peers().some((p) => p.name === "carol"));
});

Deno.test("leaving waits for the peers that answer, not for one that stopped", () => {
  const net = new SimNet(2113);
  addServer(net);
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  const c = addPeer(net, "carol", at(3));
  net.runUntilTrue(() => a.client.peers().filter((p) => p.path === "direct").length === 2);
  net.run(2_000);
  b.stop.stopped = true;
  a.client.send(net.now, "one");
  assert.equal(a.client.awaiting(net.now), 2, "both are waited for at first");
  net.run(1_000);
  assert.equal(a.client.awaiting(net.now), 1, "carol acknowledged");
  net.run(UNANSWERED_AFTER);
  assert.equal(a.client.awaiting(net.now), 0, "bob does not answer: not waited for");
  assert.equal(a.client.outstanding, 1, "but the line to him is still queued");
  assert.deepEqual(c.messages(), ["alice: one"]);
  b.stop.wake(net.now);
  net.run(10_000);
  assert.equal(a.client.outstanding, 0);
  assert.deepEqual(b.messages(), ["alice: one"]);
});

Deno.test("a peer stopped a while is shown neither relayed nor again: its direct path is as it was", () => {
  const net = new SimNet(2114);
  addServer(net);
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && b.lastPath("alice") !== undefined);
  net.run(2_000);
  const from = a.drain().length;
  b.stop.stopped = true;
  a.client.send(net.now, "are you there?"); // its resends find the direct path dead
  net.run(20_000);
  assert.equal(a.client.peers()[0]?.path, "relay");
  b.stop.wake(net.now);
  net.runUntilTrue(() => a.client.peers()[0]?.path === "direct" && a.client.outstanding === 0);
  net.run(5_000);
  assert.deepEqual(b.messages(), ["alice: are you there?"]);
  assert.deepEqual(
    a.drain().slice(from).filter((e) => e.type === "peer"),
    [],
    "nothing to tell: the same direct path as before",
  );
});

Deno.test("a stopped peer's socket is not flooded: a line a second for a minute costs it a few datagrams", () => {
  const net = new SimNet(2115);
  addServer(net);
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && b.lastPath("alice") !== undefined);
  net.run(2_000);
  b.stop.stopped = true;
  let queued = 0;
  const t0 = net.now;
  net.tamper = (_from, to, data) => {
    if (to.port === at(2).port && net.now > t0) queued++;
    return data;
  };
  for (let i = 1; i <= 60; i++) {
    a.client.send(net.now, `line ${i}`);
    net.run(1_000);
  }
  // Relayed copies too reach bob's socket (the server still knows him).
  assert.ok(queued <= 40, `${queued} datagrams waiting for bob`);
  b.stop.wake(net.now);
  net.runUntilTrue(() => a.client.outstanding === 0, 30_000);
  assert.deepEqual(b.messages(), Array.from({ length: 60 }, (_, i) => `alice: line ${i + 1}`));
});

Deno.test("a LEFT (expired) read on waking, about a peer that came back meanwhile, is no `left`", () => {
  const net = new SimNet(2111);
  addServer(net, { expireAfter: 75_000 });
  // Relayed only: no direct path keeps the pair together, only what the server says.
  const a = stoppableWith(net, "alice", 1);
  const b = stoppableWith(net, "bob", 2);
  net.runUntilTrue(() => a.client.peers().length === 1 && b.client.peers().length === 1);
  net.run(2_000);
  const before = a.drain().length;
  // bob stops long enough for the server to expire him; alice stops before the LEFT comes.
  b.stop.stopped = true;
  net.run(20_000);
  a.stop.stopped = true;
  net.run(70_000); // The server expires bob; its LEFT waits in alice's socket.
  b.stop.wake(net.now); // bob registers again: his INTRO waits behind the LEFT.
  net.run(5_000);
  a.stop.wake(net.now);
  net.run(40_000);
  const after = a.drain().slice(before);
  assert.deepEqual(after.filter((e) => e.type === "left"), [], JSON.stringify(after));
  assert.equal(a.client.peers().map((p) => p.name).join(), "bob");
});

/** A relay-only peer that can be stopped. */
function stoppableWith(net: SimNet, name: string, n: number): SimPeer & { stop: Stoppable } {
  const p = addPeer(net, name, at(n), undefined, { relayOnly: true });
  const stop = new Stoppable(p.client);
  net.replace(p.client, stop);
  return Object.assign(p, { stop });
}

Deno.test("lines to a peer stopped 5 min, whom the server expired and reported left, arrive once when it wakes; nothing reported dropped", () => {
  const net = new SimNet(2116);
  addServer(net, { expireAfter: 75_000 });
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && b.lastPath("alice") !== undefined);
  net.run(2_000);
  const from = a.drain().length;
  b.stop.stopped = true;
  const sent = [1, 2, 3].map((i) => `alice: while away ${i}`);
  for (let i = 1; i <= 3; i++) {
    a.client.send(net.now, `while away ${i}`);
    net.run(1_000);
  }
  net.run(5 * 60_000);
  const away = a.drain().slice(from);
  assert.ok(
    away.some((e) => e.type === "left" && e.name === "bob"),
    "the server reported bob left",
  );
  assert.deepEqual(
    away.filter((e) => e.type === "peer" && e.name === "bob" && e.path === "relay"),
    [],
    "never claimed relayed meanwhile",
  );
  b.stop.wake(net.now);
  net.runUntilTrue(() => a.client.outstanding === 0 && a.client.peers().length === 1, 60_000);
  net.run(10_000);
  assert.deepEqual(b.messages().filter((m) => m.startsWith("alice")), sent, "each line once");
  const after = a.drain().slice(from);
  assert.deepEqual(kinds(after, "warning"), [], "nothing reported dropped");
  assert.equal(a.client.undelivered, 0);
  assert.equal(a.client.outstanding, 0);
});

Deno.test("lines to a peer that never comes back are given up after the 10 minutes its state is kept, said once", () => {
  const net = new SimNet(2117);
  addServer(net, { expireAfter: 75_000 });
  const a = addPeer(net, "alice", at(1));
  const b = stoppable(net, "bob", 2);
  net.runUntilTrue(() => a.lastPath("bob")?.path === "direct" && b.lastPath("alice") !== undefined);
  net.run(2_000);
  const from = a.drain().length;
  b.stop.stopped = true;
  for (let i = 1; i <= 3; i++) {
    a.client.send(net.now, `into the void ${i}`);
    net.run(1_000);
  }
  net.run(9 * 60_000);
  assert.deepEqual(kinds(a.drain().slice(from), "warning"), [], "nothing given up before");
  net.run(3 * 60_000);
  const warnings = a.drain().slice(from).filter((e) => e.type === "warning");
  assert.deepEqual(warnings.map((w) => w.type === "warning" && [w.kind, w.name]), [[
    "undelivered",
    "bob",
  ]]);
  assert.match(
    warnings[0]!.type === "warning" ? warnings[0]!.message : "",
    /bob left and did not come back; 3 message parts to it were never delivered/,
  );
  assert.equal(a.client.undelivered, 3, "the exit code will say so");
});
