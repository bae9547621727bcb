/**
 * What a flood of forged handshake message 1s costs a peer, against the same number of random
 * datagrams (the baseline: what any garbage costs). The forged frames name a real member as
 * sender (ids are clear text), come from one source or from spoofed sources, and carry random
 * bytes or a stranger's genuine message 1 made with another PSK. Prints one JSON line per case
 * with µs per datagram and the ratio to garbage (issue 17 #3: goal ≤ 2).
 *
 * Run: `deno run --allow-all bench/handshake_flood.ts [count]`.
 *
 * @module
 */
import { clientHarness } from "../tests/support/client_harness.ts";
import { encodeHandshake } from "../lib/wire/peer_frame.ts";
import { noiseFactory, payloadOf } from "../lib/peer/handshake/handshake.ts";
import { pairPrologue } from "../lib/peer/handshake/secure_link.ts";
import { simRoom } from "../tests/support/sim.ts";
import { seededRandom } from "../tests/support/prng.ts";
import type { Endpoint } from "../lib/wire/address.ts";

const N = Number(Deno.args[0] ?? 20_000);

function run(make: (i: number) => { from: Endpoint; data: Uint8Array }): number {
  const h = clientHarness(3);
  const x = h.intro(0, { hostname: "203.0.113.9", port: 4000 });
  h.drain();
  const frames = Array.from({ length: N }, (_, i) => make(i));
  // x's id is only known once introduced: the makers patch it in.
  for (const f of frames) if (f.data[0] === 0x70 && f.data[3] === 0x21) f.data.set(x, 4);
  for (const f of frames) if (f.data[0] === 0x70 && f.data[3] === 0x21) f.data.set(h.c.id, 12);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const now = 1_000 + Math.floor(i / 20); // 20,000 datagrams a second
    h.c.handleDatagram(now, frames[i]!.from, frames[i]!.data);
    h.drain();
  }
  return (performance.now() - t0) * 1000 / N;
}

const bytes = seededRandom(9);
const one: Endpoint = { hostname: "192.0.2.66", port: 5555 };
const spoofed = (i: number): Endpoint => ({
  hostname: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  port: 1024 + (i % 60000),
});
const ID = new Uint8Array(8);
const forged = (i: number) =>
  encodeHandshake({
    from: ID,
    to: ID,
    stage: 1,
    attempt: 1_000 + i,
    cookie: 7,
    message: bytes(32 + 4 + 16),
  });
const stranger = noiseFactory({
  staticKey: bytes(32),
  psk: simRoom("x", "other").psk,
  random: bytes,
});
const strangerMsg = (i: number) =>
  encodeHandshake({
    from: ID,
    to: ID,
    stage: 1,
    attempt: 1_000 + i,
    cookie: 7,
    message: stranger(true, pairPrologue(simRoom().id, ID, ID)).writeMessage(payloadOf(1_000 + i)),
  });

// Warm-up of every path.
run((i) => ({ from: one, data: forged(i) }));
const garbage = run((i) => ({ from: spoofed(i), data: bytes(29 + 52) }));
const cases: [string, (i: number) => { from: Endpoint; data: Uint8Array }][] = [
  ["forged-one-source", (i) => ({ from: one, data: forged(i) })],
  ["forged-spoofed", (i) => ({ from: spoofed(i), data: forged(i) })],
  ["stranger-spoofed", (i) => ({ from: spoofed(i), data: strangerMsg(i) })],
];
console.log(JSON.stringify({ case: "garbage", usPerDatagram: +garbage.toFixed(2) }));
for (const [name, make] of cases) {
  const us = run(make);
  console.log(
    JSON.stringify({
      case: name,
      usPerDatagram: +us.toFixed(2),
      ratio: +(us / garbage).toFixed(2),
    }),
  );
}
