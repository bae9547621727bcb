/**
 * `p2p doctor` as a pure state machine: it sends STUN Binding requests to a `p2p serve` (or any
 * RFC 5780 STUN server), classifies the NAT in front of it and says what that means for p2p.
 * No I/O: `doctor.ts` runs it on UDP sockets, `tests/nat/doctor_test.ts` in virtual time.
 *
 * ## The tests, in order (RFC 5780 §4)
 *
 * 1. **Reach** (§4.2, test I): a plain request to the server. No answer within the timeout:
 *    UDP does not get through and nothing else is tried. The answer gives the public address
 *    (XOR-MAPPED-ADDRESS) and, from a server with `--alt-host`/`--alt-port`, OTHER-ADDRESS
 *    (from a plain `p2p serve`, one address with two ports: ALT-PORT).
 * 2. **Filtering** (§4.4) and **hairpin** (§4.5), at once: requests to the primary address
 *    asking for the answer from the other address and port (test II) and from the other port
 *    only (test III), and, from a second socket, a request to the first socket's public
 *    address. An answer to II means endpoint-independent filtering, else one to III
 *    address-dependent, else address-and-port-dependent. The first socket receiving the
 *    second's request means the NAT hairpins, as it must for two peers behind it (a socket
 *    sending to its own public address is no test: Linux never loops that back).
 *    Filtering is tested before anything is sent to the server's other address, which would
 *    open the very holes the test looks for.
 * 3. **Mapping** (§4.3): requests to the other address with the primary port (II) and with the
 *    other port (III). The same public address as in test I means endpoint-independent mapping;
 *    else the same in II and III address-dependent, else address-and-port-dependent.
 * 4. **Lifetime** (optional, §4.6 in spirit): from the first socket a request refreshes the
 *    mapping; after an idle wait, a request from a second socket asks the server (RESPONSE-PORT)
 *    to answer to the main socket's public port. The answer arrives only if the mapping is still
 *    there. Waits double from 2 s until a mapping expires, then bisect; the search stops at a
 *    precision of 1 s (or a tenth), after 24 probes, or when the next probe would not fit the
 *    time budget. The result is a lower bound (the longest wait the mapping survived) and the
 *    shortest wait it did not.
 *
 * Every request is repeated 300, 600, 1200, 1600 … ms apart until its timeout, so every test
 * ends, and answers are matched by their random 96-bit transaction ids. A server without
 * RFC 5780 support (no OTHER-ADDRESS) leaves mapping and filtering unknown (`null`), except that
 * a p2p server with one address and a second port (ALT-PORT) gets the port half of tests 2 and
 * 3: an answer to "change port" means filtering is not per port (else it is
 * address-and-port-dependent), and another public port seen from the other port means the
 * mapping is address-and-port-dependent. The same public port leaves endpoint-independent and
 * address-dependent mapping apart unknown (`mapping_per_port` false, `mapping` null): telling
 * them apart takes a second address (`lib/nat/doctor_one_address.ts` says so).
 *
 * ## What the verdict says
 *
 * From the traversal matrix (`docs/nat-matrix.md`): p2p punches directly unless both sides map
 * per destination ("symmetric"); against an endpoint-independent NAT a symmetric one is found
 * by a birthday search (`lib/peer/path/birthday.ts`) in a few seconds. So endpoint-independent mapping
 * goes direct with everyone; endpoint-dependent mapping (unless filtering is open) is relayed
 * with other symmetric NATs, unless the router grants a port mapping (UPnP IGD, NAT-PMP, PCP).
 *
 * @module
 */

import { type RequestOptions, StunTransactions, type Tx } from "./doctor_tx.ts";
import {
  type Lifetime,
  type LifetimeOptions,
  newLifetime,
  nextWait,
  probeOutcome,
} from "./doctor_lifetime.ts";
import { ONE_ADDRESS_WHY, oneAddressVerdict, oneAddressWords } from "./doctor_one_address.ts";
import { noUdpVerdict } from "./doctor_tcp.ts";
import {
  altPortOf,
  Attr,
  CHANGE_IP,
  CHANGE_PORT,
  decodeAddress,
  findAttribute,
  mappedAddress,
} from "./stun.ts";
import { type Endpoint, formatEndpoint, sameEndpoint } from "../wire/address.ts";
import type { Behaviour, DoctorReport, PeerNat } from "./doctor_report.ts";
import type { Transmit } from "../wire/transmit.ts";

