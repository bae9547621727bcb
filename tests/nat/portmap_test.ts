/**
 * Router port mapping: the NAT-PMP, PCP and UPnP codecs against byte layouts written by hand
 * from the RFCs' field tables, a seeded fuzz of every decoder, and the {@link PortMapper}
 * driven by a fake gateway in virtual time (grant, renewal, reboot, deletion, no router,
 * forged answers, the UPnP flow with its fault-725 fallback).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  decodeNatPmpResponse,
  encodeExternalAddressRequest,
  encodeMapRequest,
  looksLikeNatPmp,
  type NatPmpResponse,
} from "../../lib/nat/portmap/natpmp.ts";
import {
  decodePcpResponse,
  encodePcpMapRequest,
  looksLikePcp,
  type PcpResponse,
} from "../../lib/nat/portmap/pcp.ts";
import {
  addPortMappingRequest,
  deletePortMappingRequest,
  encodeMSearch,
  gatewayUrl,
  getExternalIpRequest,
  parseDescription,
  parseExternalIp,
  parseSoapResult,
  parseSsdpReply,
  sameSubnet,
  tagText,
  WAN_SERVICES,
} from "../../lib/nat/portmap/upnp.ts";
import {
  type PortMapEvent,
  PortMapper,
  type PortMapperOptions,
} from "../../lib/nat/portmap/mapper.ts";
import { EpochCheck } from "../../lib/nat/portmap/common.ts";
import { findGateway, parseDefaultRoute } from "../../lib/io/gateway.ts";
import { FakeGateway, Harness } from "../support/portmap_gateway.ts";
import { prng, randomBytesFrom } from "../support/prng.ts";

const enc = new TextEncoder();
const bytes = (...xs: number[]) => new Uint8Array(xs);

// ---------------------------------------------------------------------------------------------
// Codecs

Deno.test("natpmp: requests are the RFC 6886 layouts", () => {
  assert.deepEqual(encodeExternalAddressRequest(), bytes(0, 0));
  // version 0, opcode 1 (UDP), reserved 0, internal port 40000 (0x9c40), suggested external
  // port 40001 (0x9c41), lifetime 7200 (0x00001c20).
  assert.deepEqual(
    encodeMapRequest(40000, 40001, 7200),
    bytes(0, 1, 0, 0, 0x9c, 0x40, 0x9c, 0x41, 0, 0, 0x1c, 0x20),
  );
  // Deletion: lifetime 0, suggested external port 0.
  assert.deepEqual(encodeMapRequest(40000, 0, 0), bytes(0, 1, 0, 0, 0x9c, 0x40, 0, 0, 0, 0, 0, 0));
});

Deno.test("natpmp: responses decode from RFC 6886 layouts; errors may be 8 bytes", () => {
  // External address: version 0, opcode 128, result 0, epoch 1000 (0x3e8), 203.0.113.11.
  assert.deepEqual(
    decodeNatPmpResponse(bytes(0, 128, 0, 0, 0, 0, 0x03, 0xe8, 203, 0, 113, 11)),
    { ok: true, value: { op: 0, result: 0, epoch: 1000, external: "203.0.113.11" } },
  );
  // Map UDP: opcode 129, result 0, epoch 1001, internal 40000, external 41001, lifetime 3600.
  assert.deepEqual(
    decodeNatPmpResponse(
      bytes(0, 129, 0, 0, 0, 0, 0x03, 0xe9, 0x9c, 0x40, 0xa0, 0x29, 0, 0, 0x0e, 0x10),
    ),
    {
      ok: true,
      value: {
        op: 1,
        result: 0,
        epoch: 1001,
        mapping: { internalPort: 40000, externalPort: 41001, lifetime: 3600 },
      },
    },
  );
  // Network failure (3), short form.
  assert.deepEqual(decodeNatPmpResponse(bytes(0, 129, 0, 3, 0, 0, 0, 5)), {
    ok: true,
    value: { op: 1, result: 3, epoch: 5 },
  });
  assert.equal(decodeNatPmpResponse(bytes(0, 128, 0, 0, 0, 0, 0, 5)).ok, false, "success, short");
  assert.equal(decodeNatPmpResponse(bytes(0, 130, 0, 0, 0, 0, 0, 5)).ok, false, "TCP opcode");
  assert.equal(decodeNatPmpResponse(bytes(0, 129, 0, 0)).ok, false);
});

Deno.test("pcp: MAP request is the RFC 6887 60-byte layout", () => {
  const nonce = bytes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
  const b = encodePcpMapRequest({
    client: "192.168.1.10",
    nonce,
    internalPort: 40000,
    externalPort: 40000,
    externalAddress: "0.0.0.0",
    lifetime: 7200,
  });
  const v4m = (a: number, b: number, c: number, d: number) => [
    ...Array(10).fill(0),
    0xff,
    0xff,
    a,
    b,
    c,
    d,
  ];
  const expected = bytes(
    // common header: version 2, R=0 opcode 1, reserved 16 bits, lifetime 7200, client IP
    2,
    1,
    0,
    0,
    0,
    0,
    0x1c,
    0x20,
    ...v4m(192, 168, 1, 10),
    // MAP: nonce, protocol 17, reserved 24 bits, internal port, suggested external port,
    // suggested external address (::ffff:0.0.0.0)
    ...nonce,
    17,
    0,
    0,
    0,
    0x9c,
    0x40,
    0x9c,
    0x40,
    ...v4m(0, 0, 0, 0),
  );
  assert.equal(b.length, 60);
  assert.deepEqual(b, expected);
});

Deno.test("pcp: MAP response decodes from the RFC 6887 layout", () => {
  const nonce = bytes(9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9);
  const resp = bytes(
    2,
    0x81,
    0,
    0, // version, R=1|MAP, reserved, SUCCESS
    0,
    0,
    0x0e,
    0x10, // lifetime 3600
    0,
    0,
    0x01,
    0x00, // epoch 256
    ...Array(12).fill(0), // reserved
    ...nonce,
    17,
    0,
    0,
    0,
    0x9c,
    0x40, // internal port 40000
    0xa0,
    0x29, // assigned external port 41001
    ...Array(10).fill(0),
    0xff,
    0xff,
    203,
    0,
    113,
    11,
  );
  const d = decodePcpResponse(resp);
  assert.ok(d.ok);
  assert.equal(d.value.opcode, 1);
  assert.equal(d.value.result, 0);
  assert.equal(d.value.lifetime, 3600);
  assert.equal(d.value.epoch, 256);
  assert.deepEqual(d.value.map, {
    nonce,
    protocol: 17,
    internalPort: 40000,
    externalPort: 41001,
    externalAddress: "203.0.113.11",
  });
  const err = resp.slice();
  err[3] = 8; // NO_RESOURCES
  assert.equal((decodePcpResponse(err) as { value: { result: number } }).value.result, 8);
  assert.equal(decodePcpResponse(resp.subarray(0, 23)).ok, false);
  const req = resp.slice();
  req[1] = 0x01; // a request, not a response
  assert.equal(decodePcpResponse(req).ok, false);
});

Deno.test("upnp: M-SEARCH, SSDP answers and which URLs may be fetched", () => {
  const ms = new TextDecoder().decode(
    encodeMSearch("urn:schemas-upnp-org:device:InternetGatewayDevice:1"),
  );
  assert.equal(
    ms,
    'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n' +
      "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n",
  );
  const gw = new FakeGateway();
  assert.equal(parseSsdpReply(gw.ssdpReply()), "http://192.168.1.1:5000/rootDesc.xml");
  assert.equal(
    parseSsdpReply(enc.encode("HTTP/1.1 200 OK\nlocation:   http://10.0.0.1/d.xml  \n\n")),
    "http://10.0.0.1/d.xml",
  );
  assert.equal(parseSsdpReply(enc.encode("HTTP/1.1 404 Not Found\r\nLOCATION: x\r\n\r\n")), null);
  assert.equal(parseSsdpReply(enc.encode("HTTP/1.1 200 OK\r\n\r\nLOCATION: late\r\n")), null);
  assert.equal(parseSsdpReply(new Uint8Array(3000).fill(0x48)), null);
  // Only http:// on the gateway's own address, no credentials.
  const ok = "http://192.168.1.1:5000/rootDesc.xml";
  assert.equal(gatewayUrl(ok, "192.168.1.1"), ok);
  assert.equal(gatewayUrl("/ctl/IPConn", "192.168.1.1", ok), "http://192.168.1.1:5000/ctl/IPConn");
  for (
    const bad of [
      "http://192.168.1.2:5000/rootDesc.xml",
      "https://192.168.1.1/rootDesc.xml",
      "http://user:pw@192.168.1.1/x",
      "http://example.com/x",
      "file:///etc/passwd",
      "http://169.254.169.254/latest/meta-data",
      "not a url",
    ]
  ) {
    assert.equal(gatewayUrl(bad, "192.168.1.1"), null, bad);
  }
  // An absolute URL on the gateway stands whatever the base; a relative one on another base not.
  assert.equal(
    gatewayUrl("http://192.168.1.1:5000/x", "192.168.1.1", "http://10.9.9.9/"),
    "http://192.168.1.1:5000/x",
  );
  assert.equal(gatewayUrl("/x", "192.168.1.1", "http://10.9.9.9/"), null);
  assert.equal(gatewayUrl("//10.9.9.9/ctl", "192.168.1.1", ok), null);
  assert.equal(sameSubnet("192.168.1.1", "192.168.1.200", 24), true);
  assert.equal(sameSubnet("192.168.2.1", "192.168.1.200", 24), false);
});

Deno.test("upnp: the description's WAN service is found; SOAP requests and faults", () => {
  const gw = new FakeGateway();
  assert.deepEqual(parseDescription(gw.description()), {
    serviceType: "urn:schemas-upnp-org:service:WANIPConnection:1",
    controlUrl: "/ctl/IPConn",
    base: null,
  });
  // Tolerant: attributes, upper case, entities, a URLBase, PPP only.
  const ppp = `<root><URLBase>http://192.168.1.1:80/</URLBase><SERVICE a="1">` +
    `<serviceType>urn:schemas-upnp-org:service:WANPPPConnection:1</serviceType>` +
    `<controlURL> /upnp/control?a=1&amp;b=2 </controlURL></SERVICE></root>`;
  assert.deepEqual(parseDescription(ppp), {
    serviceType: "urn:schemas-upnp-org:service:WANPPPConnection:1",
    controlUrl: "/upnp/control?a=1&b=2",
    base: "http://192.168.1.1:80/",
  });
  assert.equal(parseDescription("<root><service><serviceType>x</serviceType></service>"), null);
  assert.equal(tagText("<a><b/></a>", "b"), "");

  const st = "urn:schemas-upnp-org:service:WANIPConnection:1";
  const add = addPortMappingRequest(st, {
    externalPort: 40000,
    internalPort: 40000,
    internalClient: "192.168.1.10",
    lease: 3600,
    description: "p2p",
  });
  assert.equal(add.headers["SOAPAction"], `"${st}#AddPortMapping"`);
  assert.match(add.headers["Content-Type"]!, /^text\/xml/);
  assert.match(
    add.body,
    new RegExp(
      `<u:AddPortMapping xmlns:u="${st}"><NewRemoteHost></NewRemoteHost>` +
        `<NewExternalPort>40000</NewExternalPort><NewProtocol>UDP</NewProtocol>` +
        `<NewInternalPort>40000</NewInternalPort><NewInternalClient>192.168.1.10` +
        `</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>p2p` +
        `</NewPortMappingDescription><NewLeaseDuration>3600</NewLeaseDuration>` +
        `</u:AddPortMapping>`,
    ),
  );
  assert.match(deletePortMappingRequest(st, 41000).body, /<NewExternalPort>41000</);
  assert.match(getExternalIpRequest(st).body, /<u:GetExternalIPAddress xmlns:u=/);

  gw.onlyPermanent = true;
  gw.upnp = true;
  const f = gw.http(0, { method: "POST", url: "", ...add }) as { status: number; body: string };
  assert.deepEqual(parseSoapResult(f.status, f.body), {
    ok: false,
    fault: 725,
    reason: "OnlyPermanentLeasesSupported",
  });
  const ip = gw.http(0, { method: "POST", url: "", ...getExternalIpRequest(st) }) as {
    status: number;
    body: string;
  };
  const r = parseSoapResult(ip.status, ip.body);
  assert.ok(r.ok);
  assert.equal(parseExternalIp(r.body), "203.0.113.11");
  assert.equal(parseExternalIp("<NewExternalIPAddress>0.0.0.x</NewExternalIPAddress>"), null);
});

Deno.test("portmap: epoch check detects a gateway that started again", () => {
  const e = new EpochCheck();
  assert.equal(e.accept(0, 1000), true);
  assert.equal(e.accept(60_000, 1060), true);
  assert.equal(e.accept(120_000, 1119), true, "a second of drift is fine");
  assert.equal(e.accept(180_000, 5), false, "went backwards");
  assert.equal(e.accept(240_000, 65), true);
  assert.equal(e.accept(600_000, 70), false, "stood still while we waited 6 minutes");
});

// ---------------------------------------------------------------------------------------------
// Fuzz

function mutate(rand: () => number, src: Uint8Array): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  let b = src.slice();
  for (let k = 1 + int(4); k > 0; k--) {
    const op = int(5);
    if (op === 0 && b.length > 0) b[int(b.length)]! ^= 1 << int(8);
    else if (op === 1 && b.length > 0) b[int(b.length)] = int(256);
    else if (op === 2) b = b.slice(0, int(b.length + 1));
    else if (op === 3) {
      const at = int(b.length + 1);
      const ins = randomBytesFrom(rand, 1 + int(8));
      const n = new Uint8Array(b.length + ins.length);
      n.set(b.subarray(0, at));
      n.set(ins, at);
      n.set(b.subarray(at), at + ins.length);
      b = n;
    } else if (b.length > 0) b[int(b.length)] = [0, 0x3c, 0x3e, 0x26, 0x2f, 0x0a][int(6)]!;
  }
  return b;
}

/** A NAT-PMP response laid out as RFC 6886 says: what a decoded one was read from. */
function natPmpBytes(r: NatPmpResponse): Uint8Array {
  const b = new Uint8Array(r.result !== 0 ? 8 : r.op === 0 ? 12 : 16);
  const v = new DataView(b.buffer);
  b[1] = 128 + r.op;
  v.setUint16(2, r.result);
  v.setUint32(4, r.epoch);
  if (r.op === 0 && r.external) b.set(r.external.split(".").map(Number), 8);
  if (r.op === 1 && r.mapping) {
    v.setUint16(8, r.mapping.internalPort);
    v.setUint16(10, r.mapping.externalPort);
    v.setUint32(12, r.mapping.lifetime);
  }
  return b;
}

