/**
 * STUN discovery for `p2p join --stun HOST:PORT`: a pure sans-IO machine the peer core embeds on
 * its one UDP socket. It sends a Binding request to each configured STUN server (the p2p server
 * itself answers STUN on its port too), collects the reflexive addresses they report (extra
 * candidates for hole punching) and compares them: servers at different addresses seeing our
 * one socket under different public addresses reveal endpoint-dependent ("symmetric") mapping,
 * which forces the relay with symmetric and port-restricted peers (`docs/nat-matrix.md`).
 *
 * ## Requests
 *
 * One transaction per server with a random 96-bit id (RFC 8489, magic cookie, FINGERPRINT),
 * retransmitted with the same id after `rto`, then `2·rto`, where `rto` is chosen so that the
 * last wait is `4·rto` and the whole exchange ends at `timeout`: with the defaults (3000 ms, two
 * retries) requests leave at 0, ≈429 and ≈1286 ms, and a server that has not answered at 3000 ms
 * is given up. At most 3 datagrams ever go to one server, whatever `retries` says.
 *
 * ## Answers
 *
 * {@link StunProbe.handleDatagram} claims a datagram (returns true) only when it decodes as a
 * Binding response (success or error, magic cookie) whose transaction id is one of ours and
 * whose source is exactly the server that transaction was sent to; everything else (p2p
 * datagrams, garbage, requests, unsolicited or forged responses) returns false and changes
 * nothing. It never throws on input. The first answer of a transaction counts; late duplicates
 * are claimed but ignored. An error response, or a success without a usable mapped address, ends
 * that server without a result.
 *
 * ## Verdict
 *
 * Answers are compared only between servers of the same address family (an IPv6 server sees
 * another address than an IPv4 one without any NAT being involved). Two answering servers
 * reporting different mapped addresses prove address-dependent mapping at once: the
 * `mapping` event is emitted then, with a `notice` for the user. Agreement gives
 * "endpoint-independent" only when servers with different IP addresses answered; two ports of
 * one host that agree give "not-port-dependent" (an address-dependent-only NAT looks the same
 * there). The event is held back until {@link StunProbe.done}, since a later answer could
 * still disagree. No verdict, no event.
 *
 * A server names a second address of its own in OTHER-ADDRESS (RFC 5780) or, with one address
 * and two ports, its other port in p2p's ALT-PORT ({@link altPortOf}); the probe asks that too
 * (at most two such servers in all).
 *
 * Servers must be given as literal IP addresses (resolve `--stun` host names first).
 *
 * @module
 */

import {
  altPortOf,
  Attr,
  BINDING,
  bindingRequest,
  decodeAddress,
  decodeStun,
  findAttribute,
  looksLikeStun,
  mappedAddress,
  StunClass,
  type StunMessage,
} from "./stun.ts";
import type { Endpoint } from "../wire/address.ts";
import { toHex } from "../wire/codec.ts";
import type { Transmit } from "../wire/transmit.ts";

/**
 * NAT mapping behaviour as far as a STUN probe can tell (RFC 4787 §4.1). `address-dependent`:
 * two servers saw different public addresses (the mapping depends on the destination; when the
 * two share an IP address, on its port). `not-port-dependent`: only two ports of one server
 * address were compared and agreed: endpoint-independent, or address-dependent only (a new
 * mapping per destination host but not per port), which one address cannot tell apart.
 */
export type ProbeMapping = "endpoint-independent" | "address-dependent" | "not-port-dependent";

/** Events of a {@link StunProbe}; at most one is ever emitted. */
export type StunProbeEvent = {
  type: "mapping";
  /** The verdict. */
  mapping: ProbeMapping;
  /** Distinct reflexive addresses seen so far (see {@link StunProbe.reflexive}). */
  reflexive: Endpoint[];
  /** For the user, when the mapping forces the relay with some peers. */
  notice?: string;
};

