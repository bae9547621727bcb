/**
 * The room's chat over the simulated network: recent lines for late joiners (history, from
 * their authors, each once, in order per sender, at most the room's last 50), private lines
 * (`/msg`: to one peer, never repeated), and live renames (`/nick`).
 */
import assert from "node:assert/strict";
import type { ClientEvent } from "../../lib/peer/client.ts";
import { HISTORY_LINES } from "../../lib/peer/chat_log.ts";
import { addPeer, addServer, SimNet, type SimPeer } from "../support/sim.ts";

const host = (n: number) => ({ hostname: `192.0.2.${n}`, port: 1000 + n });

type Message = Extract<ClientEvent, { type: "message" }>;

function messages(p: SimPeer): Message[] {
  return p.drain().filter((e): e is Message => e.type === "message");
}

function connected(p: SimPeer, ...names: string[]): boolean {
  return names.every((n) => p.lastPath(n) !== undefined);
}

/** `n` lines `tag 1` … `tag n` from `p`, 20 ms apart. */
function say(net: SimNet, p: SimPeer, tag: string, n: number): void {
  for (let i = 1; i <= n; i++) {
    p.client.send(net.now, `${tag} ${i}`);
    net.run(20);
  }
}

Deno.test("chat: a late joiner gets the room's last lines from their authors, marked as history, once each", () => {
  const net = new SimNet(71);
  addServer(net);
  const a = addPeer(net, "alice", host(10));
  const b = addPeer(net, "bob", host(20));
  net.runUntilTrue(() => connected(a, "bob") && connected(b, "alice"));
  say(net, a, "a", 40);
  say(net, b, "b", 20);
  net.run(2_000);
  const c = addPeer(net, "carol", host(30));
  net.runUntilTrue(() => connected(c, "alice", "bob"));
  net.run(3_000);
  const got = messages(c);
  assert.ok(got.every((m) => m.history === true), "everything before carol joined is history");
  const from = (name: string) => got.filter((m) => m.from === name).map((m) => m.text);
  // The room's last 50 lines were alice's 11..40 and bob's 1..20.
  assert.deepEqual(from("alice"), Array.from({ length: 30 }, (_, i) => `a ${i + 11}`));
  assert.deepEqual(from("bob"), Array.from({ length: 20 }, (_, i) => `b ${i + 1}`));
  assert.equal(got.length, HISTORY_LINES);
  // Live lines after joining are not history, and nothing comes twice.
  say(net, a, "after", 2);
  net.run(3_000);
  const later = messages(c).slice(got.length);
  assert.deepEqual(later.map((m) => [m.text, m.history ?? false]), [
    ["after 1", false],
    ["after 2", false],
  ]);
  // The members who were there all along get no history.
  assert.ok(messages(b).every((m) => !m.history));
});

Deno.test("chat: /msg reaches one peer, marked private, and is never history", () => {
  const net = new SimNet(72);
  addServer(net);
  const a = addPeer(net, "alice", host(10));
  const b = addPeer(net, "bob", host(20));
  const c = addPeer(net, "carol", host(30));
  net.runUntilTrue(() => connected(a, "bob", "carol") && connected(b, "carol"));
  assert.equal(a.client.sendPrivate(net.now, "bob", "just for you"), 1);
  assert.equal(a.client.sendPrivate(net.now, "nobody", "lost"), 0);
  a.client.send(net.now, "for everyone");
  net.run(2_000);
  assert.deepEqual(messages(b).map((m) => [m.text, m.private ?? false]), [
    ["just for you", true],
    ["for everyone", false],
  ]);
  assert.deepEqual(messages(c).map((m) => m.text), ["for everyone"]);
  assert.ok(a.drain().some((e) => e.type === "notice" && e.kind === "no-such-peer"));
  const d = addPeer(net, "dave", host(40));
  net.runUntilTrue(() => connected(d, "alice"));
  net.run(2_000);
  assert.deepEqual(messages(d).map((m) => m.text), ["for everyone"]);
});

Deno.test("chat: /nick renames live; peers are told and later lines carry the new name", () => {
  const net = new SimNet(73);
  addServer(net);
  const a = addPeer(net, "alice", host(10));
  const b = addPeer(net, "bob", host(20));
  net.runUntilTrue(() => connected(a, "bob") && connected(b, "alice"));
  assert.match(b.client.rename(net.now, "alice") ?? "", /taken/);
  assert.match(b.client.rename(net.now, "bad\u0007name") ?? "", /not allowed/);
  assert.equal(b.client.rename(net.now, "robert"), null);
  b.client.send(net.now, "hi, new name");
  net.run(2_000);
  const told = a.drain().filter((e) => e.type === "notice" && e.kind === "nick");
  assert.deepEqual(told.map((e) => e.type === "notice" && e.message), [
    "bob is now known as robert",
  ]);
  assert.deepEqual(messages(a).map((m) => `${m.from}: ${m.text}`), ["robert: hi, new name"]);
  assert.equal(a.client.peers().find((p) => p.name === "robert")?.name, "robert");
  // A peer that joins later meets robert under his new name.
  const c = addPeer(net, "carol", host(30));
  net.runUntilTrue(() => connected(c, "alice", "robert"));
});