/** A PCP response laid out as RFC 6887 says, reserved fields zero. */
function pcpBytes(r: PcpResponse): Uint8Array {
  const b = new Uint8Array(r.map ? 60 : 24);
  const v = new DataView(b.buffer);
  b[0] = 2;
  b[1] = 0x80 | r.opcode;
  b[3] = r.result;
  v.setUint32(4, r.lifetime);
  v.setUint32(8, r.epoch);
  if (r.map) {
    b.set(r.map.nonce, 24);
    b[36] = r.map.protocol;
    v.setUint16(40, r.map.internalPort);
    v.setUint16(42, r.map.externalPort);
    if (r.map.externalAddress !== null) {
      b.set([0xff, 0xff, ...r.map.externalAddress.split(".").map(Number)], 54);
    }
  }
  return b;
}

/** The bytes of `a` and `b` at `positions` (ranges `[from, to)`). */
function at(a: Uint8Array, ...ranges: [number, number][]): number[][] {
  return ranges.map(([from, to]) => [...a.subarray(from, to)]);
}

Deno.test("portmap: seeded fuzz: decoders give back what they read or a reason; strangers are dropped", () => {
  const rand = prng(0x9047_6886);
  const gw = new FakeGateway();
  gw.upnp = true;
  const nonce = bytes(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12);
  const pcpReq = encodePcpMapRequest({
    client: "192.168.1.10",
    nonce,
    internalPort: 40000,
    externalPort: 40000,
    externalAddress: "0.0.0.0",
    lifetime: 7200,
  });
  const binSeeds = [
    ...gw.answer(0, encodeExternalAddressRequest()),
    ...gw.answer(0, encodeMapRequest(40000, 40000, 7200)),
    ...gw.answer(0, pcpReq),
    bytes(0, 129, 0, 1, 0, 0, 0, 1),
  ];
  const textSeeds = [
    gw.ssdpReply(),
    enc.encode(gw.description()),
    enc.encode((gw.http(0, { method: "POST", url: "", headers: {} }) as { body: string }).body),
    enc.encode("<NewExternalIPAddress>203.0.113.11</NewExternalIPAddress>"),
  ];
  const m = new PortMapper({
    gateway: "192.168.1.1",
    localAddress: "192.168.1.10",
    localPort: 40000,
    random: (n) => randomBytesFrom(rand, n),
  });
  m.start(0);
  const dec = new TextDecoder();
  let accepted = 0, claimed = 0, strangers = 0;
  for (let i = 0; i < 20_000; i++) {
    const pick = rand();
    const input = pick < 0.1
      ? randomBytesFrom(rand, Math.floor(rand() * 80))
      : pick < 0.6
      ? mutate(rand, binSeeds[Math.floor(rand() * binSeeds.length)]!)
      : mutate(rand, textSeeds[Math.floor(rand() * textSeeds.length)]!);
    const where = `fuzz case ${i}`;
    try {
      // What a decoder accepts is what the RFC layout of its fields gives back, byte for byte
      // where the decoder reads; what it refuses, it refuses with a reason.
      const pmp = decodeNatPmpResponse(input);
      if (pmp.ok) {
        accepted++;
        const b = natPmpBytes(pmp.value);
        assert.deepEqual(b, input.subarray(0, b.length), `${where}: NAT-PMP fields`);
        assert.deepEqual(decodeNatPmpResponse(b), pmp, `${where}: NAT-PMP round trip`);
      } else assert.match(pmp.reason, /^natpmp-/, where);
      const pcp = decodePcpResponse(input);
      if (pcp.ok) {
        accepted++;
        const b = pcpBytes(pcp.value);
        assert.deepEqual(decodePcpResponse(b), pcp, `${where}: PCP round trip`);
        const read: [number, number][] = [[0, 2], [3, 12]];
        if (pcp.value.map) read.push([24, 37], [40, 44]);
        if (pcp.value.map?.externalAddress) read.push([44, 60]);
        assert.deepEqual(at(b, ...read), at(input, ...read), `${where}: PCP fields`);
      } else assert.match(pcp.reason, /^pcp-/, where);
      // The UPnP parsers only ever pass on what the input says, within their limits.
      const text = dec.decode(input);
      const location = parseSsdpReply(input);
      if (location !== null) {
        assert.ok(location.length >= 1 && location.length <= 512, where);
        assert.ok(new TextDecoder("latin1").decode(input).includes(location), where);
      }
      const service = parseDescription(text);
      if (service) {
        assert.ok(WAN_SERVICES.includes(service.serviceType), where);
        assert.ok(service.controlUrl.length > 0, where);
      }
      const status = 200 + Math.floor(rand() * 400);
      if (parseSoapResult(status, text).ok) assert.equal(status, 200, where);
      const ip = parseExternalIp(text);
      if (ip !== null) {
        assert.match(ip, /^\d{1,3}(\.\d{1,3}){3}$/, where);
        assert.ok(text.includes(ip), where);
      }
      const url = gatewayUrl(text, "192.168.1.1", "http://192.168.1.1:5000/");
      if (url !== null) {
        const u = new URL(url);
        assert.ok(u.protocol === "http:" && u.hostname === "192.168.1.1", `${where}: ${url}`);
        assert.equal(u.username + u.password, "", where);
      }
      const stranger = rand() >= 0.8;
      const from = stranger
        ? { hostname: "192.168.1.77", port: 5351 }
        : { hostname: "192.168.1.1", port: rand() < 0.5 ? 5351 : 1900 };
      const wrongSource = m.drops["portmap-wrong-source"] ?? 0;
      while (m.pollEvent());
      if (m.handleDatagram(i, from, input)) claimed++;
      // A NAT-PMP or PCP answer from anyone but the gateway is one drop, and changes nothing.
      if (stranger && (looksLikeNatPmp(input) || looksLikePcp(input))) {
        assert.equal(m.drops["portmap-wrong-source"], wrongSource + 1, where);
        assert.equal(m.pollEvent(), undefined, `${where}: an event from a stranger`);
        strangers++;
      }
      m.handleHttp(i, Math.floor(rand() * 4), { status: 200, body: text });
      m.handleTimeout(i);
      while (m.pollTransmit());
      while (m.pollHttp());
    } catch (e) {
      throw new Error(`${where} threw: ${(e as Error).message}`);
    }
  }
  assert.ok(accepted > 1000, `decoders accepted mutated responses (${accepted})`);
  assert.ok(claimed > 1000, `the mapper claimed gateway-like datagrams (${claimed})`);
  assert.ok(strangers > 100, `NAT-PMP and PCP answers from a stranger (${strangers})`);
});

