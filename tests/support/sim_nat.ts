/**
 * The simulators' one NAT model: a router with one public IP built from RFC 4787 behaviours
 * (mapping, filtering, port allocation, hairpinning, idle timeout). `SimNet` of `sim.ts`
 * runs every host's NAT on it, `tests/nat/doctor_test.ts` stacks it into carrier-grade NATs, and
 * `sim_v6.ts` makes its IPv6 firewall from it. The named types of {@link NatType} are shorthands
 * for behaviours ({@link NAT_BEHAVIOURS}).
 *
 * @module
 */
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";
import { prng } from "./prng.ts";

/**
 * The simulator's named NAT types: a full cone, the address-restricted and port-restricted
 * cones (endpoint-independent mapping, filtering by address or by address and port), and
 * symmetric NATs that hand out ports sequentially (predictable) or at random from 1024–65535
 * (`symmetric-random`, as Linux's `masquerade random` does).
 */
export type NatType =
  | "full-cone"
  | "address-restricted"
  | "port-restricted"
  | "symmetric"
  | "symmetric-random";

/** Default idle timeout of a simulated NAT's mappings and filter entries (Linux's UDP default). */
export const NAT_TIMEOUT = 30_000;

/** A NAT's mapping or filtering behaviour in RFC 4787's terms (sections 4.1 and 5). */
export type NatRule = "endpoint-independent" | "address-dependent" | "address-and-port-dependent";

/** What a {@link SimNat} does. */
export interface NatBehaviour {
  /** Which outbound datagrams share a mapping: those from one local endpoint to any
   * destination, to one address, or to one address and port. */
  mapping: NatRule;
  /** Which inbound datagrams a mapping lets in: from anywhere, from addresses it sent to, or
   * from address and port pairs it sent to. */
  filtering: NatRule;
  /**
   * How a new mapping's public port is picked: the internal port when no live mapping holds it,
   * else at random (`preserve`, the default; Linux without `random`); counting up from 40000
   * (`sequential`); or at random (`random`, Linux's `masquerade random`, which does not try the
   * internal port first but may land on it, once in 64512). A random port is drawn from
   * 1024–65535 until no live mapping holds it.
   */
  ports?: "preserve" | "sequential" | "random";
  /** Loops datagrams sent to its own public address back in (default false). */
  hairpin?: boolean;
  /** Idle timeout of mappings and filter entries, ms (default {@link NAT_TIMEOUT}). */
  timeout?: number;
}

/** Each named {@link NatType} as behaviours. */
export const NAT_BEHAVIOURS: Readonly<Record<NatType, NatBehaviour>> = {
  "full-cone": {
    mapping: "endpoint-independent",
    filtering: "endpoint-independent",
    ports: "sequential",
  },
  "address-restricted": {
    mapping: "endpoint-independent",
    filtering: "address-dependent",
    ports: "sequential",
  },
  "port-restricted": {
    mapping: "endpoint-independent",
    filtering: "address-and-port-dependent",
    ports: "sequential",
  },
  "symmetric": {
    mapping: "address-and-port-dependent",
    filtering: "address-and-port-dependent",
    ports: "sequential",
  },
  "symmetric-random": {
    mapping: "address-and-port-dependent",
    filtering: "address-and-port-dependent",
    ports: "random",
  },
};

interface Mapping {
  port: number;
  local: Endpoint;
  /** Last outbound or accepted inbound datagram. */
  used: number;
  /** Filter entries (`*`, an address or an endpoint), with when each was last used. */
  allowed: Map<string, number>;
}

/** The key `ep` has under `rule`: all, its address, or its address and port. */
function ruleKey(rule: NatRule, ep: Endpoint): string {
  return rule === "endpoint-independent"
    ? "*"
    : rule === "address-dependent"
    ? ep.hostname
    : formatEndpoint(ep);
}

/**
 * A simulated NAT router with one public IP, behaving as a named {@link NatType} or any
 * {@link NatBehaviour}. Mappings and filter entries expire after the idle timeout without
 * traffic, refreshed by outbound datagrams and accepted inbound ones, as conntrack entries do,
 * so only keepalives hold an idle path open. The network it sits in calls {@link outbound} for
 * each datagram leaving and {@link inbound} for each arriving at its address.
 */
