/**
 * Unit tests of STUN on the rendezvous port (`lib/nat/stun.ts`, the demultiplexer in `server.ts`):
 *
 * - the codec against the RFC 5769 test vectors (sample request, IPv4 and IPv6 responses:
 *   FINGERPRINT/CRC-32 and XOR-MAPPED-ADDRESS; MESSAGE-INTEGRITY is not checked), rejection of
 *   every truncation and of bad fingerprints, and 100k seeded fuzz cases: what decodes encodes
 *   again to the same fields, the rest is rejected with a reason and counted as one drop;
 * - the responder: RFC 8489 and RFC 3489 answers, RFC 5780 CHANGE-REQUEST / RESPONSE-ORIGIN /
 *   OTHER-ADDRESS, RESPONSE-PORT, PADDING, 420 and 400 errors, what is never answered, the
 *   amplification bound and the per-source and total rate limits;
 * - demultiplexing STUN from p2p datagrams ({@link PrimaryMachine}), and a real `p2p serve`
 *   with `--alt-port`/`--alt-host` on loopback answering a CHANGE-REQUEST from the other socket
 *   while still speaking p2p on the same port;
 * - the `--alt-port` and `--alt-host` arguments.
 *
 * The NAT-lab tests with coturn's clients are in `stun_lab_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  altPortOf,
  Attr,
  BINDING,
  bindingRequest,
  CHANGE_IP,
  CHANGE_PORT,
  crc32,
  decodeAddress,
  decodeStun,
  encodeAddress,
  encodeStun,
  findAttribute,
  FINGERPRINT_XOR,
  looksLikeStun,
  MAGIC_COOKIE,
  mappedAddress,
  PADDED_REQUEST_LEN,
  type StunAttribute,
  StunClass,
  type StunMessage,
  StunResponder,
  type StunSockets,
} from "../../lib/nat/stun.ts";
import { Registry } from "../../lib/server/registry.ts";
import { StunProbe } from "../../lib/nat/stun_probe.ts";
import { Doctor } from "../../lib/nat/doctor.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { decodeServerMsg, encodeServerMsg } from "../../lib/wire/server_msg.ts";
import { parseCommand, UsageError } from "../../main.ts";
import { PrimaryMachine, StunHub } from "../../lib/roles/serve.ts";
import { concat } from "../support/bytes.ts";
import { prng, randomBytesFrom, seededRandom } from "../support/prng.ts";
import { P2pProcess } from "../support/proc.ts";
import { signedHello, testPeerId } from "../support/hello.ts";

// ---------------------------------------------------------------------------------------------
// RFC 5769 test vectors

/** The bytes written in `hex` as hexadecimal digit pairs; spaces are ignored. */
function fromHex(hex: string): Uint8Array {
  const digits = hex.replaceAll(" ", "");
  assert.match(digits, /^(?:[0-9a-f]{2})*$/, "hex digit pairs");
  return Uint8Array.from(digits.match(/../g) ?? [], (h) => parseInt(h, 16));
}

const TXID = fromHex("b7e7a701 bc34d686 fa87dfae");

/** RFC 5769 §2.1: a Binding request (SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MI, FP). */
const SAMPLE_REQUEST = fromHex(
  "00010058 2112a442 b7e7a701 bc34d686 fa87dfae 80220010 5354554e 20746573" +
    "7420636c 69656e74 00240004 6e0001ff 80290008 932ff9b1 51263b36 00060009" +
    "6576746a 3a683676 59202020 00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249" +
    "c1b571a2 80280004 e57a3bcf",
);

/** RFC 5769 §2.2: the IPv4 Binding success response (192.0.2.1:32853). */
const SAMPLE_IPV4_RESPONSE = fromHex(
  "0101003c 2112a442 b7e7a701 bc34d686 fa87dfae 8022000b 74657374 20766563" +
    "746f7220 00200008 0001a147 e112a643 00080014 2b91f599 fd9e90c3 8c7489f9" +
    "2af9ba53 f06be7d7 80280004 c07d4c96",
);

/** RFC 5769 §2.3: the IPv6 Binding success response ([2001:db8:1234:5678:11:2233:4455:6677]:32853). */
const SAMPLE_IPV6_RESPONSE = fromHex(
  "01010048 2112a442 b7e7a701 bc34d686 fa87dfae 8022000b 74657374 20766563" +
    "746f7220 00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9 00080014" +
    "a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41 80280004 c8fb0b4c",
);

const VECTORS = [SAMPLE_REQUEST, SAMPLE_IPV4_RESPONSE, SAMPLE_IPV6_RESPONSE];

function decoded(b: Uint8Array): StunMessage {
  const d = decodeStun(b);
  assert.ok(d.ok, `decodes: ${d.ok ? "" : d.reason}`);
  return d.value;
}

const utf8 = new TextDecoder();

Deno.test("stun codec: CRC-32 check value and the RFC 5769 FINGERPRINTs", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  const fp = (b: Uint8Array) => (crc32(b.subarray(0, b.length - 8)) ^ FINGERPRINT_XOR) >>> 0;
  assert.equal(fp(SAMPLE_REQUEST), 0xe57a3bcf);
  assert.equal(fp(SAMPLE_IPV4_RESPONSE), 0xc07d4c96);
  assert.equal(fp(SAMPLE_IPV6_RESPONSE), 0xc8fb0b4c);
});

