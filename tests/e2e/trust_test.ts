/**
 * Identities bind to fingerprints: a known name with a new key is warned about, with the way to
 * accept it right after the warning; `/trust NAME` accepts it (no hand-editing of JSON), and the
 * next time that key comes there is no warning.
 */
import assert from "node:assert/strict";
import { startPeer, startServer } from "../support/proc.ts";

const WAIT = 20_000;

Deno.test("trust: a changed identity is warned about once per meeting; /trust NAME accepts it", async () => {
  const server = await startServer({ host: "127.0.0.1", port: 0 });
  const room = "trusting";
  const alice = startPeer({ server: server.addr, room, name: "alice" });
  const bobConfig = await Deno.makeTempDir({ prefix: "p2p-bob-" });
  const join = (dir: string) =>
    startPeer({ server: server.addr, room, name: "bob", env: { XDG_CONFIG_HOME: dir } });
  try {
    await alice.waitFor((e) => e.event === "ready", WAIT);
    let bob = join(bobConfig);
    await alice.waitFor((e) => e.event === "peer" && e.name === "bob", WAIT);
    await bob.close();
    await alice.waitFor((e) => e.event === "left" && e.name === "bob", WAIT);
    // Bob comes back with another identity (a new machine, or someone else).
    const newConfig = await Deno.makeTempDir({ prefix: "p2p-bob2-" });
    bob = join(newConfig);
    const w = await alice.waitFor(
      (e) => e.event === "warning" && e.kind === "identity-changed",
      WAIT,
    );
    assert.equal(w.name, "bob");
    const hint = await alice.waitFor(
      (e) => e.event === "notice" && /\/trust bob/.test(String(e.message)),
      WAIT,
    );
    assert.ok(
      alice.events.indexOf(hint) > alice.events.indexOf(w),
      "the advice follows the warning",
    );
    await alice.send("/trust bob");
    await alice.waitFor(
      (e) => e.event === "notice" && /now expected/.test(String(e.message)),
      WAIT,
    );
    await bob.close();
    await alice.waitFor((e) => e.event === "left" && e.name === "bob", WAIT);
    const warnings = alice.events.filter((e) => e.event === "warning").length;
    // The same new identity again: accepted now, no warning.
    bob = join(newConfig);
    await alice.waitFor((e) => e.event === "peer" && e.name === "bob", WAIT);
    await bob.send("trusted now");
    await alice.waitFor((e) => e.event === "message" && e.text === "trusted now", WAIT);
    assert.equal(alice.events.filter((e) => e.event === "warning").length, warnings);
    await bob.close();
    await Deno.remove(newConfig, { recursive: true });
  } finally {
    await Promise.all([alice.close(), server.proc.close()]);
    await Deno.remove(bobConfig, { recursive: true });
  }
});
