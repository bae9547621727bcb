/**
 * The library surface, `mod.ts`: its exports are exactly the list below, each named in the
 * module's documentation (so the API grows only on purpose, and documented), and they suffice
 * to run a server and two peers on loopback that exchange a line. Imports `mod.ts` only.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as p2p from "../../mod.ts";
import {
  Client,
  type ClientEvent,
  deriveRoomKeys,
  Identity,
  Registry,
  systemRandom,
  UdpDriver,
} from "../../mod.ts";

/** Exports that exist at run time (functions, classes, constants). */
const VALUES = [
  "Client",
  "DEFAULT_REGISTRY",
  "Identity",
  "MAX_MESSAGE",
  "PROTOCOL_VERSION",
  "Registry",
  "UdpDriver",
  "deriveRoomKeys",
  "doctor",
  "fingerprint",
  "formatEndpoint",
  "newRoomSecret",
  "serve",
  "systemRandom",
];

/** Exports that are types only (`PortMapper` is a class exported as a type). */
const TYPES = [
  "AuxStats",
  "Behaviour",
  "ClientEvent",
  "ClientFileEvent",
  "ClientOptions",
  "DoctorCliOptions",
  "DoctorOutput",
  "DoctorReport",
  "DriverOptions",
  "DriverStats",
  "Endpoint",
  "FileEvent",
  "HttpRequest",
  "HttpResult",
  "MessageEvent",
  "Notice",
  "NoticeKind",
  "PathOptions",
  "PeerInfo",
  "PeerNat",
  "PortMapEvent",
  "PortMapHttp",
  "PortMapProtocol",
  "PortMapper",
  "RegistryEvent",
  "RegistryOptions",
  "RegistryStats",
  "ReliableOptions",
  "RemoteEvent",
  "RoomKeys",
  "SansIo",
  "ServeOptions",
  "ServerLinkOptions",
  "SupernodeStats",
  "Transmit",
  "Warning",
  "WarningKind",
];

interface DocJson {
  nodes: Record<string, { module_doc?: { doc?: string }; symbols: { name: string }[] }>;
}

/** `deno doc --json mod.ts`: every exported name (types too) and the module documentation. */
async function docOf(): Promise<{ names: string[]; moduleDoc: string }> {
  const url = new URL("../../mod.ts", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["doc", "--json", url.pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const doc = JSON.parse(new TextDecoder().decode(out.stdout)) as DocJson;
  const node = doc.nodes[url.href];
  assert.ok(node, `deno doc --json has no node for ${url.href}`);
  return { names: node.symbols.map((s) => s.name), moduleDoc: node.module_doc?.doc ?? "" };
}

const sorted = (a: readonly string[]) => [...a].sort();

Deno.test("mod.ts: the values exported are exactly the listed ones", () => {
  assert.deepEqual(sorted(Object.keys(p2p)), sorted(VALUES));
});

Deno.test("mod.ts: every export, types included, is listed and named in the module doc", async () => {
  const { names, moduleDoc } = await docOf();
  assert.deepEqual(sorted(names), sorted([...VALUES, ...TYPES]));
  const unnamed = names.filter((n) => !moduleDoc.includes(`\`${n}\``));
  assert.deepEqual(unnamed, [], "exports the module documentation of mod.ts does not name");
});

/** Resolves once `pred` holds for an event of `events`, checked after every step. */
function waiter() {
  const checks: (() => void)[] = [];
  return {
    check: () => checks.forEach((c) => c()),
    until(pred: () => boolean, what: string, ms = 15_000): Promise<void> {
      const { promise, resolve, reject } = Promise.withResolvers<void>();
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
      const c = () => {
        if (pred()) (clearTimeout(timer), resolve());
      };
      checks.push(c);
      c();
      return promise;
    },
  };
}

Deno.test("mod.ts suffices: a Registry and two Clients on UdpDrivers exchange a line", async () => {
  const registry = new Registry({}, systemRandom);
  const server = UdpDriver.bind("127.0.0.1", 0, registry, {
    onStep: () => {
      while (registry.pollEvent());
    },
  });
  server.start();
  const room = deriveRoomKeys("mod-test", "a passphrase nobody guesses");
  const w = waiter();
  const peer = (name: string) => {
    const events: ClientEvent[] = [];
    const client = new Client({
      server: server.localAddr,
      room,
      name,
      identity: Identity.generate(systemRandom),
      random: systemRandom,
      relayOnly: false,
      privateEndpoints: [],
      keepalive: 25_000,
      registerTimeout: 10_000,
      supernode: "off",
    });
    const driver = UdpDriver.bind("127.0.0.1", 0, client, {
      onStep: () => {
        for (let e = client.pollEvent(); e; e = client.pollEvent()) events.push(e);
        w.check();
      },
    });
    driver.step((now) => client.start(now));
    driver.start();
    return { client, driver, events };
  };
  const alice = peer("alice");
  const bob = peer("bob");
  try {
    const sees = (p: typeof alice, name: string) => () =>
      p.events.some((e) => e.type === "peer" && e.name === name);
    await w.until(sees(alice, "bob"), "alice to see bob");
    await w.until(sees(bob, "alice"), "bob to see alice");
    alice.driver.step((now) => assert.equal(alice.client.send(now, "hi bob"), 1));
    await w.until(
      () =>
        bob.events.some((e) => e.type === "message" && e.from === "alice" && e.text === "hi bob"),
      "bob to get alice's line",
    );
    assert.equal(bob.client.peers().map((p) => p.name).join(), "alice");
  } finally {
    for (const p of [alice, bob]) {
      p.driver.step((now) => p.client.leave(now));
      await p.driver.close();
    }
    await server.close();
  }
});