Deno.test("stun codec: RFC 5769 sample request decodes, fingerprint checked", () => {
  const m = decoded(SAMPLE_REQUEST);
  assert.equal(m.cls, StunClass.Request);
  assert.equal(m.method, BINDING);
  assert.ok(m.cookie && m.fingerprint);
  assert.deepEqual(m.transactionId, TXID);
  assert.deepEqual(m.attributes.map((a) => a.type), [
    Attr.Software,
    Attr.Priority,
    0x8029, // ICE-CONTROLLED
    Attr.Username,
    Attr.MessageIntegrity,
    Attr.Fingerprint,
  ]);
  assert.equal(utf8.decode(findAttribute(m, Attr.Software)!.value), "STUN test client");
  assert.equal(utf8.decode(findAttribute(m, Attr.Username)!.value), "evtj:h6vY"); // 9 bytes, padded
});

Deno.test("stun codec: RFC 5769 sample responses give the mapped addresses", () => {
  const v4 = decoded(SAMPLE_IPV4_RESPONSE);
  assert.equal(v4.cls, StunClass.Success);
  assert.equal(v4.method, BINDING);
  assert.ok(v4.fingerprint);
  assert.equal(utf8.decode(findAttribute(v4, Attr.Software)!.value), "test vector");
  assert.deepEqual(mappedAddress(v4), { hostname: "192.0.2.1", port: 32853 });
  const v6 = decoded(SAMPLE_IPV6_RESPONSE);
  assert.deepEqual(mappedAddress(v6), {
    hostname: "2001:db8:1234:5678:11:2233:4455:6677",
    port: 32853,
  });
  // Encoding the same addresses gives the vectors' XOR-MAPPED-ADDRESS bytes.
  assert.deepEqual(
    encodeAddress({ hostname: "192.0.2.1", port: 32853 }, TXID),
    findAttribute(v4, Attr.XorMappedAddress)!.value,
  );
  assert.deepEqual(
    encodeAddress({ hostname: "2001:db8:1234:5678:11:2233:4455:6677", port: 32853 }, TXID),
    findAttribute(v6, Attr.XorMappedAddress)!.value,
  );
});

Deno.test("stun codec: encode → decode round trip; FINGERPRINT is last and verifies", () => {
  const attributes: StunAttribute[] = [
    { type: Attr.Software, value: new TextEncoder().encode("p2p") }, // padded to 4
    { type: Attr.MappedAddress, value: encodeAddress({ hostname: "10.1.2.3", port: 9 })! },
    { type: 0x8888, value: new Uint8Array(0) },
  ];
  const b = encodeStun({
    cls: StunClass.Success,
    transactionId: TXID,
    attributes,
    fingerprint: true,
  });
  assert.equal(b.length, 20 + 8 + 12 + 4 + 8);
  assert.equal((b[4]! << 24 | b[5]! << 16 | b[6]! << 8 | b[7]!) >>> 0, MAGIC_COOKIE);
  const m = decoded(b);
  assert.equal(m.cls, StunClass.Success);
  assert.ok(m.fingerprint);
  assert.deepEqual(m.attributes.slice(0, 3), attributes);
  // Classic (16-byte transaction id): no cookie, no FINGERPRINT.
  const tid16 = new Uint8Array(16).fill(7);
  const c = decoded(
    encodeStun({ cls: StunClass.Request, transactionId: tid16, attributes: [], fingerprint: true }),
  );
  assert.ok(!c.cookie && !c.fingerprint);
  assert.deepEqual(c.transactionId, tid16);
  // Every message type bit pattern survives.
  for (const cls of [0, 1, 2, 3] as const) {
    for (const method of [0x001, 0x003, 0x00f, 0x070, 0xf80, 0xfff]) {
      const r = decoded(encodeStun({ method, cls, transactionId: TXID, attributes: [] }));
      assert.deepEqual([r.method, r.cls], [method, cls]);
    }
  }
});

Deno.test("stun codec: bad fingerprints, misplaced ones and every truncation are rejected", () => {
  const reason = (b: Uint8Array) => {
    const d = decodeStun(b);
    assert.ok(!d.ok, "rejected");
    return d.reason;
  };
  for (const v of VECTORS) {
    const bad = v.slice();
    bad[bad.length - 1]! ^= 1;
    assert.equal(reason(bad), "stun-bad-fingerprint");
    const body = v.slice();
    body[30]! ^= 0x40; // inside SOFTWARE: the CRC no longer matches
    assert.equal(reason(body), "stun-bad-fingerprint");
    for (let n = 0; n < v.length; n++) assert.ok(!decodeStun(v.subarray(0, n)).ok, `prefix ${n}`);
  }
  // FINGERPRINT followed by another attribute.
  const fpFirst = concat(SAMPLE_IPV4_RESPONSE, [0x80, 0x22, 0x00, 0x00]);
  fpFirst[3] = fpFirst[3]! + 4;
  assert.match(reason(fpFirst), /stun-(fingerprint-not-last|bad-fingerprint)/);
  // Length field not a multiple of 4, or not the datagram's, first bits not zero.
  const odd = SAMPLE_IPV4_RESPONSE.slice();
  odd[3] = 0x3d;
  assert.equal(reason(odd), "stun-bad-length");
  assert.equal(reason(concat(SAMPLE_IPV4_RESPONSE, [0, 0, 0, 0])), "stun-length-mismatch");
  const p2p = SAMPLE_IPV4_RESPONSE.slice();
  p2p[0] = 0x70;
  assert.equal(reason(p2p), "stun-not-stun");
  // An attribute running past the end.
  const long = encodeStun({
    cls: 0,
    transactionId: TXID,
    attributes: [{ type: 0x8001, value: new Uint8Array(8) }],
  });
  long[23] = 9;
  assert.equal(reason(long), "stun-truncated-attribute");
});

