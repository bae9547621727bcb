/**
 * The handshake flood of `bench/handshake_flood.ts` on a real socket: a registered client on a
 * `UdpDriver` (this process) receives, from a flooder process, datagrams at a fixed rate for a
 * few seconds: random bytes (the baseline), or forged handshake message 1s naming a member as
 * sender, from one address. Prints this process's CPU per datagram for each, the ratio (issue 17
 * #3: goal ≤ 2), and how many forgeries reached the cryptography.
 *
 * Run: `deno run --allow-all bench/handshake_flood_udp.ts [rate] [seconds]`.
 *
 * @module
 */
import { clientHarness } from "../tests/support/client_harness.ts";
import { UdpDriver } from "../lib/io/udp.ts";
import { processCpuMs, sleep } from "./support.ts";

const RATE = Number(Deno.args[0] ?? 20_000);
const SECONDS = Number(Deno.args[1] ?? 3);

const FLOODER = `
const [port, kind, fromHex, toHex, rate, seconds] = Deno.args;
const hex = (s) => Uint8Array.from(s.match(/../g), (b) => parseInt(b, 16));
const from = hex(fromHex), to = hex(toHex);
const c = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
const dest = { transport: "udp", hostname: "127.0.0.1", port: Number(port) };
const make = (i) => {
  if (kind === "garbage") return crypto.getRandomValues(new Uint8Array(81));
  const f = new Uint8Array(29 + 52);
  f.set([0x70, 0x32, 7, 0x21]);
  f.set(from, 4);
  f.set(to, 12);
  f[20] = 1;
  new DataView(f.buffer).setUint32(21, 100000 + i);
  new DataView(f.buffer).setUint32(25, 7);
  crypto.getRandomValues(f.subarray(29));
  return f;
};
const total = Number(rate) * Number(seconds), perTick = Number(rate) / 100;
const start = performance.now();
for (let i = 0; i < total;) {
  for (let k = 0; k < perTick && i < total; k++, i++) c.send(make(i), dest).catch(() => {});
  const due = start + (i / Number(rate)) * 1000;
  const wait = due - performance.now();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
}
await new Promise((r) => setTimeout(r, 200));
c.close();
`;

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

async function run(kind: "garbage" | "forged"): Promise<{ us: number; read: number }> {
  const h = clientHarness(3);
  const x = h.intro(0, { hostname: "127.0.0.2", port: 4000 });
  h.drain();
  const failedBefore = h.c.drops["handshake-failed"] ?? 0;
  const driver = UdpDriver.bind("127.0.0.1", 0, h.c);
  driver.start();
  const port = driver.localAddr.port;
  const args = [String(port), kind, toHex(x), toHex(h.c.id), String(RATE), String(SECONDS)];
  const cpu0 = processCpuMs(Deno.pid);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", FLOODER, ...args],
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  // The flooder's CPU is its own process's; ours is the receiver's alone.
  await child.status;
  await sleep(100);
  const cpu = processCpuMs(Deno.pid) - cpu0;
  driver.close();
  return {
    us: (cpu * 1000) / (RATE * SECONDS),
    read: (h.c.drops["handshake-failed"] ?? 0) - failedBefore,
  };
}

await run("garbage"); // warm-up
const results: Record<string, { us: number; read: number }> = {};
for (let round = 0; round < 2; round++) {
  for (const kind of ["garbage", "forged"] as const) {
    const r = await run(kind);
    const prev = results[kind];
    results[kind] = prev ? { us: (prev.us + r.us) / 2, read: prev.read + r.read } : r;
  }
}
const g = results.garbage!, f = results.forged!;
console.log(JSON.stringify({
  rate: RATE,
  seconds: SECONDS,
  garbageUsPerDatagram: +g.us.toFixed(2),
  forgedUsPerDatagram: +f.us.toFixed(2),
  ratio: +(f.us / g.us).toFixed(2),
  forgeriesRead: f.read,
}));
