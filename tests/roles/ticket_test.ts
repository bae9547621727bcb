/**
 * Tests of room tickets (`lib/roles/ticket.ts`): what a person sees when they pass one on,
 * retype it carelessly, or make a typo.
 */
import assert from "node:assert/strict";
import {
  decodeTicket,
  encodeTicket,
  looksLikeTicket,
  type Ticket,
  TicketError,
} from "../../lib/roles/ticket.ts";
import { newRoomSecret } from "../../lib/crypto/room_key.ts";
import { prng, seededRandom } from "../support/prng.ts";

const GENERATED: Ticket = {
  servers: ["203.0.113.7:7777"],
  room: "friends",
  passphrase: "k3xq-7hmd-p2ra-wt5n-b6fz-c4ej",
};

Deno.test("ticket: round trip of servers (IPv4, IPv6, names), rooms and passphrases", () => {
  const cases: Ticket[] = [
    GENERATED,
    { servers: ["[2001:db8::7]:7777", "p2p.example.org:443"], room: "Café ☕", passphrase: "x" },
    { servers: ["127.0.0.1:1"], room: "r", passphrase: "correct horse battery staple" },
  ];
  for (const t of cases) assert.deepEqual(decodeTicket(encodeTicket(t)), t);
});

Deno.test("ticket: a generated secret is carried in 15 bytes; the ticket stays short", () => {
  const text = encodeTicket(GENERATED);
  assert.match(text, /^p2p(-[a-z2-7]{1,5})+$/);
  assert.ok(text.length <= 80, `${text.length} characters: ${text}`);
  assert.ok(looksLikeTicket(text));
  assert.ok(!looksLikeTicket(GENERATED.passphrase));
  assert.ok(!looksLikeTicket("p2p is a great tool, says my passphrase"), "a passphrase stays one");
});

Deno.test("ticket: case, spaces, dashes, underscores and 0/1 for o/l do not matter", () => {
  const text = encodeTicket(GENERATED);
  const sloppy = ` ${text.toUpperCase().replaceAll("-", " ")}\n`;
  assert.deepEqual(decodeTicket(sloppy), GENERATED);
  assert.deepEqual(decodeTicket(text.replaceAll("-", "")), GENERATED);
  assert.deepEqual(decodeTicket(text.replaceAll("-", "_")), GENERATED);
  assert.deepEqual(decodeTicket(text.replaceAll("o", "0").replaceAll("l", "1")), GENERATED);
});

Deno.test("ticket: any changed, dropped or added character is refused as a typo", () => {
  const r = prng(16);
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  for (let n = 0; n < 40; n++) {
    const t: Ticket = {
      servers: [`198.51.100.${n}:7777`],
      room: `room${n}`,
      passphrase: newRoomSecret(seededRandom(n)),
    };
    const text = encodeTicket(t).replaceAll("-", "");
    for (let i = 3; i < text.length; i++) {
      const c = text[i]!;
      const other = alphabet[(alphabet.indexOf(c) + 1 + Math.floor(r() * 31)) % 32]!;
      const changed = text.slice(0, i) + other + text.slice(i + 1);
      const dropped = text.slice(0, i) + text.slice(i + 1);
      const added = text.slice(0, i) + other + text.slice(i);
      for (const bad of [changed, dropped, added]) {
        assert.throws(
          () => decodeTicket(bad),
          (e) => e instanceof TicketError && /typo/.test(e.message),
        );
      }
    }
  }
});

Deno.test("ticket: not a ticket, unknown version, bad servers are said in words", () => {
  assert.throws(() => decodeTicket("k3xq-7hmd-p2ra-wt5n-b6fz-c4ej"), /starts with p2p/);
  assert.throws(() => decodeTicket("p2p-8888"), /typo/);
  assert.throws(() => encodeTicket({ ...GENERATED, servers: [] }), /1 to 8 servers/);
  assert.throws(() => encodeTicket({ ...GENERATED, servers: ["203.0.113.7"] }), /HOST:PORT/);
  assert.throws(() => encodeTicket({ ...GENERATED, room: "x".repeat(300) }), /too long/);
});