// ---------------------------------------------------------------------------------------------
// The mapper against a fake gateway

function mapper(rand: () => number, o: Partial<PortMapperOptions> = {}): PortMapper {
  return new PortMapper({
    gateway: "192.168.1.1",
    localAddress: "192.168.1.10",
    localPort: 40000,
    random: (n) => randomBytesFrom(rand, n),
    ...o,
  });
}

const mapped = (h: Harness) =>
  h.events.filter((e): e is PortMapEvent & { type: "mapped"; at: number } => e.type === "mapped");

Deno.test("portmap: PCP is granted, chosen over NAT-PMP, renewed at half its lifetime", () => {
  const gw = new FakeGateway();
  gw.maxLifetime = 120;
  const h = new Harness(mapper(prng(1), { protocols: ["pcp", "natpmp"] }), gw);
  h.start();
  assert.deepEqual(
    mapped(h).map(({ external, protocol, lifetime, at }) => ({
      external,
      protocol,
      lifetime,
      at,
    })),
    [{
      external: { hostname: "203.0.113.11", port: 41001 },
      protocol: "pcp",
      lifetime: 120,
      at: 0,
    }],
  );
  assert.equal(h.m.chosen, "pcp");
  const pcp = () => gw.seen.filter((s) => s.protocol === "pcp");
  assert.equal(pcp().length, 1);
  h.advance(59_999);
  assert.equal(pcp().length, 1, "no renewal before half the lifetime");
  h.advance(60_000);
  assert.equal(pcp().length, 2, "renewed at 60 s");
  assert.equal(pcp()[1]!.nonce, pcp()[0]!.nonce, "the renewal repeats the nonce");
  h.advance(600_000);
  assert.equal(pcp().length, 11, "every 60 s");
  assert.equal(mapped(h).length, 1, "renewals with the same endpoint say nothing");
  assert.deepEqual(h.events.filter((e) => e.type !== "mapped"), []);
});

