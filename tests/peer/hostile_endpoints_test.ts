/**
 * Reflection through claimed endpoints (issue 17 #8), from the attacker's side: a member claims
 * a victim's addresses as its private endpoints, so that every honest member sends the victim
 * handshake copies and probes on every join; or answers a probe from another address than the
 * one probed. What the victim receives, and what the members take as proven.
 */
import assert from "node:assert/strict";
import { clientHarness, HARNESS_SERVER } from "../support/client_harness.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MAX_GLOBAL_CLAIMS } from "../../lib/peer/introductions.ts";

const VICTIMS: Endpoint[] = [
  { hostname: "192.0.2.50", port: 9000 },
  { hostname: "10.0.0.5", port: 9000 },
  { hostname: "172.16.0.9", port: 53 },
];

Deno.test("hostile endpoints: private endpoints claimed by a peer behind another public IP receive nothing", () => {
  const h = clientHarness(31);
  h.intro(0, { hostname: "203.0.113.9", port: 4000 }, undefined, VICTIMS);
  const sent = [...h.drain(), ...h.runUntil(0, 60_000)];
  const toVictims = sent.filter((t) => VICTIMS.some((v) => v.hostname === t.to.hostname));
  assert.equal(toVictims.length, 0, `${toVictims.length} datagrams to the claimed addresses`);
  assert.ok(sent.some((t) => t.to.hostname === "203.0.113.9"), "its public address is tried");
});

Deno.test("hostile endpoints: a peer behind our own public IP is tried on its private endpoints", () => {
  const h = clientHarness(32);
  // The server sees us at its own address in this harness: a peer it sees there too is on our
  // site (behind the same NAT), and its LAN address is worth trying.
  const lan = { hostname: "192.168.1.20", port: 5000 };
  h.intro(0, { hostname: HARNESS_SERVER.hostname, port: 4000 }, undefined, [lan]);
  const sent = [...h.drain(), ...h.runUntil(0, 5_000)];
  assert.ok(sent.some((t) => t.to.hostname === lan.hostname), "the LAN address gets copies");
});

Deno.test("hostile endpoints: a CGNAT peer's shared-range address is tried when ours is in the range too", () => {
  const shared = { hostname: "100.70.1.2", port: 5000 };
  const h = clientHarness(33, { privateEndpoints: [{ hostname: "100.70.9.9", port: 5000 }] });
  h.intro(0, { hostname: "203.0.113.9", port: 4000 }, undefined, [shared]);
  const sent = [...h.drain(), ...h.runUntil(0, 5_000)];
  assert.ok(sent.some((t) => t.to.hostname === shared.hostname));
  const other = clientHarness(34);
  other.intro(0, { hostname: "203.0.113.9", port: 4000 }, undefined, [shared]);
  const none = [...other.drain(), ...other.runUntil(0, 5_000)];
  assert.ok(!none.some((t) => t.to.hostname === shared.hostname), "not from outside the range");
});

Deno.test("hostile endpoints: of the global IPv6 addresses a peer claims, only the first two are tried", () => {
  const claimed = Array.from(
    { length: 8 },
    (_, i) => ({ hostname: `2001:db8::${i + 1}`, port: 9000 }),
  );
  const h = clientHarness(35, { ipv6: true });
  h.intro(0, { hostname: "203.0.113.9", port: 4000 }, undefined, claimed);
  const sent = [...h.drain(), ...h.runUntil(0, 60_000)];
  const hit = new Set(
    sent.filter((t) => t.to.hostname.startsWith("2001:db8::")).map((t) => t.to.hostname),
  );
  assert.ok(hit.size <= MAX_GLOBAL_CLAIMS, `${hit.size} claimed addresses got datagrams`);
  assert.ok(hit.size > 0, "a host's own addresses are still tried");
});
