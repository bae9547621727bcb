/** The known-peers file: per room, atomic writes, other rooms and processes kept. */
import assert from "node:assert/strict";
import { KnownPeers, KnownPeersError, knownPeersPath } from "../../lib/io/known_peers.ts";

const ROOM_A = Uint8Array.from({ length: 16 }, (_, i) => i);
const ROOM_B = new Uint8Array(16).fill(0xab);
const HEX_A = "000102030405060708090a0b0c0d0e0f";
const FP1 = "abcd-efgh-ijkl-mnop", FP2 = "qrst-uvwx-yz23-4567";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "p2p-known-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("known peers: the file sits next to the identity", () => {
  assert.equal(
    knownPeersPath("/home/a/.config/p2p/identity"),
    "/home/a/.config/p2p/known_peers.json",
  );
});

Deno.test("known peers: a missing file is empty; remember writes it (0600) and reloads", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/known_peers.json`;
    const k = await KnownPeers.load(path, ROOM_A);
    assert.equal(k.get("alice"), undefined);
    assert.equal(k.entries().size, 0);
    const live = k.entries();
    await k.remember("alice", FP1);
    assert.equal(k.get("alice"), FP1);
    assert.equal(live.get("alice"), FP1, "entries() is a live view");
    const doc = JSON.parse(await Deno.readTextFile(path));
    assert.deepEqual(doc, { version: 1, rooms: { [HEX_A]: { alice: FP1 } } });
    if (Deno.build.os !== "windows") assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    const again = await KnownPeers.load(path, ROOM_A);
    assert.deepEqual([...again.entries()], [["alice", FP1]]);
    // Another room sees none of it.
    assert.equal((await KnownPeers.load(path, ROOM_B)).entries().size, 0);
  });
});

Deno.test("known peers: rooms and concurrent writers keep each other's entries", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/known_peers.json`;
    const a = await KnownPeers.load(path, ROOM_A);
    const b = await KnownPeers.load(path, ROOM_B);
    const a2 = await KnownPeers.load(path, ROOM_A); // A second process in room A.
    await Promise.all([a.remember("alice", FP1), a.remember("bob", FP2), b.remember("alice", FP2)]);
    await a2.remember("carol", FP1);
    const fresh = await KnownPeers.load(path, ROOM_A);
    assert.deepEqual(Object.fromEntries(fresh.entries()), { alice: FP1, bob: FP2, carol: FP1 });
    assert.equal((await KnownPeers.load(path, ROOM_B)).get("alice"), FP2);
    // A changed key replaces the old one; odd names survive the JSON round trip.
    await a.remember("alice", FP2);
    await a.remember("__proto__", FP1);
    const last = await KnownPeers.load(path, ROOM_A);
    assert.equal(last.get("alice"), FP2);
    assert.equal(last.get("__proto__"), FP1);
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), ["known_peers.json", "known_peers.json.lock"], "no temp files");
  });
});

Deno.test("known peers: remembering a known fingerprint writes nothing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/known_peers.json`;
    const k = await KnownPeers.load(path, ROOM_A);
    await k.remember("alice", FP1);
    await Deno.remove(path);
    await k.remember("alice", FP1);
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("known peers: a malformed file is refused with its path; failed writes reject", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/known_peers.json`;
    for (
      const text of ["{", "[]", '{"version":2,"rooms":{}}', `{"version":1,"rooms":{"x":{"a":1}}}`]
    ) {
      await Deno.writeTextFile(path, text);
      await assert.rejects(
        KnownPeers.load(path, ROOM_A),
        (e) =>
          e instanceof KnownPeersError && e.message.includes(path) && /malformed/.test(e.message),
      );
    }
    await Deno.remove(path);
    const k = await KnownPeers.load(`${dir}/sub/known_peers.json`, ROOM_A);
    await Deno.writeTextFile(`${dir}/sub`, "a file where the directory should be");
    await assert.rejects(k.remember("alice", FP1), KnownPeersError);
    // Later calls still run.
    await Deno.remove(`${dir}/sub`);
    await k.remember("bob", FP2);
    assert.equal((await KnownPeers.load(`${dir}/sub/known_peers.json`, ROOM_A)).get("bob"), FP2);
  });
});

Deno.test("known peers: a planted symlink or another user's file or lock is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2p-kp-own-" });
  try {
    const path = `${dir}/known_peers.json`;
    // A lock that is a symlink elsewhere: refused, and the target is not created or touched.
    await Deno.symlink(`${dir}/elsewhere`, `${path}.lock`);
    const kp = await KnownPeers.load(path, ROOM_A);
    await assert.rejects(kp.remember("alice", FP1), KnownPeersError, "symbolic link");
    await assert.rejects(Deno.lstat(`${dir}/elsewhere`), Deno.errors.NotFound);
    await Deno.remove(`${path}.lock`);
    await kp.remember("bob", FP2);
    // The file itself as a symlink, or owned by another user: refused when read.
    await Deno.rename(path, `${dir}/real.json`);
    await Deno.symlink(`${dir}/real.json`, path);
    await assert.rejects(KnownPeers.load(path, ROOM_A), KnownPeersError, "symbolic link");
    await Deno.remove(path);
    await Deno.rename(`${dir}/real.json`, path);
    if (Deno.uid() === 0) {
      await Deno.chown(path, 65534, 65534);
      await assert.rejects(KnownPeers.load(path, ROOM_A), KnownPeersError, "another user");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
