/**
 * UPnP IGD codec: the SSDP search for an Internet Gateway Device, the device description's
 * WAN connection service, and the SOAP actions that map a UDP port (GetExternalIPAddress,
 * AddPortMapping, DeletePortMapping). Pure text in, text out; nothing here throws on input.
 *
 * The device description is read by a tiny tolerant tag scanner (no XML library): it looks
 * for `<service>` blocks, reads their `<serviceType>` and `<controlURL>`, and prefers
 * WANIPConnection:2, then :1, then WANPPPConnection:1. Everything read is bounded in size.
 *
 * **Which URLs we fetch.** Any host on the LAN can answer an SSDP search with any LOCATION,
 * and the description can name any control URL. Fetching whatever they say would let a LAN
 * attacker point us at arbitrary hosts (say, a web interface inside the network, or the
 * Internet). So only `http://` URLs whose host is the gateway's own private LAN address
 * (the literal IPv4 the SSDP answer came from, which must also be the default gateway when it
 * is known) are ever requested: see {@link gatewayUrl}.
 *
 * @module
 */

import { parseIPv4 } from "../../wire/address.ts";

/** The SSDP multicast group and port. */
export const SSDP_ADDR = "239.255.255.250";
/** The SSDP port. */
export const SSDP_PORT = 1900;
/** Largest SSDP answer read. */
export const SSDP_MAX_LEN = 2048;
/** Largest HTTP body read (device descriptions, SOAP answers). */
export const HTTP_MAX_BODY = 65_536;

