/**
 * Benchmarks with a baseline measured in the same run (`deno bench` prints the ratios).
 *
 * - `udp round trip`: 200 ping-pongs on loopback. Baseline: a raw Deno socket echo with one
 *   reused buffer (the floor). Compared: the same through the p2p server's relay (Registry on
 *   UdpDriver), and through a UdpDriver echo (driver overhead alone).
 * - `seal+open`: sealing and opening one 100-byte chat frame, against encoding it in plain.
 * - `registry relay step`: one relayed datagram with 2 vs 10,000 peers registered.
 * - `registry leave + join`: a peer of a 20-peer room leaves and a new one joins, with 20 vs
 *   10,000 peers (and relaying pairs) on the server: O(room), not O(server).
 */
import { handshakeSessions } from "../tests/support/sessions.ts";
import { Registry } from "../lib/server/registry.ts";
import { systemRandom } from "../lib/io/random.ts";
import { type SansIo, UdpDriver } from "../lib/io/udp.ts";
import type { Endpoint } from "../lib/wire/address.ts";
import { MsgType } from "../lib/wire/header.ts";
import {
  decodeInner,
  decodeSealed,
  encodeInner,
  encodeSealedHeader,
  InnerKind,
} from "../lib/wire/peer_frame.ts";
import { decodeServerMsg, encodeServerMsg } from "../lib/wire/server_msg.ts";
import type { Transmit } from "../lib/wire/transmit.ts";
import { signedHello, testPeerId } from "../tests/support/hello.ts";

const LO = "127.0.0.1";
const ROUNDS = 200;

function sock(): Deno.DatagramConn {
  return Deno.listenDatagram({ hostname: LO, port: 0, transport: "udp" });
}

function port(c: Deno.DatagramConn): number {
  return (c.addr as Deno.NetAddr).port;
}

/** The registration token in a WELCOME datagram. */
function welcomeToken(d: Uint8Array): Uint8Array {
  const m = decodeServerMsg(d);
  if (!m.ok || m.value.type !== MsgType.Welcome) throw new Error("expected a WELCOME");
  return m.value.token;
}

/** Sends `payload` from `a` to `to` and awaits one reply per round. */
async function pingPong(a: Deno.DatagramConn, to: Endpoint, payload: Uint8Array) {
  const buf = new Uint8Array(2048);
  for (let i = 0; i < ROUNDS; i++) {
    await a.send(payload, { transport: "udp", ...to });
    await a.receive(buf);
  }
}

// --- Baseline: raw echo -----------------------------------------------------------------
const rawA = sock(), rawB = sock();
const rawEcho = (async () => {
  const buf = new Uint8Array(2048);
  for (;;) {
    try {
      const [d, from] = await rawB.receive(buf);
      await rawB.send(d, from);
    } catch {
      return;
    }
  }
})();

// --- Driver echo ---------------------------------------------------------------------------
class Echo implements SansIo {
  #out: Transmit[] = [];
  handleDatagram(_now: number, from: Endpoint, data: Uint8Array): void {
    this.#out.push({ to: from, data: data.slice() });
  }
  handleTimeout(): void {}
  pollTransmit(): Transmit | undefined {
    return this.#out.shift();
  }
  nextTimeout(): number | undefined {
    return undefined;
  }
}
const echoDriver = UdpDriver.bind(LO, 0, new Echo());
echoDriver.start();
const drvA = sock();

// --- Relay: two registered peers, B echoes what the server relays to it back via the relay.
const registry = new Registry({}, systemRandom);
const server = UdpDriver.bind(LO, 0, registry);
server.start();
const serverEp = server.localAddr;
const relA = sock(), relB = sock();
const idA = testPeerId("bench a"), idB = testPeerId("bench b");
const buf = new Uint8Array(2048);
const tokens: Uint8Array[] = [];
for (const [c, id] of [[relA, idA], [relB, idB]] as const) {
  const local = { hostname: LO, port: port(c) };
  const hello = encodeServerMsg(
    signedHello("bench", { id, cookie: registry.cookieFor(id, local), nameTag: id }),
  );
  await c.send(hello, { transport: "udp", ...serverEp });
  tokens.push(welcomeToken((await c.receive(buf))[0]));
}
const [tokenA, tokenB] = tokens as [Uint8Array, Uint8Array];
await relA.receive(buf); // INTRO of b
await relB.receive(buf); // INTRO of a
const relayEcho = (async () => {
  const b = new Uint8Array(2048);
  for (;;) {
    try {
      const [d] = await relB.receive(b);
      const m = decodeServerMsg(d);
      if (!m.ok || m.value.type !== MsgType.Relayed) continue;
      const back = encodeServerMsg({
        type: MsgType.Relay,
        from: idB,
        token: tokenB,
        to: idA,
        payload: m.value.payload,
      });
      await relB.send(back, { transport: "udp", ...serverEp });
    } catch {
      return;
    }
  }
})();

const chat = new Uint8Array(100).fill(0x61);
const relayMsg = encodeServerMsg({
  type: MsgType.Relay,
  from: idA,
  token: tokenA,
  to: idB,
  payload: chat,
});

Deno.bench(
  { name: "raw socket echo", group: "udp round trip", baseline: true, n: 20 },
  async () => {
    await pingPong(rawA, { hostname: LO, port: port(rawB) }, chat);
  },
);
Deno.bench({ name: "UdpDriver echo", group: "udp round trip", n: 20 }, async () => {
  await pingPong(drvA, echoDriver.localAddr, chat);
});
Deno.bench({ name: "through the server relay", group: "udp round trip", n: 20 }, async () => {
  await pingPong(relA, serverEp, relayMsg);
});

