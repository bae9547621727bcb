/**
 * `ReachHelper` (`lib/peer/reach_helper.ts`): the REACH a server's CHECK asks a supernode to
 * send: only when we offered to serve and serve, only to usable IPv4 endpoints, at most 1 a second
 * (burst 3), byte for byte the REACH the server made.
 */
import assert from "node:assert/strict";
import { HELP_BURST, ReachHelper } from "../../lib/peer/reach_helper.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { decodeServerMsg, type MsgOf } from "../../lib/wire/server_msg.ts";

const check = (target = { hostname: "203.0.113.9", port: 4000 }): MsgOf<typeof MsgType.Check> => ({
  type: MsgType.Check,
  token: new Uint8Array(8),
  seq: 1,
  target,
  nonce: new Uint8Array(8).fill(1),
  mac: new Uint8Array(16).fill(2),
});

Deno.test("reach helper: sends the server's REACH as it is, to the target, within its rate", () => {
  const h = new ReachHelper(true);
  assert.deepEqual(h.handle(0, check(), false), { ok: false, reason: "check-not-serving" });
  const r = h.handle(0, check(), true);
  assert.ok(r.ok);
  assert.deepEqual(r.transmit.to, { hostname: "203.0.113.9", port: 4000 });
  const d = decodeServerMsg(r.transmit.data);
  assert.ok(d.ok && d.value.type === MsgType.Reach);
  assert.deepEqual([d.value.nonce, d.value.mac], [check().nonce, check().mac]);
  for (let i = 1; i < HELP_BURST; i++) assert.ok(h.handle(0, check(), true).ok, `burst ${i}`);
  assert.deepEqual(h.handle(0, check(), true), { ok: false, reason: "check-rate" });
  assert.ok(h.handle(1000, check(), true).ok, "one more a second later");
});

Deno.test("reach helper: not a volunteer, or an unusable or IPv6 target: nothing sent", () => {
  assert.deepEqual(new ReachHelper(false).handle(0, check(), true), {
    ok: false,
    reason: "check-unwanted",
  });
  const h = new ReachHelper(true);
  for (
    const target of [
      { hostname: "127.0.0.1", port: 4000 },
      { hostname: "224.0.0.1", port: 4000 },
      { hostname: "203.0.113.9", port: 0 },
      { hostname: "2001:db8::1", port: 4000 },
    ]
  ) {
    assert.deepEqual(h.handle(0, check(target), true), { ok: false, reason: "check-bad-target" });
  }
});