/** Options of {@link StunProbe}. */
export interface StunProbeOptions {
  /** STUN servers to ask, literal IP addresses (duplicates are asked once). */
  servers: readonly Endpoint[];
  /** Random bytes (transaction ids). */
  random: (n: number) => Uint8Array;
  /** How long to wait for each server in total, ms (default {@link DEFAULT_PROBE_TIMEOUT}). */
  timeout?: number;
  /** Retransmissions per server, 0 to 2 (default 2; more are capped: ≤ 3 datagrams a server). */
  retries?: number;
  /**
   * Hold back asking a server's OTHER-ADDRESS until {@link StunProbe.releaseOther}: a peer
   * waiting for the server's reachability check (a REACH from that other address) must not
   * open its NAT towards it first, or an address-restricted NAT would pass the check.
   */
  holdOther?: boolean;
}

/** Default {@link StunProbeOptions.timeout}, ms. */
export const DEFAULT_PROBE_TIMEOUT = 3000;

/** Most retransmissions per server (so at most 3 datagrams to each). */
export const MAX_PROBE_RETRIES = 2;

/** The notice of an address-dependent verdict. */
export const SYMMETRIC_NOTICE: string =
  "Your NAT gives each destination its own port (symmetric): " +
  "peers behind port-restricted NATs take a few seconds longer (a birthday search), " +
  "peers behind symmetric NATs are relayed unless a router grants a port mapping; see p2p doctor";

type State = "idle" | "pending" | "answered" | "failed";

interface Server {
  to: Endpoint;
  /** Normalized `to`, to compare sources with. */
  key: string;
  family: 4 | 6;
  ip: string;
  tid: Uint8Array;
  tidKey: string;
  data: Uint8Array;
  state: State;
  sent: number;
  nextSend: number;
  gap: number;
  deadline: number;
  mapped: Endpoint | null;
}

/** The address as compared: lower case, IPv4-mapped IPv6 (`::ffff:a.b.c.d`) as plain IPv4. */
function normalHost(h: string): string {
  const l = h.toLowerCase();
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(l);
  return m ? m[1]! : l;
}

function keyOf(ep: Endpoint): string {
  const h = normalHost(ep.hostname);
  return h.includes(":") ? `[${h}]:${ep.port}` : `${h}:${ep.port}`;
}

/**
 * Asks STUN servers for this socket's reflexive address and compares their answers (see the
 * module documentation). Call {@link start}, then feed it datagrams and timeouts like any
 * `SansIo` machine; {@link done} says when every server has answered or been given up.
 */
export class StunProbe {
  #servers: Server[] = [];
  /** OTHER-ADDRESS is held back ({@link StunProbeOptions.holdOther}) … */
  #holding: boolean;
  /** … and these were named meanwhile. */
  #held: Endpoint[] = [];
  #byTid = new Map<string, Server>();
  #out: Transmit[] = [];
  #events: StunProbeEvent[] = [];
  #random: (n: number) => Uint8Array;
  #timeout: number;
  #retries: number;
  #started = false;
  #emitted = false;
  #followed = 0;

  /** A probe of `o.servers`; nothing is sent before {@link start}. */
  constructor(o: StunProbeOptions) {
    this.#random = o.random;
    this.#holding = o.holdOther ?? false;
    const t = o.timeout ?? DEFAULT_PROBE_TIMEOUT;
    this.#timeout = Number.isFinite(t) && t > 0 ? t : DEFAULT_PROBE_TIMEOUT;
    const r = Math.floor(o.retries ?? MAX_PROBE_RETRIES);
    this.#retries = Number.isFinite(r) ? Math.max(0, Math.min(MAX_PROBE_RETRIES, r)) : 0;
    for (const to of o.servers) this.#add(to);
  }

