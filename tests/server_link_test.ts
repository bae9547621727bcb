/**
 * Tests of the peer's server link ({@link ServerLink}) in virtual time: registration with
 * cookie and backoff, the first registration's deadline, keepalive PINGs, and the server's
 * loss and return, each reported exactly once.
 */
import assert from "node:assert/strict";
import { type LinkEvent, SERVER_LOST_AFTER, ServerLink } from "../lib/server_link.ts";
import { type Endpoint, MsgType, RefuseCode, type ServerMsg } from "../lib/wire.ts";

const SERVER: Endpoint = { hostname: "198.51.100.1", port: 7777 };
const ME: Endpoint = { hostname: "203.0.113.5", port: 40000 };
const ID = new Uint8Array(8).fill(1);
const TOKEN = new Uint8Array(8).fill(7);

function link(o: { registerTimeout?: number; keepalive?: number } = {}) {
  const sent: ServerMsg[] = [];
  const events: LinkEvent[] = [];
  const l = new ServerLink(
    {
      server: SERVER,
      id: ID,
      roomId: new Uint8Array(16).fill(2),
      nameTag: (name) => new TextEncoder().encode(name.padEnd(8, ".").slice(0, 8)),
      name: "sam",
      relayOnly: false,
      privateEndpoints: [],
      keepalive: o.keepalive ?? 25_000,
      registerTimeout: o.registerTimeout ?? 10_000,
    },
    { send: (m) => sent.push(m), event: (e) => events.push(e) },
    () => 42,
  );
  let now = 0;
  const cookieSent = () => {
    for (let i = sent.length - 1; i >= 0; i--) {
      const m = sent[i]!;
      if (m.type === MsgType.Hello) return m.cookie;
    }
    return new Uint8Array(8);
  };
  return {
    l,
    sent,
    events,
    get now() {
      return now;
    },
    /** Fires every timer up to `until`. */
    run(until: number) {
      for (let t = l.nextTimeout(); t !== undefined && t <= until; t = l.nextTimeout()) {
        now = Math.max(now, t);
        l.handleTimeout(now);
      }
      now = until;
    },
    /** The WELCOME the real server would send: it echoes the cookie of our last HELLO. */
    welcome() {
      l.handle(now, {
        type: MsgType.Welcome,
        id: ID,
        cookie: cookieSent(),
        token: TOKEN,
        observed: ME,
      });
    },
    pong() {
      l.handle(now, { type: MsgType.Pong, token: TOKEN, observed: ME, digest: 42 });
    },
    refuse(code: number, message: string, echo?: Uint8Array) {
      l.handle(now, {
        type: MsgType.Refused,
        echo: echo ?? (l.registered ? TOKEN : cookieSent()),
        code,
        message,
      });
    },
    kinds: () => events.map((e) => e.type),
    types: () => sent.map((m) => m.type),
  };
}

Deno.test("link: HELLO backs off until WELCOME; a COOKIE makes it repeat at once with the cookie", () => {
  const t = link();
  t.l.start(0);
  t.run(1_000);
  // 0, 250, 750 ms: doubling gaps.
  assert.deepEqual(t.types(), [MsgType.Hello, MsgType.Hello, MsgType.Hello]);
  const cookie = new Uint8Array(8).fill(9);
  t.l.handle(t.now, { type: MsgType.Cookie, cookie });
  const last = t.sent.at(-1)!;
  assert.ok(last.type === MsgType.Hello && last.cookie.every((b) => b === 9));
  t.welcome();
  assert.deepEqual(t.events, [{ type: "ready", name: "sam", public: ME }]);
  assert.equal(t.l.registered, true);
  t.welcome(); // A duplicate WELCOME changes nothing.
  assert.equal(t.events.length, 1);
});

Deno.test("link: the first registration fails once at its deadline and stops sending", () => {
  const t = link({ registerTimeout: 5_000 });
  t.l.start(0);
  t.run(4_999);
  assert.deepEqual(t.kinds(), []);
  t.run(5_000);
  assert.deepEqual(t.kinds(), ["fatal"]);
  const n = t.sent.length;
  t.run(60_000);
  assert.equal(t.sent.length, n, "nothing sent after giving up");
  assert.equal(t.l.nextTimeout(), undefined);
});

Deno.test("link: after an outage the server is reported lost once and back once", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  t.events.length = 0;
  // No PONGs for a minute: PINGs retry, "lost" comes once after SERVER_LOST_AFTER.
  t.run(1_000 + SERVER_LOST_AFTER - 1); // The first PING goes out 1 s after the WELCOME.
  assert.deepEqual(t.kinds(), []);
  t.run(90_000);
  assert.deepEqual(t.kinds(), ["server-lost"]);
  // The server restarted and forgot us: we register again; it is back exactly once.
  t.refuse(RefuseCode.Unknown, "Register again");
  assert.equal(t.sent.at(-1)!.type, MsgType.Hello);
  t.welcome();
  t.pong();
  t.run(t.now + 500); // Before the first PING after registering is due.
  t.pong();
  assert.deepEqual(t.kinds(), ["server-lost", "server-back"]);
});

