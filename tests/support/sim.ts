/**
 * A deterministic network simulator for the sans-IO state machines: virtual time, per-link
 * latency, seeded loss, duplication and reordering, and hosts behind NATs ({@link SimNat} of
 * `sim_nat.ts`, RFC 4787 behaviours; re-exported here). Lets whole-system tests run the real
 * {@link Registry} and {@link Client} in milliseconds of real time.
 *
 * @module
 */
import { Client, type ClientEvent, type ClientOptions } from "../../lib/peer/client.ts";
import { Identity } from "../../lib/crypto/identity.ts";
import { deriveRoomKeys, type RoomKeys } from "../../lib/crypto/room_key.ts";
import { Registry, type RegistryOptions } from "../../lib/server/registry.ts";
import type { SansIo } from "../../lib/io/udp.ts";
import { type Endpoint, sameEndpoint } from "../../lib/wire/address.ts";
import { prng, seededRandom } from "./prng.ts";
import { StunResponder } from "../../lib/nat/stun.ts";
import type { FakeGateway } from "./portmap_gateway.ts";
import { type NatType, SimNat } from "./sim_nat.ts";

export {
  NAT_BEHAVIOURS,
  NAT_TIMEOUT,
  type NatBehaviour,
  type NatRule,
  type NatType,
  SimNat,
} from "./sim_nat.ts";

interface Host {
  name: string;
  local: Endpoint;
  nat: SimNat | undefined;
  machine: SansIo;
  alive: boolean;
  /** Open auxiliary sockets: slot → local endpoint. */
  aux: Map<number, Endpoint>;
}

/** Local port of a host's auxiliary socket `slot` (its main socket's port is elsewhere). */
const AUX_PORT_BASE = 20_000;

interface InFlight {
  at: number;
  order: number;
  to: Endpoint;
  from: Endpoint;
  data: Uint8Array;
}

/** Network conditions. */
export interface SimConditions {
  /** One-way latency in ms. */
  latency: number;
  /** Probability a datagram is lost. */
  loss: number;
  /** Probability a datagram is duplicated. */
  dup: number;
  /** Extra random delay up to this many ms (reorders datagrams). */
  jitter: number;
}

/** A simulated Internet with virtual time. */
export class SimNet {
  now = 0;
  #rng: () => number;
  /** A separate stream for ids, keys and secrets, so they do not shift loss decisions. */
  #keys: (n: number) => Uint8Array;
  #order = 0;
  #queue: InFlight[] = [];
  #hosts: Host[] = [];
  /** Current conditions; tests may change them mid-run. */
  conditions: SimConditions;
  /** Test hook: return true to drop a datagram (after NAT translation of the source). */
  block: (from: Endpoint, to: Endpoint, data: Uint8Array) => boolean = () => false;
  /** Test hook: an on-path attacker rewriting datagrams (after NAT translation of the source). */
  tamper: (from: Endpoint, to: Endpoint, data: Uint8Array) => Uint8Array = (_f, _t, d) => d;
  /** Test hook: extra one-way delay in ms of a datagram (after NAT translation of the source). */
  delay: (from: Endpoint, to: Endpoint, data: Uint8Array) => number = () => 0;
  /** Every datagram delivered, for assertions about what crossed the wire. */
  readonly log: { at: number; from: Endpoint; to: Endpoint; data: Uint8Array }[] = [];

  /** Makes a network with `seed` and conditions (defaults: 10 ms, no loss). */
  constructor(seed = 1, conditions: Partial<SimConditions> = {}) {
    this.#rng = prng(seed);
    this.#keys = seededRandom(seed ^ 0x5eed_5eed);
    this.conditions = { latency: 10, loss: 0, dup: 0, jitter: 0, ...conditions };
  }

  /** `n` bytes from the seed: peer ids, identities and server secrets are reproducible. */
  bytes(n: number): Uint8Array {
    return this.#keys(n);
  }

