/**
 * Issue 17 #3, seen from the users: while an attacker floods a peer's UDP socket with forged
 * Noise message 1s (ids in clear are all it needs), chat between that peer and another member
 * keeps its latency and loses nothing. Real `p2p serve` and two `p2p join --json` on loopback;
 * the attacker is `tests/support/handshake_flooder.ts` in its own process, on 127.0.0.2,
 * bounded to {@link FLOOD_LIMITS}.
 *
 * Latency is measured by this process: from writing a line to the sender's stdin to reading the
 * `message` event from the receiver's stdout (so it includes two pipes and JSON, a few ms).
 */
import assert from "node:assert/strict";
import { P2pProcess } from "../support/proc.ts";
import { withRoom } from "../support/room.ts";
import { FLOOD_LIMITS } from "../support/handshake_flooder.ts";

const WAIT = 15_000;
const FLOODER = new URL("../support/handshake_flooder.ts", import.meta.url).pathname;
/** Chat lines sent during the flood, one every {@link GAP} ms, alternating direction. */
const LINES = 40;
const GAP = 100;
/** How long after the last line is sent the lines may still arrive, ms. */
const LATE = 4_000;
/** How long the flood may last, and its rate: longer than the chat, within the bounds. */
const FLOOD_SECONDS = 8;
const FLOOD_RATE = 35_000;

/** The `q` quantile of `xs` (nearest rank). */
function quantile(xs: readonly number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

/** What one phase of chat measured: each line's latency (ms), and the lines that never came. */
interface ChatRun {
  latencies: number[];
  lost: string[];
  /** When the last line was sent (`performance.now()`). */
  sentUntil: number;
}

/**
 * {@link LINES} lines, one every {@link GAP} ms, alternately from `b` to `a` and from `a` to `b`;
 * each must arrive within {@link LATE} ms of the last one's sending.
 */
async function chat(a: P2pProcess, b: P2pProcess, tag: string): Promise<ChatRun> {
  const sent: { text: string; to: P2pProcess; at: number }[] = [];
  for (let i = 0; i < LINES; i++) {
    const [from, to] = i % 2 === 0 ? [b, a] : [a, b];
    const text = `${tag} line ${i} from ${from.label}`;
    sent.push({ text, to, at: performance.now() });
    await from.send(text);
    await new Promise((r) => setTimeout(r, GAP));
  }
  const sentUntil = performance.now();
  const deadline = sentUntil + LATE;
  const run: ChatRun = { latencies: [], lost: [], sentUntil };
  for (const s of sent) {
    const e = await s.to.waitFor(
      (e) => e.event === "message" && e.text === s.text,
      Math.max(0, deadline - performance.now()),
      `${s.to.label} receives "${s.text}"`,
    ).catch(() => null);
    if (e) run.latencies.push(s.to.receivedAt(e)! - s.at);
    else run.lost.push(s.text);
  }
  return run;
}

/**
 * Starts measuring process `pid`'s CPU time (Linux `/proc`, all threads); the function returned
 * gives the share of one core it used since (1: a whole core).
 */
function cpuSince(pid: number): () => number {
  const ms = () => {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 1/100 s
  };
  const cpu0 = ms(), t0 = performance.now();
  return () => (ms() - cpu0) / (performance.now() - t0);
}

const pct = (share: number) => `${Math.round(share * 100)} %`;

function summary(r: ChatRun): string {
  if (r.latencies.length === 0) return `no line arrived (${r.lost.length} lost)`;
  const ms = (q: number) => quantile(r.latencies, q).toFixed(1);
  return `median ${ms(0.5)} ms, p99 ${ms(0.99)} ms, ${r.lost.length} of ${LINES} lost`;
}

Deno.test({
  name:
    "a peer flooded with forged handshake message 1s still chats: median ≤ 100 ms, nothing lost",
  sanitizeResources: false,
  async fn() {
    await withRoom({ room: "flood", peers: ["vic", "pal"] }, async ({ peers: [vic, pal] }) => {
      const [vicReady, palReady] = await Promise.all(
        [vic, pal].map((p) => p.waitFor((e) => e.event === "ready", WAIT)),
      );
      const local = String(vic.eventsOf("registering")[0]?.local);
      assert.match(local, /^127\.0\.0\.1:\d+$/, vic.describe());
      assert.match(String(vicReady!.id), /^[0-9a-f]{16}$/, vic.describe());
      await vic.waitFor((e) => e.event === "peer" && e.name === "pal" && e.path === "direct", WAIT);
      await pal.waitFor((e) => e.event === "peer" && e.name === "vic" && e.path === "direct", WAIT);

      const quietCpu = cpuSince(vic.pid);
      const quiet = await chat(vic, pal, "quiet");
      const quietShare = quietCpu();
      const flooder = new P2pProcess([
        Deno.execPath(),
        "run",
        "-A",
        FLOODER,
        "--to",
        local,
        "--from-id",
        String(palReady!.id),
        "--to-id",
        String(vicReady!.id),
        "--bind",
        "127.0.0.2",
        "--max",
        String(FLOOD_LIMITS.maxDatagrams),
        "--seconds",
        String(FLOOD_SECONDS),
        "--rate",
        String(FLOOD_RATE),
      ], { label: "flooder" });
      try {
        await flooder.waitFor((e) => e.event === "flooding", WAIT);
        const floodCpu = cpuSince(vic.pid);
        // Let the flood fill the victim's socket before the first line.
        await new Promise((r) => setTimeout(r, 500));
        const flooded = await chat(vic, pal, "flooded");
        const done = await flooder.waitFor((e) => e.event === "flooded", WAIT);
        const floodShare = floodCpu();
        console.log(
          `forged message 1 flood: ${done.sent} datagrams in ${done.ms} ms (${done.rate}/s)\n` +
            `chat latency without the flood: ${summary(quiet)}\n` +
            `chat latency under the flood:   ${summary(flooded)}\n` +
            `the victim's CPU: ${pct(quietShare)} of a core without the flood, ` +
            `${pct(floodShare)} under it`,
        );
        const stillFlooding = flooder.receivedAt(done)! > flooded.sentUntil;
        assert.ok(stillFlooding, `the flood ended before the chat did: ${JSON.stringify(done)}`);
        assert.ok(Number(done.rate) >= 20_000, `a flood worth the name: ${JSON.stringify(done)}`);
        assert.deepEqual(flooded.lost, [], "no line lost");
        for (const p of [vic, pal]) {
          const texts = p.eventsOf("message").map((e) => e.text);
          assert.equal(new Set(texts).size, texts.length, `each line once: ${p.describe()}`);
        }
        const median = quantile(flooded.latencies, 0.5);
        assert.ok(median <= 100, `median latency ${median.toFixed(1)} ms under the flood`);
      } finally {
        await flooder.close();
      }
    });
  },
});
