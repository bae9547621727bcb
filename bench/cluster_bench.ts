/**
 * What being in a cluster costs the registry per step, against the same registry alone (the
 * baseline, measured in the same run): a keepalive PING (the fast path; the cluster part only
 * checks that nothing changed), and a member leaving and another joining a room of 20 (each
 * publishes a record or a departure). The engine is not involved: published messages are taken
 * and dropped.
 *
 * @module
 */
import { DEFAULT_CLUSTER } from "../lib/server/cluster.ts";
import { Registry } from "../lib/server/registry.ts";
import { systemRandom } from "../lib/io/random.ts";
import { MsgType } from "../lib/wire/header.ts";
import { decodeServerMsg, encodeServerMsg } from "../lib/wire/server_msg.ts";
import { signedHello, testPeerId } from "../tests/support/hello.ts";

function registry(cluster: boolean): Registry {
  const r = new Registry({ maxPeers: 100_000 }, systemRandom);
  if (cluster) {
    r.joinCluster({
      ...DEFAULT_CLUSTER,
      server: systemRandom(8),
      key: systemRandom(32),
      endpoints: [{ hostname: "192.0.2.1", port: 7777 }],
      // With a shared secret the servers share cookies: a PING also checks the member's period.
      cookieKey: systemRandom(32),
    });
    r.handleWallClock(0, 1_796_000_000_000);
    r.handleEngine(0, true);
  }
  return r;
}

function drain(r: Registry): void {
  while (r.pollTransmit()) { /* drop */ }
  while (r.pollPublish()) { /* drop */ }
  while (r.pollEvent()) { /* drop */ }
}

/** A registry with 20 peers in each of 50 rooms; a step that leaves one and joins another. */
function churn(cluster: boolean): () => void {
  const r = registry(cluster);
  let serial = 0;
  const join = (room: number) => {
    const id = testPeerId(`churn ${++serial}`);
    const addr = {
      hostname: `10.${(serial >> 16) & 255}.${(serial >> 8) & 255}.${serial & 255}`,
      port: 4000,
    };
    const hello = signedHello(`room ${room}`, {
      id,
      cookie: r.cookieFor(id, addr, 0),
      nameTag: id,
    });
    r.handleDatagram(0, addr, encodeServerMsg(hello));
    const w = decodeServerMsg(r.pollTransmit()!.data);
    if (!w.ok || w.value.type !== MsgType.Welcome) throw new Error("expected a WELCOME");
    drain(r);
    return { id, addr, token: w.value.token };
  };
  const peers = Array.from({ length: 1000 }, (_, i) => join(1 + (i % 50)));
  let victim = peers[0]!;
  return () => {
    r.handleDatagram(
      0,
      victim.addr,
      encodeServerMsg({ type: MsgType.Bye, id: victim.id, token: victim.token }),
    );
    drain(r);
    victim = join(1);
  };
}

/** A registry with one member; a step is one of its PINGs and the PONG. */
function ping(cluster: boolean): () => void {
  const r = registry(cluster);
  const id = testPeerId("ping"), addr = { hostname: "10.0.0.1", port: 4000 };
  const hello = signedHello("room", { id, cookie: r.cookieFor(id, addr, 0), nameTag: id });
  r.handleDatagram(0, addr, encodeServerMsg(hello));
  const w = decodeServerMsg(r.pollTransmit()!.data);
  if (!w.ok || w.value.type !== MsgType.Welcome) throw new Error("expected a WELCOME");
  drain(r);
  const p = encodeServerMsg({
    type: MsgType.Ping,
    id,
    token: w.value.token,
    cookie: new Uint8Array(8),
    digest: 0,
  });
  return () => {
    r.handleDatagram(1, addr, p);
    drain(r);
  };
}

const pingAlone = ping(false), pingCluster = ping(true);
Deno.bench({ name: "alone", group: "registry PING step", baseline: true }, pingAlone);
Deno.bench({ name: "in a cluster", group: "registry PING step" }, pingCluster);

const churnAlone = churn(false), churnCluster = churn(true);
Deno.bench(
  { name: "alone", group: "registry leave + join (1,000 peers)", baseline: true },
  churnAlone,
);
Deno.bench({ name: "in a cluster", group: "registry leave + join (1,000 peers)" }, churnCluster);