  /** Attaches a state machine at `local` (behind `nat` if given). */
  attach(name: string, local: Endpoint, machine: SansIo, nat?: SimNat): void {
    this.#hosts.push({ name, local, nat, machine, alive: true, aux: new Map() });
  }

  /** Removes a host (a crash: it sends and receives nothing more). */
  detach(machine: SansIo): void {
    for (const h of this.#hosts) if (h.machine === machine) h.alive = false;
  }

  /** Brings a detached host back (a laptop waking from sleep). */
  revive(machine: SansIo): void {
    for (const h of this.#hosts) if (h.machine === machine) h.alive = true;
  }

  /** Replaces a host's machine (e.g. a restarted server). */
  replace(old: SansIo, next: SansIo): void {
    for (const h of this.#hosts) if (h.machine === old) h.machine = next;
  }

  /** Delivers `data` to `to` as if sent from `from` now (an attacker's forgery or replay). */
  inject(from: Endpoint, to: Endpoint, data: Uint8Array): void {
    this.#queue.push({
      at: this.now + this.conditions.latency,
      order: this.#order++,
      to,
      from,
      data,
    });
  }

  /** Sends everything the machines want sent, now. */
  flush(): void {
    for (const h of this.#hosts) {
      if (!h.alive) {
        while (h.machine.pollTransmit()) { /* discard */ }
        continue;
      }
      for (let t = h.machine.pollTransmit(); t; t = h.machine.pollTransmit()) {
        this.#send(h, t.to, t.data, t.via ?? 0);
      }
      for (let n = h.machine.pollRelease?.(); n !== undefined; n = h.machine.pollRelease?.()) {
        h.aux.delete(n);
      }
    }
  }

  /** Auxiliary sockets a machine has open (birthday searches). */
  auxSockets(machine: SansIo): number {
    return this.#hosts.find((h) => h.machine === machine)?.aux.size ?? 0;
  }

  #send(h: Host, to: Endpoint, data: Uint8Array, via: number): void {
    // Same LAN (same NAT, or both public): deliver on local addresses, no translation.
    const dstHost = this.#hosts.find((o) => o.alive && sameEndpoint(o.local, to));
    let from = h.local;
    if (via) {
      let aux = h.aux.get(via);
      if (!aux) h.aux.set(via, aux = { hostname: h.local.hostname, port: AUX_PORT_BASE + via });
      from = aux;
    }
    const local = from;
    if (h.nat && !(dstHost && dstHost.nat === h.nat)) {
      if (h.nat.down) return;
      from = h.nat.outbound(this.now, local, to);
    }
    if (this.block(from, to, data)) return;
    data = this.tamper(from, to, data);
    const c = this.conditions;
    if (this.#rng() < c.loss) return;
    const copies = this.#rng() < c.dup ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const at = this.now + c.latency + this.delay(from, to, data) + this.#rng() * c.jitter;
      this.#queue.push({ at, order: this.#order++, to, from, data });
    }
  }

