/**
 * `MappingEvidence` (`lib/peer/mapping_evidence.ts`): the STUN verdict and peers' views of our
 * address combined into the mapping told to peers, and which views count.
 */
import assert from "node:assert/strict";
import { MappingEvidence } from "../../lib/peer/mapping_evidence.ts";
import { NatMapping } from "../../lib/wire/peer_frame.ts";

const SERVER_HOST = "198.51.100.1";
const US = { hostname: "203.0.113.1", port: 40000 };
const PEER = { hostname: "203.0.113.9", port: 5000 };
const at = (port: number) => ({ hostname: US.hostname, port });

Deno.test("mapping evidence: STUN verdicts alone", () => {
  const e = new MappingEvidence();
  assert.deepEqual([e.mapping, e.basis], [NatMapping.Unknown, "none"]);
  e.stun("not-port-dependent");
  assert.deepEqual([e.mapping, e.basis], [NatMapping.EndpointIndependent, "not-port-dependent"]);
  const hard = new MappingEvidence();
  hard.stun("address-dependent");
  assert.deepEqual([hard.mapping, hard.basis], [NatMapping.AddressDependent, "proven"]);
  const ei = new MappingEvidence();
  ei.stun("endpoint-independent");
  assert.deepEqual([ei.mapping, ei.basis], [NatMapping.EndpointIndependent, "proven"]);
});

Deno.test("mapping evidence: a peer's view settles what two ports of one address cannot", () => {
  // Seen where the server sees us: endpoint-independent, proven.
  const same = new MappingEvidence();
  same.stun("not-port-dependent");
  assert.ok(same.peerView(US, PEER, US, SERVER_HOST));
  assert.deepEqual([same.mapping, same.basis], [NatMapping.EndpointIndependent, "proven"]);
  // Seen at another port: a mapping per destination host (address-dependent), and it stays so.
  const other = new MappingEvidence();
  other.stun("not-port-dependent");
  assert.ok(other.peerView(at(40001), PEER, US, SERVER_HOST));
  assert.ok(other.peerView(US, { ...PEER, hostname: "203.0.113.10" }, US, SERVER_HOST));
  assert.deepEqual([other.mapping, other.basis], [NatMapping.AddressDependent, "proven"]);
  // Without any STUN verdict, a view alone decides.
  const bare = new MappingEvidence();
  assert.ok(bare.peerView(US, PEER, US, SERVER_HOST));
  assert.equal(bare.mapping, NatMapping.EndpointIndependent);
});

Deno.test("mapping evidence: proven STUN verdicts are final; views from our own side count for nothing", () => {
  const ei = new MappingEvidence();
  ei.stun("endpoint-independent");
  ei.peerView(at(40001), PEER, US, SERVER_HOST); // a rebinding, or a lie
  assert.equal(ei.mapping, NatMapping.EndpointIndependent);
  const ad = new MappingEvidence();
  ad.stun("address-dependent");
  ad.peerView(US, PEER, US, SERVER_HOST);
  assert.equal(ad.mapping, NatMapping.AddressDependent);
  const e = new MappingEvidence();
  e.stun("not-port-dependent");
  // A LAN peer sees our private address; a peer behind our own NAT (hairpin) has our public IP;
  // a peer on the server's address; before we know where the server sees us.
  assert.equal(e.peerView({ hostname: "10.0.0.2", port: 5000 }, PEER, US, SERVER_HOST), false);
  assert.equal(e.peerView(at(1), { hostname: US.hostname, port: 7 }, US, SERVER_HOST), false);
  assert.equal(e.peerView(at(1), { hostname: SERVER_HOST, port: 9 }, US, SERVER_HOST), false);
  assert.equal(e.peerView(at(1), PEER, undefined, SERVER_HOST), false);
  assert.deepEqual([e.mapping, e.basis], [NatMapping.EndpointIndependent, "not-port-dependent"]);
});
