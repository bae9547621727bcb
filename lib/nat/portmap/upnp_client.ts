/**
 * The UPnP IGD client: one UDP port mapping through the gateway's WANIPConnection (or
 * WANPPPConnection) service. Sans-IO: SSDP datagrams go out through the mapper's transmits,
 * HTTP requests through its `pollHttp` (the peer runs them with `fetch` and hands the answer
 * back); this machine only decides.
 *
 * search (M-SEARCH to 239.255.255.250:1900, twice, until `timeout`) → describe (GET the
 * LOCATION) → external-ip (GetExternalIPAddress) → add (AddPortMapping, lease `lease` s;
 * error 725 "only permanent leases" retries with lease 0; error 718 "conflict" with a random
 * external port, twice at most) → granted, renewed at half the lease → delete on stop.
 *
 * Bounds: SSDP answers are only read from the gateway (or, when the gateway is unknown, from a
 * private address on our subnet) and at most {@link MAX_SSDP_REPLIES} of them; at most
 * {@link MAX_LOCATIONS} descriptions are tried; one HTTP request is in flight at a time and at
 * most {@link MAX_HTTP} are made to get a mapping; each gets an answer or counts as failed
 * after `timeout` + 1 s. Every URL fetched is on the answering gateway's own LAN address
 * (see `lib/nat/portmap/upnp.ts`).
 *
 * @module
 */

import type { Endpoint } from "../../wire/address.ts";
import type { PortMapProtocol, ProtocolSink, ProtocolState } from "./common.ts";
import {
  addPortMappingRequest,
  CONFLICT_IN_MAPPING,
  deletePortMappingRequest,
  encodeMSearch,
  gatewayUrl,
  getExternalIpRequest,
  HTTP_MAX_BODY,
  isPrivateIPv4,
  ONLY_PERMANENT_LEASES,
  parseDescription,
  parseExternalIp,
  parseSoapResult,
  parseSsdpReply,
  sameSubnet,
  SEARCH_TARGETS,
  type SoapRequest,
  SSDP_ADDR,
  SSDP_PORT,
} from "./upnp.ts";

/** Most SSDP answers read per search. */
export const MAX_SSDP_REPLIES = 16;
/** Most device descriptions tried. */
export const MAX_LOCATIONS = 3;
/** Most HTTP requests made to get (or renew) one mapping. */
export const MAX_HTTP = 10;
/** Times the M-SEARCH round is sent. */
const SEARCH_ROUNDS = 2;
/** Gap between M-SEARCH rounds, ms. */
const SEARCH_GAP = 500;
/** Retry gap after a failed renewal, ms. */
const RENEW_RETRY = 10_000;

/** An HTTP request the machine wants made. */
export interface HttpRequest {
  /** GET (the device description) or POST (a SOAP action). */
  method: "GET" | "POST";
  /** Always an `http://` URL on the gateway's LAN address. */
  url: string;
  /** Headers to send (SOAPAction, Content-Type). */
  headers: Record<string, string>;
  /** The SOAP body, for POST. */
  body?: string;
}

/** The answer to an {@link HttpRequest}: status and body, or why there is none. */
export type HttpResult = { status: number; body: string } | { error: string };

/** Options of an {@link UpnpClient}. */
export interface UpnpClientOptions {
  sink: ProtocolSink;
  /** Sends a datagram (M-SEARCH). */
  send: (to: Endpoint, data: Uint8Array) => void;
  /** Queues an HTTP request; returns its id. */
  http: (req: HttpRequest) => number;
  /** The default gateway's IPv4 address, or null (unknown: any private host on our subnet). */
  gateway: string | null;
  /** Our LAN IPv4 address. */
  localAddress: string;
  /** Our subnet's prefix length. */
  prefixLength: number;
  /** Our main socket's port. */
  localPort: number;
  /** Requested lease, s. */
  lease: number;
  /** How long the search waits, ms (and each HTTP request, plus a second). */
  timeout: number;
  /** Random bytes (a new external port after a conflict). */
  random: (n: number) => Uint8Array;
}

type Phase =
  | "idle"
  | "search"
  | "describe"
  | "external-ip"
  | "add"
  | "granted"
  | "renew"
  | "failed"
  | "delete"
  | "delete-after-add"
  | "done";

/** One UPnP IGD mapping's life. */
export class UpnpClient {
  #o: UpnpClientOptions;
  #phase: Phase = "idle";
  #searchEnd = 0;
  #rounds = 0;
  #nextRound = 0;
  #replies = 0;
  /** Description URLs heard of (the first {@link MAX_LOCATIONS}), and how many were tried. */
  #locations: string[] = [];
  #tried = 0;
  #host = "";
  #service: { type: string; control: string } | undefined;
  #externalIp = "";
  #externalPort: number;
  #lease: number;
  #conflicts = 0;
  #requests = 0;
  #pending: { id: number; deadline: number } | undefined;
  #granted = false;
  #renewAt = 0;
  #expiresAt = 0;
  /** Counters of ignored input (for diagnostics). */
  readonly drops: Record<string, number> = {};

