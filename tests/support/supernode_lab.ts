/**
 * Helpers for the supernode NAT lab test (`tests/lab/supernode_lab_test.ts`): the server's own
 * relay counter from its summary log lines, and messages and paths as peers report them.
 *
 * @module
 */
import type { P2pEvent, P2pProcess } from "./proc.ts";

/**
 * Payload bytes the server relayed, from its newest summary line (`--summary 1 --log-format
 * json`); waits for a summary written after this call, so the number is current.
 */
export async function serverRelayedBytes(server: P2pProcess, timeoutMs = 5_000): Promise<number> {
  const seen = summaries(server.stderr).length;
  const until = performance.now() + timeoutMs;
  while (performance.now() < until) {
    const all = summaries(server.stderr);
    if (all.length > seen) return all.at(-1)!;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("No new summary line from the server (is it running with --summary 1?)");
}

/** The relayed byte counts of every summary line in `stderr`, in order. */
function summaries(stderr: string): number[] {
  const out: number[] = [];
  for (const line of stderr.split("\n")) {
    if (!line.includes('"Summary: ')) continue;
    try {
      const bytes = JSON.parse(line)?.properties?.bytes;
      if (typeof bytes === "number") out.push(bytes);
    } catch {
      // A line cut short (the process stopped mid-write): not a summary.
    }
  }
  return out;
}

/** Texts `peer` received from `name`, in arrival order. */
export function textsFrom(peer: P2pProcess, name: string): string[] {
  return peer.eventsOf("message").filter((e) => e.from === name).map((e) => String(e.text));
}

/** True for a `peer` event about `name` on the relay through `via`. */
export function relayedVia(name: string, via: string): (e: P2pEvent) => boolean {
  return (e) => e.event === "peer" && e.name === name && e.path === "relay" && e.via === via;
}

/** Waits until `peer` has received `count` messages from `name`. */
export function waitTexts(
  peer: P2pProcess,
  name: string,
  count: number,
  timeoutMs = 10_000,
): Promise<P2pEvent> {
  return peer.waitFor(
    (e) => e.event === "message" && e.from === name && textsFrom(peer, name).length >= count,
    timeoutMs,
    `${count} messages from ${name}`,
  );
}

/** Sends `lines` from `peer`, one write each. */
export async function sendAll(peer: P2pProcess, lines: readonly string[]): Promise<void> {
  for (const l of lines) await peer.send(l);
}

/** `n` numbered lines tagged `tag`. */
export function lines(tag: string, n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `${tag} ${from + i}`);
}
