/**
 * Tests of the simulators' NAT ({@link SimNat} in `tests/support/sim_nat.ts`): what each named
 * type lets through, rule by rule (mapping, filtering, port allocation, idle timeout), what
 * each RFC 4787 behaviour means on its own, and that the rules hold inside the simulator.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  NAT_BEHAVIOURS,
  NAT_TIMEOUT,
  type NatBehaviour,
  type NatRule,
  type NatType,
  SimNat,
} from "../support/sim_nat.ts";
import { natPair } from "../support/sim.ts";
import { prng } from "../support/prng.ts";
import type { Endpoint } from "../../lib/wire/address.ts";

const IP = "203.0.113.1";
const LOCAL: Endpoint = { hostname: "10.0.0.2", port: 5000 };
/** A1 and A2: one address, two ports. B1: another address. */
const A1: Endpoint = { hostname: "192.0.2.1", port: 1000 };
const A2: Endpoint = { hostname: "192.0.2.1", port: 2000 };
const B1: Endpoint = { hostname: "192.0.2.2", port: 1000 };

function nat(b: NatBehaviour): SimNat {
  return new SimNat(IP, b, undefined, prng(1));
}

/** What each named type does, written out (not derived from {@link NAT_BEHAVIOURS}). */
const TYPES: Record<NatType, {
  /** A datagram to another port of the same address leaves from the same public port. */
  keepsPortForNewPort: boolean;
  /** A datagram to another address leaves from the same public port. */
  keepsPortForNewAddress: boolean;
  /** After sending to A1 only: A2 (same address, another port) gets in. */
  letsInNewPort: boolean;
  /** After sending to A1 only: B1 (another address) gets in. */
  letsInNewAddress: boolean;
  /** Public ports count up from 40000. */
  sequential: boolean;
}> = {
  "full-cone": {
    keepsPortForNewPort: true,
    keepsPortForNewAddress: true,
    letsInNewPort: true,
    letsInNewAddress: true,
    sequential: true,
  },
  "address-restricted": {
    keepsPortForNewPort: true,
    keepsPortForNewAddress: true,
    letsInNewPort: true,
    letsInNewAddress: false,
    sequential: true,
  },
  "port-restricted": {
    keepsPortForNewPort: true,
    keepsPortForNewAddress: true,
    letsInNewPort: false,
    letsInNewAddress: false,
    sequential: true,
  },
  "symmetric": {
    keepsPortForNewPort: false,
    keepsPortForNewAddress: false,
    letsInNewPort: false,
    letsInNewAddress: false,
    sequential: true,
  },
  "symmetric-random": {
    keepsPortForNewPort: false,
    keepsPortForNewAddress: false,
    letsInNewPort: false,
    letsInNewAddress: false,
    sequential: false,
  },
};

Deno.test("sim NAT: every named type is one of the simulator's types, and back", () => {
  assert.deepEqual(Object.keys(NAT_BEHAVIOURS).sort(), Object.keys(TYPES).sort());
});

for (const [type, want] of Object.entries(TYPES) as [NatType, (typeof TYPES)[NatType]][]) {
  Deno.test(
    `sim NAT ${type}: mapping: a new destination ${
      want.keepsPortForNewAddress ? "keeps" : "gets a new"
    } public port`,
    () => {
      const n = new SimNat(IP, type, undefined, 3);
      const pub = n.outbound(0, LOCAL, A1);
      assert.equal(pub.hostname, IP, "the source is the NAT's address");
      assert.deepEqual(n.outbound(0, LOCAL, A1), pub, "one flow, one mapping");
      const toA2 = n.outbound(0, LOCAL, A2).port;
      const toB1 = n.outbound(0, LOCAL, B1).port;
      assert.equal(toA2 === pub.port, want.keepsPortForNewPort, `to A2: ${toA2} vs ${pub.port}`);
      assert.equal(toB1 === pub.port, want.keepsPortForNewAddress, `to B1: ${toB1} vs ${pub.port}`);
      assert.equal(n.mappings, want.keepsPortForNewAddress ? 1 : 3);
      // Another local endpoint never shares a mapping.
      assert.notEqual(n.outbound(0, { ...LOCAL, port: 5001 }, A1).port, pub.port);
    },
  );

  Deno.test(
    `sim NAT ${type}: filtering: the answer gets in; a new port ${
      want.letsInNewPort ? "does" : "does not"
    }, a new address ${want.letsInNewAddress ? "does" : "does not"}`,
    () => {
      const n = new SimNat(IP, type, undefined, 3);
      const pub = n.outbound(0, LOCAL, A1);
      assert.equal(n.inbound(10, B1, pub.port + 1), undefined, "no mapping at that port");
      assert.deepEqual(n.inbound(10, A1, pub.port), LOCAL, "the answer from where it went");
      assert.equal(n.inbound(10, A2, pub.port) !== undefined, want.letsInNewPort, "from A2");
      assert.equal(n.inbound(10, B1, pub.port) !== undefined, want.letsInNewAddress, "from B1");
      // Once it has sent to B1, B1 gets in through the mapping it used.
      const toB1 = n.outbound(20, LOCAL, B1);
      assert.deepEqual(n.inbound(30, B1, toB1.port), LOCAL);
    },
  );

  Deno.test(
    `sim NAT ${type}: ports ${
      want.sequential ? "count up from 40000" : "are random, reproducible from the seed"
    }`,
    () => {
      const ports = (seed: number) => {
        const n = new SimNat(IP, type, undefined, seed);
        return [1, 2, 3].map((i) => n.outbound(0, { ...LOCAL, port: 5000 + i }, A1).port);
      };
      const first = ports(1);
      assert.deepEqual(ports(1), first, "same seed, same ports");
      if (want.sequential) {
        assert.deepEqual(first, [40_000, 40_001, 40_002]);
        assert.deepEqual(ports(2), first, "the seed does not matter");
      } else {
        assert.notDeepEqual(first, [40_000, 40_001, 40_002]);
        assert.notDeepEqual(ports(2), first, "another seed, other ports");
        for (const p of first) assert.ok(p >= 1024 && p <= 65535, `port ${p}`);
      }
    },
  );

  Deno.test(`sim NAT ${type}: an idle mapping expires after the timeout; traffic keeps it`, () => {
    const n = new SimNat(IP, type, 1_000, 3);
    assert.equal(n.timeout, 1_000);
    assert.equal(new SimNat(IP, type).timeout, NAT_TIMEOUT, "the default");
    const pub = n.outbound(0, LOCAL, A1);
    assert.deepEqual(n.inbound(999, A1, pub.port), LOCAL, "in time");
    assert.deepEqual(n.outbound(1_500, LOCAL, A1), pub, "refreshed by the answer at 999");
    assert.equal(n.inbound(2_500, A1, pub.port), undefined, "idle for the timeout: gone");
    const again = n.outbound(2_500, LOCAL, A1);
    assert.notEqual(again.port, pub.port, "a new mapping, a new port");
    assert.equal(n.inbound(2_600, A1, pub.port), undefined, "the old port leads nowhere");
    assert.deepEqual(n.inbound(2_600, A1, again.port), LOCAL);
  });
}

