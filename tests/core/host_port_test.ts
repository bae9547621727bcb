/**
 * Tests of `HOST:PORT` splitting (`lib/core/host_port.ts`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { splitHostPort } from "../../lib/core/host_port.ts";

Deno.test("splitHostPort: names, IPv4, [IPv6], and malformed values", () => {
  assert.deepEqual(splitHostPort("example.com:7777"), { host: "example.com", port: 7777 });
  assert.deepEqual(splitHostPort("127.0.0.1:1"), { host: "127.0.0.1", port: 1 });
  assert.deepEqual(splitHostPort("[::1]:65535"), { host: "::1", port: 65535 });
  for (const bad of ["nocolon", "h:0", "h:65536", "host:", ":7777", "::1:80", "h:1.5"]) {
    assert.equal(splitHostPort(bad), null, bad);
  }
});
