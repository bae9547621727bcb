/**
 * A fake home gateway for port-mapping tests in virtual time: it answers NAT-PMP (RFC 6886)
 * and PCP (RFC 6887) requests, which it parses and answers byte by byte from the RFCs' field
 * tables (not with the codecs under test), and UPnP IGD over a fake HTTP exchange. It can
 * reboot (its epoch starts again and its mappings are gone), refuse PCP like a NAT-PMP-only
 * box, fault UPnP leases like a permanent-leases-only box, or stay silent.
 *
 * @module
 */

import type { HttpRequest, HttpResult, PortMapper } from "../../lib/nat/portmap/mapper.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";

/** One request the gateway saw. */
export interface SeenRequest {
  protocol: "natpmp" | "pcp" | "upnp";
  /** NAT-PMP opcode (0 external address, 1 map UDP), PCP opcode, or the SOAP action / GET. */
  op: string;
  lifetime?: number;
  internalPort?: number;
  nonce?: string;
  at: number;
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");

/** The fake gateway. */
export class FakeGateway {
  lan = "192.168.1.1";
  external = "203.0.113.11";
  pcp = true;
  natpmp = true;
  upnp = false;
  /** Answer UPnP AddPortMapping with a non-zero lease by fault 725. */
  onlyPermanent = false;
  /** Lifetime granted (capped by what was asked). */
  maxLifetime = 7200;
  bootAt = 0;
  nextPort = 41001;
  /** internal port → external port. */
  mappings = new Map<number, number>();
  seen: SeenRequest[] = [];

  /** Forgets every mapping and restarts the epoch at `now`. */
  reboot(now: number): void {
    this.bootAt = now;
    this.mappings.clear();
    this.nextPort += 100;
  }

  #epoch(now: number): number {
    return Math.floor((now - this.bootAt) / 1000);
  }

