/**
 * The sender's cost of one long chat line as the room grows (`deno bench` prints the ratios).
 *
 * A simulated room delivers one 64 KiB line (66 fragments) from one peer to all others, and
 * everything the sender's core is fed (datagrams, timer ticks, the line) is recorded. Each
 * benchmark iteration replays that input into a fresh sender with the same seeded identity,
 * which therefore does exactly the same work: sealing, acks, retransmission timers, for every
 * recipient. Only the replay from the moment the line is typed is measured. The baseline is a
 * room of two (one recipient): a core whose per-datagram cost does not grow with the room costs
 * about `recipients` times the baseline; anything above is per-datagram work growing with the
 * room (before the per-remote deadline heap: 44 ms at 16 peers, 1.14 s at 128).
 */
import { Client, type ClientOptions } from "../lib/peer/client.ts";
import { Identity } from "../lib/crypto/identity.ts";
import type { SansIo } from "../lib/io/udp.ts";
import type { Endpoint } from "../lib/wire/address.ts";
import type { Transmit } from "../lib/wire/transmit.ts";
import { seededRandom } from "../tests/support/prng.ts";
import { addPeer, addServer, SERVER, SimNet, type SimPeer, simRoom } from "../tests/support/sim.ts";

const LINE = "x".repeat(64 * 1024 - 16);

type Input =
  | { kind: "datagram"; now: number; from: Endpoint; data: Uint8Array }
  | { kind: "timeout"; now: number }
  | { kind: "send"; now: number };

/** Records what a machine is fed, and passes it on. */
class Recorder implements SansIo {
  readonly inputs: Input[] = [];
  constructor(readonly inner: Client) {}
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.inputs.push({ kind: "datagram", now, from, data: data.slice() });
    this.inner.handleDatagram(now, from, data);
  }
  handleTimeout(now: number): void {
    this.inputs.push({ kind: "timeout", now });
    this.inner.handleTimeout(now);
  }
  pollTransmit(): Transmit | undefined {
    return this.inner.pollTransmit();
  }
  nextTimeout(): number | undefined {
    return this.inner.nextTimeout();
  }
}

function senderOptions(n: number): ClientOptions {
  const seed = new Uint8Array(32).fill(n);
  return {
    server: SERVER,
    room: simRoom(),
    name: "sender",
    relayOnly: false,
    privateEndpoints: [],
    keepalive: 25_000,
    registerTimeout: 10_000,
    idSeed: new Uint8Array(32).fill(n),
    identity: Identity.fromPrivate(seed),
    // A fresh seeded byte source: each replay draws the same ephemeral keys as the recording.
    random: seededRandom(1000 + n),
  };
}

/** Runs the room once and returns the sender's inputs. */
function record(n: number): Input[] {
  const net = new SimNet(n);
  addServer(net, { maxRoomSize: n });
  const sender = new Recorder(new Client(senderOptions(n)));
  net.attach("sender", { hostname: "192.0.2.250", port: 1000 }, sender);
  sender.inner.start(net.now);
  const others: SimPeer[] = [];
  for (let i = 1; i < n; i++) {
    others.push(addPeer(net, `p${i}`, { hostname: `192.0.2.${i}`, port: 1000 }));
  }
  net.runUntilTrue(() => sender.inner.peers().filter((p) => p.path === "direct").length === n - 1);
  net.run(1_000);
  sender.inputs.push({ kind: "send", now: net.now });
  sender.inner.send(net.now, LINE);
  net.runUntilTrue(() => sender.inner.outstanding === 0, 120_000, 5);
  if (others.some((p) => p.messages().length !== 1)) throw new Error("line not delivered");
  return sender.inputs;
}

function replay(inputs: Input[], n: number, b: Deno.BenchContext): void {
  const c = new Client(senderOptions(n));
  c.start(0);
  for (const i of inputs) {
    if (i.kind === "send") {
      b.start();
      c.send(i.now, LINE);
    } else if (i.kind === "timeout") c.handleTimeout(i.now);
    else c.handleDatagram(i.now, i.from, i.data);
    while (c.pollTransmit()) { /* discard */ }
  }
  b.end();
  if (c.outstanding !== 0) throw new Error("replay diverged: the line is not acknowledged");
}

for (const n of [2, 16, 64, 128]) {
  const inputs = record(n);
  Deno.bench({
    name: `room of ${n} (${n - 1} recipients)`,
    group: "sender CPU for one 64 KiB line",
    baseline: n === 2,
    n: n >= 64 ? 10 : 30,
    warmup: 2,
  }, (b) => replay(inputs, n, b));
}
