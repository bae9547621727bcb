/**
 * The server link across transports, in virtual time: registered over TCP it tries the same
 * server over UDP in the background (5 s, then gaps doubling to 20 s) and moves there, keeping
 * its registration, once a PONG comes back over UDP; registered over UDP, a lost server is
 * tried over TCP with the same registration (a PING) before anything else; forged answers on
 * the other transport change nothing; without same-server groups nothing of this happens.
 */
import assert from "node:assert/strict";
import { peerIdKey } from "../../lib/crypto/peer_id.ts";
import { ServerLink, type ServerLinkEvent } from "../../lib/peer/server_link.ts";
import { UDP_RETRY_FIRST, UDP_RETRY_MAX, UdpReturn } from "../../lib/peer/server_link_parts.ts";
import { decodeServerMsg, type ServerMsg } from "../../lib/wire/server_msg.ts";
import { type Endpoint, sameEndpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { ed25519Sign } from "../../lib/crypto/ed25519.ts";
import { seededRandom } from "../support/prng.ts";
import { testRoom } from "../support/hello.ts";

const UDP: Endpoint = { hostname: "198.51.100.1", port: 7777 };
const TCP: Endpoint = { hostname: "198.51.100.1", port: 7777, stream: 0 };
const ME: Endpoint = { hostname: "203.0.113.5", port: 40000 };
const ID_KEY = peerIdKey(new Uint8Array(32).fill(1));
const ID = ID_KEY.id;
const TOKEN = new Uint8Array(8).fill(7);
const ROOM = testRoom("transports");

function link(servers: Endpoint[], groups: number[] | undefined) {
  const l = new ServerLink(
    {
      server: servers[0]!,
      fallbacks: servers.slice(1),
      ...(groups ? { serverGroups: groups } : {}),
      id: ID,
      idKey: ID_KEY,
      roomId: ROOM.publicKey,
      sign: (data) => ed25519Sign(ROOM.privateKey, data),
      random: seededRandom(3),
      nameTag: () => new Uint8Array(8).fill(2),
      owner: new Uint8Array(16).fill(3),
      name: "sam",
      relayOnly: false,
      privateEndpoints: [],
      keepalive: 25_000,
      registerTimeout: 60_000,
    },
    () => 42,
  );
  const sent: { to: Endpoint; m: ServerMsg }[] = [];
  const events: ServerLinkEvent[] = [];
  let now = 0;
  const drain = () => {
    for (let t = l.pollTransmit(); t; t = l.pollTransmit()) {
      const m = decodeServerMsg(t.data);
      assert.ok(m.ok);
      sent.push({ to: t.to, m: m.value });
    }
    for (let e = l.pollEvent(); e; e = l.pollEvent()) events.push(e);
  };
  const h = {
    l,
    get sent() {
      drain();
      return sent;
    },
    get events() {
      drain();
      return events;
    },
    get now() {
      return now;
    },
    run(until: number) {
      for (let t = l.nextTimeout(); t !== undefined && t <= until; t = l.nextTimeout()) {
        now = Math.max(now, t);
        l.handleTimeout(now);
      }
      now = until;
      drain();
    },
    /** Registers with the server in use (its WELCOME, echoing our last HELLO's nonce). */
    register() {
      l.start(now);
      drain();
      const hello = sent.findLast((s) => s.m.type === MsgType.Hello)!.m;
      assert.equal(hello.type, MsgType.Hello);
      l.handle(now, {
        type: MsgType.Welcome,
        id: ID,
        nonce: hello.nonce,
        token: TOKEN,
        boot: new Uint8Array(8),
        observed: ME,
      }, l.server);
      drain();
    },
    from(ep: Endpoint, m: ServerMsg) {
      l.handle(now, m, ep);
      drain();
    },
    /** The PINGs sent to `ep` since index `since` of {@link sent}. */
    pingsTo(ep: Endpoint, since = 0) {
      return sent.slice(since).filter((s) => s.m.type === MsgType.Ping && sameEndpoint(s.to, ep))
        .map((s) => s.m as Extract<ServerMsg, { type: typeof MsgType.Ping }>);
    },
  };
  return h;
}

const pong = (token = TOKEN): ServerMsg => ({
  type: MsgType.Pong,
  token,
  observed: ME,
  digest: 42,
});

Deno.test("udp return: 5 s, then gaps doubling to 20 s; cookies at most once a second", () => {
  const r = new UdpReturn();
  assert.equal(r.due(0), false);
  r.start(1_000);
  const times: number[] = [];
  for (let t = 1_000; t <= 80_000; t += 100) if (r.due(t)) times.push(t);
  assert.equal(UDP_RETRY_FIRST, 5_000);
  assert.equal(UDP_RETRY_MAX, 20_000);
  assert.deepEqual(times, [6_000, 16_000, 36_000, 56_000, 76_000]);
  r.stop();
  assert.equal(r.at, undefined);
  // COOKIEs for the UDP endpoint: the latest is kept; a PING with it at most once a second.
  assert.equal(r.cookied(0, new Uint8Array(8).fill(1)), true);
  assert.equal(r.cookied(500, new Uint8Array(8).fill(2)), false);
  assert.deepEqual(r.cookie, new Uint8Array(8).fill(2));
  assert.equal(r.cookied(1_000, new Uint8Array(8).fill(3)), true);
});

Deno.test("server link: registered over TCP, it moves to UDP once a PONG comes back over UDP", () => {
  const h = link([TCP, UDP], [0, 0]);
  h.register();
  assert.equal(h.l.server, TCP);
  assert.equal(h.l.isServer(UDP), true, "the same server over UDP is the server");
  // What the server sees of a TCP connection says nothing of our UDP mapping.
  assert.equal(h.l.public, undefined);
  h.run(UDP_RETRY_FIRST - 1);
  assert.equal(h.pingsTo(UDP).length, 0);
  h.run(UDP_RETRY_FIRST);
  const [first] = h.pingsTo(UDP);
  assert.ok(first, "a PING over UDP after 5 s");
  assert.deepEqual(first.token, TOKEN);
  assert.deepEqual(first.cookie, new Uint8Array(8), "no cookie for that address yet");
  // The server wants a cookie for the new address; a forged one (not echoing our token) first.
  const before = h.sent.length;
  h.from(UDP, {
    type: MsgType.Cookie,
    echo: new Uint8Array(8),
    cookie: new Uint8Array(8).fill(6),
    difficulty: 0,
  });
  assert.equal(h.pingsTo(UDP, before).length, 0, "a forged COOKIE is ignored");
  h.from(UDP, {
    type: MsgType.Cookie,
    echo: TOKEN,
    cookie: new Uint8Array(8).fill(9),
    difficulty: 0,
  });
  const [again] = h.pingsTo(UDP, before);
  assert.deepEqual(again?.cookie, new Uint8Array(8).fill(9), "PING again with the cookie");
  assert.equal(h.l.server, TCP, "still TCP: nothing came back over UDP yet");
  // A PONG without our token changes nothing; the real one moves us.
  h.from(UDP, pong(new Uint8Array(8).fill(1)));
  assert.equal(h.l.server, TCP);
  h.from(UDP, pong());
  assert.equal(h.l.server, UDP, "UDP in use, same registration");
  assert.deepEqual(h.l.public, ME, "our UDP mapping, from the PONG over UDP");
  assert.equal(h.l.registered, true);
  assert.equal(h.sent.filter((s) => s.m.type === MsgType.Hello).length, 1, "no new HELLO");
  assert.deepEqual(h.events.map((e) => e.type), ["ready"]);
  // No more background attempts; PINGs go over UDP with the UDP cookie.
  const after = h.sent.length;
  h.run(h.now + 9_000);
  assert.equal(h.pingsTo(TCP, after).length, 0);
  assert.ok(h.pingsTo(UDP, after).length > 0);
  assert.deepEqual(h.pingsTo(UDP, after)[0]?.cookie, new Uint8Array(8).fill(9));
});

Deno.test("server link: UDP attempts while it gets no answer: 5, 15, 35, 55 s", () => {
  const h = link([TCP, UDP], [0, 0]);
  h.register();
  const times: number[] = [];
  for (let t = 0; t <= 60_000; t += 500) {
    const n = h.pingsTo(UDP).length;
    h.run(t);
    // Keep the TCP registration answered.
    if (h.pingsTo(TCP).length) h.from(TCP, pong());
    if (h.pingsTo(UDP).length > n) times.push(t);
  }
  assert.deepEqual(times, [5_000, 15_000, 35_000, 55_000]);
  assert.equal(h.l.server, TCP);
});

Deno.test("server link: UDP lost, the same registration moves to TCP (a PING), then back", () => {
  const h = link([UDP, TCP], [0, 0]);
  h.register();
  assert.equal(h.l.server, UDP);
  assert.equal(h.pingsTo(TCP).length, 0, "over UDP, no background attempt");
  // No PONG for 10 s (PINGs at 1, 2, 3, 5, 9 s; lost at the one at 17 s): the next PING goes
  // to the same server over TCP.
  h.run(16_999);
  assert.equal(h.l.server, UDP);
  h.run(17_000);
  assert.deepEqual(h.events.map((e) => e.type), ["ready", "server-lost"]);
  assert.equal(h.l.server, TCP);
  const tcpPing = h.pingsTo(TCP)[0];
  assert.ok(tcpPing, "a PING over TCP, not a HELLO");
  assert.deepEqual(tcpPing.token, TOKEN);
  assert.equal(h.sent.filter((s) => s.m.type === MsgType.Hello).length, 1);
  const before = h.sent.length;
  h.from(TCP, {
    type: MsgType.Cookie,
    echo: TOKEN,
    cookie: new Uint8Array(8).fill(4),
    difficulty: 0,
  });
  assert.deepEqual(h.pingsTo(TCP, before)[0]?.cookie, new Uint8Array(8).fill(4));
  h.from(TCP, pong());
  assert.deepEqual(h.events.map((e) => e.type), ["ready", "server-lost", "server-back"]);
  // Over TCP now: UDP is tried again in the background.
  const mark = h.sent.length;
  h.run(h.now + UDP_RETRY_FIRST);
  assert.equal(h.pingsTo(UDP, mark).length, 1);
});

Deno.test("server link: lost over both transports, it registers again", () => {
  const h = link([UDP, TCP], [0, 0]);
  h.register();
  h.run(17_000);
  assert.equal(h.l.server, TCP);
  const hellos = () => h.sent.filter((s) => s.m.type === MsgType.Hello).length;
  assert.equal(hellos(), 1);
  // Over TCP too, PINGs at 18, 19, 21, 25 and 33 s go unanswered: lost there as well.
  h.run(32_999);
  assert.equal(h.l.registered, true);
  h.run(33_000);
  assert.equal(h.l.registered, false, "registering again");
  assert.ok(hellos() > 1, "with HELLOs");
  assert.deepEqual(h.events.map((e) => e.type), ["ready", "server-lost"], "lost reported once");
});

Deno.test("server link: without same-server groups, no background UDP and no transport move", () => {
  for (const groups of [undefined, [0], [0, 1]]) {
    const h = link([TCP, UDP], groups);
    h.register();
    h.run(60_000);
    assert.equal(h.pingsTo(UDP).length, 0, `groups ${groups}`);
    assert.equal(h.l.isServer(UDP), false);
  }
});

Deno.test("server link: registering, a slow stream's late WELCOME counts; its REFUSED or COOKIE does not", () => {
  const h = link([TCP, UDP], [0, 0]);
  h.l.start(0);
  // The next HELLO due after 2 s goes to the next entry (at 3.75 s).
  h.run(4_000);
  const hellos = h.sent.filter((s) => s.m.type === MsgType.Hello);
  assert.deepEqual(hellos.at(-1)!.to, UDP, "TCP for 2 s, then UDP");
  assert.deepEqual(hellos[0]!.to, TCP);
  const [first, last] = [hellos[0]!.m, hellos.at(-1)!.m];
  assert.ok(first.type === MsgType.Hello && last.type === MsgType.Hello);
  assert.deepEqual(last.nonce, first.nonce, "the same server: the same attempt's nonce");
  // Over UDP the server refuses (it registered us over TCP a moment ago): not fatal.
  h.from(TCP, {
    type: MsgType.Refused,
    echo: first.nonce,
    code: 1,
    message: "Peer id in use",
  });
  h.from(TCP, {
    type: MsgType.Cookie,
    echo: first.nonce,
    cookie: new Uint8Array(8).fill(5),
    difficulty: 0,
  });
  assert.equal(h.events.length, 0, "not fatal, nothing reported");
  assert.equal(h.l.closed, false);
  // The WELCOME comes over TCP after all: registered there.
  h.from(TCP, {
    type: MsgType.Welcome,
    id: ID,
    nonce: first.nonce,
    token: TOKEN,
    boot: new Uint8Array(8),
    observed: ME,
  });
  assert.equal(h.l.registered, true);
  assert.equal(h.l.server, TCP);
  assert.deepEqual(h.events.map((e) => e.type), ["ready"]);
});

Deno.test("server link: different servers still get a fresh nonce each", () => {
  const other: Endpoint = { hostname: "192.0.2.9", port: 7777 };
  const h = link([UDP, other, TCP], [0, 1, 0]);
  h.l.start(0);
  h.run(4_000);
  const hellos = h.sent.filter((s) => s.m.type === MsgType.Hello).map((s) => s.m);
  const nonces = new Set(hellos.map((m) => m.type === MsgType.Hello ? m.nonce.join() : ""));
  assert.equal(nonces.size, 2);
});
