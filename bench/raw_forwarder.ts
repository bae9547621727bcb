/**
 * The baseline of the relay load benchmark (`bench/relay_load.ts`): the least a Deno UDP relay
 * can do. It forwards every datagram from endpoint A to endpoint B and from B to A, and drops
 * the rest. Same socket loop as `lib/io/udp.ts`: one socket, one reused receive buffer, a copy of
 * each datagram handed to a send that is not awaited (the next receive overwrites the buffer).
 * The copies are cut from 64 KiB slabs, as the registry does for RELAYED datagrams (cheaper
 * than a typed array per datagram), so the baseline is the floor, not a naive forwarder.
 *
 * `deno run --allow-net bench/raw_forwarder.ts A_PORT B_PORT` binds 127.0.0.1 on any port and
 * prints `{"event":"listening","addr":"127.0.0.1:PORT"}`; it stops on SIGTERM or SIGINT.
 *
 * @module
 */

import { bindUdp, LO, receiveEach } from "./support.ts";

async function forward(aPort: number, bPort: number): Promise<void> {
  const conn = bindUdp();
  const a: Deno.NetAddr = { transport: "udp", hostname: LO, port: aPort };
  const b: Deno.NetAddr = { transport: "udp", hostname: LO, port: bPort };
  let sendErrors = 0;
  const failed = () => {
    sendErrors++;
  };
  const stop = () => conn.close();
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  console.log(
    JSON.stringify({ event: "listening", addr: `${LO}:${(conn.addr as Deno.NetAddr).port}` }),
  );
  let slab = new Uint8Array(0), used = 0;
  await receiveEach(conn, (data, from) => {
    const to = from.port === a.port && from.hostname === LO
      ? b
      : from.port === b.port && from.hostname === LO
      ? a
      : undefined;
    if (!to) return;
    const n = data.length;
    if (used + n > slab.length) {
      slab = new Uint8Array(Math.max(65_536, n));
      used = 0;
    }
    const copy = slab.subarray(used, used += n);
    copy.set(data);
    conn.send(copy, to).catch(failed);
  });
  if (sendErrors > 0) console.error(`${sendErrors} sends failed`);
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
}

if (import.meta.main) {
  const [a, b] = Deno.args.map(Number);
  if (!a || !b) {
    console.error("usage: raw_forwarder.ts A_PORT B_PORT");
    Deno.exit(2);
  }
  await forward(a, b);
}