Deno.test("portmap: a rebooted gateway (epoch) is asked again; the new endpoint is reported", () => {
  const gw = new FakeGateway();
  gw.maxLifetime = 120;
  gw.bootAt = -3_600_000;
  const h = new Harness(mapper(prng(2), { protocols: ["pcp"] }), gw);
  h.start();
  assert.equal(mapped(h)[0]!.external.port, 41001);
  h.advance(30_000);
  gw.reboot(h.now);
  h.advance(60_000);
  // The renewal's answer had a small epoch: the client re-requested at once.
  const reqs = gw.seen.filter((s) => s.protocol === "pcp" && s.at === 60_000);
  assert.equal(reqs.length, 2, "renewal, then a fresh request");
  assert.deepEqual(mapped(h).map((e) => e.external.port), [41001, 41102]);
  assert.equal(mapped(h)[1]!.at, 60_000);
});

Deno.test("portmap: stop deletes the mapping (lifetime 0, same nonce), then the mapper is idle", () => {
  for (const protocol of ["pcp", "natpmp"] as const) {
    const gw = new FakeGateway();
    const h = new Harness(mapper(prng(3), { protocols: [protocol] }), gw);
    h.start();
    assert.equal(mapped(h).length, 1, protocol);
    assert.equal(gw.mappings.size, 1);
    h.m.stop(h.now);
    assert.equal(h.m.idle, false, "a deletion is pending");
    h.pump();
    assert.equal(gw.mappings.size, 0, `${protocol}: deleted`);
    const last = gw.seen.at(-1)!;
    assert.equal(last.lifetime, 0);
    if (protocol === "pcp") assert.equal(last.nonce, gw.seen[0]!.nonce);
    assert.equal(h.m.idle, true);
    const before = h.sent.length;
    h.advance(10_000_000);
    assert.equal(h.sent.length, before, "nothing more after the deletion was answered");
  }
});

