/**
 * Tests of `lib/io/resolve.ts` on literal addresses (no DNS): an IPv4-mapped IPv6 server address
 * is the IPv4 address, since replies are reported from the plain IPv4 form.
 */
import assert from "node:assert/strict";
import { resolveHostPort } from "../../lib/io/resolve.ts";

Deno.test("resolve: [::ffff:a.b.c.d]:port is the IPv4 address (replies come from it)", async () => {
  assert.deepEqual(await resolveHostPort("[::ffff:127.0.0.1]:7777"), {
    hostname: "127.0.0.1",
    port: 7777,
  });
  assert.deepEqual(await resolveHostPort("[::ffff:7f00:1]:7777", "Server", "ipv4"), {
    hostname: "127.0.0.1",
    port: 7777,
  });
  // Other literals are unchanged.
  assert.deepEqual(await resolveHostPort("[2001:DB8::7]:7777"), {
    hostname: "2001:db8::7",
    port: 7777,
  });
  assert.deepEqual(await resolveHostPort("203.0.113.7:7777"), {
    hostname: "203.0.113.7",
    port: 7777,
  });
});