Deno.test("stun codec: addresses with a bad family or length decode to null", () => {
  assert.equal(decodeAddress(new Uint8Array([0, 1, 0, 80, 1, 2, 3])), null);
  assert.equal(decodeAddress(new Uint8Array([0, 3, 0, 80, 1, 2, 3, 4])), null);
  assert.equal(decodeAddress(new Uint8Array([0, 2, 0, 80, 1, 2, 3, 4])), null);
  assert.equal(encodeAddress({ hostname: "not-an-ip", port: 1 }), null);
  assert.deepEqual(decodeAddress(encodeAddress({ hostname: "::1", port: 5 })!), {
    hostname: "::1",
    port: 5,
  });
  assert.deepEqual(decodeAddress(encodeAddress({ hostname: "::", port: 5 })!), {
    hostname: "::",
    port: 5,
  });
});

Deno.test("stun codec: demultiplexing by the first bytes", () => {
  const hello = encodeServerMsg(
    signedHello("stun", { id: testPeerId("stun 1"), nameTag: new Uint8Array(8) }),
  );
  assert.deepEqual([...hello.subarray(0, 2)], [0x70, 0x32]);
  assert.ok(!looksLikeStun(hello));
  for (const v of VECTORS) assert.ok(looksLikeStun(v));
  assert.ok(looksLikeStun(bindingRequest(new Uint8Array(16)))); // RFC 3489: no cookie
  assert.ok(!looksLikeStun(new Uint8Array(19)));
});

// ---------------------------------------------------------------------------------------------
// Responder

const A1 = "203.0.113.1", A2 = "203.0.113.2", P1 = 3478, P2 = 3479;
const FULL: StunSockets = [
  { hostname: A1, port: P1 },
  { hostname: A1, port: P2 },
  { hostname: A2, port: P1 },
  { hostname: A2, port: P2 },
];
const CLIENT: Endpoint = { hostname: "198.51.100.7", port: 40000 };
const tid = (n: number) => new Uint8Array(12).fill(n);
const tid16 = (n: number) => new Uint8Array(16).fill(n);

function answer(r: StunResponder, req: Uint8Array, via = 0, from = CLIENT, now = 0) {
  const reply = r.handle(now, via, from, req);
  assert.ok(reply, "answered");
  return { ...reply, msg: decoded(reply.data) };
}

function addr(m: StunMessage, type: number): Endpoint | null {
  const a = findAttribute(m, type);
  return a
    ? decodeAddress(a.value, type === Attr.XorMappedAddress ? m.transactionId : undefined)
    : null;
}

Deno.test("stun responder: without alternate sockets, XOR-MAPPED, MAPPED and FINGERPRINT only", () => {
  const r = new StunResponder({ sockets: [FULL[0]] });
  assert.equal(r.behaviourDiscovery, false);
  const req = bindingRequest(tid(1));
  const a = answer(r, req);
  assert.equal(a.via, 0);
  assert.deepEqual(a.to, CLIENT);
  assert.equal(a.msg.cls, StunClass.Success);
  assert.deepEqual(a.msg.transactionId, tid(1));
  assert.deepEqual(a.msg.attributes.map((x) => x.type), [
    Attr.XorMappedAddress,
    Attr.MappedAddress,
    Attr.Fingerprint,
  ]);
  assert.deepEqual(addr(a.msg, Attr.XorMappedAddress), CLIENT);
  assert.deepEqual(addr(a.msg, Attr.MappedAddress), CLIENT);
  assert.equal(a.data.length, 52);
  // The RFC 5769 request (credentials, ICE attributes) is answered too.
  assert.deepEqual(mappedAddress(answer(r, SAMPLE_REQUEST).msg), CLIENT);
  // RFC 3489: the 16-byte transaction id is echoed; MAPPED-ADDRESS only, no cookie.
  const c = answer(r, bindingRequest(tid16(2)));
  assert.ok(!c.msg.cookie);
  assert.deepEqual(c.msg.transactionId, tid16(2));
  assert.deepEqual(c.msg.attributes.map((x) => x.type), [Attr.MappedAddress]);
  assert.equal(c.data.length, 32);
  // SOFTWARE when configured.
  const sw = new StunResponder({ sockets: [FULL[0]], software: "p2p 0.1.0" });
  assert.equal(utf8.decode(findAttribute(answer(sw, req).msg, Attr.Software)!.value), "p2p 0.1.0");
  assert.deepEqual(r.stats, { answered: 3, errors: 0, changed: 0, classic: 1, drops: {} });
});

