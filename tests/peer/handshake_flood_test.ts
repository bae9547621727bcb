/**
 * A flood of forged handshake message 1s (issue 17 #3), from the attacker's side: it knows two
 * peer ids (they travel in clear) and sends message 1s "from" a member, from one address or from
 * spoofed ones. What it gets: a bounded number of cryptographic reads (the rest dropped before
 * any), no answer; what the users see: the member's own handshake still completes.
 */
import assert from "node:assert/strict";
import { clientHarness } from "../support/client_harness.ts";
import { noiseFactory, payloadOf } from "../../lib/peer/handshake/handshake.ts";
import { pairPrologue } from "../../lib/peer/handshake/secure_link.ts";
import { DIRECT_FAILURES, SOURCE_FAILURES } from "../../lib/peer/handshake/failure_gate.ts";
import { decodeHandshake, encodeHandshake } from "../../lib/wire/peer_frame.ts";
import { decodeServerMsg } from "../../lib/wire/server_msg.ts";
import { MsgType } from "../../lib/wire/header.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import { simRoom } from "../support/sim.ts";
import { seededRandom } from "../support/prng.ts";
import type { Endpoint } from "../../lib/wire/address.ts";

const PEER_AT: Endpoint = { hostname: "203.0.113.9", port: 4000 };

/** Stage-2 handshake frames among `out`, relayed or direct. */
function answers(out: Transmit[]): number {
  let n = 0;
  for (const t of out) {
    const m = decodeServerMsg(t.data);
    const payload = m.ok && m.value.type === MsgType.Relay ? m.value.payload : t.data;
    const h = decodeHandshake(payload);
    if (h.ok && h.value.stage === 2) n++;
  }
  return n;
}

for (const spoofed of [false, true]) {
  Deno.test(`handshake flood: forged message 1s from ${spoofed ? "spoofed sources" : "one source"} cost bounded reads; the member still gets in`, () => {
    const h = clientHarness(21);
    const x = h.intro(0, PEER_AT);
    h.drain();
    const junk = seededRandom(5);
    let sent = 0;
    // One second of 5,000 forgeries: random Noise bytes, fresh attempts (so none is "old").
    for (let i = 0; i < 5_000; i++) {
      const from = spoofed
        ? { hostname: `10.${(i >> 8) & 255}.${i & 255}.1`, port: 1024 + i }
        : { hostname: "192.0.2.66", port: 5555 };
      const frame = encodeHandshake({
        from: x,
        to: h.c.id,
        stage: 1,
        attempt: 10_000 + i,
        cookie: 7,
        message: junk(52),
      });
      h.c.handleDatagram(1_000 + Math.floor(i / 5), from, frame);
      sent += h.drain().length;
    }
    assert.equal(sent, 0, "the attacker gets nothing back");
    const read = h.c.drops["handshake-failed"] ?? 0;
    const bound = spoofed
      ? DIRECT_FAILURES.burst + DIRECT_FAILURES.rate * 1 + 1
      : SOURCE_FAILURES.burst + SOURCE_FAILURES.rate * 1 + 1;
    assert.ok(read <= bound, `${read} forgeries read (at most ${bound})`);
    assert.ok((h.c.drops["handshake-limited"] ?? 0) >= 5_000 - bound, "the rest cost no crypto");
    // The member's genuine message 1, relayed by the server, is answered at once.
    const noise = noiseFactory({
      staticKey: h.bytes(32),
      psk: simRoom().psk,
      random: h.bytes,
    });
    const msg1 = noise(true, pairPrologue(simRoom().id, x, h.c.id)).writeMessage(
      payloadOf(20_000),
    );
    h.fromServer(2_001, {
      type: MsgType.Relayed,
      token: h.token,
      from: x,
      payload: encodeHandshake({
        from: x,
        to: h.c.id,
        stage: 1,
        attempt: 20_000,
        cookie: 0,
        message: msg1,
      }),
    });
    assert.ok(answers(h.drain()) >= 1, "the member gets its message 2");
  });
}
