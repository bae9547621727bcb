/**
 * Shared cookies of a cluster (`docs/protocol.md` 6.2, 23), sans-IO: the servers of a cluster
 * with a shared secret derive one cookie master from it and count periods on the wall clock the
 * role passes in, so a cookie one server issued registers at another (a failover needs no COOKIE
 * round trip) however their monotonic clocks differ; without the secret, or with another one,
 * each server's cookies are its own as before. Members get the new period's cookie unasked,
 * once a period, so the one they fail over with is always valid.
 *
 * @module
 */
import assert from "node:assert/strict";
import { clusterCookieKey } from "../../lib/crypto/cluster_mac.ts";
import { DEFAULT_CLUSTER } from "../../lib/server/cluster.ts";
import { COOKIE_ROTATION } from "../../lib/server/cookies.ts";
import { Registry } from "../../lib/server/registry.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { decodeServerMsg, encodeServerMsg, type ServerMsg } from "../../lib/wire/server_msg.ts";
import { signedHello, testPeerId } from "../support/hello.ts";
import { seededRandom } from "../support/prng.ts";

const SECRET = new TextEncoder().encode("a cluster secret for the tests");
/** A wall clock 10 s into a cookie period. */
const WALL = 28_333_333 * COOKIE_ROTATION + 10_000;
const PEER: Endpoint = { hostname: "198.51.100.7", port: 40007 };
const ID = testPeerId("shared cookie peer");
const TAG = new Uint8Array(8).fill(0x41);

let seeds = 0;
/** A server of a cluster on its own monotonic clock `mono`; shares cookies when given `secret`. */
function server(secret: Uint8Array | undefined, mono: number, wall: number | null = WALL) {
  const r = new Registry({}, seededRandom(++seeds));
  r.joinCluster({
    ...DEFAULT_CLUSTER,
    server: new Uint8Array(8).fill(seeds),
    key: null,
    endpoints: [],
    cookieKey: secret ? clusterCookieKey(secret) : null,
  });
  if (wall !== null) r.handleWallClock(mono, wall);
  return r;
}

/** What `r` sent, decoded. */
function sent(r: Registry): ServerMsg[] {
  const out: ServerMsg[] = [];
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) {
    const d = decodeServerMsg(t.data);
    if (d.ok) out.push(d.value);
  }
  return out;
}

let nonces = 0;
/** A HELLO of the peer with `cookie` to `r` at `now`: the answer's type and, if any, cookie. */
function hello(r: Registry, now: number, cookie?: Uint8Array) {
  const nonce = new Uint8Array(8).fill(++nonces);
  const m = signedHello("shared", { id: ID, cookie, nonce, nameTag: TAG });
  r.handleDatagram(now, PEER, encodeServerMsg(m));
  const answers = sent(r).filter((x) => x.type === MsgType.Cookie || x.type === MsgType.Welcome);
  assert.equal(answers.length, 1, JSON.stringify(answers.map((x) => x.type)));
  return answers[0]!;
}

/** The cookie `r` gives the peer (a HELLO without one, answered by a COOKIE). */
function cookieFrom(r: Registry, now: number): Uint8Array {
  const c = hello(r, now);
  assert.equal(c.type, MsgType.Cookie);
  return c.type === MsgType.Cookie ? c.cookie : new Uint8Array(8);
}

Deno.test("cluster cookies: one server's cookie registers at another with the secret, whatever their clocks", () => {
  const a = server(SECRET, 5_000);
  const cookie = cookieFrom(a, 5_000);
  assert.equal(hello(a, 5_010, cookie).type, MsgType.Welcome);
  // Another server of the cluster: monotonic clock far from a's, the wall clock a moment later.
  const b = server(SECRET, 9_876_543, WALL + 40);
  assert.equal(hello(b, 9_876_600, cookie).type, MsgType.Welcome, "no COOKIE round trip");
  assert.equal(b.stats.cookies, 0);
  // Without the shared secret (or with another one), a server's cookies are its own.
  assert.equal(hello(server(undefined, 5_000), 5_010, cookie).type, MsgType.Cookie);
  const other = new TextEncoder().encode("another cluster's secret");
  assert.equal(hello(server(other, 5_000), 5_010, cookie).type, MsgType.Cookie);
  // The key alone is not enough: the periods must be the wall clock's.
  assert.equal(hello(server(SECRET, 5_000, null), 5_010, cookie).type, MsgType.Cookie);
});