Deno.test("stun responder: RFC 5780 and RFC 3489 behaviour discovery with four sockets", () => {
  const r = new StunResponder({ sockets: FULL });
  assert.equal(r.behaviourDiscovery, true);
  const flags = [0, CHANGE_PORT, CHANGE_IP, CHANGE_IP | CHANGE_PORT];
  for (let via = 0; via < 4; via++) {
    for (let f = 0; f < 4; f++) {
      const a = answer(r, bindingRequest(tid(via * 4 + f), { change: flags[f] }), via);
      const want = via ^ f; // bit 0: port, bit 1: address
      assert.equal(a.via, want, `via ${via}, change ${f}`);
      assert.deepEqual(addr(a.msg, Attr.ResponseOrigin), FULL[want]);
      assert.deepEqual(addr(a.msg, Attr.OtherAddress), FULL[via ^ 3]);
      assert.deepEqual(addr(a.msg, Attr.XorMappedAddress), CLIENT);
      assert.equal(a.msg.cls, StunClass.Success);
    }
  }
  // The smallest request gets 76 bytes: the amplification bound documented in lib/nat/stun.ts.
  assert.equal(answer(r, bindingRequest(tid(99), { fingerprint: false })).data.length, 76);
  // Classic clients: SOURCE-ADDRESS and CHANGED-ADDRESS.
  const c = answer(r, bindingRequest(tid16(3), { change: CHANGE_IP }), 0);
  assert.equal(c.via, 2);
  assert.deepEqual(c.msg.attributes.map((x) => x.type), [
    Attr.MappedAddress,
    Attr.SourceAddress,
    Attr.ChangedAddress,
  ]);
  assert.deepEqual(addr(c.msg, Attr.SourceAddress), FULL[2]);
  assert.deepEqual(addr(c.msg, Attr.ChangedAddress), FULL[3]);
  assert.equal(c.data.length, 56);
  assert.equal(r.stats.changed, 12 + 1);
});

Deno.test("stun responder: a change it cannot make, unknown required attributes → 420", () => {
  const unknownOf = (m: StunMessage) => {
    const v = findAttribute(m, Attr.UnknownAttributes)!.value;
    return [...Array(v.length / 2).keys()].map((i) => (v[2 * i]! << 8) | v[2 * i + 1]!);
  };
  const code = (m: StunMessage) => {
    const v = findAttribute(m, Attr.ErrorCode)!.value;
    return v[2]! * 100 + v[3]!;
  };
  const one = new StunResponder({ sockets: [FULL[0]] });
  const e = answer(one, bindingRequest(tid(1), { change: CHANGE_PORT }));
  assert.equal(e.msg.cls, StunClass.Error);
  assert.equal(e.via, 0);
  assert.equal(code(e.msg), 420);
  assert.deepEqual(unknownOf(e.msg), [Attr.ChangeRequest]);
  assert.ok(e.msg.fingerprint);
  // With --alt-port only: change port works, change IP does not, no OTHER-ADDRESS.
  const port = new StunResponder({ sockets: [FULL[0], FULL[1]] });
  assert.equal(port.behaviourDiscovery, false);
  const cp = answer(port, bindingRequest(tid(2), { change: CHANGE_PORT }));
  assert.equal(cp.via, 1);
  assert.equal(findAttribute(cp.msg, Attr.OtherAddress), undefined);
  assert.equal(code(answer(port, bindingRequest(tid(3), { change: CHANGE_IP })).msg), 420);
  // ... but p2p's ALT-PORT names the other port of the address asked (60 bytes at most for the
  // smallest request), and a server with one port or with both addresses sends none.
  const plainAnswer = answer(port, bindingRequest(tid(5), { fingerprint: false }));
  assert.equal(altPortOf(plainAnswer.msg), FULL[1]!.port);
  assert.equal(plainAnswer.data.length, 60);
  assert.equal(altPortOf(answer(port, bindingRequest(tid(6)), 1).msg), FULL[0]!.port);
  assert.equal(altPortOf(answer(one, bindingRequest(tid(7))).msg), null);
  assert.equal(
    altPortOf(answer(new StunResponder({ sockets: FULL }), bindingRequest(tid(8))).msg),
    null,
  );
  // Unknown comprehension-required attributes (and RESPONSE-ADDRESS, never honoured) are
  // listed; unknown optional ones are ignored.
  const withAttrs = (attributes: StunAttribute[], t = tid(4)) =>
    encodeStun({
      cls: StunClass.Request,
      transactionId: t,
      attributes,
      fingerprint: t.length === 12,
    });
  const redirect = encodeAddress({ hostname: "192.0.2.99", port: 53 })!;
  const u = answer(
    one,
    withAttrs([
      { type: Attr.ResponseAddress, value: redirect },
      { type: 0x7777, value: new Uint8Array(4) },
      { type: 0x8888, value: new Uint8Array(4) },
    ]),
  );
  assert.deepEqual(u.to, CLIENT, "never sent elsewhere");
  assert.deepEqual(unknownOf(u.msg), [Attr.ResponseAddress, 0x7777]);
  assert.equal(
    answer(one, withAttrs([{ type: 0x8888, value: new Uint8Array(4) }])).msg.cls,
    StunClass.Success,
  );
  // RFC 3489 lists repeat one to fill 4 bytes.
  const classic = answer(one, withAttrs([{ type: 0x7777, value: new Uint8Array(4) }], tid16(5)));
  assert.deepEqual(unknownOf(classic.msg), [0x7777, 0x7777]);
  // Malformed CHANGE-REQUEST / RESPONSE-PORT → 400.
  assert.equal(
    code(answer(one, withAttrs([{ type: Attr.ChangeRequest, value: new Uint8Array(3) }])).msg),
    400,
  );
  assert.equal(
    code(answer(one, withAttrs([{ type: Attr.ResponsePort, value: new Uint8Array(4) }])).msg),
    400,
  );
  assert.equal(one.stats.errors, 5);
});