Deno.test("portmap: no router: one 'none' after the timeout, then silence", () => {
  const h = new Harness(mapper(prng(4), { timeout: 2000 }), null);
  h.start();
  h.advance(1999);
  assert.deepEqual(h.events, []);
  h.advance(2000);
  assert.deepEqual(h.events, [{ type: "none", at: 2000 }]);
  // NAT-PMP and PCP at 0, 250, 750, 1750 ms; two M-SEARCH rounds of 4 targets.
  const to5351 = h.sent.filter((t) => t.to.port === 5351);
  assert.deepEqual(
    [...new Set(to5351.map((t) => t.at))],
    [0, 250, 750, 1750],
  );
  assert.equal(to5351.length, 4 * 3, "PCP MAP + NAT-PMP address + NAT-PMP map, 4 times");
  assert.equal(h.sent.filter((t) => t.to.port === 1900).length, 8);
  const n = h.sent.length;
  assert.equal(h.m.nextTimeout(), undefined);
  h.advance(100_000_000);
  h.m.stop(h.now);
  h.pump();
  assert.equal(h.sent.length, n, "nothing sent after giving up, nor on stop");
  assert.equal(h.events.length, 1);
  assert.equal(h.m.idle, true);
});

Deno.test("portmap: forged answers (wrong source, nonce, port) are ignored", () => {
  const gw = new FakeGateway();
  const m = mapper(prng(5), { protocols: ["pcp", "natpmp"] });
  const h = new Harness(m, gw);
  h.answering = false;
  h.start();
  const pcpReq = h.sent.find((t) => t.data[0] === 2)!.data;
  const good = gw.answer(0, pcpReq)[0]!;
  const forged: [string, { hostname: string; port: number }, Uint8Array][] = [];
  forged.push(["other host", { hostname: "192.168.1.66", port: 5351 }, good]);
  forged.push(["other port", { hostname: "192.168.1.1", port: 5350 }, good]);
  const badNonce = good.slice();
  badNonce[30]! ^= 1;
  forged.push(["wrong nonce", { hostname: "192.168.1.1", port: 5351 }, badNonce]);
  const badPort = good.slice();
  badPort[41]! ^= 1;
  forged.push(["wrong internal port", { hostname: "192.168.1.1", port: 5351 }, badPort]);
  const pmp = gw.answer(0, encodeMapRequest(40001, 40001, 7200))[0]!;
  forged.push(["NAT-PMP for another port", { hostname: "192.168.1.1", port: 5351 }, pmp]);
  for (const [what, from, data] of forged) {
    m.handleDatagram(10, from, data);
    h.pump();
    assert.deepEqual(h.events, [], what);
  }
  assert.ok((m.drops["portmap-wrong-source"] ?? 0) >= 1);
  assert.ok((m.drops["portmap-not-ours"] ?? 0) >= 3);
  // The genuine answer still works.
  m.handleDatagram(20, { hostname: "192.168.1.1", port: 5351 }, good);
  h.now = 20;
  h.advance(1000);
  assert.equal(mapped(h).length, 1);
  assert.equal(mapped(h)[0]!.protocol, "pcp");
});