  #deliver(p: InFlight): void {
    // Directly addressed host (public, or on the same LAN)?
    for (const h of this.#hosts) {
      if (!h.alive) continue;
      if (sameEndpoint(h.local, p.to)) {
        const sender = this.#hosts.find((s) => s.alive && sameEndpoint(s.local, p.from));
        // A private address is reachable only from its own LAN.
        if (h.nat && !(sender && sender.nat === h.nat)) continue;
        return this.#hand(h, p.from, p.data);
      }
    }
    for (const h of this.#hosts) {
      if (!h.alive || !h.nat || h.nat.ip !== p.to.hostname || h.nat.down) continue;
      const local = h.nat.inbound(this.now, p.from, p.to.port);
      if (!local || local.hostname !== h.local.hostname) continue;
      if (local.port === h.local.port) return this.#hand(h, p.from, p.data);
      for (const [slot, aux] of h.aux) {
        if (aux.port === local.port) return this.#hand(h, p.from, p.data, slot);
      }
    }
  }

  #hand(h: Host, from: Endpoint, data: Uint8Array, via = 0): void {
    this.log.push({ at: this.now, from, to: via ? h.aux.get(via)! : h.local, data });
    if (via) h.machine.handleDatagram(this.now, from, data, via);
    else h.machine.handleDatagram(this.now, from, data);
  }

  /** Runs until virtual time `until` (absolute ms). */
  runUntil(until: number): void {
    this.flush();
    for (;;) {
      let next = Infinity;
      for (const p of this.#queue) next = Math.min(next, p.at);
      for (const h of this.#hosts) {
        if (!h.alive) continue;
        const t = h.machine.nextTimeout();
        if (t !== undefined) next = Math.min(next, Math.max(t, this.now));
      }
      if (next > until) break;
      this.now = next;
      const due = this.#queue.filter((p) => p.at <= this.now).sort((a, b) =>
        a.at - b.at || a.order - b.order
      );
      this.#queue = this.#queue.filter((p) => p.at > this.now);
      for (const p of due) {
        this.#deliver(p);
        this.flush();
      }
      for (const h of this.#hosts) {
        const t = h.machine.nextTimeout();
        if (h.alive && t !== undefined && t <= this.now) h.machine.handleTimeout(this.now);
      }
      this.flush();
    }
    this.now = until;
  }

  /** Runs for `ms` more virtual milliseconds. */
  run(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Runs until `cond()` holds, checking after every step; throws after `limit` ms. */
  runUntilTrue(cond: () => boolean, limit = 120_000, step = 10): number {
    const start = this.now;
    while (!cond()) {
      if (this.now - start > limit) throw new Error(`Condition not met within ${limit} ms`);
      this.run(step);
    }
    return this.now - start;
  }
}

/** A client plus the events it produced. */
export interface SimPeer {
  /** The client. */
  client: Client;
  /** Events drained so far. */
  events: ClientEvent[];
  /** Drains new events into {@link events} and returns them all. */
  drain(): ClientEvent[];
  /** Texts of messages received, as `from: text`. */
  messages(): string[];
  /** The last `peer` event about `name`. */
  lastPath(name: string): Extract<ClientEvent, { type: "peer" }> | undefined;
}

const rooms = new Map<string, RoomKeys>();

/** The keys of room `name` with passphrase `passphrase`, derived once per test process. */
export function simRoom(name = "room", passphrase = "correct horse battery staple"): RoomKeys {
  const key = `${name}\n${passphrase}`;
  let keys = rooms.get(key);
  if (!keys) rooms.set(key, keys = deriveRoomKeys(name, passphrase));
  return keys;
}

/** The server endpoint used by {@link world}. */
export const SERVER: Endpoint = { hostname: "198.51.100.1", port: 7777 };

/** Builds a server on {@link SERVER} in `net`. */
export function addServer(net: SimNet, options: Partial<RegistryOptions> = {}): Registry {
  const secret = net.bytes(32);
  const r = new Registry(options, (n) => net.bytes(n), secret);
  net.attach("server", SERVER, r);
  return r;
}

/** Adds a client host at `local` (behind `nat` if given) and starts it. */
export function addPeer(
  net: SimNet,
  name: string,
  local: Endpoint,
  nat?: SimNat,
  opts: Partial<ClientOptions> = {},
): SimPeer {
  const client = new Client({
    server: SERVER,
    room: simRoom(),
    name,
    relayOnly: false,
    privateEndpoints: [local],
    keepalive: 25_000,
    registerTimeout: 10_000,
    idSeed: net.bytes(32),
    identity: Identity.fromPrivate(net.bytes(32)),
    random: (n) => net.bytes(n),
    ...opts,
  });
  net.attach(name, local, client, nat);
  client.start(net.now);
  const events: ClientEvent[] = [];
  const peer: SimPeer = {
    client,
    events,
    drain() {
      for (let e = client.pollEvent(); e; e = client.pollEvent()) events.push(e);
      return events;
    },
    messages() {
      return this.drain().flatMap((e) => e.type === "message" ? [`${e.from}: ${e.text}`] : []);
    },
    lastPath(n: string) {
      return this.drain().filter((e): e is Extract<ClientEvent, { type: "peer" }> =>
        e.type === "peer" && e.name === n
      ).at(-1);
    },
  };
  return peer;
}