export type { Behaviour, DoctorReport, PeerNat } from "./doctor_report.ts";
export type { LifetimeOptions } from "./doctor_lifetime.ts";

/** Progress of a run, for people watching a long `--lifetime` measurement. */
export type DoctorEvent =
  | { type: "reached"; public: string | null; rttMs: number }
  | { type: "no-reply" }
  | { type: "filtering"; value: Behaviour | null }
  | { type: "mapping"; value: Behaviour | null }
  | { type: "hairpin"; value: boolean }
  | { type: "lifetime-probe"; waitMs: number; alive: boolean }
  | { type: "done" };

/** Options of {@link Doctor}. */
export interface DoctorOptions {
  /** The server's primary address (literal IP). */
  server: Endpoint;
  /** How long to wait for each answer, ms (default {@link DEFAULT_TIMEOUT}). */
  timeout?: number;
  /** First retransmission gap, ms (default 300; doubling up to 1600). */
  rto?: number;
  /** Measure the mapping lifetime; off when absent. */
  lifetime?: LifetimeOptions;
  /** Random bytes for transaction ids (the role passes the system's; tests a seeded source). */
  random: (n: number) => Uint8Array;
}

/** Default wait for each answer, ms. */
export const DEFAULT_TIMEOUT = 3000;
/** p2p join's default keepalive, s: mappings shorter than this need `--keepalive`. */
const JOIN_KEEPALIVE_S = 25;

type Phase = "idle" | "reach" | "filter" | "map" | "hairpin" | "lifetime" | "done";

/**
 * The doctor's state machine. Socket 0 is the one every test runs on; socket 1 sends the
 * hairpin test and the lifetime probes. It implements the driver's `SansIo` for socket 0 directly;
 * {@link secondary} is the `SansIo` of socket 1. Call {@link start} once with the bound address
 * of socket 0, then feed datagrams and timeouts until {@link done}; {@link report} is the
 * result.
 */
export class Doctor {
  #o: Required<Omit<DoctorOptions, "lifetime">> & { lifetime?: LifetimeOptions };
  #phase: Phase = "idle";
  /** The STUN requests of both sockets. */
  #tx: StunTransactions;
  #events: DoctorEvent[] = [];
  #local: Endpoint | null = null;
  #reach: Tx | null = null;
  #rtt: number | null = null;
  #public: Endpoint | null = null;
  #other: Endpoint | null = null;
  /** A server with one address: its other port (ALT-PORT), when it names one. */
  #altPort: number | null = null;
  #mappingPerPort: boolean | null = null;
  #filteringPerPort: boolean | null = null;
  #f2: Tx | null = null;
  #f3: Tx | null = null;
  #m2: Tx | null = null;
  #m3: Tx | null = null;
  #hp: Tx | null = null;
  #filtering: Behaviour | null = null;
  #mapping: Behaviour | null = null;
  #hairpin: boolean | null = null;
  #unknownWhy = "";
  #lt: Lifetime | null = null;
  /** The `SansIo` of socket 1 (hairpin test, lifetime probes): hand it to a second driver. */
  readonly secondary: {
    handleDatagram(now: number, from: Endpoint, data: Uint8Array): void;
    handleTimeout(now: number): void;
    pollTransmit(): Transmit | undefined;
    nextTimeout(): number | undefined;
  };