  /** A client; {@link start} begins the search. */
  constructor(o: UpnpClientOptions) {
    this.#o = o;
    this.#externalPort = o.localPort;
    this.#lease = o.lease;
  }

  /** Always "upnp". */
  get protocol(): PortMapProtocol {
    return "upnp";
  }

  /** Where it stands. */
  get state(): ProtocolState {
    if (this.#phase === "idle") return "idle";
    if (this.#phase === "failed") return "failed";
    if (this.#phase === "granted" || this.#phase === "renew") return "granted";
    if (this.#phase === "delete" || this.#phase === "delete-after-add") return "working";
    if (this.#phase === "done") return "done";
    return "working";
  }

  /** True when nothing is pending. */
  get idle(): boolean {
    return this.#pending === undefined && this.#phase !== "search";
  }

  /** Sends the first M-SEARCH round. */
  start(now: number): void {
    if (this.#phase !== "idle") return;
    this.#phase = "search";
    this.#searchEnd = now + this.#o.timeout;
    this.#nextRound = now;
    this.handleTimeout(now);
  }

  /** When {@link handleTimeout} has work. */
  nextTimeout(): number | undefined {
    let t = Infinity;
    if (this.#phase === "search") {
      t = Math.min(this.#searchEnd, this.#rounds < SEARCH_ROUNDS ? this.#nextRound : Infinity);
    }
    if (this.#pending) t = Math.min(t, this.#pending.deadline);
    if (this.#phase === "granted" && this.#lease > 0) t = Math.min(t, this.#renewAt);
    return t === Infinity ? undefined : t;
  }

  /** Search rounds, the end of the search, HTTP deadlines, renewals. */
  handleTimeout(now: number): void {
    if (this.#phase === "search") {
      if (now >= this.#searchEnd) return this.#fail(now, "no UPnP gateway answered");
      if (this.#rounds < SEARCH_ROUNDS && now >= this.#nextRound) {
        this.#rounds++;
        this.#nextRound = now + SEARCH_GAP;
        for (const st of SEARCH_TARGETS) {
          this.#o.send({ hostname: SSDP_ADDR, port: SSDP_PORT }, encodeMSearch(st));
        }
      }
    }
    if (this.#pending && now >= this.#pending.deadline) {
      this.handleHttp(now, this.#pending.id, { error: "no answer in time" });
    }
    if (this.#phase === "granted" && this.#lease > 0 && now >= this.#renewAt) {
      this.#phase = "renew";
      this.#requests = 0;
      this.#add(now);
    }
  }

  /** An SSDP answer (the mapper saw `HTTP/1.` at its start). */
  handleSsdp(now: number, from: Endpoint, data: Uint8Array): void {
    // Answers from elsewhere cost a comparison; only the gateway's use up the budget.
    if (!this.#acceptableSource(from.hostname)) return this.#drop("ssdp-wrong-source");
    if (this.#replies >= MAX_SSDP_REPLIES) return this.#drop("ssdp-too-many");
    this.#replies++;
    const location = parseSsdpReply(data);
    const url = location === null ? null : gatewayUrl(location, from.hostname);
    if (url === null) return this.#drop("ssdp-bad-location");
    if (this.#host !== "" && from.hostname !== this.#host) return this.#drop("ssdp-other-host");
    if (this.#locations.includes(url) || this.#locations.length >= MAX_LOCATIONS) return;
    this.#host = from.hostname;
    this.#locations.push(url);
    if (this.#phase === "search") this.#describe(now);
  }

  #acceptableSource(ip: string): boolean {
    if (this.#o.gateway !== null) return ip === this.#o.gateway;
    return isPrivateIPv4(ip) && sameSubnet(ip, this.#o.localAddress, this.#o.prefixLength) &&
      ip !== this.#o.localAddress;
  }

  #describe(now: number): void {
    const url = this.#locations[this.#tried++];
    if (url === undefined) return this.#fail(now, "no usable UPnP device description");
    this.#phase = "describe";
    this.#request(now, { method: "GET", url, headers: {} }, url);
  }

  #describeUrl = "";

  #request(now: number, req: HttpRequest, describing?: string): void {
    if (this.#requests >= MAX_HTTP) return this.#fail(now, "too many UPnP requests");
    this.#requests++;
    if (describing !== undefined) this.#describeUrl = describing;
    const id = this.#o.http(req);
    this.#pending = { id, deadline: now + this.#o.timeout + 1000 };
  }

  #soap(now: number, soap: SoapRequest): void {
    const s = this.#service!;
    this.#request(now, { method: "POST", url: s.control, headers: soap.headers, body: soap.body });
  }

  /** The answer to our HTTP request `id` (others are ignored). */
  handleHttp(now: number, id: number, res: HttpResult): void {
    if (!this.#pending || this.#pending.id !== id) return this.#drop("http-unexpected");
    this.#pending = undefined;
    if ("status" in res && res.body.length > HTTP_MAX_BODY) {
      res = { error: "answer too long" };
    }
    switch (this.#phase) {
      case "describe":
        return this.#described(now, res);
      case "external-ip":
        return this.#gotExternalIp(now, res);
      case "add":
      case "renew":
        return this.#added(now, res);
      case "delete":
        this.#phase = "done";
        return;
      case "delete-after-add": {
        // Stopped while AddPortMapping was on its way: if the router granted it, the mapping
        // is ours (a conflict would have been refused), so it is deleted like any other.
        const r = "error" in res ? null : parseSoapResult(res.status, res.body);
        if (!r?.ok) {
          this.#phase = "done";
          return;
        }
        this.#phase = "delete";
        this.#requests = 0;
        return this.#soap(now, deletePortMappingRequest(this.#service!.type, this.#externalPort));
      }
    }
  }

  #described(now: number, res: HttpResult): void {
    const s = "status" in res && res.status === 200 ? parseDescription(res.body) : null;
    const base = s?.base ?? this.#describeUrl;
    const control = s ? gatewayUrl(s.controlUrl, this.#host, base) : null;
    if (!s || control === null) {
      if (s) this.#drop("upnp-control-elsewhere");
      return this.#describe(now);
    }
    this.#service = { type: s.serviceType, control };
    this.#phase = "external-ip";
    this.#soap(now, getExternalIpRequest(s.serviceType));
  }

  #gotExternalIp(now: number, res: HttpResult): void {
    if ("error" in res) return this.#fail(now, res.error);
    const r = parseSoapResult(res.status, res.body);
    const ip = r.ok ? parseExternalIp(r.body) : null;
    if (ip === null) return this.#fail(now, r.ok ? "no external address" : r.reason);
    this.#externalIp = ip;
    this.#phase = "add";
    this.#add(now);
  }

  #add(now: number): void {
    this.#soap(
      now,
      addPortMappingRequest(this.#service!.type, {
        externalPort: this.#externalPort,
        internalPort: this.#o.localPort,
        internalClient: this.#o.localAddress,
        lease: this.#lease,
        description: "p2p",
      }),
    );
  }

  #added(now: number, res: HttpResult): void {
    const r = "error" in res
      ? { ok: false as const, fault: null, reason: res.error }
      : parseSoapResult(res.status, res.body);
    if (r.ok) return this.#grant(now);
    if (this.#phase === "renew") {
      if (now + RENEW_RETRY < this.#expiresAt) {
        this.#phase = "granted";
        this.#renewAt = now + RENEW_RETRY;
        return;
      }
      return this.#fail(now, r.reason);
    }
    if (r.fault === ONLY_PERMANENT_LEASES && this.#lease !== 0) {
      this.#lease = 0;
      return this.#add(now);
    }
    if (r.fault === CONFLICT_IN_MAPPING && this.#conflicts < 2) {
      this.#conflicts++;
      const b = this.#o.random(2);
      this.#externalPort = 1024 + (((b[0]! << 8) | b[1]!) % (65536 - 1024));
      return this.#add(now);
    }
    this.#fail(now, r.reason);
  }

  #grant(now: number): void {
    const first = !this.#granted;
    this.#granted = true;
    this.#phase = "granted";
    this.#requests = 0;
    this.#expiresAt = this.#lease > 0 ? now + this.#lease * 1000 : Infinity;
    this.#renewAt = now + Math.max(1000, this.#lease * 500);
    if (first) {
      const external = { hostname: this.#externalIp, port: this.#externalPort };
      this.#o.sink.granted("upnp", now, external, this.#lease);
    }
  }

  #fail(now: number, reason: string): void {
    const had = this.#granted;
    this.#granted = false;
    this.#phase = "failed";
    this.#pending = undefined;
    if (had) this.#o.sink.lost("upnp", now, reason);
    else this.#o.sink.failed("upnp", now, reason);
  }

  /**
   * Deletes a granted mapping, or one whose AddPortMapping is still on its way once the router
   * grants it; anything else just stops.
   */
  stop(now: number): void {
    if (this.#phase === "delete" || this.#phase === "delete-after-add") return;
    if (this.#phase === "done") return;
    if (this.#phase === "add" && this.#pending && !this.#granted) {
      this.#phase = "delete-after-add";
      return;
    }
    const granted = this.#granted && this.#service !== undefined;
    this.#pending = undefined;
    if (!granted) {
      this.#phase = "done";
      return;
    }
    this.#phase = "delete";
    this.#requests = 0;
    this.#soap(now, deletePortMappingRequest(this.#service!.type, this.#externalPort));
  }

  #drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }
}