Deno.test("portmap: a NAT-PMP-only gateway refuses PCP; NAT-PMP maps (address + port)", () => {
  const gw = new FakeGateway();
  gw.pcp = false;
  const h = new Harness(mapper(prng(6)), gw);
  h.start();
  h.advance(5000);
  assert.deepEqual(mapped(h).map((e) => [e.protocol, e.external.hostname, e.external.port]), [
    ["natpmp", "203.0.113.11", 41001],
  ]);
  assert.equal(mapped(h)[0]!.at, 0, "no wait for PCP once it was refused");
});

Deno.test("portmap: a NAT-PMP grant waits briefly for PCP, which wins when it comes", () => {
  const gw = new FakeGateway();
  const m = mapper(prng(7), { protocols: ["pcp", "natpmp"] });
  const h = new Harness(m, gw);
  h.answering = false;
  h.start();
  // NAT-PMP answers first; PCP 100 ms later (within the settle time).
  for (const t of h.sent.filter((t) => t.data[0] === 0)) {
    for (const r of gw.answer(0, t.data)) m.handleDatagram(0, { hostname: gw.lan, port: 5351 }, r);
  }
  h.pump();
  assert.deepEqual(mapped(h), [], "held back while PCP may still answer");
  const pcpReq = h.sent.find((t) => t.data[0] === 2)!.data;
  m.handleDatagram(100, { hostname: gw.lan, port: 5351 }, gw.answer(100, pcpReq)[0]!);
  h.now = 100;
  h.pump();
  assert.deepEqual(mapped(h).map((e) => e.protocol), ["pcp"]);
  // Without PCP, NAT-PMP is chosen after the settle time.
  const gw2 = new FakeGateway();
  gw2.pcp = false;
  gw2.natpmp = true;
  const m2 = mapper(prng(8), { protocols: ["pcp", "natpmp"] });
  const h2 = new Harness(m2, gw2);
  h2.answering = false;
  h2.start();
  for (const t of h2.sent.filter((t) => t.data[0] === 0)) {
    for (const r of gw2.answer(0, t.data)) {
      m2.handleDatagram(0, { hostname: gw2.lan, port: 5351 }, r);
    }
  }
  h2.advance(149);
  assert.deepEqual(mapped(h2), []);
  h2.advance(150);
  assert.deepEqual(mapped(h2).map((e) => [e.protocol, e.at]), [["natpmp", 150]]);
});