  /** A doctor for `o.server`. */
  constructor(o: DoctorOptions) {
    this.#o = {
      server: o.server,
      timeout: o.timeout ?? DEFAULT_TIMEOUT,
      rto: o.rto ?? 300,
      random: o.random,
      ...(o.lifetime ? { lifetime: o.lifetime } : {}),
    };
    this.#tx = new StunTransactions(this.#o);
    this.secondary = {
      handleDatagram: (now, from, data) => this.#handle(now, 1, from, data),
      handleTimeout: () => {},
      pollTransmit: () => this.#tx.pollTransmit(1),
      nextTimeout: () => undefined,
    };
  }

  /** True once every test has ended; {@link report} is final then. */
  get done(): boolean {
    return this.#phase === "done";
  }

  /** Whether socket 1 has datagrams waiting (its driver needs a step). */
  get secondaryPending(): boolean {
    return this.#tx.waiting(1);
  }

  /** Starts the tests; `local` is socket 0's bound address (for port preservation). */
  start(now: number, local: Endpoint): void {
    if (this.#phase !== "idle") return;
    this.#local = local;
    this.#phase = "reach";
    this.#reach = this.#request(now, 0, this.#o.server);
  }

  /** Stops at once (e.g. a guard timer); what is known so far is reported. */
  abort(now: number): void {
    this.#tx.cancelAll();
    if (this.#lt) this.#lt.step = "done";
    if (this.#phase !== "done") this.#finish(now);
  }

  /** Handles a datagram received on socket 0. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    this.#handle(now, 0, from, data);
  }

  /** Retransmits and expires requests, wakes the lifetime measurement. */
  handleTimeout(now: number): void {
    this.#tx.handleTimeout(now);
    const lt = this.#lt;
    if (lt && lt.step === "idle" && lt.wakeAt !== undefined && now >= lt.wakeAt) {
      lt.wakeAt = undefined;
      this.#probe(now, lt);
    }
    this.#advance(now);
  }

  /** The next datagram for socket 0. */
  pollTransmit(): Transmit | undefined {
    return this.#tx.pollTransmit(0);
  }

  /** When {@link handleTimeout} is next due. */
  nextTimeout(): number | undefined {
    if (this.#phase === "done" || this.#phase === "idle") return undefined;
    const at = this.#tx.nextTimeout();
    const wake = this.#lt?.wakeAt;
    if (wake === undefined) return at;
    return at === undefined ? wake : Math.min(at, wake);
  }

  /** The next progress event. */
  pollEvent(): DoctorEvent | undefined {
    return this.#events.shift();
  }

  /** What is known (final once {@link done}). */
  report(): DoctorReport {
    const lt = this.#lt;
    const udp = this.#reach?.state === "answered" || this.#reach?.state === "error";
    const r: Omit<DoctorReport, "verdict" | "relayed_with"> = {
      server: formatEndpoint(this.#o.server),
      local: this.#local ? formatEndpoint(this.#local) : null,
      udp,
      tcp: null,
      public: this.#public ? formatEndpoint(this.#public) : null,
      rtt_ms: this.#rtt,
      rfc5780: this.#other !== null,
      mapping: this.#mapping,
      filtering: this.#filtering,
      mapping_per_port: this.#mappingPerPort,
      filtering_per_port: this.#filteringPerPort,
      port_preserved: this.#public && this.#local ? this.#public.port === this.#local.port : null,
      hairpin: this.#hairpin,
      // Only a probe after a real idle wait tells something (the first one checks the method).
      lifetime_s: lt?.calibrated && (lt.lo > 0 || lt.hi !== null) ? lt.lo / 1000 : null,
      lifetime_expired_s: lt?.calibrated && lt.hi !== null ? lt.hi / 1000 : null,
    };
    const v = verdictOf(r, this.#unknownWhy);
    return { ...r, relayed_with: v.relayedWith, verdict: v.verdict };
  }

  // -------------------------------------------------------------------------------------------

  #request(now: number, socket: 0 | 1, to: Endpoint, o: RequestOptions = {}): Tx {
    return this.#tx.request(now, socket, to, o);
  }

  #handle(now: number, socket: 0 | 1, from: Endpoint, data: Uint8Array): void {
    if (this.#phase === "done") return;
    if (this.#tx.handleDatagram(now, socket, from, data)) this.#advance(now);
  }

  #cancel(...txs: (Tx | null)[]): void {
    this.#tx.cancel(...txs);
  }

  /** Moves through the phases as far as the results allow (a bounded number of steps). */
  #advance(now: number): void {
    for (let step = 0; step < 8; step++) {
      const before = this.#phase;
      switch (this.#phase) {
        case "reach":
          this.#afterReach(now);
          break;
        case "filter":
          this.#afterFilter(now);
          break;
        case "map":
          this.#afterMap(now);
          break;
        case "hairpin":
          this.#afterHairpin(now);
          break;
        case "lifetime":
          this.#afterLifetime(now);
          break;
        default:
          return;
      }
      if (this.#phase === before) return;
    }
  }

  #afterReach(now: number): void {
    const tx = this.#reach!;
    if (tx.state === "pending") return;
    if (tx.state === "timeout") {
      this.#events.push({ type: "no-reply" });
      this.#finish(now);
      return;
    }
    const m = tx.reply!.msg;
    this.#rtt = Math.round((tx.reply!.at - tx.started) * 10) / 10;
    if (tx.state === "answered") {
      this.#public = mappedAddress(m);
      const other = findAttribute(m, Attr.OtherAddress);
      this.#other = other ? decodeAddress(other.value) : null;
      this.#altPort = altPortOf(m);
    }
    this.#events.push({
      type: "reached",
      public: this.#public ? formatEndpoint(this.#public) : null,
      rttMs: this.#rtt,
    });
    if (!this.#public) {
      this.#unknownWhy = "the server's answer carried no public address";
      this.#finish(now);
      return;
    }
    this.#hp = this.#request(now, 1, this.#public, { hairpin: true });
    const other = this.#other;
    if (
      !other || other.hostname === this.#o.server.hostname || other.port === this.#o.server.port
    ) {
      this.#other = null;
      const alt = this.#altPort;
      if (alt !== null && alt !== this.#o.server.port) {
        // One address, two ports: the port half of the tests (II and III need a second address).
        this.#unknownWhy = ONE_ADDRESS_WHY;
        this.#f3 = this.#request(now, 0, this.#o.server, { change: CHANGE_PORT });
        this.#phase = "filter";
        return;
      }
      this.#altPort = null;
      this.#unknownWhy =
        "the server does not offer NAT behaviour discovery (its operator can drop --no-alt-port, or add --alt-host)";
      this.#phase = "hairpin";
      return;
    }
    this.#f2 = this.#request(now, 0, this.#o.server, { change: CHANGE_IP | CHANGE_PORT });
    this.#f3 = this.#request(now, 0, this.#o.server, { change: CHANGE_PORT });
    this.#phase = "filter";
  }

  /** One address: an answer from the other port means filtering is not per port. */
  #afterFilterOneAddress(now: number, alt: number): void {
    const f3 = this.#f3!;
    if (f3.state === "pending") return;
    const fromAlt = f3.state === "answered" &&
      sameEndpoint(f3.reply!.from, { hostname: this.#o.server.hostname, port: alt });
    const perPort = f3.state === "answered"
      ? (fromAlt ? false : null)
      : f3.state === "timeout"
      ? true
      : null;
    if (f3.state === "answered" && !fromAlt) {
      this.#unknownWhy = "the server answered from the wrong address to a change request";
    } else if (f3.state === "error") {
      this.#unknownWhy = "the server refused to answer from its other port";
    }
    this.#filteringPerPort = perPort;
    this.#filtering = perPort ? "address-and-port-dependent" : null;
    this.#events.push({ type: "filtering", value: this.#filtering });
    this.#m3 = this.#request(now, 0, { hostname: this.#o.server.hostname, port: alt });
    this.#phase = "map";
  }

  /** One address: another public port from the other port means a mapping per port. */
  #afterMapOneAddress(): void {
    const m3 = this.#m3!;
    if (m3.state === "pending") return;
    const a3 = m3.state === "answered" ? mappedAddress(m3.reply!.msg) : null;
    if (!a3) this.#unknownWhy = "the server's other port did not answer";
    this.#mappingPerPort = a3 ? !sameEndpoint(a3, this.#public!) : null;
    this.#mapping = this.#mappingPerPort ? "address-and-port-dependent" : null;
    this.#events.push({ type: "mapping", value: this.#mapping });
    this.#phase = "hairpin";
  }

  #afterFilter(now: number): void {
    if (this.#altPort !== null) return this.#afterFilterOneAddress(now, this.#altPort);
    const f2 = this.#f2!, f3 = this.#f3!;
    const other = this.#other!;
    const fromOther = f2.state === "answered" && sameEndpoint(f2.reply!.from, other);
    const otherPort = { hostname: this.#o.server.hostname, port: other.port };
    const fromOtherPort = f3.state === "answered" && sameEndpoint(f3.reply!.from, otherPort);
    let result: Behaviour | null | undefined;
    if (f2.state === "error" || f3.state === "error") {
      result = null;
      this.#unknownWhy = "the server refused to answer from its other address or port";
    } else if (
      (f2.state === "answered" && !fromOther) || (f3.state === "answered" && !fromOtherPort)
    ) {
      result = null;
      this.#unknownWhy = "the server answered from the wrong address to a change request";
    } else if (fromOther) {
      result = "endpoint-independent";
    } else if (f2.state === "pending" || f3.state === "pending") {
      return;
    } else {
      result = fromOtherPort ? "address-dependent" : "address-and-port-dependent";
    }
    this.#cancel(f2, f3);
    this.#filtering = result;
    this.#filteringPerPort = result && result === "address-and-port-dependent";
    this.#events.push({ type: "filtering", value: result });
    this.#m2 = this.#request(now, 0, { hostname: other.hostname, port: this.#o.server.port });
    this.#m3 = this.#request(now, 0, other);
    this.#phase = "map";
  }

  #afterMap(_now: number): void {
    if (this.#altPort !== null) return this.#afterMapOneAddress();
    const m2 = this.#m2!, m3 = this.#m3!;
    const a1 = this.#public!;
    const a2 = m2.state === "answered" ? mappedAddress(m2.reply!.msg) : null;
    const a3 = m3.state === "answered" ? mappedAddress(m3.reply!.msg) : null;
    let result: Behaviour | null;
    if (a2 && sameEndpoint(a2, a1)) {
      result = "endpoint-independent";
    } else if (m2.state === "pending" || m3.state === "pending") {
      return;
    } else if (a2 && a3) {
      result = sameEndpoint(a2, a3) ? "address-dependent" : "address-and-port-dependent";
    } else {
      result = null;
      this.#unknownWhy = "the server's other address did not answer";
    }
    this.#cancel(m2, m3);
    this.#mapping = result;
    this.#mappingPerPort = result && result === "address-and-port-dependent";
    this.#events.push({ type: "mapping", value: result });
    this.#phase = "hairpin";
  }

  #afterHairpin(now: number): void {
    const hp = this.#hp!;
    if (hp.state === "pending") return;
    this.#hairpin = hp.state === "answered";
    this.#events.push({ type: "hairpin", value: this.#hairpin });
    const lo = this.#o.lifetime;
    if (!lo) {
      this.#finish(now);
      return;
    }
    this.#lt = newLifetime(now, lo);
    this.#phase = "lifetime";
    // The first probe, right after a refresh, checks that the measurement works at all.
    this.#iteration(now, this.#lt, 0);
  }

  /** Starts one lifetime probe with idle wait `wait` (refresh first), if the budget allows. */
  #iteration(now: number, lt: Lifetime, wait: number): void {
    const spent = now - lt.start;
    if (lt.probes >= lt.opts.maxProbes || spent + wait + 2 * this.#o.timeout > lt.opts.budget) {
      lt.step = "done";
      return;
    }
    lt.probes++;
    lt.wait = wait;
    lt.step = "refresh";
    lt.tx = this.#request(now, 0, this.#o.server);
  }

  #probe(now: number, lt: Lifetime): void {
    lt.step = "probe";
    lt.tx = this.#request(now, 1, this.#o.server, { responsePort: lt.mapped!.port });
  }

  #afterLifetime(now: number): void {
    const lt = this.#lt!;
    if (lt.step === "refresh") {
      const tx = lt.tx!;
      if (tx.state === "pending") return;
      lt.mapped = tx.state === "answered" ? mappedAddress(tx.reply!.msg) : null;
      if (!lt.mapped) {
        lt.step = "done";
      } else {
        lt.step = "idle";
        lt.wakeAt = now + lt.wait;
        if (lt.wait === 0) {
          lt.wakeAt = undefined;
          this.#probe(now, lt);
        }
        return;
      }
    } else if (lt.step === "probe") {
      const tx = lt.tx!;
      if (tx.state === "pending") return;
      const alive = probeOutcome(lt, tx.state);
      if (alive !== null) this.#events.push({ type: "lifetime-probe", waitMs: lt.wait, alive });
      if ((lt.step as Lifetime["step"]) !== "done") {
        const next = nextWait(lt);
        if (next === null) lt.step = "done";
        else this.#iteration(now, lt, next);
      }
    }
    if (lt.step === "done") this.#finish(now);
  }

  #finish(_now: number): void {
    this.#tx.cancelAll();
    if (this.#lt) this.#lt.wakeAt = undefined;
    this.#phase = "done";
    this.#events.push({ type: "done" });
  }
}