  #port(internal: number): number {
    let p = this.mappings.get(internal);
    if (p === undefined) {
      p = this.nextPort++;
      this.mappings.set(internal, p);
    }
    return p;
  }

  /** Answers to one datagram sent to port 5351. */
  answer(now: number, d: Uint8Array): Uint8Array[] {
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    if (d[0] === 0 && this.natpmp) return this.#natpmp(now, d, v);
    if (d[0] === 2) {
      if (this.pcp) return this.#pcp(now, d, v);
      // A NAT-PMP-only gateway: "unsupported version", version 0, opcode 128 + 1.
      if (this.natpmp) return [this.#pmpHeader(now, d[1]!, 1, 8)];
    }
    return [];
  }

  #pmpHeader(now: number, op: number, result: number, len: number): Uint8Array {
    const b = new Uint8Array(len);
    const v = new DataView(b.buffer);
    b[0] = 0;
    b[1] = 128 + op;
    v.setUint16(2, result);
    v.setUint32(4, this.#epoch(now));
    return b;
  }

  #natpmp(now: number, d: Uint8Array, v: DataView): Uint8Array[] {
    const op = d[1]!;
    if (op === 0 && d.length === 2) {
      this.seen.push({ protocol: "natpmp", op: "0", at: now });
      const b = this.#pmpHeader(now, 0, 0, 12);
      b.set(this.external.split(".").map(Number), 8);
      return [b];
    }
    if (op === 1 && d.length === 12) {
      const internal = v.getUint16(4), lifetime = v.getUint32(8);
      this.seen.push({ protocol: "natpmp", op: "1", lifetime, internalPort: internal, at: now });
      const b = this.#pmpHeader(now, 1, 0, 16);
      const w = new DataView(b.buffer);
      w.setUint16(8, internal);
      if (lifetime === 0) {
        this.mappings.delete(internal);
        return [b];
      }
      w.setUint16(10, this.#port(internal));
      w.setUint32(12, Math.min(lifetime, this.maxLifetime));
      return [b];
    }
    return [];
  }

  #pcp(now: number, d: Uint8Array, v: DataView): Uint8Array[] {
    if (d.length !== 60 || d[1] !== 1) return [];
    const lifetime = v.getUint32(4);
    const internal = v.getUint16(40);
    const nonce = d.slice(24, 36);
    this.seen.push({
      protocol: "pcp",
      op: "1",
      lifetime,
      internalPort: internal,
      nonce: hex(nonce),
      at: now,
    });
    // The response copies the MAP body and fills in the assigned port and address.
    const b = new Uint8Array(60);
    const w = new DataView(b.buffer);
    b[0] = 2;
    b[1] = 0x81;
    b[3] = 0; // SUCCESS
    w.setUint32(8, this.#epoch(now));
    b.set(d.subarray(24, 60), 24);
    if (lifetime === 0) {
      this.mappings.delete(internal);
      return [b];
    }
    w.setUint32(4, Math.min(lifetime, this.maxLifetime));
    w.setUint16(42, this.#port(internal));
    b.fill(0, 44, 56);
    b[54] = 0xff;
    b[55] = 0xff;
    b.set(this.external.split(".").map(Number), 56);
    return [b];
  }

  /** The SSDP answer a gateway gives to an M-SEARCH. */
  ssdpReply(location = `http://${this.lan}:5000/rootDesc.xml`): Uint8Array {
    return new TextEncoder().encode(
      "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\n" +
        "ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
        `USN: uuid:1::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nEXT:\r\n` +
        `SERVER: Debian/12 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: ${location}\r\n\r\n`,
    );
  }

  /** A miniupnpd-like device description. */
  description(control = "/ctl/IPConn"): string {
    return `<?xml version="1.0"?>
<root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major><minor>0</minor></specVersion>
<device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:1</deviceType>
<serviceList><service><serviceType>urn:schemas-upnp-org:service:Layer3Forwarding:1</serviceType>
<serviceId>urn:upnp-org:serviceId:L3Forwarding1</serviceId><controlURL>/ctl/L3F</controlURL></service></serviceList>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANDevice:1</deviceType>
<deviceList><device><deviceType>urn:schemas-upnp-org:device:WANConnectionDevice:1</deviceType>
<serviceList><service>
<serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType>
<serviceId>urn:upnp-org:serviceId:WANIPConn1</serviceId>
<controlURL>${control}</controlURL><eventSubURL>/evt/IPConn</eventSubURL><SCPDURL>/WANIPCn.xml</SCPDURL>
</service></serviceList></device></deviceList></device></deviceList></device></root>`;
  }

  /** Answers an HTTP request as the gateway's UPnP web server would. */
  http(now: number, req: HttpRequest): HttpResult {
    if (!this.upnp) return { error: "connection refused" };
    if (req.method === "GET") {
      this.seen.push({ protocol: "upnp", op: "GET", at: now });
      return { status: 200, body: this.description() };
    }
    const action = /#(\w+)"$/.exec(req.headers["SOAPAction"] ?? "")?.[1] ?? "?";
    const arg = (n: string) => new RegExp(`<${n}>([^<]*)</${n}>`).exec(req.body ?? "")?.[1];
    const lease = arg("NewLeaseDuration");
    this.seen.push({
      protocol: "upnp",
      op: action,
      at: now,
      ...(lease !== undefined ? { lifetime: Number(lease) } : {}),
    });
    const ok = (inner: string) => ({
      status: 200,
      body:
        `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">` +
        `<s:Body><u:${action}Response xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1">` +
        `${inner}</u:${action}Response></s:Body></s:Envelope>`,
    });
    if (action === "GetExternalIPAddress") {
      return ok(`<NewExternalIPAddress>${this.external}</NewExternalIPAddress>`);
    }
    if (action === "AddPortMapping") {
      if (this.onlyPermanent && lease !== "0") return fault(725, "OnlyPermanentLeasesSupported");
      this.mappings.set(Number(arg("NewInternalPort")), Number(arg("NewExternalPort")));
      return ok("");
    }
    if (action === "DeletePortMapping") return ok("");
    return fault(401, "Invalid Action");
  }
}

function fault(code: number, text: string): HttpResult {
  return {
    status: 500,
    body: `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">` +
      `<s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring>` +
      `<detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>${code}</errorCode>` +
      `<errorDescription>${text}</errorDescription></UPnPError></detail></s:Fault></s:Body>` +
      `</s:Envelope>`,
  };
}

/**
 * Runs a mapper against `gw` in virtual time: transmits to the gateway's port 5351 are answered
 * at once, M-SEARCHes by an SSDP reply from the gateway when `gw.upnp`, HTTP requests by
 * {@link FakeGateway.http}. Everything sent is kept in `sent`; events in `events`.
 */
export class Harness {
  now = 0;
  sent: (Transmit & { at: number })[] = [];
  events: (ReturnType<PortMapper["pollEvent"]> & object & { at: number })[] = [];
  /** Set to false to stop answering (the gateway vanished). */
  answering = true;

  constructor(readonly m: PortMapper, readonly gw: FakeGateway | null) {}

  #gwEp(): Endpoint {
    return { hostname: this.gw!.lan, port: 5351 };
  }

  /** Delivers what the mapper sent and collects events. */
  pump(): void {
    for (let progress = true; progress;) {
      progress = false;
      for (let t = this.m.pollTransmit(); t; t = this.m.pollTransmit()) {
        progress = true;
        this.sent.push({ ...t, at: this.now });
        const gw = this.gw;
        if (!gw || !this.answering) continue;
        if (t.to.hostname === gw.lan && t.to.port === 5351) {
          for (const r of gw.answer(this.now, t.data)) {
            this.m.handleDatagram(this.now, this.#gwEp(), r);
          }
        } else if (t.to.port === 1900 && gw.upnp) {
          this.m.handleDatagram(this.now, { hostname: gw.lan, port: 1900 }, gw.ssdpReply());
        }
      }
      for (let h = this.m.pollHttp(); h; h = this.m.pollHttp()) {
        progress = true;
        const res = this.gw && this.answering ? this.gw.http(this.now, h) : { error: "timeout" };
        this.m.handleHttp(this.now, h.id, res);
      }
    }
    for (let e = this.m.pollEvent(); e; e = this.m.pollEvent()) {
      this.events.push({ ...e, at: this.now });
    }
  }

  /** Starts the mapper at `now`. */
  start(): void {
    this.m.start(this.now);
    this.pump();
  }

  /** Runs timers up to `until` (ms). */
  advance(until: number): void {
    for (let i = 0; i < 100_000; i++) {
      const t = this.m.nextTimeout();
      if (t === undefined || t > until) break;
      this.now = Math.max(this.now, t);
      this.m.handleTimeout(this.now);
      this.pump();
    }
    this.now = Math.max(this.now, until);
  }
}