Deno.test("stun responder: RESPONSE-PORT (same address only) and PADDING within the request size", () => {
  const r = new StunResponder({ sockets: FULL });
  const rp = new Uint8Array([0x9c, 0x41, 0, 0]); // 40001
  const req = encodeStun({
    cls: StunClass.Request,
    transactionId: tid(1),
    attributes: [{ type: Attr.ResponsePort, value: rp }],
    fingerprint: true,
  });
  const a = answer(r, req);
  assert.deepEqual(a.to, { hostname: CLIENT.hostname, port: 40001 });
  assert.deepEqual(mappedAddress(a.msg), CLIENT);
  for (const pad of [0, 4, 100, 1500]) {
    const p = encodeStun({
      cls: StunClass.Request,
      transactionId: tid(2),
      attributes: [{ type: Attr.Padding, value: new Uint8Array(pad) }],
      fingerprint: true,
    });
    const reply = answer(r, p);
    assert.ok(
      reply.data.length <= Math.max(76, p.length),
      `padding ${pad}: ${reply.data.length} ≤ ${p.length}`,
    );
    if (pad >= 100) assert.ok(findAttribute(reply.msg, Attr.Padding), "padding honoured");
  }
});

Deno.test("stun responder: responses, indications, other methods and garbage get nothing", () => {
  const r = new StunResponder({ sockets: FULL });
  const none = (b: Uint8Array, via = 0) => assert.equal(r.handle(0, via, CLIENT, b), undefined);
  none(SAMPLE_IPV4_RESPONSE);
  none(encodeStun({ cls: StunClass.Indication, transactionId: tid(1), attributes: [] }));
  none(encodeStun({ cls: StunClass.Error, transactionId: tid(1), attributes: [] }));
  none(
    encodeStun({ method: 0x003, cls: StunClass.Request, transactionId: tid(1), attributes: [] }),
  ); // TURN Allocate
  none(new Uint8Array(20).fill(0xff));
  none(new Uint8Array(40));
  none(bindingRequest(tid(1)), 7); // no such socket
  assert.deepEqual(r.stats.drops, {
    "stun-not-request": 3,
    "stun-unsupported-method": 1,
    "stun-not-stun": 1,
    "stun-length-mismatch": 1,
    "stun-unknown-socket": 1,
  });
  assert.equal(r.stats.answered + r.stats.errors, 0);
});

Deno.test("stun responder: per-source and total token buckets; bounded memory", () => {
  const r = new StunResponder({
    sockets: [FULL[0]],
    limits: {
      perSourceRate: 10,
      perSourceBurst: 20,
      totalRate: 100,
      totalBurst: 50,
      maxSources: 4,
    },
  });
  const req = bindingRequest(tid(1));
  const count = (from: Endpoint, now: number, n: number) => {
    let ok = 0;
    for (let i = 0; i < n; i++) if (r.handle(now, 0, from, req)) ok++;
    return ok;
  };
  assert.equal(count(CLIENT, 0, 100), 20, "burst of one source");
  assert.equal(count(CLIENT, 1000, 100), 10, "then its rate");
  const other = { hostname: "198.51.100.8", port: 1 };
  assert.equal(count(other, 1000, 100), 20, "another source has its own bucket");
  // Total: refilled to its burst of 50 at 1 s, 30 of it used above.
  let total = 0;
  for (let i = 0; i < 40; i++) total += count({ hostname: `192.0.2.${i}`, port: 1 }, 1000, 5);
  assert.equal(total, 20, "the total bucket caps all sources together");
  assert.equal(r.stats.drops["stun-rate-limited"], 80 + 90 + 80 + 180);
  // Only maxSources buckets are kept: a forgotten source starts full again, nothing grows.
  assert.equal(count({ hostname: "192.0.2.200", port: 1 }, 100_000, 30), 20);
});

/** The message `m` decoded from, encoded again (FINGERPRINT recomputed, padding zeroed). */
function reencode(m: StunMessage): Uint8Array {
  return encodeStun({
    method: m.method,
    cls: m.cls,
    transactionId: m.transactionId,
    attributes: m.fingerprint ? m.attributes.slice(0, -1) : m.attributes,
    fingerprint: m.fingerprint,
  });
}

/** A message's fields, FINGERPRINT's value left out (only whether it was there counts). */
function fields(m: StunMessage): StunMessage {
  return { ...m, attributes: m.fingerprint ? m.attributes.slice(0, -1) : m.attributes };
}

function drops(r: StunResponder): number {
  return Object.values(r.stats.drops).reduce((a, b) => a + b, 0);
}