// ---------------------------------------------------------------------------------------------
// Verdict and plain words

/** The peers' NAT kinds a NAT with `mapping` and `filtering` is relayed with (matrix rules). */
export function relayedWith(mapping: Behaviour, filtering: Behaviour): PeerNat[] {
  if (mapping === "endpoint-independent" || filtering === "endpoint-independent") return [];
  return ["symmetric"];
}

/** The verdict of a report (see the module documentation); `why` explains an unknown NAT. */
export function verdictOf(
  r: Omit<DoctorReport, "verdict" | "relayed_with">,
  why = "",
): { relayedWith: PeerNat[] | null; verdict: string } {
  if (!r.udp) {
    return {
      relayedWith: null,
      verdict: r.tcp === null
        ? `no UDP reply from the server at ${r.server}: UDP may be blocked by a firewall ` +
          `(or the server is not running)`
        : noUdpVerdict(r.server, r.tcp),
    };
  }
  let keepalive = "";
  if (r.lifetime_s !== null && r.lifetime_expired_s !== null) {
    if (r.lifetime_expired_s <= JOIN_KEEPALIVE_S + 5) {
      const k = r.lifetime_s >= 2 ? Math.floor(r.lifetime_s / 2) : 0.5;
      keepalive = `; your NAT forgets idle UDP mappings within ${r.lifetime_expired_s} s: ` +
        `join with --keepalive ${k}`;
    }
  }
  if (r.mapping === null || r.filtering === null) {
    const one = oneAddressVerdict(r);
    if (one) return { relayedWith: one.relayedWith, verdict: one.verdict + keepalive };
    return {
      relayedWith: null,
      verdict: `UDP works; NAT type unknown: ${why || "the tests were inconclusive"}${keepalive}`,
    };
  }
  const relayed = relayedWith(r.mapping, r.filtering);
  let verdict: string;
  if (relayed.length === 0) {
    verdict = r.mapping === "endpoint-independent"
      ? "direct with peers behind any common NAT, symmetric ones included"
      : "direct with peers behind any common NAT, symmetric ones included (your NAT maps " +
        "each destination to another port but lets anyone in)";
  } else {
    verdict = "direct with peers behind most NATs (with port-restricted ones after a birthday " +
      "search of a few seconds); relayed with peers behind symmetric NATs: your NAT gives each " +
      "destination another port; let p2p map a port (enable UPnP or NAT-PMP/PCP on the router), " +
      "forward a UDP port to this machine and join with --port PORT, or use IPv6 (peers that " +
      "both have global IPv6 addresses connect directly over it)";
  }
  return { relayedWith: relayed, verdict: verdict + keepalive };
}