Deno.test("link: a quick server restart is repaired silently; a PONG after a loss brings it back", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  t.events.length = 0;
  t.refuse(RefuseCode.Unknown, "Register again");
  t.welcome();
  assert.deepEqual(t.kinds(), [], "nothing was lost, nothing to report");
  assert.equal(t.l.registered, true);
  // Lost without being forgotten: the next PONG brings it back.
  t.run(60_000);
  t.pong();
  t.pong();
  assert.deepEqual(t.kinds(), ["server-lost", "server-back"]);
});

Deno.test("link: still unregistered after a restart, the server is reported lost", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  t.events.length = 0;
  t.refuse(RefuseCode.Unknown, "Register again");
  t.run(100 + SERVER_LOST_AFTER + 2_000);
  assert.deepEqual(t.kinds(), ["server-lost"]);
  t.welcome();
  assert.deepEqual(t.kinds(), ["server-lost", "server-back"]);
});

Deno.test("link: a refusal is fatal before registering, a notice after", () => {
  const t = link();
  t.l.start(0);
  t.refuse(RefuseCode.RoomFull, "Room is full");
  assert.deepEqual(t.events, [{
    type: "fatal",
    message: "The server refused to register us: Room is full",
  }]);
  assert.equal(t.l.closed, true);
  const u = link();
  u.l.start(0);
  u.welcome();
  u.refuse(RefuseCode.Invalid, "No");
  assert.deepEqual(u.events.at(-1), { type: "refused", message: "No" });
  assert.equal(u.l.registered, true);
});

Deno.test("link: PINGs carry the digest and a resync is sent at most once a second", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  t.sent.length = 0;
  t.l.resync(100);
  t.l.resync(500);
  t.l.resync(1_100);
  assert.deepEqual(t.sent.map((m) => m.type === MsgType.Ping && m.digest), [42, 42]);
  t.l.close();
  assert.equal(t.sent.at(-1)!.type, MsgType.Bye);
  assert.equal(t.l.nextTimeout(), undefined);
});

Deno.test("link: forged WELCOME, PONG and REFUSED (without our cookie or token) are ignored", () => {
  const t = link();
  t.l.start(0);
  const wrong = new Uint8Array(8).fill(0x55);
  t.l.handle(1, { type: MsgType.Welcome, id: ID, cookie: wrong, token: wrong, observed: ME });
  assert.equal(t.l.registered, false, "a WELCOME not echoing our cookie is not ours");
  t.refuse(RefuseCode.RoomFull, "forged", wrong);
  assert.equal(t.l.closed, false, "a refusal not echoing our cookie is not believed");
  t.welcome();
  assert.equal(t.l.registered, true);
  t.run(25_000 + SERVER_LOST_AFTER + 5_000);
  assert.deepEqual(t.kinds(), ["ready", "server-lost"]);
  t.l.handle(t.now, { type: MsgType.Pong, token: wrong, observed: ME, digest: 42 });
  t.refuse(RefuseCode.Unknown, "forged", wrong);
  assert.deepEqual(t.kinds(), ["ready", "server-lost"], "forged PONG or REFUSED change nothing");
  assert.equal(t.l.registered, true);
  t.pong();
  assert.deepEqual(t.kinds(), ["ready", "server-lost", "server-back"]);
});

Deno.test("link: a taken name is retried with a suffix; the room never sees the name itself", () => {
  const t = link();
  t.l.start(0);
  t.refuse(RefuseCode.NameTaken, "Name taken in this room");
  t.refuse(RefuseCode.NameTaken, "Name taken in this room");
  const tags = t.sent.flatMap((m) =>
    m.type === MsgType.Hello ? [new TextDecoder().decode(m.nameTag)] : []
  );
  assert.deepEqual(tags, ["sam.....", "sam-2...", "sam-3..."]);
  t.welcome();
  assert.deepEqual(t.events, [
    { type: "renamed", wanted: "sam", name: "sam-3" },
    { type: "ready", name: "sam-3", public: ME },
  ]);
});

Deno.test("link: the first PING follows the WELCOME within a second, with the token", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  t.sent.length = 0;
  t.run(1_000);
  const ping = t.sent.find((m) => m.type === MsgType.Ping);
  assert.ok(ping && ping.type === MsgType.Ping && ping.token.every((b) => b === 7));
});
