/**
 * What a running peer writes to its known peers: a name met for the first time is remembered; a
 * name the server suffixed (`bob-2`, "bob" being known or present) never is, so the next person
 * suffixed so sets off no changed-identity warning; a changed key is only replaced by `/trust`.
 */
import assert from "node:assert/strict";
import { KnownPeers } from "../../lib/io/known_peers.ts";
import { KnownFingerprints } from "../../lib/roles/known_fingerprints.ts";

const ROOM = new Uint8Array(32).fill(7);
const FP = ["aaaa-aaaa-aaaa-aaaa", "bbbb-bbbb-bbbb-bbbb", "cccc-cccc-cccc-cccc"] as const;

Deno.test("known fingerprints: an automatic suffix never makes a record; /trust replaces a key", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2p-known-" });
  try {
    const path = `${dir}/known_peers.json`;
    const known = new KnownFingerprints(await KnownPeers.load(path, ROOM));
    const nobody = () => false;
    known.remember("bob", FP[0], nobody);
    await known.settled();
    // Another bob while bob is here: the server's suffix is no name to keep.
    known.remember("bob-2", FP[1], (n) => n === "bob");
    // carol-2 with no carol known or present is someone's chosen name: kept.
    known.remember("carol-2", FP[2], nobody);
    // bob with another key: the record stays as it was, until /trust.
    known.remember("bob", FP[1], nobody);
    await known.settled();
    let saved = await KnownPeers.load(path, ROOM);
    assert.deepEqual(Object.fromEntries(saved.entries()), { bob: FP[0], "carol-2": FP[2] });
    known.trust("bob", FP[1]);
    await known.settled();
    saved = await KnownPeers.load(path, ROOM);
    assert.equal(saved.get("bob"), FP[1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
