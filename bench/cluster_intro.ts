/**
 * Introduction latency across cluster servers against one server, measured in the same run:
 * two `p2p serve --cluster` processes on one `nats-server` (all on 127.0.0.1). Per sample, in a
 * room of its own, peer X registers with server A; then peer Y registers with A (the baseline)
 * or with B (across the cluster); the time from Y's HELLO (with its cookie) to both INTROs
 * having arrived (X's about Y, Y's about X) is the introduction latency. Goal (issue 20): the
 * cluster's median at most 1.2 × the baseline's + 2 ms. Prints one JSON figure (its ratio is
 * the allowed time over the time taken; goal 1) and a summary line.
 *
 * ```sh
 * deno run -A bench/cluster_intro.ts [SAMPLES]
 * ```
 *
 * @module
 */
import { NatsServer } from "../tests/support/nats.ts";
import { signedHello, testPeerId } from "../tests/support/hello.ts";
import { idHex, MsgType } from "../lib/wire/header.ts";
import { decodeServerMsg, encodeServerMsg, type ServerMsg } from "../lib/wire/server_msg.ts";
import { bindUdp, LO, parseAddr, sleep, spawnDeno, stopChild } from "./support.ts";
import { firstJsonLine } from "./support.ts";

const ROOT = new URL("../", import.meta.url);

/** A raw peer: a UDP socket and what it received, with arrival times. */
class RawPeer {
  sock = bindUdp();
  id = testPeerId(`bench ${crypto.randomUUID()}`);
  inbox: { at: number; msg: ServerMsg }[] = [];
  #waiters: (() => void)[] = [];

  constructor() {
    void (async () => {
      for (;;) {
        let data: Uint8Array;
        try {
          [data] = await this.sock.receive();
        } catch {
          return;
        }
        const d = decodeServerMsg(data);
        if (!d.ok) continue;
        this.inbox.push({ at: performance.now(), msg: d.value });
        for (const w of this.#waiters.splice(0)) w();
      }
    })();
  }

  /** Waits for a message matching `ok` (at most 5 s). */
  async wait(ok: (m: ServerMsg) => boolean): Promise<{ at: number; msg: ServerMsg }> {
    const until = performance.now() + 5_000;
    for (;;) {
      const hit = this.inbox.find((x) => ok(x.msg));
      if (hit) return hit;
      if (performance.now() > until) {
        throw new Error(`timed out; got ${this.inbox.map((x) => x.msg.type).join(",")}`);
      }
      await new Promise<void>((r) => {
        this.#waiters.push(r);
        setTimeout(r, 500);
      });
    }
  }

  /** Leaves `server` (BYE with the token of the last WELCOME). */
  async bye(server: Deno.NetAddr): Promise<void> {
    const w = this.inbox.findLast((x) => x.msg.type === MsgType.Welcome);
    if (w?.msg.type !== MsgType.Welcome) return;
    await this.send(server, { type: MsgType.Bye, id: this.id, token: w.msg.token });
  }

  async send(to: Deno.NetAddr, m: ServerMsg): Promise<number> {
    const at = performance.now();
    await this.sock.send(encodeServerMsg(m), to);
    return at;
  }

  /** Registers in `room` with `server`: the COOKIE round trip, then the HELLO; returns when
   * that HELLO left. */
  async register(server: Deno.NetAddr, room: string): Promise<number> {
    const tag = crypto.getRandomValues(new Uint8Array(8));
    await this.send(server, signedHello(room, { id: this.id, nameTag: tag }));
    const c = await this.wait((m) => m.type === MsgType.Cookie);
    if (c.msg.type !== MsgType.Cookie) throw new Error("no cookie");
    const cookie = c.msg.cookie;
    this.inbox = [];
    return await this.send(server, signedHello(room, { id: this.id, nameTag: tag, cookie }));
  }

  introOf(other: RawPeer) {
    return this.wait((m) => m.type === MsgType.Intro && idHex(m.id) === idHex(other.id));
  }

  close() {
    this.sock.close();
  }
}

async function startServer(
  nats: string,
): Promise<{ child: Deno.ChildProcess; addr: Deno.NetAddr }> {
  const child = spawnDeno(
    [
      "run",
      "-A",
      "main.ts",
      "serve",
      "--host",
      LO,
      "--port",
      "0",
      "--json",
      "--summary",
      "0",
      "--cluster",
      nats,
      "-q",
    ],
    ROOT,
  );
  const ready = await firstJsonLine(child, "p2p serve");
  return { child, addr: parseAddr(String(ready.addr)) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function p90(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length * 0.9)]!;
}

/** One sample: X at A, then Y at `yAt`; ms from Y's HELLO to both INTROs. */
async function sample(a: Deno.NetAddr, yAt: Deno.NetAddr, room: string): Promise<number> {
  const x = new RawPeer(), y = new RawPeer();
  try {
    await x.register(a, room);
    await x.wait((m) => m.type === MsgType.Welcome);
    // Let X's record reach the other server first (a registration publishes at once).
    await sleep(20);
    const t0 = await y.register(yAt, room);
    const [ix, iy] = await Promise.all([x.introOf(y), y.introOf(x)]);
    await y.wait((m) => m.type === MsgType.Welcome);
    await x.bye(a);
    await y.bye(yAt);
    return Math.max(ix.at, iy.at) - t0;
  } finally {
    x.close();
    y.close();
  }
}

if (import.meta.main) {
  const n = Number(Deno.args[0] ?? 100);
  const nats = await new NatsServer().start();
  const a = await startServer(nats.url), b = await startServer(nats.url);
  try {
    await sleep(2_500); // both servers heard each other's heartbeat
    const one: number[] = [], across: number[] = [];
    for (let i = 0; i < n; i++) {
      one.push(await sample(a.addr, a.addr, `bench-one-${i}`));
      across.push(await sample(a.addr, b.addr, `bench-across-${i}`));
    }
    const base = median(one), value = median(across);
    const goal = 1.2 * base + 2;
    // Higher is better: the allowed time (1.2 × the baseline + 2 ms) over the time taken.
    console.log(JSON.stringify({
      name: "cluster_intro_median_ms",
      value,
      baseline: base,
      ratio: goal / value,
      goal: 1,
    }));
    console.log(
      `introduction across two servers: median ${value.toFixed(2)} ms, p90 ` +
        `${p90(across).toFixed(2)} ms; on one server: median ${base.toFixed(2)} ms, p90 ` +
        `${p90(one).toFixed(2)} ms (${n} samples each; goal ≤ 1.2 × one server + 2 ms = ` +
        `${goal.toFixed(2)} ms)`,
    );
  } finally {
    await stopChild(a.child);
    await stopChild(b.child);
    await nats.stop();
  }
  // The test support's emergency cleanup keeps signal listeners: leave explicitly.
  Deno.exit(0);
}