Deno.test("cluster cookies: valid in the wall clock's period and the next, not after; jitter changes nothing", () => {
  const a = server(SECRET, 0);
  const cookie = cookieFrom(a, 0);
  const rest = COOKIE_ROTATION - 10_000; // to the end of the period
  // At b, 1 s into the next period (its own clock elsewhere): still valid.
  const b = server(SECRET, 777, WALL + rest + 1_000);
  assert.equal(hello(b, 778, cookie).type, MsgType.Welcome);
  // At c, 1 s into the period after: too old, a new one is given.
  const c = server(SECRET, 777, WALL + rest + COOKIE_ROTATION + 1_000);
  assert.equal(hello(c, 778, cookie).type, MsgType.Cookie);
  // A reading of the clock within a second of the last moves nothing: 300 ms before the
  // boundary, a reading 500 ms later leaves the period (and its cookie) as it was.
  const d = server(SECRET, 0, WALL + rest - 10_300);
  const before = cookieFrom(d, 10_000);
  d.handleWallClock(10_000, WALL + rest - 9_800);
  assert.deepEqual(d.cookieFor(ID, PEER, 10_000), before);
  // A stepped clock (a minute on) is followed.
  d.handleWallClock(10_000, WALL + rest - 9_800 + COOKIE_ROTATION);
  assert.notDeepEqual(d.cookieFor(ID, PEER, 10_000), before);
});

Deno.test("cluster cookies: members get each period's cookie unasked once, and fail over with it later", () => {
  for (const shared of [true, false]) {
    const a = server(shared ? SECRET : undefined, 0);
    const w = hello(a, 10, cookieFrom(a, 0));
    assert.ok(w.type === MsgType.Welcome);
    const ping = (now: number) => {
      const m = {
        type: MsgType.Ping,
        id: ID,
        token: w.token,
        cookie: new Uint8Array(8),
        digest: 0,
      };
      a.handleDatagram(now, PEER, encodeServerMsg(m as ServerMsg));
      return sent(a);
    };
    // In the period of the registration: a PONG only (its cookie is this period's).
    assert.deepEqual(ping(20_000).map((m) => m.type), [MsgType.Pong]);
    // Each new period: a PONG, then a COOKIE echoing the token (only the member believes it).
    let latest: Uint8Array | undefined;
    for (let k = 1; k <= 3; k++) {
      const now = k * COOKIE_ROTATION;
      const first = ping(now), second = ping(now + 20_000);
      assert.deepEqual(second.map((m) => m.type), [MsgType.Pong], "once a period");
      if (!shared) {
        assert.deepEqual(first.map((m) => m.type), [MsgType.Pong], "no cluster: as before");
        continue;
      }
      assert.deepEqual(first.map((m) => m.type), [MsgType.Pong, MsgType.Cookie]);
      const c = first[1]!;
      assert.ok(c.type === MsgType.Cookie);
      assert.deepEqual(c.echo, w.token);
      assert.equal(c.difficulty, 0);
      latest = c.cookie;
    }
    assert.equal(a.stats.cookiesRefreshed, shared ? 3 : 0);
    assert.equal(a.stats.cookies, 1, "the registration's COOKIE only");
    if (!shared) continue;
    // Three periods after registering, the refreshed cookie still registers at another server.
    const b = server(SECRET, 123, WALL + 3 * COOKIE_ROTATION + 30_000);
    assert.equal(hello(b, 124, latest).type, MsgType.Welcome);
  }
});
