/**
 * Tests of the server's MACs: address cookies are the first 8 bytes of
 * HMAC-SHA256(secret, id ‖ "IP:PORT") for any secret (also one changed in place), and the
 * REACH MAC is the first 16 bytes of HMAC-SHA256(token, "p2p reach v1" ‖ nonce); an RFC 4231
 * vector through the cookie's construction; the codec uses the MACs' own lengths.
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { addressCookie, COOKIE_LEN, REACH_MAC_LEN, reachMac } from "../../lib/crypto/cookie.ts";
import * as wire from "../../lib/wire/server_msg.ts";
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";
import { prng, randomBytesFrom } from "../support/prng.ts";

const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const enc = new TextEncoder();

Deno.test("cookie: addressCookie is the first 8 bytes of HMAC-SHA256(secret, id ‖ 'IP:PORT'), for any secret, also one changed in place", () => {
  const rand = prng(77);
  const bytes = (n: number) => randomBytesFrom(rand, n);
  const want = (secret: Uint8Array, id: Uint8Array, addr: Endpoint) =>
    new Uint8Array(
      createHmac("sha256", secret).update(id).update(formatEndpoint(addr)).digest().subarray(0, 8),
    );
  const addrs: Endpoint[] = [
    { hostname: "127.0.0.1", port: 1 },
    { hostname: "203.0.113.250", port: 65535 },
    { hostname: "2001:db8::1", port: 443 },
    { hostname: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", port: 65535 },
  ];
  const secrets = Array.from({ length: 7 }, () => bytes(32));
  for (let round = 0; round < 3; round++) {
    for (const secret of secrets) {
      for (const addr of addrs) {
        const id = bytes(8);
        const c = addressCookie(secret, id, formatEndpoint(addr));
        assert.equal(c.length, COOKIE_LEN);
        assert.equal(c.buffer.byteLength, COOKIE_LEN, "a cookie holds no more than its bytes");
        assert.deepEqual(c, want(secret, id, addr));
      }
    }
  }
  const secret = bytes(32), id = bytes(8), where = formatEndpoint(addrs[0]!);
  const before = addressCookie(secret, id, where);
  secret[5]! ^= 1;
  assert.notDeepEqual(addressCookie(secret, id, where), before);
  assert.deepEqual(addressCookie(secret, id, where), want(secret, id, addrs[0]!));
  // The address is part of the input: another port or host gives another cookie.
  assert.notDeepEqual(addressCookie(secret, id, "127.0.0.1:2"), addressCookie(secret, id, where));
});

Deno.test("cookie: addressCookie truncates RFC 4231's HMAC-SHA256; reachMac MACs the label, then the nonce", () => {
  // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?", split as id ‖ text.
  const full = unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const key = enc.encode("Jefe"), data = "what do ya want for nothing?";
  assert.deepEqual(
    addressCookie(key, enc.encode(data.slice(0, 8)), data.slice(8)),
    full.subarray(0, COOKIE_LEN),
  );
  const nonce = enc.encode("12345678");
  const mac = createHmac("sha256", key).update("p2p reach v112345678").digest();
  assert.deepEqual(reachMac(key, nonce), new Uint8Array(mac.subarray(0, REACH_MAC_LEN)));
});

Deno.test("cookie: the lengths the codec uses are the MACs' own", () => {
  assert.equal(wire.COOKIE_LEN, COOKIE_LEN);
  assert.equal(wire.REACH_MAC_LEN, REACH_MAC_LEN);
  const token = new Uint8Array(16).fill(1), nonce = new Uint8Array(wire.REACH_NONCE_LEN).fill(2);
  assert.equal(reachMac(token, nonce).length, REACH_MAC_LEN);
  assert.notDeepEqual(reachMac(token, nonce), reachMac(token.map((x) => x ^ 1), nonce));
  assert.notDeepEqual(reachMac(token, nonce), reachMac(token, nonce.map((x) => x ^ 1)));
});
