/**
 * Tests of the peer's server link ({@link ServerLink}) in virtual time: registration with
 * cookie and backoff, the first registration's deadline, keepalive PINGs, and the server's
 * loss and return, each reported exactly once.
 */
import { peerIdKey } from "../../lib/crypto/peer_id.ts";
import { puzzleSolved } from "../../lib/crypto/puzzle.ts";
import assert from "node:assert/strict";
import {
  CLUSTER_FAILOVER_AFTER,
  CLUSTER_MOVE_GIVE_UP,
  SERVER_LOST_AFTER,
  ServerLink,
  type ServerLinkEvent,
} from "../../lib/peer/server_link.ts";
import {
  decodeServerMsg,
  helloSigningInput,
  RefuseCode,
  type ServerMsg,
} from "../../lib/wire/server_msg.ts";
import { type Endpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { ed25519PublicKey, ed25519Sign, ed25519Verify } from "../../lib/crypto/ed25519.ts";
import { seededRandom } from "../support/prng.ts";
import { testRoom } from "../support/hello.ts";

const SERVER: Endpoint = { hostname: "198.51.100.1", port: 7777 };
const ME: Endpoint = { hostname: "203.0.113.5", port: 40000 };
const ID_KEY = peerIdKey(new Uint8Array(32).fill(1));
const ID = ID_KEY.id;
const TOKEN = new Uint8Array(8).fill(7);
const BOOT = new Uint8Array(8).fill(0xb0);
const OWNER = new Uint8Array(16).fill(0x0e);
/** The boot id of the same server after a restart. */
const RESTARTED = new Uint8Array(8).fill(0xb1);
const ROOM = testRoom("link");

function link(
  o: {
    registerTimeout?: number;
    keepalive?: number;
    fallbacks?: Endpoint[];
    serverGroups?: number[];
  } = {},
) {
  const sent: ServerMsg[] = [];
  const events: ServerLinkEvent[] = [];
  const random = seededRandom(7);
  const l = new ServerLink(
    {
      server: SERVER,
      ...(o.fallbacks ? { fallbacks: o.fallbacks } : {}),
      ...(o.serverGroups ? { serverGroups: o.serverGroups } : {}),
      id: ID,
      idKey: ID_KEY,
      roomId: ROOM.publicKey,
      sign: (data) => ed25519Sign(ROOM.privateKey, data),
      random,
      nameTag: (name) => new TextEncoder().encode(name.padEnd(8, ".").slice(0, 8)),
      owner: OWNER,
      name: "sam",
      relayOnly: false,
      privateEndpoints: [],
      keepalive: o.keepalive ?? 25_000,
      registerTimeout: o.registerTimeout ?? 10_000,
    },
    () => 42,
  );
  /** Takes what the link queued: the messages it sent (decoded), and its events. */
  const drain = () => {
    for (let t = l.pollTransmit(); t; t = l.pollTransmit()) {
      assert.deepEqual(t.to, SERVER, "every message goes to the server");
      const m = decodeServerMsg(t.data);
      assert.ok(m.ok, "the link sends only well-formed messages");
      sent.push(m.value);
    }
    for (let e = l.pollEvent(); e; e = l.pollEvent()) events.push(e);
  };
  let now = 0;
  const nonceSent = () => {
    drain();
    for (let i = sent.length - 1; i >= 0; i--) {
      const m = sent[i]!;
      if (m.type === MsgType.Hello) return m.nonce;
    }
    return new Uint8Array(8);
  };
  return {
    l,
    /** The messages sent so far (drained from the link first). */
    get sent() {
      drain();
      return sent;
    },
    /** The events so far (drained from the link first). */
    get events() {
      drain();
      return events;
    },
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
    /**
     * The WELCOME the real server would send: it echoes the nonce of our last HELLO, and carries
     * the server's boot id (`boot`: another one means the server restarted).
     */
    welcome(boot = BOOT, extra: Partial<Extract<ServerMsg, { type: 2 }>> = {}) {
      l.handle(now, {
        type: MsgType.Welcome,
        id: ID,
        nonce: nonceSent(),
        token: TOKEN,
        boot,
        observed: ME,
        ...extra,
      });
    },
    pong() {
      l.handle(now, { type: MsgType.Pong, token: TOKEN, observed: ME, digest: 42 });
    },
    refuse(code: number, message: string, echo?: Uint8Array) {
      l.handle(now, {
        type: MsgType.Refused,
        echo: echo ?? (l.registered ? TOKEN : nonceSent()),
        code,
        message,
      });
    },
    /** The real server's COOKIE: it echoes our last HELLO's nonce (or, registered, our token). */
    cookieMsg(cookie: Uint8Array): ServerMsg {
      return {
        type: MsgType.Cookie,
        echo: l.registered ? TOKEN : nonceSent(),
        cookie,
        difficulty: 0,
      };
    },
    kinds: () => (drain(), events.map((e) => e.type)),
    types: () => (drain(), sent.map((m) => m.type)),
  };
}

Deno.test("link: HELLO backs off until WELCOME; a COOKIE makes it repeat at once with the cookie", () => {
  const t = link();
  t.l.start(0);
  t.run(1_000);
  // 0, 250, 750 ms: doubling gaps.
  assert.deepEqual(t.types(), [MsgType.Hello, MsgType.Hello, MsgType.Hello]);
  const cookie = new Uint8Array(8).fill(9);
  t.l.handle(t.now, t.cookieMsg(cookie));
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
  t.welcome(RESTARTED);
  t.pong();
  t.run(t.now + 500); // Before the first PING after registering is due.
  t.pong();
  assert.deepEqual(t.events, [
    { type: "server-lost" },
    { type: "server-back", public: ME, restarted: true },
  ]);
});

Deno.test("link: forgotten by a server that did not restart: repaired silently; a PONG after a loss brings it back", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  t.events.length = 0;
  // Expired (we were suspended, say): the same boot id, so the room it lists is whole.
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
  assert.deepEqual(t.events, [
    { type: "server-lost" },
    { type: "server-back", public: ME, restarted: false },
  ]);
});

