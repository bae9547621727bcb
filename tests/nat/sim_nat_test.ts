/**
 * Tests of the simulator's NAT built from RFC 4787 behaviours ({@link BehaviourNat} in
 * `tests/support/sim.ts`): it does what the simulator's named NAT types do, and what each
 * mapping and filtering behaviour, port allocation, hairpinning and the idle timeout mean.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  BehaviourNat,
  NAT_BEHAVIOURS,
  NAT_TIMEOUT,
  type NatBehaviour,
  type NatRule,
  SimNat,
} from "../support/sim.ts";
import { prng } from "../support/prng.ts";
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";

const IP = "203.0.113.1";
const LOCAL: Endpoint = { hostname: "10.0.0.2", port: 5000 };
const A1: Endpoint = { hostname: "192.0.2.1", port: 1000 };
const A2: Endpoint = { hostname: "192.0.2.1", port: 2000 };
const B1: Endpoint = { hostname: "192.0.2.2", port: 1000 };

function nat(b: Partial<NatBehaviour> & { mapping: NatRule; filtering: NatRule }) {
  return new BehaviourNat(IP, b, prng(1));
}

Deno.test("sim NAT: each named type does what SimNat of that type does, step for step", () => {
  const rng = prng(0x4787);
  const int = (n: number) => Math.floor(rng() * n);
  const locals: Endpoint[] = [LOCAL, { ...LOCAL, port: 5001 }, {
    hostname: "10.0.0.3",
    port: 5000,
  }];
  const remotes: Endpoint[] = [A1, A2, B1, { hostname: "192.0.2.3", port: 3478 }];
  const types = ["full-cone", "port-restricted", "symmetric"] as const;
  for (const type of types) {
    const old = new SimNat(IP, type, 5_000);
    const now = new BehaviourNat(IP, { ...NAT_BEHAVIOURS[type], timeout: 5_000 }, prng(2));
    let t = 0;
    const sent: [Endpoint, number][] = [];
    let accepted = 0, refused = 0, renewed = 0;
    const last = new Map<string, number>();
    for (let i = 0; i < 5_000; i++) {
      // Mostly short steps, now and then a long one: mappings and filter entries expire.
      t += rng() < 0.02 ? int(8_000) : int(200);
      const remote = remotes[int(remotes.length)]!;
      if (rng() < 0.5) {
        const local = locals[int(locals.length)]!;
        const a = old.outbound(t, local, remote), b = now.outbound(t, local, remote);
        assert.deepEqual(b, a, `${type} step ${i}: outbound`);
        sent.push([remote, a.port]);
        // A new port for a flow seen before: its mapping had expired.
        const flow = `${formatEndpoint(local)}>${formatEndpoint(remote)}`;
        if (last.has(flow) && last.get(flow) !== a.port) renewed++;
        last.set(flow, a.port);
      } else {
        // An answer to one of the last datagrams sent, or a stranger at a mapped port.
        const [from, port] = sent.length > 0 && rng() < 0.5
          ? sent[sent.length - 1 - int(Math.min(sent.length, 20))]!
          : [remote, sent.length > 0 ? sent[int(sent.length)]![1] : 40_000];
        const a = old.inbound(t, from, port), b = now.inbound(t, from, port);
        assert.deepEqual(b, a, `${type} step ${i}: inbound`);
        if (a) accepted++;
        else refused++;
      }
    }
    // The walk did exercise both outcomes, and expiry.
    assert.ok(accepted > 100 && refused > 100, `${type}: ${accepted} in, ${refused} filtered`);
    assert.ok(renewed > 10, `${type}: ${renewed} mappings renewed after expiring`);
  }
});

Deno.test("sim NAT: address-restricted lets in any port of an address it sent to, nothing else", () => {
  const n = new BehaviourNat(IP, NAT_BEHAVIOURS["address-restricted"], prng(1));
  const pub = n.outbound(0, LOCAL, A1);
  assert.deepEqual(n.outbound(10, LOCAL, B1), pub, "one mapping for every destination");
  assert.deepEqual(n.inbound(20, A2, pub.port), LOCAL, "another port of a contacted address");
  assert.equal(n.inbound(20, { hostname: "192.0.2.9", port: 1000 }, pub.port), undefined);
  const p = new BehaviourNat(IP, NAT_BEHAVIOURS["port-restricted"], prng(1));
  const pp = p.outbound(0, LOCAL, A1);
  assert.equal(p.inbound(20, A2, pp.port), undefined, "port-restricted refuses another port");
  assert.deepEqual(p.inbound(20, A1, pp.port), LOCAL);
});

Deno.test("sim NAT: mapping behaviours share a mapping per local endpoint, address or endpoint", () => {
  const ports = (mapping: NatRule) => {
    const n = nat({ mapping, filtering: "endpoint-independent", ports: "sequential" });
    return [A1, A2, B1].map((d) => n.outbound(0, LOCAL, d).port);
  };
  assert.deepEqual(ports("endpoint-independent"), [40_000, 40_000, 40_000]);
  assert.deepEqual(ports("address-dependent"), [40_000, 40_000, 40_001]);
  assert.deepEqual(ports("address-and-port-dependent"), [40_000, 40_001, 40_002]);
});

Deno.test("sim NAT: ports are kept when free, counted up, or random but never the internal one", () => {
  const keep = nat({ mapping: "address-and-port-dependent", filtering: "endpoint-independent" });
  assert.equal(keep.outbound(0, LOCAL, A1).port, LOCAL.port, "preserved while free");
  const second = keep.outbound(0, LOCAL, A2).port;
  assert.notEqual(second, LOCAL.port, "taken: another one");
  // Once the first mapping expired, the port is free again.
  keep.outbound(NAT_TIMEOUT - 1, LOCAL, A2);
  assert.equal(keep.outbound(NAT_TIMEOUT + 1, LOCAL, B1).port, LOCAL.port);

  const random = nat({
    mapping: "address-and-port-dependent",
    filtering: "endpoint-independent",
    ports: "random",
  });
  const seen = new Set<number>();
  for (let i = 0; i < 2_000; i++) {
    const p = random.outbound(0, LOCAL, { hostname: "192.0.2.1", port: 1024 + i }).port;
    assert.ok(p >= 1024 && p <= 65535 && p !== LOCAL.port, `port ${p}`);
    assert.ok(!seen.has(p), "a live mapping's port is never handed out again");
    seen.add(p);
  }
  assert.equal(random.mappings, 2_000);
});

Deno.test("sim NAT: mappings and filter entries expire when idle; traffic keeps them", () => {
  const n = nat({ mapping: "endpoint-independent", filtering: "address-dependent", timeout: 1000 });
  const pub = n.outbound(0, LOCAL, A1);
  assert.deepEqual(n.inbound(999, A1, pub.port), LOCAL, "in time");
  // The accepted answer refreshed the mapping.
  assert.deepEqual(n.inbound(1998, A1, pub.port), LOCAL);
  assert.equal(n.inbound(2998, A1, pub.port), undefined, "idle for the timeout: gone");
  // Traffic to B keeps the mapping, not A's filter entry.
  const again = n.outbound(3000, LOCAL, A1);
  n.outbound(3600, LOCAL, B1);
  assert.equal(n.inbound(4200, A1, again.port), undefined, "A's entry expired");
  assert.deepEqual(n.inbound(4200, B1, again.port), LOCAL, "B's is fresh");
  n.flush();
  assert.equal(n.mappings, 0);
  assert.equal(n.inbound(4201, B1, again.port), undefined, "flushed");
});

Deno.test("sim NAT: hairpinning reaches the inside only when the NAT does it", () => {
  for (const hairpin of [true, false]) {
    const n = nat({ mapping: "endpoint-independent", filtering: "endpoint-independent", hairpin });
    const pub = n.outbound(0, LOCAL, A1);
    assert.deepEqual(n.hairpinTarget(10, pub.port), hairpin ? LOCAL : undefined);
    assert.equal(n.hairpinTarget(10, pub.port + 1), undefined, "no mapping there");
  }
});