Deno.test("portmap: UPnP: SSDP, description, external address, AddPortMapping with fault 725 → lease 0, delete on stop", () => {
  const gw = new FakeGateway();
  gw.pcp = false;
  gw.natpmp = false;
  gw.upnp = true;
  gw.onlyPermanent = true;
  const h = new Harness(mapper(prng(9), { protocols: ["upnp"] }), gw);
  h.start();
  assert.deepEqual(gw.seen.map((s) => [s.op, s.lifetime]), [
    ["GET", undefined],
    ["GetExternalIPAddress", undefined],
    ["AddPortMapping", 3600],
    ["AddPortMapping", 0],
  ]);
  assert.deepEqual(
    mapped(h).map(({ external, protocol, lifetime }) => ({ external, protocol, lifetime })),
    [
      { external: { hostname: "203.0.113.11", port: 40000 }, protocol: "upnp", lifetime: 0 },
    ],
  );
  h.advance(10_000_000);
  assert.equal(gw.seen.length, 4, "a permanent lease is not renewed");
  h.m.stop(h.now);
  h.pump();
  assert.equal(gw.seen.at(-1)!.op, "DeletePortMapping");
  assert.equal(h.m.idle, true);
});

Deno.test("portmap: UPnP stopped while AddPortMapping is on its way: deleted once granted, not if refused", () => {
  for (const granted of [true, false]) {
    const gw = new FakeGateway();
    gw.pcp = false;
    gw.natpmp = false;
    gw.upnp = true;
    const m = mapper(prng(13), { protocols: ["upnp"] });
    m.start(0);
    for (let t = m.pollTransmit(); t; t = m.pollTransmit()) {
      if (t.to.port === 1900) m.handleDatagram(0, { hostname: gw.lan, port: 1900 }, gw.ssdpReply());
    }
    // Answer everything up to the AddPortMapping, which stays on its way.
    let add: ReturnType<typeof m.pollHttp>;
    for (let h = m.pollHttp(); h; h = m.pollHttp()) {
      if (h.body?.includes("AddPortMapping")) {
        add = h;
        break;
      }
      m.handleHttp(0, h.id, gw.http(0, h));
    }
    assert.ok(add, "an AddPortMapping was sent");
    const res = granted ? gw.http(0, add) : { status: 500, body: "<s:Fault>718</s:Fault>" };
    m.stop(1);
    assert.equal(m.idle, false, "the answer is still awaited");
    m.handleHttp(2, add.id, res);
    const next = m.pollHttp();
    if (granted) {
      assert.ok(next?.body?.includes("DeletePortMapping"), "the granted mapping is deleted");
      m.handleHttp(3, next!.id, gw.http(3, next!));
      assert.equal(gw.seen.at(-1)!.op, "DeletePortMapping");
    } else {
      assert.equal(next, undefined, "a refused one is not ours to delete");
    }
    assert.equal(m.idle, true);
  }
});