/** What we search for (one M-SEARCH each). */
export const SEARCH_TARGETS: readonly string[] = [
  "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
  "urn:schemas-upnp-org:service:WANIPConnection:1",
  "urn:schemas-upnp-org:service:WANIPConnection:2",
  "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/** Service types that can map ports, best first. */
export const WAN_SERVICES: readonly string[] = [
  "urn:schemas-upnp-org:service:WANIPConnection:2",
  "urn:schemas-upnp-org:service:WANIPConnection:1",
  "urn:schemas-upnp-org:service:WANPPPConnection:1",
];

/** UPnP error code: the gateway only supports permanent leases (retry with lease 0). */
export const ONLY_PERMANENT_LEASES = 725;
/** UPnP error code: the external port is mapped to someone else. */
export const CONFLICT_IN_MAPPING = 718;

const enc = new TextEncoder();

/** An SSDP M-SEARCH datagram for `target` (MX 1: devices answer within a second). */
export function encodeMSearch(target: string): Uint8Array {
  return enc.encode(
    "M-SEARCH * HTTP/1.1\r\n" +
      `HOST: ${SSDP_ADDR}:${SSDP_PORT}\r\n` +
      'MAN: "ssdp:discover"\r\n' +
      "MX: 1\r\n" +
      `ST: ${target}\r\n\r\n`,
  );
}

/** Whether `data` starts like an HTTP answer (an SSDP reply): `HTTP/1.`. */
export function looksLikeSsdp(data: Uint8Array): boolean {
  return data.length >= 12 && data[0] === 0x48 && data[1] === 0x54 && data[2] === 0x54 &&
    data[3] === 0x50 && data[4] === 0x2f && data[5] === 0x31 && data[6] === 0x2e;
}

/** The LOCATION of an SSDP `200 OK` answer, or null (not one, too long, no location). */
export function parseSsdpReply(data: Uint8Array): string | null {
  if (data.length > SSDP_MAX_LEN || !looksLikeSsdp(data)) return null;
  const text = new TextDecoder("latin1").decode(data);
  const lines = text.split(/\r?\n/);
  if (!/^HTTP\/1\.[01] 200(\s|$)/i.test(lines[0] ?? "")) return null;
  for (const line of lines.slice(1)) {
    if (line === "") break;
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    if (line.slice(0, colon).trim().toLowerCase() !== "location") continue;
    const value = line.slice(colon + 1).trim();
    return value.length > 0 && value.length <= 512 ? value : null;
  }
  return null;
}

/**
 * `url` (resolved against `base`) when it is an `http://` URL on `host` (a literal IPv4
 * address) without credentials; null otherwise. This is the one place that decides what the
 * UPnP client may fetch (see the module documentation).
 */
export function gatewayUrl(url: string, host: string, base?: string): string | null {
  if (url.length > 1024 || !parseIPv4(host)) return null;
  let u: URL;
  try {
    u = base === undefined ? new URL(url) : new URL(url, base);
  } catch {
    return null;
  }
  if (u.protocol !== "http:" || u.hostname !== host) return null;
  if (u.username !== "" || u.password !== "") return null;
  return u.href;
}

/** Whether `ip` is a private IPv4 address (RFC 1918). */
export function isPrivateIPv4(ip: string): boolean {
  const a = parseIPv4(ip);
  if (!a) return false;
  return a[0] === 10 || (a[0] === 172 && a[1]! >= 16 && a[1]! < 32) ||
    (a[0] === 192 && a[1] === 168);
}

/** Whether two IPv4 addresses share their first `bits` bits. */
export function sameSubnet(a: string, b: string, bits: number): boolean {
  const x = parseIPv4(a), y = parseIPv4(b);
  if (!x || !y) return false;
  const n = Math.max(0, Math.min(32, bits));
  const ux = ((x[0]! << 24) | (x[1]! << 16) | (x[2]! << 8) | x[3]!) >>> 0;
  const uy = ((y[0]! << 24) | (y[1]! << 16) | (y[2]! << 8) | y[3]!) >>> 0;
  const mask = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return (ux & mask) === (uy & mask);
}

/**
 * The index of the tag `<name` (`close`: `</name`) followed by `>`, `/` or white space, in
 * lowercased `s`, from `from`; -1 if none.
 */
function findTag(s: string, name: string, from: number, close = false): number {
  const t = close ? `</${name}` : `<${name}`;
  for (let i = s.indexOf(t, from); i >= 0; i = s.indexOf(t, i + 1)) {
    const c = s[i + t.length];
    if (c === ">" || c === "/" || c === " " || c === "\t" || c === "\r" || c === "\n") return i;
  }
  return -1;
}

const ENTITIES: Record<string, string> = {
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&apos;": "'",
};

/** The text of the first element `name` in `doc` (case-insensitive), trimmed and unescaped. */
export function tagText(doc: string, name: string, max = 1024): string | null {
  const lower = doc.toLowerCase();
  const n = name.toLowerCase();
  const open = findTag(lower, n, 0);
  if (open < 0) return null;
  const start = lower.indexOf(">", open);
  if (start < 0 || lower[start - 1] === "/") return start < 0 ? null : "";
  const end = findTag(lower, n, start, true);
  if (end < 0 || end - start - 1 > max) return null;
  return doc.slice(start + 1, end).trim().replace(/&(amp|lt|gt|quot|apos);/g, (m) => ENTITIES[m]!);
}

/** The WAN connection service found in a device description. */
export interface WanService {
  /** Its service type (one of {@link WAN_SERVICES}). */
  serviceType: string;
  /** Its control URL, as written (resolve against {@link WanService.base}). */
  controlUrl: string;
  /** The description's URLBase, if it has one. */
  base: string | null;
}

/** Finds the best WAN connection service in a device description, or null. */
export function parseDescription(xml: string): WanService | null {
  if (xml.length > HTTP_MAX_BODY) return null;
  const lower = xml.toLowerCase();
  const found: WanService[] = [];
  const base = tagText(xml, "URLBase");
  for (let pos = 0, n = 0; n < 64; n++) {
    const open = findTag(lower, "service", pos);
    if (open < 0) break;
    const close = findTag(lower, "service", open, true);
    if (close < 0) break;
    const block = xml.slice(open, close);
    pos = close + 1;
    const type = tagText(block, "serviceType");
    const control = tagText(block, "controlURL");
    if (type && control && WAN_SERVICES.includes(type)) {
      found.push({ serviceType: type, controlUrl: control, base: base || null });
    }
  }
  for (const t of WAN_SERVICES) {
    const s = found.find((f) => f.serviceType === t);
    if (s) return s;
  }
  return null;
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A SOAP request: its body and the headers to send with it (POST to the control URL). */
export interface SoapRequest {
  headers: Record<string, string>;
  body: string;
}

/** Builds the SOAP request for `action` of `serviceType` with `args` (in order). */
export function soapRequest(
  serviceType: string,
  action: string,
  args: ReadonlyArray<readonly [string, string | number]>,
): SoapRequest {
  const inner = args.map(([k, v]) => `<${k}>${escapeXml(String(v))}</${k}>`).join("");
  const body = '<?xml version="1.0"?>\r\n' +
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" ' +
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>' +
    `<u:${action} xmlns:u="${escapeXml(serviceType)}">${inner}</u:${action}>` +
    "</s:Body></s:Envelope>\r\n";
  return {
    headers: {
      "Content-Type": 'text/xml; charset="utf-8"',
      "SOAPAction": `"${serviceType}#${action}"`,
    },
    body,
  };
}

/** GetExternalIPAddress. */
export function getExternalIpRequest(serviceType: string): SoapRequest {
  return soapRequest(serviceType, "GetExternalIPAddress", []);
}

/** Parameters of an AddPortMapping. */
export interface PortMappingArgs {
  externalPort: number;
  internalPort: number;
  /** Our LAN IPv4 address. */
  internalClient: string;
  /** Lease in seconds (0: permanent). */
  lease: number;
  /** Shown in the router's table. */
  description: string;
}

/** AddPortMapping for UDP. */
export function addPortMappingRequest(serviceType: string, a: PortMappingArgs): SoapRequest {
  return soapRequest(serviceType, "AddPortMapping", [
    ["NewRemoteHost", ""],
    ["NewExternalPort", a.externalPort],
    ["NewProtocol", "UDP"],
    ["NewInternalPort", a.internalPort],
    ["NewInternalClient", a.internalClient],
    ["NewEnabled", 1],
    ["NewPortMappingDescription", a.description],
    ["NewLeaseDuration", a.lease],
  ]);
}

/** DeletePortMapping for UDP. */
export function deletePortMappingRequest(serviceType: string, externalPort: number): SoapRequest {
  return soapRequest(serviceType, "DeletePortMapping", [
    ["NewRemoteHost", ""],
    ["NewExternalPort", externalPort],
    ["NewProtocol", "UDP"],
  ]);
}

/** The outcome of a SOAP action. */
export type SoapResult =
  | { ok: true; body: string }
  | { ok: false; fault: number | null; reason: string };

/** Reads a SOAP answer: 200 with a body is success; otherwise the UPnP error code if any. */
export function parseSoapResult(status: number, body: string): SoapResult {
  if (body.length > HTTP_MAX_BODY) return { ok: false, fault: null, reason: "too-long" };
  if (status === 200 && !/<([a-z0-9]+:)?fault[\s>]/i.test(body)) return { ok: true, body };
  const code = tagText(body, "errorCode", 16);
  const fault = code !== null && /^\d{1,4}$/.test(code) ? Number(code) : null;
  const desc = tagText(body, "errorDescription", 128);
  return { ok: false, fault, reason: desc ?? `HTTP ${status}` };
}

/** The external IPv4 address in a GetExternalIPAddress answer, or null. */
export function parseExternalIp(body: string): string | null {
  const ip = tagText(body, "NewExternalIPAddress", 64);
  return ip !== null && parseIPv4(ip) ? ip : null;
}