Deno.test("sim NAT: mapping behaviours share a mapping per local endpoint, address or endpoint", () => {
  const ports = (mapping: NatRule) => {
    const n = nat({ mapping, filtering: "endpoint-independent", ports: "sequential" });
    return [A1, A2, B1].map((d) => n.outbound(0, LOCAL, d).port);
  };
  assert.deepEqual(ports("endpoint-independent"), [40_000, 40_000, 40_000]);
  assert.deepEqual(ports("address-dependent"), [40_000, 40_000, 40_001]);
  assert.deepEqual(ports("address-and-port-dependent"), [40_000, 40_001, 40_002]);
});

Deno.test("sim NAT: filtering behaviours let in anyone, the addresses, or the endpoints sent to", () => {
  const lets = (filtering: NatRule) => {
    const n = nat({ mapping: "endpoint-independent", filtering, ports: "sequential" });
    const { port } = n.outbound(0, LOCAL, A1);
    return [A1, A2, B1].map((s) => n.inbound(10, s, port) !== undefined);
  };
  assert.deepEqual(lets("endpoint-independent"), [true, true, true]);
  assert.deepEqual(lets("address-dependent"), [true, true, false]);
  assert.deepEqual(lets("address-and-port-dependent"), [true, false, false]);
});

Deno.test("sim NAT: ports are kept when free, else drawn at random where no live mapping is", () => {
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
    assert.ok(p >= 1024 && p <= 65535, `port ${p}`);
    assert.ok(!seen.has(p), "a live mapping's port is never handed out again");
    seen.add(p);
  }
  assert.equal(random.mappings, 2_000);
});

Deno.test("sim NAT: random ports do not try the internal port, nor avoid it", () => {
  // The first port prng(1) draws, used as the internal port: a random NAT hands it out as
  // Linux's `masquerade random` may, where a preserving NAT would keep it anyway.
  const first = 1024 + Math.floor(prng(1)() * 64512);
  const local = { ...LOCAL, port: first };
  const random = nat({
    mapping: "endpoint-independent",
    filtering: "endpoint-independent",
    ports: "random",
  });
  assert.equal(random.outbound(0, local, A1).port, first);
  const other = nat({
    mapping: "endpoint-independent",
    filtering: "endpoint-independent",
    ports: "random",
  });
  assert.notEqual(other.outbound(0, LOCAL, A1).port, LOCAL.port, "otherwise a random one");
});

Deno.test("sim NAT: filter entries expire on their own; a mapping lives while any traffic does", () => {
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

Deno.test("sim NAT: stacked NATs sharing one generator draw from it in turn", () => {
  const b: NatBehaviour = { ...NAT_BEHAVIOURS["symmetric-random"] };
  const rng = prng(9);
  const inner = new SimNat("100.64.0.2", b, undefined, rng);
  const outer = new SimNat(IP, b, undefined, rng);
  const mid = inner.outbound(0, LOCAL, A1);
  const out = outer.outbound(0, mid, A1);
  const draws = prng(9);
  assert.equal(mid.port, 1024 + Math.floor(draws() * 64512));
  assert.equal(out.port, 1024 + Math.floor(draws() * 64512));
});

Deno.test("sim: address-dependent filtering lets a symmetric NAT's new port in; port-dependent does not", () => {
  // Without STUN there is no NAT verdict, so no port prediction or birthday search: the only
  // way direct is the symmetric side's new mapping getting through the other side's filter.
  for (const cone of ["address-restricted", "port-restricted"] as const) {
    const { net, a, b } = natPair(5, cone, "symmetric-random", { stun: false });
    net.runUntilTrue(() => a.client.registered && b.client.registered, 5_000);
    net.run(20_000);
    const paths = [a.lastPath("bob")?.path, b.lastPath("alice")?.path];
    const want = cone === "address-restricted" ? "direct" : "relay";
    assert.deepEqual(paths, [want, want], `${cone} with symmetric-random`);
  }
});