Deno.test("link: a quick server restart (another boot id) is reported at once, before its ROSTER", () => {
  const t = link();
  assert.equal(t.l.bootId, null, "no boot id before the first WELCOME");
  t.l.start(0);
  t.welcome();
  assert.deepEqual(t.l.bootId, BOOT);
  assert.deepEqual(t.kinds(), ["ready"], "the first registration is no restart");
  t.events.length = 0;
  t.run(5_000);
  t.pong();
  // Restarted within a keepalive: the next PING is refused, and the WELCOME has a new boot id.
  t.refuse(RefuseCode.Unknown, "Register again");
  assert.deepEqual(t.kinds(), [], "nothing known yet");
  t.welcome(RESTARTED);
  assert.deepEqual(t.events, [{ type: "server-back", public: ME, restarted: true }]);
  assert.deepEqual(t.l.bootId, RESTARTED);
  assert.equal(t.l.registered, true);
  // A duplicate of that WELCOME, or PONGs, report nothing more.
  t.welcome(RESTARTED);
  t.pong();
  assert.equal(t.events.length, 1, "reported once");
  // Forgotten again by the same incarnation: nothing to report.
  t.refuse(RefuseCode.Unknown, "Register again");
  t.welcome(RESTARTED);
  assert.equal(t.events.length, 1);
});