Deno.test("stun responder: 100k seeded fuzz cases: decoded re-encodes alike, one count each, answers bounded", () => {
  const rng = prng(0x5707);
  const int = (n: number) => Math.floor(rng() * n);
  const responders = [
    new StunResponder({ sockets: FULL, limits: { perSourceBurst: 1e9, totalBurst: 1e9 } }),
    new StunResponder({ sockets: [FULL[0]], limits: { perSourceBurst: 1e9, totalBurst: 1e9 } }),
  ];
  const seeds: Uint8Array[] = [
    ...VECTORS,
    bindingRequest(tid(1)),
    bindingRequest(tid16(1), { change: CHANGE_IP }),
    bindingRequest(tid(2), { change: CHANGE_IP | CHANGE_PORT }),
  ];
  let answered = 0, decodedOk = 0;
  for (let i = 0; i < 100_000; i++) {
    let b: Uint8Array;
    const kind = i % 5;
    if (kind === 0) {
      b = randomBytesFrom(rng, int(80));
    } else if (kind === 1) {
      // A valid header over random attribute bytes, so the attribute walk is exercised.
      const body = randomBytesFrom(rng, int(16) * 4);
      b = concat(
        [0, 1, body.length >> 8, body.length & 0xff, 0x21, 0x12, 0xa4, 0x42],
        randomBytesFrom(rng, 12),
        body,
      );
    } else {
      b = seeds[int(seeds.length)]!.slice();
      const flips = 1 + int(4);
      for (let f = 0; f < flips; f++) {
        const at = int(b.length);
        if (kind === 2) b[at]! ^= 1 << int(8);
        else if (kind === 3) b[at] = int(256);
        else b = b.subarray(0, int(b.length + 1));
      }
      if (kind === 4 && rng() < 0.5 && b.length >= 4) {
        // Keep the length field consistent with the truncation sometimes.
        const len = Math.max(0, b.length - 20) & ~3;
        b = b.subarray(0, 20 + len);
        if (b.length >= 4) {
          b[2] = len >> 8;
          b[3] = len & 0xff;
        }
      }
    }
    const d = decodeStun(b);
    if (d.ok) {
      // What decoded encodes again to the same fields, in as many bytes.
      decodedOk++;
      // (FINGERPRINT's value aside: it covers the padding bytes, which encoding zeroes.)
      const again = reencode(d.value);
      assert.equal(again.length, b.length, `case ${i}: re-encoded length`);
      const d2 = decodeStun(again);
      assert.ok(d2.ok, `case ${i}: the re-encoding decodes`);
      assert.deepEqual(fields(d2.value), fields(d.value), `case ${i}: to the same fields`);
      assert.deepEqual(reencode(d2.value), again, `case ${i}: and encodes to the same bytes`);
    } else {
      assert.match(d.reason, /^stun-[a-z-]+$/, `case ${i}: rejected with a reason`);
    }
    const r = responders[i % 2]!;
    const from = { hostname: `10.${int(256)}.${int(256)}.${int(256)}`, port: int(65536) };
    const [dropsBefore, answers] = [drops(r), r.stats.answered + r.stats.errors];
    const reasonBefore = d.ok ? 0 : r.stats.drops[d.reason] ?? 0;
    const reply = r.handle(i, int(5), from, b);
    // Each datagram is either answered (counted as answered or error) or dropped (counted once,
    // under the decoder's reason when it did not decode).
    assert.equal(drops(r) - dropsBefore, reply ? 0 : 1, `case ${i}: one drop per unanswered`);
    assert.equal(r.stats.answered + r.stats.errors - answers, reply ? 1 : 0, `case ${i}`);
    if (!d.ok) assert.equal(r.stats.drops[d.reason], reasonBefore + 1, `case ${i}: ${d.reason}`);
    if (reply) {
      answered++;
      assert.ok(
        reply.data.length <= Math.max(76, b.length),
        `case ${i}: answer ${reply.data.length} for ${b.length}`,
      );
      assert.ok(decodeStun(reply.data).ok, `case ${i}: the answer decodes`);
      assert.equal(reply.to.hostname, from.hostname, "answers go to the requester's address");
    }
  }
  assert.ok(
    decodedOk > 1000 && answered > 1000,
    `coverage: ${decodedOk} decoded, ${answered} answered`,
  );
});

// ---------------------------------------------------------------------------------------------
// Demultiplexing on the server's socket

Deno.test("stun demux: STUN to the responder, p2p datagrams to the registry", () => {
  const registry = new Registry({}, seededRandom(1), new Uint8Array(32));
  const stun = new StunHub();
  const m = new PrimaryMachine(registry, stun);
  // Before ready() (no sockets attached) STUN is ignored, never passed to the registry.
  m.handleDatagram(0, CLIENT, bindingRequest(tid(1)));
  assert.equal(m.pollTransmit(), undefined);
  assert.deepEqual(registry.stats.drops, {});
  // A HELLO reaches the registry (a COOKIE comes back); garbage that is not STUN is its drop.
  const hello = encodeServerMsg(
    signedHello("stun", { id: testPeerId("stun 1"), nameTag: new Uint8Array(8) }),
  );
  m.handleDatagram(0, CLIENT, hello);
  const t = m.pollTransmit();
  assert.ok(t);
  const d = decodeServerMsg(t.data);
  assert.ok(d.ok && d.value.type === MsgType.Cookie);
  m.handleDatagram(0, CLIENT, new Uint8Array(24).fill(0x41));
  assert.equal(Object.values(registry.stats.drops).reduce((a, b) => a + b, 0), 1);
});

