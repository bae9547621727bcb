/**
 * A child process for `tests/lab/portmap_lab_test.ts`: runs a {@link PortMapper} on a real UDP
 * socket ({@link UdpDriver}) with `fetch` for UPnP, as `p2p join` does, and prints JSON lines:
 * `{"event":"bound","port":N}`, then the mapper's events (`mapped`, `lost`, `none`), and
 * `{"event":"recv","from":"IP:PORT","text":...}` for any other datagram, which it answers with
 * `reply:<text>`. The stdin line `stop` deletes the mappings, waits (at most 3 s) until the
 * mapper is idle, prints `{"event":"stopped","idle":bool}` and exits.
 *
 * Arguments: `--gateway IP|none --local IP [--port N] [--protocols pcp,natpmp,upnp]
 * [--timeout MS] [--lifetime S]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import {
  type PortMapHttp,
  PortMapper,
  type PortMapProtocol,
} from "../../lib/nat/portmap/mapper.ts";
import { runHttp } from "../../lib/io/http.ts";
import { UdpDriver } from "../../lib/io/udp.ts";
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    gateway: { type: "string" },
    local: { type: "string" },
    port: { type: "string", default: "0" },
    protocols: { type: "string", default: "pcp,natpmp,upnp" },
    timeout: { type: "string", default: "2000" },
    lifetime: { type: "string", default: "7200" },
  },
});
const print = (o: unknown) => console.log(JSON.stringify(o));
const local = values.local!;
const out: Transmit[] = [];
/** Filled in once the socket is bound (the mapper needs its port). */
const ref: { mapper?: PortMapper } = {};
const dec = new TextDecoder();
const enc = new TextEncoder();

const driver = UdpDriver.bind(local, Number(values.port), {
  handleDatagram(now: number, from: Endpoint, data: Uint8Array) {
    if (ref.mapper?.handleDatagram(now, from, data)) return;
    const text = dec.decode(data);
    print({ event: "recv", from: formatEndpoint(from), text });
    out.push({ to: from, data: enc.encode(`reply:${text}`) });
  },
  handleTimeout: (now: number) => ref.mapper?.handleTimeout(now),
  pollTransmit: () => out.shift() ?? ref.mapper?.pollTransmit(),
  nextTimeout: () => ref.mapper?.nextTimeout(),
}, { onStep: drain });

const mapper = new PortMapper({
  gateway: values.gateway === "none" ? null : values.gateway!,
  localAddress: local,
  localPort: driver.localAddr.port,
  random: (n) => new Uint8Array(randomBytes(n)),
  protocols: values.protocols!.split(",") as PortMapProtocol[],
  timeout: Number(values.timeout),
  lifetime: Number(values.lifetime),
});
ref.mapper = mapper;
print({ event: "bound", port: driver.localAddr.port });

function drain(): void {
  for (let e = mapper.pollEvent(); e; e = mapper.pollEvent()) {
    print(
      e.type === "mapped" ? { ...e, event: e.type, external: formatEndpoint(e.external) } : {
        ...e,
        event: e.type,
      },
    );
  }
  for (let h = mapper.pollHttp(); h; h = mapper.pollHttp()) request(h);
}

const inflight = new Set<Promise<void>>();
function request(h: PortMapHttp): void {
  const p = runHttp(h).then((res) => driver.step((now) => mapper.handleHttp(now, h.id, res)))
    .finally(() => inflight.delete(p));
  inflight.add(p);
}

driver.step((now) => mapper.start(now));
driver.start();

for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  if (chunk.includes("stop")) break;
}
driver.step((now) => mapper.stop(now));
const deadline = Date.now() + 3000;
while (!(mapper.idle && inflight.size === 0) && Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 20));
}
print({ event: "stopped", idle: mapper.idle });
await driver.close();
Deno.exit(0);