Deno.test("link: a fallback server's boot id is no restart of the first server", () => {
  const A: Endpoint = SERVER, B: Endpoint = { hostname: "198.51.100.2", port: 7777 };
  const l = new ServerLink(
    {
      server: A,
      fallbacks: [B],
      id: ID,
      idKey: ID_KEY,
      roomId: ROOM.publicKey,
      sign: (data) => ed25519Sign(ROOM.privateKey, data),
      random: seededRandom(3),
      nameTag: () => new Uint8Array(8),
      owner: OWNER,
      name: "sam",
      relayOnly: false,
      privateEndpoints: [],
      keepalive: 25_000,
      registerTimeout: 10_000,
    },
    () => 0,
  );
  const events: ServerLinkEvent[] = [];
  let nonce: Uint8Array = new Uint8Array(8);
  const drain = () => {
    for (let t = l.pollTransmit(); t; t = l.pollTransmit()) {
      const m = decodeServerMsg(t.data);
      if (m.ok && m.value.type === MsgType.Hello) nonce = m.value.nonce;
    }
    for (let e = l.pollEvent(); e; e = l.pollEvent()) events.push(e);
  };
  const welcome = (now: number, boot: Uint8Array) => {
    drain();
    l.handle(now, { type: MsgType.Welcome, id: ID, nonce, token: TOKEN, boot, observed: ME });
    drain();
  };
  l.start(0);
  welcome(0, BOOT);
  // A stops answering: lost, and the link registers with B (another server, another boot id).
  for (let t = l.nextTimeout(); t !== undefined && t <= 60_000; t = l.nextTimeout()) {
    l.handleTimeout(t);
    drain();
    if (l.server === B) break;
  }
  assert.equal(l.server, B);
  welcome(61_000, RESTARTED);
  assert.deepEqual(events.map((e) => e.type), ["ready", "server-lost", "server-back"]);
  assert.deepEqual(events.at(-1), { type: "server-back", public: ME, restarted: false });
  assert.deepEqual(l.bootId, RESTARTED, "the boot id of the registration in use");
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

Deno.test("link: forged WELCOME, PONG and REFUSED (without our nonce or token) are ignored", () => {
  const t = link();
  t.l.start(0);
  const wrong = new Uint8Array(8).fill(0x55);
  t.l.handle(1, {
    type: MsgType.Welcome,
    id: ID,
    nonce: wrong,
    token: wrong,
    boot: BOOT,
    observed: ME,
  });
  assert.equal(t.l.registered, false, "a WELCOME not echoing our nonce is not ours");
  t.refuse(RefuseCode.RoomFull, "forged", wrong);
  assert.equal(t.l.closed, false, "a refusal not echoing our nonce is not believed");
  t.welcome();
  assert.equal(t.l.registered, true);
  t.run(25_000 + SERVER_LOST_AFTER + 5_000);
  assert.deepEqual(t.kinds(), ["ready", "server-lost"]);
  const elsewhere = { hostname: "198.51.100.66", port: 1 };
  t.l.handle(t.now, { type: MsgType.Pong, token: wrong, observed: elsewhere, digest: 42 });
  assert.deepEqual(t.l.public, ME, "a forged PONG does not move our public address");
  t.refuse(RefuseCode.Unknown, "forged", wrong);
  assert.deepEqual(t.kinds(), ["ready", "server-lost"], "forged PONG or REFUSED change nothing");
  assert.equal(t.l.registered, true);
  t.pong();
  assert.deepEqual(t.kinds(), ["ready", "server-lost", "server-back"]);
  // An authentic PONG tells where the server sees us now (our NAT may have moved us).
  const moved = { hostname: ME.hostname, port: ME.port + 1 };
  t.l.handle(t.now, { type: MsgType.Pong, token: TOKEN, observed: moved, digest: 42 });
  assert.deepEqual(t.l.public, moved);
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

Deno.test("link: the first PINGs after registering come a second apart; minRtt keeps the least", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  t.sent.length = 0;
  const pingTimes: number[] = [];
  // The server answers each PING after 80, 5, then 40 ms (a busy moment, then a quiet one).
  for (const delay of [80, 5, 40, 5]) {
    const next = t.l.nextTimeout()!;
    t.run(next);
    assert.equal(t.sent.at(-1)?.type, MsgType.Ping);
    pingTimes.push(next);
    t.run(next + delay);
    t.pong();
  }
  assert.deepEqual(pingTimes.slice(0, 3), [1_000, 2_080, 3_085], "a second apart at first");
  assert.equal(pingTimes[3], 3_085 + 40 + 25_000, "then the keepalive interval");
  assert.equal(t.l.minRtt, 5);
  assert.ok(t.l.rtt! > 5, "the smoothed RTT still carries the slow sample");
});

Deno.test("link: a forged COOKIE then a REFUSED echoing it does not end the registration", () => {
  // The attacker spoofs the server's address: a COOKIE sets what our next HELLO carries, and a
  // REFUSED echoing that value used to be believed (and killed "p2p join" with its text).
  const t = link();
  t.l.start(0);
  const chosen = new Uint8Array(8).fill(0x66);
  t.l.handle(10, t.cookieMsg(chosen));
  const hello = t.sent.at(-1)!;
  assert.ok(hello.type === MsgType.Hello && hello.cookie.every((b) => b === 0x66));
  for (const code of [RefuseCode.RoomFull, RefuseCode.Limit, RefuseCode.Invalid]) {
    t.refuse(code, "forged: run evil.sh", chosen);
  }
  assert.equal(t.l.closed, false, "still registering");
  assert.deepEqual(t.kinds(), [], "no fatal, no refusal reported");
  t.welcome();
  assert.deepEqual(t.kinds(), ["ready"]);
});

Deno.test("link: a forged COOKIE then a WELCOME echoing it plants no token", () => {
  const t = link();
  t.l.start(0);
  const chosen = new Uint8Array(8).fill(0x66), planted = new Uint8Array(8).fill(0x99);
  t.l.handle(10, t.cookieMsg(chosen));
  t.l.handle(11, {
    type: MsgType.Welcome,
    id: ID,
    nonce: chosen,
    token: planted,
    boot: BOOT,
    observed: ME,
  });
  assert.equal(t.l.registered, false, "a WELCOME echoing the cookie is not an answer");
  assert.deepEqual(t.l.token, new Uint8Array(8));
  t.welcome();
  assert.deepEqual(t.l.token, TOKEN);
  assert.deepEqual(t.kinds(), ["ready"]);
});

Deno.test("link: every HELLO is signed by the room key; the nonce is fresh per attempt", () => {
  const t = link();
  t.l.start(0);
  t.run(1_000);
  t.l.handle(t.now, t.cookieMsg(new Uint8Array(8).fill(9)));
  const hellos = t.sent.filter((m) => m.type === MsgType.Hello);
  const key = ed25519PublicKey(ROOM.publicKey)!;
  for (const h of hellos) {
    assert.deepEqual(h.room, ROOM.publicKey, "the room id is the public key");
    assert.ok(ed25519Verify(key, helloSigningInput(h), h.signature), "a valid signature");
    assert.deepEqual(h.owner, OWNER, "the owner tag is ours, under the signature");
  }
  const first = hellos[0]!.nonce;
  assert.equal(first.length, 8);
  assert.ok(hellos.every((h) => h.nonce.join() === first.join()), "retries keep the nonce");
  // The server forgot us: the new attempt has a new nonce; the old one no longer counts.
  t.welcome();
  t.refuse(RefuseCode.Unknown, "Register again");
  const again = t.sent.at(-1)!;
  assert.ok(again.type === MsgType.Hello);
  assert.notDeepEqual(again.nonce, first);
  t.l.handle(t.now, {
    type: MsgType.Welcome,
    id: ID,
    nonce: first,
    token: TOKEN,
    boot: BOOT,
    observed: ME,
  });
  assert.equal(t.l.registered, false, "a WELCOME for the old attempt is not believed");
  t.welcome();
  assert.equal(t.l.registered, true);
});

Deno.test("link: while registered, COOKIEs make at most one PING a second", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  t.sent.length = 0;
  for (let ms = 0; ms < 3_000; ms += 50) {
    t.l.handle(100 + ms, t.cookieMsg(new Uint8Array(8).fill(ms & 0xff)));
  }
  const pings = t.sent.filter((m) => m.type === MsgType.Ping);
  assert.equal(pings.length, 3, "at 100, 1100 and 2100 ms");
  assert.equal(t.sent.length, 3, "nothing else");
});

Deno.test("link: a recheck PINGs at once, at most every 2 s; registering again, it HELLOs", () => {
  const t = link();
  t.l.start(0);
  t.welcome();
  assert.equal(t.l.registrations, 1);
  t.sent.length = 0;
  t.l.recheck(100);
  t.l.recheck(1_000);
  t.l.recheck(2_100);
  assert.deepEqual(t.types(), [MsgType.Ping, MsgType.Ping], "two PINGs, 2 s apart");
  // A restarted server refuses the PING: we register again, and a recheck hurries the HELLO.
  t.refuse(RefuseCode.Unknown, "Register again");
  t.sent.length = 0;
  t.l.recheck(4_200);
  assert.deepEqual(t.types(), [MsgType.Hello]);
  t.welcome();
  assert.equal(t.l.registrations, 2, "registered again");
  // Before the first registration there is nothing to check.
  const u = link();
  u.l.start(0);
  u.sent.length = 0;
  u.l.recheck(5_000);
  assert.deepEqual(u.types(), []);
});

Deno.test("link: a server that answers is waited for; only 10 s of silence end the registration", () => {
  const t = link({ registerTimeout: 10_000 });
  t.l.start(0);
  // A busy server (a herd registering at once) answers COOKIEs but no WELCOME yet.
  for (let at = 4_000; at <= 20_000; at += 4_000) {
    t.run(at);
    t.l.handle(at, t.cookieMsg(new Uint8Array(8).fill(at / 1000)));
  }
  t.run(29_999);
  assert.deepEqual(t.kinds(), [], "still trying 30 s in: the server answers");
  t.welcome();
  assert.deepEqual(t.kinds(), ["ready"]);
  // Silence after the last answer ends it 10 s later.
  const u = link({ registerTimeout: 10_000 });
  u.l.start(0);
  u.run(3_000);
  u.l.handle(3_000, u.cookieMsg(new Uint8Array(8).fill(3)));
  u.run(12_999);
  assert.deepEqual(u.kinds(), []);
  u.run(13_000);
  assert.deepEqual(u.kinds(), ["fatal"]);
});

Deno.test("link: a flood of forged COOKIEs (off-path: no nonce) neither replaces the cookie nor stalls registration", () => {
  const t = link({ registerTimeout: 10_000 });
  t.l.start(0);
  const real = new Uint8Array(8).fill(0x42);
  t.l.handle(5, t.cookieMsg(real));
  // 1 kHz of forged COOKIEs from the server's address for 3 s, each with another cookie.
  for (let ms = 10; ms < 3_000; ms++) {
    const forged = new Uint8Array(8).fill(ms & 0xff);
    t.l.handle(ms, {
      type: MsgType.Cookie,
      echo: new Uint8Array(8).fill(7),
      cookie: forged,
      difficulty: 0,
    });
    t.run(ms);
  }
  const hellos = t.sent.filter((m) => m.type === MsgType.Hello);
  const last = hellos.at(-1)!;
  assert.ok(last.type === MsgType.Hello && last.cookie.every((b) => b === 0x42), "the real cookie");
  assert.ok(hellos.length <= 8, `forged COOKIEs make no HELLOs: ${hellos.length}`);
  t.welcome();
  assert.deepEqual(t.kinds(), ["ready"]);
  // And they do not keep a registration waiting past its deadline either.
  const u = link({ registerTimeout: 2_000 });
  u.l.start(0);
  for (let ms = 0; ms < 5_000; ms += 10) {
    u.l.handle(ms, {
      type: MsgType.Cookie,
      echo: new Uint8Array(8),
      cookie: new Uint8Array(8),
      difficulty: 0,
    });
    u.run(ms);
  }
  assert.ok(u.kinds().includes("fatal"), "the deadline is not extended by forgeries");
});

Deno.test("link: a COOKIE asking for a puzzle gets the next HELLO's solution; none asked, zeros", () => {
  const t = link();
  t.l.start(0);
  const first = t.sent.at(-1)!;
  assert.ok(first.type === MsgType.Hello && first.pow.every((b) => b === 0), "no puzzle asked");
  const cookie = new Uint8Array(8).fill(0x42);
  t.l.handle(300, { type: MsgType.Cookie, echo: nonceOf(first), cookie, difficulty: 12 });
  const hello = t.sent.at(-1)!;
  assert.ok(hello.type === MsgType.Hello && hello.cookie.every((b) => b === 0x42));
  assert.ok(puzzleSolved(12, cookie, ID, hello.nonce, hello.pow), "the HELLO carries a solution");
  assert.ok(!puzzleSolved(12, cookie, ID, hello.nonce, new Uint8Array(8)), "zeros would not do");
});

function nonceOf(m: ServerMsg): Uint8Array {
  if (m.type !== MsgType.Hello) throw new Error("not a HELLO");
  return m.nonce;
}
Deno.test("server link: a cluster's SERVERS shortens the keepalive; a lost server is left after 3 s", () => {
  const t = link();
  t.l.start(0);
  t.run(0);
  t.welcome();
  const other: Endpoint = { hostname: "198.51.100.2", port: 7777 };
  // A SERVERS with another token is forged: nothing changes.
  t.l.handle(t.now, {
    type: MsgType.Servers,
    token: new Uint8Array(8).fill(9),
    seq: 1,
    keepalive: 4,
    servers: [other],
  });
  t.l.handle(t.now, {
    type: MsgType.Servers,
    token: TOKEN,
    seq: 2,
    keepalive: 4,
    servers: [other],
  });
  // The early PINGs a second apart, then the cluster's 4 s (not 25 s).
  for (let i = 0; i < 3; i++) {
    t.run(t.now + 1_000);
    t.pong();
  }
  const pings = () => t.sent.filter((m) => m.type === MsgType.Ping).length;
  const before = pings();
  t.run(t.now + 4_000);
  assert.equal(pings(), before + 1, "a PING after the cluster's keepalive");
  // No PONG from now on: after CLUSTER_FAILOVER_AFTER the link registers with the other server.
  t.run(t.now + CLUSTER_FAILOVER_AFTER + 1_100);
  assert.deepEqual(t.l.server, other);
  const queued = [];
  for (let x = t.l.pollTransmit(); x; x = t.l.pollTransmit()) queued.push(x);
  const hello = queued.find((x) => x.data[3] === MsgType.Hello);
  assert.deepEqual(hello?.to, other, "a HELLO to the other server");
  assert.ok(t.events.some((e) => e.type === "server-lost"));
});

/** Fails `t`'s server (no PONG for `after` ms) and returns the first HELLO to `to`. */
function failOver(t: ReturnType<typeof link>, after: number, to: Endpoint) {
  const queued = [];
  const end = t.now + after;
  while (t.now < end) {
    t.run(t.now + 500);
    for (let x = t.l.pollTransmit(); x; x = t.l.pollTransmit()) queued.push(x);
  }
  const hello = queued.find((x) => x.to.port === to.port && x.data[3] === MsgType.Hello);
  assert.ok(hello, "a HELLO to the other server");
  const m = decodeServerMsg(hello.data);
  assert.ok(m.ok && m.value.type === MsgType.Hello);
  return m.value;
}

Deno.test("server link: failing over to a server of the same cluster keeps the cookie; to a fallback, not", () => {
  const other: Endpoint = { hostname: "198.51.100.2", port: 7778 };
  const cookie = new Uint8Array(8).fill(0x5a);
  for (const cluster of [true, false]) {
    const t = link(cluster ? {} : { fallbacks: [other] });
    t.l.start(0);
    t.run(0);
    t.welcome();
    if (cluster) {
      t.l.handle(t.now, {
        type: MsgType.Servers,
        token: TOKEN,
        seq: 1,
        keepalive: 4,
        servers: [other],
      });
    }
    // The server's unasked COOKIE (echoing the token), as a cluster that shares cookies sends.
    t.l.handle(t.now, { type: MsgType.Cookie, echo: TOKEN, cookie, difficulty: 0 });
    const ping = t.sent.at(-1)!;
    assert.ok(ping.type === MsgType.Ping && ping.cookie.every((b) => b === 0x5a), "PINGs carry it");
    const hello = failOver(
      t,
      (cluster ? CLUSTER_FAILOVER_AFTER : SERVER_LOST_AFTER) + 30_000,
      other,
    );
    if (cluster) assert.deepEqual(hello.cookie, cookie, "kept: no COOKIE round trip there");
    else assert.ok(hello.cookie.every((b) => b === 0), "a fallback no SERVERS named: no cookie");
  }
});

Deno.test("server link: a cluster server's WELCOME gives the shared cookie and the other servers; nothing is asked again", () => {
  const other: Endpoint = { hostname: "198.51.100.2", port: 7778 };
  const cookie = new Uint8Array(8).fill(0x5b);
  const t = link();
  t.l.start(0);
  t.run(0);
  const sent = t.sent.length;
  t.welcome(BOOT, { sharedCookie: cookie, cluster: { keepalive: 4, servers: [other] } });
  assert.equal(t.sent.length, sent, "no PING right after the WELCOME");
  for (let i = 0; i < 3; i++) {
    t.run(t.now + 1_000);
    t.pong();
  }
  const ping = t.sent.filter((m) => m.type === MsgType.Ping).at(-1);
  assert.ok(ping?.type === MsgType.Ping && ping.cookie.every((b) => b === 0x5b), "PINGs carry it");
  const hello = failOver(t, CLUSTER_FAILOVER_AFTER + 10_000, other);
  assert.deepEqual(hello.cookie, cookie, "failing over with it: no COOKIE round trip there");
});

Deno.test("server link: in a cluster, a dead server's peer registers elsewhere within 3 s + 1.5 s of its first unanswered PING", () => {
  const other: Endpoint = { hostname: "198.51.100.2", port: 7778 };
  // The server is also known over TCP (tried first in a loss, with the same registration).
  const t = link({ fallbacks: [{ ...SERVER, stream: 0 }], serverGroups: [0, 0] });
  t.l.start(0);
  t.run(0);
  t.welcome();
  t.l.handle(t.now, {
    type: MsgType.Servers,
    token: TOKEN,
    seq: 1,
    keepalive: 4,
    servers: [other],
  });
  for (let i = 0; i < 5; i++) {
    t.run(t.now + 1_000);
    t.pong();
  }
  // Drained: from now on nothing answers.
  const pings = t.sent.filter((m) => m.type === MsgType.Ping).length;
  let firstPing = -1, hello = -1;
  while (hello < 0 && t.now < 60_000) {
    t.run(t.now + 50);
    for (let x = t.l.pollTransmit(); x; x = t.l.pollTransmit()) {
      if (firstPing < 0 && x.data[3] === MsgType.Ping) firstPing = t.now;
      if (x.to.port === other.port && x.data[3] === MsgType.Hello) hello = t.now;
    }
  }
  assert.ok(pings > 0 && firstPing >= 0 && hello >= 0);
  const took = hello - firstPing;
  assert.ok(took <= CLUSTER_FAILOVER_AFTER + CLUSTER_MOVE_GIVE_UP + 100, `${took} ms`);
});
