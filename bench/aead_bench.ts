/**
 * The cost of sealing and opening through `lib/crypto/aead.ts` and `lib/crypto/session.ts`,
 * for frames of 64 B (an ACK or a short line), 1,058 B (a full DATA frame) and 64 KiB (the most
 * a Noise message holds: 65,519 B of plaintext through a session).
 *
 * - `aead <size>`: baseline: one bare `node:crypto` `createCipheriv` seal (the floor our wrapper
 *   stands on). Compared: `ChaCha20Poly1305.seal`, `sealInto` a caller's buffer, `open` of a
 *   genuine message, and `open` of a forged one (a changed byte: refused by the native tag check,
 *   which `node:crypto` reports by throwing, the slow path).
 * - `session <size>`: baseline: `PairSession.sealInto` a frame buffer (what `SecureLink.seal`
 *   does). Compared: `seal` returning a fresh array, and seal then open on the peer's session.
 *
 * @module
 */
import { createCipheriv } from "node:crypto";
import { ChaCha20Poly1305, TAG_LEN } from "../lib/crypto/aead.ts";
import { handshakeSessions } from "../tests/support/sessions.ts";

const key = new Uint8Array(32).fill(3), nonce = new Uint8Array(12).fill(1);
const aad = new Uint8Array(28).fill(9);
const aead = new ChaCha20Poly1305(key);
const { ab, ba } = handshakeSessions();

for (const [label, size] of [["64 B", 64], ["1,058 B", 1058], ["64 KiB", 65_536]] as const) {
  const pt = new Uint8Array(size).fill(5);
  const sealed = aead.seal(nonce, aad, pt);
  const forged = sealed.slice();
  forged[0]! ^= 1;
  const out = new Uint8Array(size + TAG_LEN);
  const group = `aead ${label}`;
  Deno.bench({ name: "node:crypto seal", group, baseline: true }, () => {
    const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: TAG_LEN });
    c.setAAD(aad, { plaintextLength: size });
    c.update(pt);
    c.final();
    c.getAuthTag();
  });
  Deno.bench({ name: "seal", group }, () => {
    aead.seal(nonce, aad, pt);
  });
  Deno.bench({ name: "sealInto", group }, () => {
    aead.sealInto(nonce, aad, pt, out, 0);
  });
  Deno.bench({ name: "open", group }, () => {
    if (!aead.open(nonce, aad, sealed)) throw new Error("open failed");
  });
  Deno.bench({ name: "open forged", group }, () => {
    if (aead.open(nonce, aad, forged)) throw new Error("a forged message opened");
  });

  // A Noise message holds at most 65,535 bytes: 65,519 of plaintext and the tag.
  const body = pt.subarray(0, Math.min(size, 65_535 - TAG_LEN));
  const frame = new Uint8Array(aad.length + body.length + TAG_LEN);
  const sessionGroup = `session ${label}`;
  Deno.bench({ name: "sealInto frame", group: sessionGroup, baseline: true }, () => {
    const c = ab.nextCounter();
    frame.set(aad);
    ab.sealInto(c, aad, body, frame, aad.length);
  });
  Deno.bench({ name: "seal", group: sessionGroup }, () => {
    ab.seal(ab.nextCounter(), aad, body);
  });
  Deno.bench({ name: "seal+open", group: sessionGroup }, () => {
    const c = ab.nextCounter();
    if (!ba.open(c, aad, ab.seal(c, aad, body))) throw new Error("open failed");
  });
}
