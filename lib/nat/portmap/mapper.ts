/**
 * Router port mapping: asks the local gateway for a UDP mapping of the peer's main socket
 * with PCP (RFC 6887), NAT-PMP (RFC 6886) and UPnP IGD at once. A granted mapping is an
 * address the other side can reach us at even behind a symmetric NAT: the peer offers it as an
 * extra candidate. Sans-IO: datagrams go out through {@link PortMapper.pollTransmit} (from the
 * peer's main socket, so the mapping is for that socket), HTTP requests (UPnP) through
 * {@link PortMapper.pollHttp}; answers come back through {@link PortMapper.handleDatagram}
 * and {@link PortMapper.handleHttp}.
 *
 * **Which mapping.** The first one granted becomes the candidate; when several protocols are
 * still working, a lower-preference grant waits {@link SETTLE} ms for a better one (PCP over
 * NAT-PMP over UPnP). The others are kept (renewed, deleted on stop) and stand in when the
 * chosen one is lost. Each protocol machine renews at half the granted lifetime and asks again
 * when the gateway's epoch shows it rebooted.
 *
 * **Events.** `mapped` when the candidate is chosen (and again if its external endpoint
 * changes), `lost` when it goes, and once `none` when every protocol has given up without a
 * mapping: with no gateway answering, that is `timeout` ms after {@link PortMapper.start}, and
 * nothing more is sent after it.
 *
 * **Trust.** NAT-PMP and PCP answers count only from the gateway's address and port 5351, with
 * our opcode, internal port and (PCP) mapping nonce. SSDP answers count only from the gateway
 * (or, when it is unknown, from a private address on our subnet), and every UPnP URL fetched
 * must be on that host (`lib/nat/portmap/upnp.ts` says why). Everything is bounded: datagrams
 * sent (retries until `timeout`), SSDP answers read, HTTP requests made and their sizes.
 *
 * @module
 */

import type { Endpoint } from "../../wire/address.ts";
import type { Transmit } from "../../wire/transmit.ts";
import type { PortMapProtocol, ProtocolSink } from "./common.ts";
import { natPmpWire, pcpWire, UdpMapping } from "./gateway_udp.ts";
import { looksLikeNatPmp, NATPMP_PORT, NatPmpResult } from "./natpmp.ts";
import { looksLikePcp, PCP_NONCE_LEN } from "./pcp.ts";
import { looksLikeSsdp } from "./upnp.ts";
import { type HttpRequest, type HttpResult, UpnpClient } from "./upnp_client.ts";

export type { PortMapProtocol } from "./common.ts";
export type { HttpRequest, HttpResult } from "./upnp_client.ts";

/** How long a lower-preference grant waits for a better protocol still working, ms. */
export const SETTLE = 150;
/** Default requested lifetime for NAT-PMP and PCP, s (RFC 6886 recommends 7200). */
export const DEFAULT_LIFETIME = 7200;
/** Default UPnP lease, s. */
export const DEFAULT_LEASE = 3600;
/** Default wait for any answer, ms. */
export const DEFAULT_TIMEOUT = 2000;

/** Options of a {@link PortMapper}. */
export interface PortMapperOptions {
  /** IPv4 address of the default gateway; null = unknown (then only UPnP is tried). */
  gateway: string | null;
  /** Our LAN IPv4 address (toward the gateway). */
  localAddress: string;
  /** The peer's main socket port. */
  localPort: number;
  /** Random bytes (PCP nonce, UPnP conflict ports). */
  random: (n: number) => Uint8Array;
  /** Requested NAT-PMP/PCP lifetime, s (default {@link DEFAULT_LIFETIME}). */
  lifetime?: number;
  /** UPnP lease, s (default {@link DEFAULT_LEASE}). */
  lease?: number;
  /** No answer by then (ms after start) means no router (default {@link DEFAULT_TIMEOUT}). */
  timeout?: number;
  /** Our subnet's prefix length (default 24), for SSDP answers when the gateway is unknown. */
  prefixLength?: number;
  /** Protocols to use (default all three; tests pick one). */
  protocols?: readonly PortMapProtocol[];
}

