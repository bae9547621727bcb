/**
 * How `join` reaches its servers (`lib/roles/transports.ts`): a plain server over UDP first and
 * TCP (same port) after every server's first entry; `--tcp` reverses that; `tcp://` and
 * `tls://` servers first over their stream, with a UDP twin in the same group; entries are
 * never tried twice.
 */
import assert from "node:assert/strict";
import { parseServerSpec, serverRoutes } from "../../lib/roles/transports.ts";

const show = (specs: string[], tcp = false) =>
  serverRoutes(specs, tcp).map((r) => `${r.scheme} ${r.hostPort} ${r.group}`);

Deno.test("transports: --server values split into scheme and HOST:PORT", () => {
  assert.deepEqual(parseServerSpec("h:1"), { scheme: "udp", hostPort: "h:1" });
  assert.deepEqual(parseServerSpec("tcp://h:1"), { scheme: "tcp", hostPort: "h:1" });
  assert.deepEqual(parseServerSpec("TLS://[::1]:443"), { scheme: "tls", hostPort: "[::1]:443" });
});

Deno.test("transports: UDP first, then TCP to the same servers when UDP gets no answer", () => {
  assert.deepEqual(show(["a:1"]), ["udp a:1 0", "tcp a:1 0"]);
  assert.deepEqual(show(["a:1", "b:2"]), ["udp a:1 0", "udp b:2 1", "tcp a:1 0", "tcp b:2 1"]);
  assert.deepEqual(show(["a:1", "b:2"], true), [
    "tcp a:1 0",
    "tcp b:2 1",
    "udp a:1 0",
    "udp b:2 1",
  ]);
});

Deno.test("transports: tcp:// and tls:// first, with UDP to the same server in their group", () => {
  assert.deepEqual(show(["tcp://a:1"]), ["tcp a:1 0", "udp a:1 0"]);
  assert.deepEqual(show(["tls://a:443"]), ["tls a:443 0", "udp a:443 0"]);
  // A plain server on the host: TLS joins its group, and UDP is that server's.
  assert.deepEqual(show(["a:1", "tls://a:443"]), ["udp a:1 0", "tls a:443 0", "tcp a:1 0"]);
  // tcp:// to a plain server's address is that server's TCP entry, not another.
  assert.deepEqual(show(["a:1", "tcp://a:1"]), ["udp a:1 0", "tcp a:1 0"]);
  // A repeated value is tried once.
  assert.deepEqual(show(["a:1", "a:1"]), ["udp a:1 0", "tcp a:1 0"]);
});
