/**
 * A forged-handshake flooder for end-to-end tests (issue 17 #3): sends forged Noise message 1s
 * (HANDSHAKE stage 1, "from" a room member, to a victim peer, with a fresh attempt number and
 * random bytes where the ephemeral key and the encrypted payload go) from its own socket to one
 * loopback `IP:PORT`, as fast as it can or at `--rate`, bounded in count and in time. Anyone who
 * knows two ids can forge these: no room secret is needed.
 *
 * Prints one JSON line when the socket is bound (`{"event":"flooding","from":"IP:PORT"}`) and one
 * when done (`{"event":"flooded","sent":N,"ms":T,"rate":R}`), then exits 0.
 *
 * ```sh
 * deno run -A tests/support/handshake_flooder.ts --to 127.0.0.1:40000 --from-id 0011… \
 *   --to-id 2233… [--bind 127.0.0.2] [--max 200000] [--seconds 10] [--rate 0]
 * ```
 *
 * Only loopback destinations are accepted.
 *
 * @module
 */
import { encodeHandshake } from "../../lib/wire/peer_frame.ts";
import { splitHostPort } from "../../lib/core/host_port.ts";

/** Bounds of one flood: at most this many datagrams, for at most this long. */
export const FLOOD_LIMITS = { maxDatagrams: 200_000, maxSeconds: 10 } as const;

/** Size of the forged message: an ephemeral key (32) and an encrypted attempt number (4 + 16). */
const MESSAGE_LEN = 52;
/** Datagrams handed to the socket before the flooder waits for them to go. */
const BATCH = 64;

/** The parsed command line. */
interface FloodArgs {
  to: { hostname: string; port: number };
  fromId: Uint8Array;
  toId: Uint8Array;
  bind: string;
  max: number;
  seconds: number;
  /** Datagrams a second; 0: as fast as the socket takes them. */
  rate: number;
}

function hex(s: string, what: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})+$/.test(s)) throw new Error(`${what}: expected hex bytes, got ${s}`);
  return Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));
}

function parse(args: readonly string[]): FloodArgs {
  const get = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const to = splitHostPort(get("--to") ?? "");
  if (!to || !to.host.startsWith("127.")) {
    throw new Error(`--to must be a loopback IPv4 HOST:PORT, got ${get("--to")}`);
  }
  const bind = get("--bind") ?? "127.0.0.2";
  if (!bind.startsWith("127.")) throw new Error(`--bind must be loopback, got ${bind}`);
  const max = Math.min(
    Number(get("--max") ?? FLOOD_LIMITS.maxDatagrams),
    FLOOD_LIMITS.maxDatagrams,
  );
  const seconds = Math.min(
    Number(get("--seconds") ?? FLOOD_LIMITS.maxSeconds),
    FLOOD_LIMITS.maxSeconds,
  );
  return {
    to: { hostname: to.host, port: to.port },
    fromId: hex(get("--from-id") ?? "", "--from-id"),
    toId: hex(get("--to-id") ?? "", "--to-id"),
    bind,
    max,
    seconds,
    rate: Number(get("--rate") ?? 0),
  };
}

/** The forged message 1 number `i`: a fresh attempt each, so none is ignored as a repeat. */
function forged(a: FloodArgs, i: number): Uint8Array {
  return encodeHandshake({
    from: a.fromId,
    to: a.toId,
    stage: 1,
    attempt: 1_000_000 + i,
    cookie: i,
    message: crypto.getRandomValues(new Uint8Array(MESSAGE_LEN)),
  });
}

/** Floods as `args` say; returns what was sent. */
export async function flood(args: readonly string[]): Promise<{ sent: number; ms: number }> {
  const a = parse(args);
  const socket = Deno.listenDatagram({ hostname: a.bind, port: 0, transport: "udp" });
  const local = socket.addr as Deno.NetAddr;
  console.log(JSON.stringify({ event: "flooding", from: `${local.hostname}:${local.port}` }));
  const dest: Deno.NetAddr = { transport: "udp", ...a.to };
  const start = performance.now();
  const end = start + a.seconds * 1000;
  let sent = 0;
  try {
    while (sent < a.max && performance.now() < end) {
      const n = Math.min(BATCH, a.max - sent);
      const batch: Promise<number>[] = [];
      for (let k = 0; k < n; k++) batch.push(socket.send(forged(a, sent + k), dest).catch(() => 0));
      await Promise.all(batch);
      sent += n;
      if (a.rate > 0) {
        const wait = start + (sent / a.rate) * 1000 - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }
  } finally {
    socket.close();
  }
  return { sent, ms: performance.now() - start };
}

if (import.meta.main) {
  const { sent, ms } = await flood(Deno.args);
  console.log(
    JSON.stringify({
      event: "flooded",
      sent,
      ms: Math.round(ms),
      rate: Math.round(sent / ms * 1000),
    }),
  );
}
