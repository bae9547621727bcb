/**
 * Piped input through real processes on 127.0.0.1: more lines than a peer's send queue holds
 * (4096) are all delivered, once and in order, direct and relayed. Input waits while the queue
 * to a peer that is taking messages is long, instead of refusing lines for a full queue.
 */
import assert from "node:assert/strict";
import type { P2pEvent, P2pProcess } from "../support/proc.ts";
import { withRoom } from "../support/room.ts";

const WAIT = 20_000;
const LINES = 6_000;

function isPeer(name: string) {
  return (e: P2pEvent) => e.event === "peer" && e.name === name;
}

async function pipeLines(sender: P2pProcess, receiver: P2pProcess): Promise<void> {
  const lines = Array.from({ length: LINES }, (_, i) => `line ${i + 1} ${"x".repeat(60)}`);
  for (const l of lines) await sender.send(l);
  await receiver.waitFor(
    (e) => e.event === "message" && e.text === lines.at(-1),
    WAIT,
    "the last line",
  );
  const got = receiver.eventsOf("message").map((e) => String(e.text));
  assert.equal(got.length, LINES, receiver.describe());
  assert.deepEqual(got, lines, "every line once, in order");
  assert.deepEqual(sender.eventsOf("notice"), [], "no line refused");
  // End of input: the sender delivers what is queued, leaves and exits 0.
  await sender.closeStdin();
  assert.equal(await sender.wait(WAIT), 0, sender.describe());
}

Deno.test({
  name: "piped input beyond the send queue is delivered, direct",
  sanitizeResources: false,
  async fn() {
    await withRoom(
      { room: "pipe-direct", peers: ["src", "dst"] },
      async ({ peers: [src, dst] }) => {
        assert.equal((await src.waitFor(isPeer("dst"), WAIT)).path, "direct");
        await dst.waitFor(isPeer("src"), WAIT);
        await pipeLines(src, dst);
      },
    );
  },
});

Deno.test({
  name: "piped input beyond the send queue is delivered, relayed",
  sanitizeResources: false,
  async fn() {
    await withRoom(
      { room: "pipe-relay", peers: [{ name: "src", relayOnly: true }, "dst"] },
      async ({ peers: [src, dst] }) => {
        assert.equal((await src.waitFor(isPeer("dst"), WAIT)).path, "relay");
        await dst.waitFor(isPeer("src"), WAIT);
        await pipeLines(src, dst);
      },
    );
  },
});