Deno.test({
  name:
    "stun demux: p2p serve --alt-port --alt-host answers STUN from the right socket and still speaks p2p",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    // 127.0.0.2 is a second loopback address on Linux; elsewhere test --alt-port only.
    let altHost: string | undefined = "127.0.0.2";
    try {
      Deno.listenDatagram({ hostname: altHost, port: 0, transport: "udp" }).close();
    } catch {
      altHost = undefined;
    }
    const free = () => {
      const s = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      const p = (s.addr as Deno.NetAddr).port;
      s.close();
      return p;
    };
    const altPort = free();
    const args = [
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--json",
      "--alt-port",
      String(altPort),
    ];
    if (altHost) args.push("--alt-host", altHost);
    await using srv = P2pProcess.p2p(args, { label: "server" });
    const ev = await srv.waitForEvent("listening", {}, 20_000);
    const primary = String(ev.addr);
    const port = Number(primary.split(":")[1]);
    const alt = ev.alt as string[];
    assert.equal(alt.length, altHost ? 3 : 1);

    const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const me = sock.addr as Deno.NetAddr;
    const ask = async (data: Uint8Array, to = { hostname: "127.0.0.1", port }) => {
      await sock.send(data, { transport: "udp", ...to });
      const timer = setTimeout(() => sock.close(), 5000);
      try {
        const [reply, from] = await sock.receive();
        return { reply, from: from as Deno.NetAddr };
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      await t.step("Binding request on the p2p port", async () => {
        const { reply, from } = await ask(bindingRequest(tid(1)));
        assert.equal(from.port, port);
        const m = decoded(reply);
        assert.deepEqual(mappedAddress(m), { hostname: "127.0.0.1", port: me.port });
      });
      await t.step("CHANGE-REQUEST is answered from the other socket", async () => {
        const change = altHost ? CHANGE_IP | CHANGE_PORT : CHANGE_PORT;
        const { reply, from } = await ask(bindingRequest(tid(2), { change }));
        assert.equal(
          `${from.hostname}:${from.port}`,
          altHost ? `${altHost}:${altPort}` : `127.0.0.1:${altPort}`,
        );
        const m = decoded(reply);
        assert.equal(m.cls, StunClass.Success);
        if (altHost) {
          assert.deepEqual(addr(m, Attr.ResponseOrigin), { hostname: altHost, port: altPort });
          assert.deepEqual(addr(m, Attr.OtherAddress), { hostname: altHost, port: altPort });
        }
      });
      await t.step("a p2p HELLO on the same port gets the registry's COOKIE", async () => {
        const hello = encodeServerMsg(
          signedHello("stun", { id: testPeerId("stun 3"), nameTag: new Uint8Array(8) }),
        );
        const { reply, from } = await ask(hello);
        assert.equal(from.port, port);
        const d = decodeServerMsg(reply);
        assert.ok(d.ok && d.value.type === MsgType.Cookie, "COOKIE");
      });
    } finally {
      try {
        sock.close();
      } catch {
        // closed by a timeout
      }
    }
  },
});

// ---------------------------------------------------------------------------------------------
// Command line

Deno.test({
  name:
    "stun: a plain p2p serve answers on PORT+1 and names it in ALT-PORT; a taken PORT+1 is a warning",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Two free ports in a row: P for the server, P+1 held by us in the second run.
    let port = 0;
    for (let i = 0; i < 20 && !port; i++) {
      const a = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      const p = (a.addr as Deno.NetAddr).port;
      try {
        if (p < 65535) {
          Deno.listenDatagram({ hostname: "127.0.0.1", port: p + 1, transport: "udp" }).close();
        }
        if (p < 65535) port = p;
      } catch {
        // P+1 taken: try another
      }
      a.close();
    }
    assert.ok(port, "two free ports in a row");
    const args = ["serve", "--host", "127.0.0.1", "--port", String(port), "--json", "--no-ipv6"];
    {
      await using srv = P2pProcess.p2p(args, { label: "server" });
      const ev = await srv.waitForEvent("listening", {}, 20_000);
      assert.deepEqual(ev.alt, [`127.0.0.1:${port + 1}`]);
      const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      try {
        await sock.send(bindingRequest(tid(9)), { transport: "udp", hostname: "127.0.0.1", port });
        const [reply] = await sock.receive();
        assert.equal(altPortOf(decoded(reply)), port + 1);
        await sock.send(bindingRequest(tid(10)), {
          transport: "udp",
          hostname: "127.0.0.1",
          port: port + 1,
        });
        const [second, from] = await sock.receive();
        assert.equal((from as Deno.NetAddr).port, port + 1);
        assert.equal(altPortOf(decoded(second)), port, "the second port names the first");
      } finally {
        sock.close();
      }
    }
    const held = Deno.listenDatagram({ hostname: "127.0.0.1", port: port + 1, transport: "udp" });
    try {
      await using srv = P2pProcess.p2p(args, { label: "server (PORT+1 taken)" });
      const ev = await srv.waitForEvent("listening", {}, 20_000);
      assert.equal(ev.addr, `127.0.0.1:${port}`);
      assert.equal(ev.alt, undefined, "runs without the second port");
      // An answer means it is serving (its start-up lines are written); stopped, all is read.
      const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      try {
        await sock.send(bindingRequest(tid(11)), { transport: "udp", hostname: "127.0.0.1", port });
        const [reply] = await sock.receive();
        assert.equal(altPortOf(decoded(reply)), null, "no second port to name");
      } finally {
        sock.close();
      }
      await srv.close();
      assert.match(
        srv.stderr,
        /Not serving the second port \d+: .*--alt-port a free port, or --no-alt-port/,
      );
    } finally {
      held.close();
    }
  },
});