// --- Per-frame CPU cost of end-to-end sealing ---------------------------------------------
// The sessions a real handshake gives (Noise transport ciphers with explicit nonces).
const { ab, ba } = handshakeSessions();
const inner = {
  kind: InnerKind.Data,
  seq: 1,
  stream: 0x1234_5678,
  base: 1,
  first: true,
  more: false,
  text: chat,
} as const;

Deno.bench({ name: "plain encode+decode", group: "frame", baseline: true }, () => {
  decodeInner(encodeInner(inner));
});
Deno.bench({ name: "sealed encode+decode", group: "frame" }, () => {
  const c = ab.nextCounter();
  const h = encodeSealedHeader(idA, idB, c);
  const body = ab.seal(c, h, encodeInner(inner));
  const frame = new Uint8Array(h.length + body.length);
  frame.set(h);
  frame.set(body, h.length);
  const s = decodeSealed(frame);
  if (!s.ok) throw new Error("decode failed");
  const plain = ba.open(s.value.counter, s.value.header, s.value.body);
  if (!plain) throw new Error("open failed");
  decodeInner(plain);
});

globalThis.addEventListener("unload", () => {
  for (const c of [rawA, rawB, drvA, relA, relB]) c.close();
  void echoDriver.close();
  void server.close();
  void rawEcho;
  void relayEcho;
});

// --- One relay step in the pure registry: 2 registered peers vs 10,000 -------------------------
function loadedRegistry(n: number) {
  const r = new Registry({}, systemRandom);
  const ids: Uint8Array[] = [];
  let firstToken: Uint8Array = new Uint8Array(8);
  for (let i = 0; i < n; i++) {
    const id = testPeerId(`loaded ${i + 1}`);
    const addr = { hostname: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 4000 };
    const hello = (cookie: Uint8Array) =>
      encodeServerMsg(signedHello(`room ${i % 500 + 1}`, { id, cookie, nameTag: id }));
    r.handleDatagram(0, addr, hello(r.cookieFor(id, addr)));
    const welcome = r.pollTransmit();
    if (i === 0) firstToken = welcomeToken(welcome!.data);
    while (r.pollTransmit()) { /* drain */ }
    ids.push(id);
  }
  const src = { hostname: "10.0.0.0", port: 4000 };
  // Peers 0 and 500 share room0.
  const relay = encodeServerMsg({
    type: MsgType.Relay,
    from: ids[0]!,
    token: firstToken,
    to: ids[n > 500 ? 500 : 1]!,
    payload: chat,
  });
  return { r, src, relay };
}
const small = loadedRegistry(2), large = loadedRegistry(10_000);
const step = (x: ReturnType<typeof loadedRegistry>) => {
  x.r.handleDatagram(1, x.src, x.relay);
  while (x.r.pollTransmit()) { /* drain */ }
  x.r.nextTimeout();
};
Deno.bench(
  { name: "2 peers registered", group: "registry relay step", baseline: true },
  () => step(small),
);
Deno.bench({ name: "10,000 peers registered", group: "registry relay step" }, () => step(large));

// --- Leaving and joining at scale: a peer of a 20-peer room leaves (BYE) and a new one joins -----
// Removal and registration cost O(room), not O(all peers) or O(relayed pairs): the same room size
// among 20 peers (baseline) and among 10,000 (with relaying pairs all over the server).
function churnRegistry(total: number) {
  const r = new Registry({ maxPeers: 2 * total }, systemRandom);
  let serial = 0;
  const join = (room: number) => {
    const id = testPeerId(`join ${++serial}`);
    const addr = {
      hostname: `10.${(serial >> 16) & 255}.${(serial >> 8) & 255}.${serial & 255}`,
      port: 4000,
    };
    r.handleDatagram(
      0,
      addr,
      encodeServerMsg(
        signedHello(`room ${room}`, { id, cookie: r.cookieFor(id, addr, 0), nameTag: id }),
      ),
    );
    const token = welcomeToken(r.pollTransmit()!.data);
    while (r.pollTransmit()) { /* drain */ }
    return { id, addr, token };
  };
  const peers = Array.from({ length: total }, (_, i) => join(1 + (i % (total / 20))));
  // Every pair of neighbours relays once, so removal has relay state to clean up.
  for (let i = 0; i + 1 < total; i++) {
    const a = peers[i]!, b = peers[i + (total / 20) < total ? i + total / 20 : i]!;
    if (a === b) continue;
    r.handleDatagram(
      0,
      a.addr,
      encodeServerMsg({ type: MsgType.Relay, from: a.id, token: a.token, to: b.id, payload: chat }),
    );
    while (r.pollTransmit()) { /* drain */ }
  }
  let victim = peers[0]!;
  return () => {
    r.handleDatagram(
      0,
      victim.addr,
      encodeServerMsg({ type: MsgType.Bye, id: victim.id, token: victim.token }),
    );
    while (r.pollTransmit()) { /* drain */ }
    victim = join(1);
  };
}
const churnSmall = churnRegistry(20), churnLarge = churnRegistry(10_000);
Deno.bench(
  { name: "20 peers on the server", group: "registry leave + join (room of 20)", baseline: true },
  churnSmall,
);
Deno.bench(
  { name: "10,000 peers on the server", group: "registry leave + join (room of 20)" },
  churnLarge,
);