/** What a {@link PortMapper} reports. */
export type PortMapEvent =
  | {
    type: "mapped";
    /** The public endpoint that reaches our main socket. */
    external: Endpoint;
    protocol: PortMapProtocol;
    /** Granted lifetime, s (0: permanent, UPnP only). */
    lifetime: number;
  }
  | { type: "lost"; protocol: PortMapProtocol; reason: string }
  | { type: "none" };

/** An HTTP request with the id to answer it with. */
export type PortMapHttp = HttpRequest & { id: number };

const PREFERENCE: readonly PortMapProtocol[] = ["pcp", "natpmp", "upnp"];
/** Most HTTP requests waiting to be polled. */
const MAX_HTTP_QUEUE = 8;
/** Most datagrams waiting to be polled. */
const MAX_OUT = 64;

type Machine = UdpMapping | UpnpClient;

/** Runs PCP, NAT-PMP and UPnP side by side; see the module documentation. */
export class PortMapper {
  #o: PortMapperOptions;
  #machines = new Map<PortMapProtocol, Machine>();
  #pcp: UdpMapping | undefined;
  #natpmp: UdpMapping | undefined;
  #upnp: UpnpClient | undefined;
  #out: Transmit[] = [];
  #http: PortMapHttp[] = [];
  #events: PortMapEvent[] = [];
  #nextId = 1;
  #granted = new Map<PortMapProtocol, { external: Endpoint; lifetime: number }>();
  #chosen: PortMapProtocol | undefined;
  #settleAt: number | undefined;
  #noneSent = false;
  #everChosen = false;
  #stopped = false;
  /** Counters of ignored input (for diagnostics). */
  readonly drops: Record<string, number> = {};