Deno.test("stun cli: --alt-port and --alt-host", () => {
  const serve = (...a: string[]) => {
    const c = parseCommand(["serve", ...a]);
    assert.ok(c.kind === "serve");
    return c.options;
  };
  const o = serve("--host", "192.0.2.1", "--alt-port", "3479", "--alt-host", "192.0.2.2");
  assert.deepEqual([o.altPort, o.altHost], [3479, "192.0.2.2"]);
  // A second port of the same address by default: PORT+1, any free one with --port 0, and a
  // bind failure is then only a warning.
  const d = serve();
  assert.deepEqual([d.altPort, d.altHost, d.altPortOptional], [7778, undefined, true]);
  assert.deepEqual([serve("--port", "4000").altPort, serve("--port", "0").altPort], [4001, 0]);
  assert.equal(serve("--port", "65535").altPort, 65534);
  const none = serve("--no-alt-port");
  assert.deepEqual([none.altPort, none.altPortOptional], [undefined, undefined]);
  const given = serve("--alt-port", "3479");
  assert.deepEqual([given.altPort, given.altPortOptional], [3479, undefined]);
  assert.equal(serve("--port", "0", "--alt-port", "0").altPort, 0);
  const bad = [
    ["--alt-port", "3479", "--no-alt-port"],
    ["--host", "192.0.2.1", "--alt-port", "3479", "--alt-host", "192.0.2.2", "--no-alt-port"],
    ["--host", "192.0.2.1", "--alt-port", "0", "--alt-host", "192.0.2.2"],
    ["--alt-host", "192.0.2.2"], // needs --alt-port
    ["--alt-port", "3479", "--alt-host", "192.0.2.2"], // --host 0.0.0.0
    ["--host", "192.0.2.1", "--alt-port", "3479", "--alt-host", "192.0.2.1"],
    ["--alt-port", "7777"],
    ["--alt-port", "70000"],
    ["--host", "192.0.2.1", "--alt-port", "1", "--alt-host", "example.org"],
  ];
  for (const args of bad) {
    assert.throws(() => parseCommand(["serve", ...args]), UsageError, args.join(" "));
  }
  const help = parseCommand(["serve", "--help"]);
  assert.ok(
    help.kind === "help" && help.text.includes("--alt-port") && help.text.includes("--alt-host"),
  );
});

Deno.test("stun: p2p's own padded requests get answers no larger than themselves, from any socket", () => {
  const v6: Endpoint = { hostname: "2001:db8:ffff:ffff:ffff:ffff:ffff:7", port: 65535 };
  const six: StunSockets = [{ hostname: "2001:db8::1", port: 3478 }];
  const responders = [
    new StunResponder({ sockets: [FULL[0]] }),
    new StunResponder({ sockets: FULL }),
    new StunResponder({ sockets: six }),
    // One address, two ports: the answer names the other port (ALT-PORT).
    new StunResponder({ sockets: [FULL[0], FULL[1]] }),
  ];
  const flags = [0, CHANGE_PORT, CHANGE_IP, CHANGE_IP | CHANGE_PORT];
  let largest = 0;
  for (const [i, r] of responders.entries()) {
    for (const from of i === 2 ? [v6] : [CLIENT]) {
      for (const change of i === 1 ? flags : [0]) {
        for (const id of [tid(1 + change), tid16(1 + change)]) {
          const req = bindingRequest(id, { change, padded: true });
          assert.equal(req.length, PADDED_REQUEST_LEN, `request ${req.length} bytes`);
          const sent = decodeStun(req);
          assert.ok(sent.ok);
          // The padding is comprehension-optional (SOFTWARE): any server ignores it.
          const pad = findAttribute(sent.value, Attr.Software)!;
          assert.equal(utf8.decode(pad.value).trimEnd(), "p2p");
          const a = r.handle(0, 0, from, req);
          assert.ok(a);
          assert.equal(decoded(a.data).cls, StunClass.Success);
          assert.ok(a.data.length <= req.length, `answer ${a.data.length} > ${req.length}`);
          largest = Math.max(largest, a.data.length);
        }
      }
    }
  }
  // The bound is tight enough to matter: the IPv6 answer with every attribute comes close.
  assert.ok(largest >= 76, `largest answer ${largest}`);
  // The standard 20-byte request is still answered (rate-limited), larger than itself.
  const r = new StunResponder({ sockets: FULL });
  assert.equal(answer(r, bindingRequest(tid(9), { fingerprint: false })).data.length, 76);
});

Deno.test("stun: the probe and the doctor send padded requests", () => {
  const server: Endpoint = { hostname: A1, port: P1 };
  const probe = new StunProbe({ servers: [server], random: seededRandom(1) });
  probe.start(0);
  const p = probe.pollTransmit();
  assert.equal(p?.data.length, PADDED_REQUEST_LEN);
  const doctor = new Doctor({ server, random: seededRandom(2) });
  doctor.start(0, { hostname: "192.168.1.2", port: 40000 });
  const d = doctor.pollTransmit();
  assert.ok(d && looksLikeStun(d.data));
  assert.equal(d.data.length, PADDED_REQUEST_LEN);
});