/** A public STUN server for the simulator (lib/nat/stun.ts's responder on one socket). */
export class SimStun {
  #r: StunResponder;
  #out: { to: Endpoint; data: Uint8Array }[] = [];
  /** A responder on `at`. */
  constructor(at: Endpoint) {
    this.#r = new StunResponder({ sockets: [at] });
  }
  /** Answers a Binding request. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    const r = this.#r.handle(now, 0, from, data);
    if (r) this.#out.push({ to: r.to, data: r.data });
  }
  /** Nothing is timed. */
  handleTimeout(): void {}
  /** The next answer. */
  pollTransmit(): { to: Endpoint; data: Uint8Array } | undefined {
    return this.#out.shift();
  }
  /** Never. */
  nextTimeout(): number | undefined {
    return undefined;
  }
}

/**
 * A home gateway on a LAN for the simulator: {@link FakeGateway} answering NAT-PMP and PCP on
 * port 5351 (attach it behind the same {@link SimNat} as the peers that map through it).
 */
export class SimGateway {
  #out: { to: Endpoint; data: Uint8Array }[] = [];
  /** The gateway's port-mapping endpoint. */
  readonly at: Endpoint;
  /** A gateway answering as `gw` does. */
  constructor(readonly gw: FakeGateway) {
    this.at = { hostname: gw.lan, port: 5351 };
  }
  /** Answers a port-mapping request. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    for (const r of this.gw.answer(now, data)) this.#out.push({ to: from, data: r });
  }
  /** Nothing is timed. */
  handleTimeout(): void {}
  /** The next answer. */
  pollTransmit(): { to: Endpoint; data: Uint8Array } | undefined {
    return this.#out.shift();
  }
  /** Never. */
  nextTimeout(): number | undefined {
    return undefined;
  }
}

/** Two public STUN servers for {@link natPair} (the mapping verdict needs two addresses). */
export const SIM_STUN: Endpoint[] = [
  { hostname: "192.0.2.201", port: 3478 },
  { hostname: "192.0.2.202", port: 3478 },
];

/** Options of {@link natPair}. */
export interface NatPairOptions {
  /** One-way latency of every link in ms (default 25). */
  latency?: number;
  /** Probability a datagram is lost (default 0). */
  loss?: number;
  /** Whether the peers ask {@link SIM_STUN} how their NATs map (default true). */
  stun?: boolean;
}

/**
 * A server, two STUN servers and two peers, alice behind a NAT of `typeA` (public 203.0.113.1)
 * and bob behind one of `typeB` (203.0.113.2); NAT ports drawn from `seed`.
 */
export function natPair(
  seed: number,
  typeA: NatType,
  typeB: NatType,
  o: NatPairOptions = {},
): { net: SimNet; a: SimPeer; b: SimPeer } {
  const net = new SimNet(seed, { latency: o.latency ?? 25, loss: o.loss ?? 0 });
  addServer(net);
  for (const s of SIM_STUN) net.attach(`stun ${s.hostname}`, s, new SimStun(s));
  const opts = o.stun === false ? {} : { stun: SIM_STUN };
  // Peer n (1: alice, 2: bob) on LAN 10.n.0.2 behind NAT 203.0.113.n, its ports from seed*2+n.
  const peer = (name: string, n: number, type: NatType) =>
    addPeer(
      net,
      name,
      { hostname: `10.${n}.0.2`, port: 5000 },
      new SimNat(`203.0.113.${n}`, type, undefined, seed * 2 + n),
      opts,
    );
  const a = peer("alice", 1, typeA);
  const b = peer("bob", 2, typeB);
  return { net, a, b };
}