  /** Adds a server to ask (once per address). False when it was there already. */
  #add(to: Endpoint): Server | undefined {
    const key = keyOf(to);
    if (this.#servers.some((s) => s.key === key)) return undefined;
    const ip = normalHost(to.hostname);
    const server: Server = {
      to: { hostname: to.hostname, port: to.port },
      key,
      family: ip.includes(":") ? 6 : 4,
      ip,
      tid: new Uint8Array(0),
      tidKey: "",
      data: new Uint8Array(0),
      state: "idle",
      sent: 0,
      nextSend: 0,
      gap: 0,
      deadline: 0,
      mapped: null,
    };
    this.#servers.push(server);
    return server;
  }

  /** True once started and every server has answered or been given up. */
  get done(): boolean {
    return this.#started && this.#servers.every((s) => s.state !== "pending");
  }

  /** Sends the first request to every server. Later calls do nothing. */
  start(now: number): void {
    if (this.#started) return;
    this.#started = true;
    // Sends at 0, rto, 3·rto, ...; the last wait is as long again as the one before, doubled.
    for (const s of this.#servers) this.#begin(now, s);
    this.#maybeFinish();
  }

  /** Sends the first request to `s`. */
  #begin(now: number, s: Server): void {
    const rto = this.#timeout / (2 ** (this.#retries + 1) - 1);
    {
      // A broken generator repeating itself must not make two servers share an id.
      let tid: Uint8Array | null = null;
      for (let i = 0; i < 8 && !tid; i++) {
        const t = new Uint8Array(12);
        t.set(this.#random(12).subarray(0, 12));
        if (!this.#byTid.has(toHex(t))) tid = t;
      }
      if (!tid) {
        s.state = "failed";
        return;
      }
      s.tid = tid;
      s.tidKey = toHex(tid);
      s.data = bindingRequest(tid, { fingerprint: true, padded: true });
      this.#byTid.set(s.tidKey, s);
      s.state = "pending";
      s.gap = rto;
      s.deadline = now + this.#timeout;
      this.#send(now, s);
    }
  }

  #send(now: number, s: Server): void {
    this.#out.push({ to: s.to, data: s.data });
    s.sent++;
    s.nextSend = s.sent > this.#retries ? Infinity : now + s.gap;
    s.gap *= 2;
  }

  /** When {@link handleTimeout} is next due, if ever. */
  nextTimeout(): number | undefined {
    let at: number | undefined;
    for (const s of this.#servers) {
      if (s.state !== "pending") continue;
      const t = Math.min(s.nextSend, s.deadline);
      if (at === undefined || t < at) at = t;
    }
    return at;
  }

  /** Retransmits (at most one datagram per server per call) and gives up on silent servers. */
  handleTimeout(now: number): void {
    for (const s of this.#servers) {
      if (s.state !== "pending") continue;
      if (now >= s.deadline) {
        s.state = "failed";
      } else if (now >= s.nextSend && s.sent <= this.#retries) {
        this.#send(now, s);
      }
    }
    this.#maybeFinish();
  }

  /** The next Binding request to send. */
  pollTransmit(): Transmit | undefined {
    return this.#out.shift();
  }

  /**
   * Handles a received datagram: true if it is a Binding response to one of our transactions
   * from the server it was sent to (the caller then drops it), false otherwise. Never throws.
   */
  handleDatagram(_now: number, from: Endpoint, data: Uint8Array): boolean {
    if (!this.#started || !looksLikeStun(data)) return false;
    const d = decodeStun(data);
    if (!d.ok) return false;
    const m = d.value;
    if (!m.cookie || m.method !== BINDING) return false;
    if (m.cls !== StunClass.Success && m.cls !== StunClass.Error) return false;
    const s = this.#byTid.get(toHex(m.transactionId));
    if (!s || typeof from?.hostname !== "string" || keyOf(from) !== s.key) return false;
    if (s.state !== "pending") return true; // A late duplicate, or after giving up.
    const mapped = m.cls === StunClass.Success ? mappedAddress(m) : null;
    if (mapped) {
      s.state = "answered";
      s.mapped = mapped;
      this.#followOther(_now, s, m);
    } else {
      s.state = "failed";
    }
    this.#verdictEarly();
    this.#maybeFinish();
    return true;
  }

  /**
   * A server with RFC 5780 support names its other address (OTHER-ADDRESS): asking it too
   * gives a second server at another IP address, so the p2p server alone (with `--alt-host`)
   * is enough for a verdict. A p2p server with one address names its other port (ALT-PORT):
   * asking it tells a mapping per port. At most two such addresses are followed.
   */
  #followOther(now: number, s: Server, m: StunMessage): void {
    const a = findAttribute(m, Attr.OtherAddress);
    const port = altPortOf(m);
    const other = (a && decodeAddress(a.value)) ??
      (port === null ? null : { hostname: s.to.hostname, port });
    if (!other) return;
    if (this.#holding) {
      if (this.#held.length < 2) this.#held.push(other);
      return;
    }
    this.#follow(now, other);
  }

  /** Asks the OTHER-ADDRESSes held back so far, and any named from now on. */
  releaseOther(now: number): void {
    if (!this.#holding) return;
    this.#holding = false;
    for (const other of this.#held.splice(0)) this.#follow(now, other);
  }

  #follow(now: number, other: Endpoint): void {
    if (this.#followed >= 2) return;
    const s = this.#add(other);
    if (!s) return;
    this.#followed++;
    this.#begin(now, s);
  }

  /** The next event ({@link StunProbeEvent}). */
  pollEvent(): StunProbeEvent | undefined {
    return this.#events.shift();
  }

  /** Distinct reflexive addresses reported so far, in the order first seen. */
  reflexive(): Endpoint[] {
    const seen = new Set<string>();
    const out: Endpoint[] = [];
    for (const s of this.#servers) {
      if (!s.mapped) continue;
      const k = keyOf(s.mapped);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ hostname: s.mapped.hostname, port: s.mapped.port });
    }
    return out;
  }

  /**
   * Public ports IPv4 servers reported, in the order the servers were first asked (duplicates
   * kept): a NAT that hands out ports sequentially shows as a constant step.
   */
  mappedPorts(): number[] {
    const out: number[] = [];
    for (const s of this.#servers) if (s.family === 4 && s.mapped) out.push(s.mapped.port);
    return out;
  }

  /**
   * The mapping behaviour as known so far: "address-dependent" as soon as two servers of one
   * family disagree, "endpoint-independent" once servers at two different IP addresses of one
   * family agree, "not-port-dependent" once only two ports of one address agree (both may
   * still turn address-dependent until {@link done}), else null.
   */
  mapping(): ProbeMapping | null {
    let independent = false, portOnly = false;
    for (const family of [4, 6] as const) {
      const answered = this.#servers.filter((s) => s.family === family && s.mapped);
      if (answered.length < 2) continue;
      const first = keyOf(answered[0]!.mapped!);
      if (answered.some((s) => keyOf(s.mapped!) !== first)) return "address-dependent";
      if (answered.some((s) => s.ip !== answered[0]!.ip)) independent = true;
      else portOnly = true;
    }
    return independent ? "endpoint-independent" : portOnly ? "not-port-dependent" : null;
  }

  #emit(mapping: ProbeMapping): void {
    if (this.#emitted) return;
    this.#emitted = true;
    const e: StunProbeEvent = { type: "mapping", mapping, reflexive: this.reflexive() };
    if (mapping === "address-dependent") e.notice = SYMMETRIC_NOTICE;
    this.#events.push(e);
  }

  #verdictEarly(): void {
    if (this.mapping() === "address-dependent") this.#emit("address-dependent");
  }

  #maybeFinish(): void {
    if (!this.done) return;
    const m = this.mapping();
    if (m) this.#emit(m);
  }
}