  /** A mapper; nothing is sent before {@link start}. */
  constructor(o: PortMapperOptions) {
    this.#o = o;
    const want = new Set(o.protocols ?? PREFERENCE);
    const timeout = o.timeout ?? DEFAULT_TIMEOUT;
    const lifetime = o.lifetime ?? DEFAULT_LIFETIME;
    const sink: ProtocolSink = {
      granted: (p, now, external, life) => this.#onGranted(p, now, external, life),
      failed: (_p, now) => this.#choose(now),
      lost: (p, _now, reason) => this.#onLost(p, reason),
    };
    const gateway = o.gateway;
    if (gateway !== null) {
      const send = (data: Uint8Array) => this.#send({ hostname: gateway, port: NATPMP_PORT }, data);
      const common = { sink, send, localPort: o.localPort, lifetime, timeout };
      if (want.has("pcp")) {
        const nonce = o.random(PCP_NONCE_LEN);
        const wire = pcpWire(o.localAddress, o.localPort, nonce);
        this.#pcp = new UdpMapping({ ...common, wire });
        this.#machines.set("pcp", this.#pcp);
      }
      if (want.has("natpmp")) {
        this.#natpmp = new UdpMapping({ ...common, wire: natPmpWire(o.localPort) });
        this.#machines.set("natpmp", this.#natpmp);
      }
    }
    if (want.has("upnp")) {
      this.#upnp = new UpnpClient({
        sink,
        send: (to, data) => this.#send(to, data),
        http: (req) => this.#queueHttp(req),
        gateway,
        localAddress: o.localAddress,
        prefixLength: o.prefixLength ?? 24,
        localPort: o.localPort,
        lease: o.lease ?? DEFAULT_LEASE,
        timeout,
        random: o.random,
      });
      this.#machines.set("upnp", this.#upnp);
    }
  }

  /** The protocol whose mapping is the candidate, if any. */
  get chosen(): PortMapProtocol | undefined {
    return this.#chosen;
  }

  /** True when nothing is pending: after {@link stop}, the deletions are done or given up. */
  get idle(): boolean {
    for (const m of this.#machines.values()) if (!m.idle) return false;
    return this.#out.length === 0 && this.#http.length === 0;
  }

  /** Starts all protocols at once. */
  start(now: number): void {
    for (const m of this.#machines.values()) m.start(now);
    this.#choose(now);
  }

  /**
   * Offers a datagram that arrived on the main socket. True when it is a NAT-PMP, PCP or SSDP
   * answer (used or dropped here); false when it is not ours to judge.
   */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): boolean {
    if (from.port === NATPMP_PORT && (looksLikeNatPmp(data) || looksLikePcp(data))) {
      if (from.hostname !== this.#o.gateway) return this.#drop("portmap-wrong-source");
      if (data[0] === 0 && data[1] === 129 && data[3] === NatPmpResult.UnsupportedVersion) {
        // A NAT-PMP-only gateway refusing our PCP request (version 2).
        this.#pcp?.refuse(now);
        return true;
      }
      const m = data[0] === 0 ? this.#natpmp : this.#pcp;
      if (!m || !m.handleDatagram(now, data)) return this.#drop("portmap-not-ours");
      this.#choose(now);
      return true;
    }
    if (looksLikeSsdp(data)) {
      if (this.#upnp) this.#upnp.handleSsdp(now, from, data);
      else this.#drop("ssdp-unexpected");
      return true;
    }
    return false;
  }

  /** The answer to HTTP request `id` (from {@link pollHttp}). */
  handleHttp(now: number, id: number, res: HttpResult): void {
    this.#upnp?.handleHttp(now, id, res);
    this.#choose(now);
  }

  /** Takes the next datagram to send (to the gateway's port 5351 or the SSDP group). */
  pollTransmit(): Transmit | undefined {
    return this.#out.shift();
  }

  /** Takes the next HTTP request to make (UPnP). */
  pollHttp(): PortMapHttp | undefined {
    return this.#http.shift();
  }

  /** Takes the next event. */
  pollEvent(): PortMapEvent | undefined {
    return this.#events.shift();
  }

  /** When {@link handleTimeout} has work. */
  nextTimeout(): number | undefined {
    let t = this.#settleAt ?? Infinity;
    for (const m of this.#machines.values()) t = Math.min(t, m.nextTimeout() ?? Infinity);
    return t === Infinity ? undefined : t;
  }

  /** Retransmits, renews, gives up, settles the choice. */
  handleTimeout(now: number): void {
    for (const m of this.#machines.values()) m.handleTimeout(now);
    this.#choose(now);
  }

  /** Deletes granted mappings (NAT-PMP and PCP lifetime 0, UPnP DeletePortMapping). */
  stop(now: number): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#settleAt = undefined;
    for (const m of this.#machines.values()) m.stop(now);
  }

  #send(to: Endpoint, data: Uint8Array): void {
    if (this.#out.length < MAX_OUT) this.#out.push({ to, data });
  }

  #queueHttp(req: HttpRequest): number {
    const id = this.#nextId++;
    if (this.#http.length < MAX_HTTP_QUEUE) this.#http.push({ ...req, id });
    return id;
  }

  #onGranted(p: PortMapProtocol, now: number, external: Endpoint, lifetime: number): void {
    this.#granted.set(p, { external, lifetime });
    if (this.#chosen === p) {
      this.#events.push({ type: "mapped", external, protocol: p, lifetime });
      return;
    }
    this.#choose(now);
  }

  #onLost(p: PortMapProtocol, reason: string): void {
    this.#granted.delete(p);
    if (this.#chosen !== p) return;
    this.#chosen = undefined;
    this.#events.push({ type: "lost", protocol: p, reason });
    // Another mapping may stand in: chosen after every machine has had its turn (#settle).
  }

  /** Picks the candidate (see the module documentation), or reports that there is none. */
  #choose(now: number): void {
    if (this.#chosen !== undefined || this.#stopped) return;
    const best = PREFERENCE.find((p) => this.#granted.has(p));
    if (best === undefined) {
      this.#settleAt = undefined;
      const allFailed = [...this.#machines.values()].every((m) => m.state === "failed");
      if (allFailed && !this.#noneSent && !this.#everChosen) {
        this.#noneSent = true;
        this.#events.push({ type: "none" });
      }
      return;
    }
    const better = PREFERENCE.slice(0, PREFERENCE.indexOf(best));
    const waiting = better.some((p) => this.#machines.get(p)?.state === "working");
    this.#settleAt ??= now + SETTLE;
    if (waiting && now < this.#settleAt) return;
    this.#settleAt = undefined;
    this.#chosen = best;
    this.#everChosen = true;
    const g = this.#granted.get(best)!;
    this.#events.push({
      type: "mapped",
      external: g.external,
      protocol: best,
      lifetime: g.lifetime,
    });
  }

  #drop(reason: string): true {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
    return true;
  }
}