Deno.test("portmap: UPnP renews at half the lease; LOCATION or control URL elsewhere is refused", () => {
  const gw = new FakeGateway();
  gw.upnp = true;
  const h = new Harness(mapper(prng(10), { protocols: ["upnp"], lease: 600 }), gw);
  h.start();
  assert.equal(mapped(h)[0]!.lifetime, 600);
  h.advance(299_999);
  assert.equal(gw.seen.filter((s) => s.op === "AddPortMapping").length, 1);
  h.advance(300_000);
  assert.equal(gw.seen.filter((s) => s.op === "AddPortMapping").length, 2);

  // An SSDP answer from another LAN host, or naming another host, fetches nothing.
  const m = mapper(prng(11), { protocols: ["upnp"] });
  m.start(0);
  while (m.pollTransmit());
  m.handleDatagram(1, { hostname: "192.168.1.66", port: 1900 }, gw.ssdpReply());
  m.handleDatagram(
    2,
    { hostname: "192.168.1.1", port: 1900 },
    gw.ssdpReply("http://192.168.1.66/x.xml"),
  );
  m.handleDatagram(
    3,
    { hostname: "192.168.1.1", port: 1900 },
    gw.ssdpReply("http://8.8.8.8/x.xml"),
  );
  assert.equal(m.pollHttp(), undefined);
  // A description whose control URL is on another host is not followed.
  m.handleDatagram(4, { hostname: "192.168.1.1", port: 1900 }, gw.ssdpReply());
  const get = m.pollHttp()!;
  assert.equal(get.url, "http://192.168.1.1:5000/rootDesc.xml");
  m.handleHttp(5, get.id, { status: 200, body: gw.description("http://10.1.2.3/ctl") });
  assert.equal(m.pollHttp(), undefined);
  m.handleTimeout(2000);
  assert.deepEqual(m.pollEvent(), { type: "none" });

  // Gateway unknown: an answer from a private address on our /24 is used.
  const u = mapper(prng(12), { protocols: ["pcp", "natpmp", "upnp"], gateway: null });
  u.start(0);
  assert.ok(u.pollTransmit()!.to.port === 1900, "only SSDP without a gateway");
  u.handleDatagram(1, { hostname: "10.0.0.1", port: 1900 }, gw.ssdpReply("http://10.0.0.1/d.xml"));
  assert.equal(u.pollHttp(), undefined, "not on our subnet");
  u.handleDatagram(2, { hostname: "192.168.1.1", port: 1900 }, gw.ssdpReply());
  assert.equal(u.pollHttp()?.url, "http://192.168.1.1:5000/rootDesc.xml");
});

Deno.test("portmap: a lost mapping is reported and another protocol's mapping stands in", () => {
  const gw = new FakeGateway();
  gw.maxLifetime = 120;
  gw.upnp = true;
  const h = new Harness(mapper(prng(13), { lease: 3600 }), gw);
  h.start();
  h.advance(1000);
  assert.deepEqual(mapped(h).map((e) => e.protocol), ["pcp"]);
  // PCP stops answering (NAT-PMP too); UPnP's HTTP still works.
  gw.pcp = false;
  gw.natpmp = false;
  h.advance(200_000);
  const kinds = h.events.map((e) => e.type === "mapped" ? `mapped ${e.protocol}` : e.type);
  assert.deepEqual(kinds, ["mapped pcp", "lost", "mapped upnp"]);
  assert.equal(h.events[1]!.at, 120_000, "lost when the PCP mapping expired");
});

Deno.test("portmap: the default gateway is read from /proc/net/route's little-endian hex", () => {
  const table =
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
    "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n" +
    "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n";
  assert.deepEqual(parseDefaultRoute(table), { iface: "wlan0", gateway: "192.168.1.1" });
  // No gateway flag, a host route, garbage: no default gateway.
  assert.equal(parseDefaultRoute(table.replace("0003", "0001")), null);
  assert.equal(
    parseDefaultRoute(table.replace("\t00000000\t0101A8C0", "\t0000000A\t0101A8C0")),
    null,
  );
  assert.equal(parseDefaultRoute("garbage"), null);
  assert.equal(parseDefaultRoute(""), null);
  // On this machine it does not throw, whatever it finds.
  const gw = findGateway("127.0.0.1");
  assert.equal(gw, null, "a loopback binding has nothing to map");
});