const BEHAVIOUR_WORDS: Record<Behaviour, { mapping: string; filtering: string }> = {
  "endpoint-independent": {
    mapping: "one public address for every destination",
    filtering: "anyone may send to your public address",
  },
  "address-dependent": {
    mapping: "another public address for each destination host",
    filtering: "only hosts you sent to get in",
  },
  "address-and-port-dependent": {
    mapping: "another public address for each destination host and port",
    filtering: "only the exact addresses and ports you sent to get in",
  },
};

/** The report in plain words, one line each (what `p2p doctor` prints without `--json`). */
export function describeReport(r: DoctorReport): string[] {
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`${(k + ":").padEnd(11)} ${v}`);
  row("Server", r.server + (r.local ? `, asked from local ${r.local}` : ""));
  if (!r.udp) {
    row("UDP", "no reply");
    if (r.tcp !== null) row("TCP", r.tcp ? "connects to the server's port" : "does not connect");
    row("Verdict", r.verdict);
    return lines;
  }
  row("UDP", `works (answer in ${r.rtt_ms} ms)`);
  row(
    "Public",
    (r.public ?? "unknown") +
      (r.port_preserved === null ? "" : r.port_preserved ? " (port kept)" : " (port changed)"),
  );
  const unknown = r.rfc5780 ? "unknown" : "unknown (the server does not offer RFC 5780 tests)";
  const one = oneAddressWords(r);
  row(
    "Mapping",
    r.mapping ? `${r.mapping}: ${BEHAVIOUR_WORDS[r.mapping].mapping}` : one.mapping ?? unknown,
  );
  row(
    "Filtering",
    r.filtering
      ? `${r.filtering}: ${BEHAVIOUR_WORDS[r.filtering].filtering}`
      : one.filtering ?? unknown,
  );
  row(
    "Hairpin",
    r.hairpin === null
      ? "unknown"
      : r.hairpin
      ? "yes: your public address is reachable from inside"
      : "no: your public address is not reachable from inside your network",
  );
  let lifetime = "not measured (--lifetime measures it)";
  if (r.lifetime_s !== null) {
    lifetime = `at least ${r.lifetime_s} s idle` +
      (r.lifetime_expired_s !== null ? `, gone after ${r.lifetime_expired_s} s` : "");
  }
  row("Lifetime", lifetime);
  row("Verdict", r.verdict);
  return lines;
}