export class SimNat {
  /** What this NAT does (a named type's behaviours, with the timeout given). */
  readonly behaviour: NatBehaviour;
  #byKey = new Map<string, Mapping>();
  #byPort = new Map<number, Mapping>();
  #nextPort = 40_000;
  #rng: () => number;
  /** Test hook: drop every datagram crossing this NAT while true. */
  down = false;

  /**
   * A NAT with public address `ip` behaving as `nat` (a named type or any behaviour), with
   * idle timeout `timeout` (default: the behaviour's, else {@link NAT_TIMEOUT}). Random ports
   * are drawn from `random`: a seed, or a generator stacked NATs may share.
   */
  constructor(
    readonly ip: string,
    nat: NatType | NatBehaviour,
    timeout?: number,
    random: number | (() => number) = 7,
  ) {
    const b = typeof nat === "string" ? NAT_BEHAVIOURS[nat] : nat;
    this.behaviour = timeout === undefined ? b : { ...b, timeout };
    this.#rng = typeof random === "number" ? prng(random) : random;
  }

  /** Idle timeout of mappings and filter entries, ms. */
  get timeout(): number {
    return this.behaviour.timeout ?? NAT_TIMEOUT;
  }

  /** Mappings held (expired ones go when next looked at). */
  get mappings(): number {
    return this.#byPort.size;
  }

  /** `m` if it has not expired at `now`; an expired mapping is forgotten. */
  #live(m: Mapping | undefined, now: number): Mapping | undefined {
    if (m && now - m.used >= this.timeout) {
      this.#byPort.delete(m.port);
      for (const [k, v] of this.#byKey) if (v === m) this.#byKey.delete(k);
      return undefined;
    }
    return m;
  }

  #newPort(now: number, internal: number): number {
    const ports = this.behaviour.ports ?? "preserve";
    if (ports === "sequential") return this.#nextPort++;
    if (ports === "preserve" && !this.#live(this.#byPort.get(internal), now)) return internal;
    for (;;) {
      const p = 1024 + Math.floor(this.#rng() * 64512);
      if (!this.#live(this.#byPort.get(p), now)) return p;
    }
  }

  /** Translates an outbound datagram's source at `now`; returns the public source endpoint. */
  outbound(now: number, local: Endpoint, dst: Endpoint): Endpoint {
    const b = this.behaviour;
    const key = `${formatEndpoint(local)}>${ruleKey(b.mapping, dst)}`;
    let m = this.#live(this.#byKey.get(key), now);
    if (!m) {
      m = { port: this.#newPort(now, local.port), local, used: now, allowed: new Map() };
      this.#byKey.set(key, m);
      this.#byPort.set(m.port, m);
    }
    m.used = now;
    m.allowed.set(ruleKey(b.filtering, dst), now);
    return { hostname: this.ip, port: m.port };
  }

  /** Translates an inbound datagram's destination at `now`; undefined when filtered. */
  inbound(now: number, src: Endpoint, port: number): Endpoint | undefined {
    const m = this.#live(this.#byPort.get(port), now);
    if (!m) return undefined;
    const k = ruleKey(this.behaviour.filtering, src);
    const seen = m.allowed.get(k);
    if (seen === undefined || now - seen >= this.timeout) return undefined;
    m.used = now;
    m.allowed.set(k, now);
    return m.local;
  }

  /**
   * Where a datagram from inside to this NAT's own public `port` goes when it hairpins (the
   * caller translates its source with {@link outbound} first); undefined without hairpinning
   * or a live mapping.
   */
  hairpinTarget(now: number, port: number): Endpoint | undefined {
    if (!this.behaviour.hairpin) return undefined;
    return this.#live(this.#byPort.get(port), now)?.local;
  }

  /** Forgets every mapping (like `conntrack -F`). */
  flush(): void {
    this.#byKey.clear();
    this.#byPort.clear();
  }
}
