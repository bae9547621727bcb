/**
 * Shared cookies of a cluster (`docs/protocol.md` 6.2, 23), sans-IO: two registries joined
 * through an in-memory engine, each on its own monotonic clock, the wall clock passed in. With a
 * shared secret a member gets the cluster's cookie unasked (after its WELCOME, then once a
 * period), and
 * when its server goes silent it registers at another server with that cookie, without a COOKIE
 * round trip, whatever the servers' monotonic clocks; a HELLO replayed at another server while
 * the peer's own server runs gets only a COOKIE; a PING from a new address is answered with the
 * cluster's cookie for it. Without the secret, or with another one, a failover costs one COOKIE
 * round trip as before.
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
const OTHER = new TextEncoder().encode("another cluster's secret");
/** The wall clock when a net starts: 10 s into a cookie period. */
const WALL = 28_333_333 * COOKIE_ROTATION + 10_000;
const PEER: Endpoint = { hostname: "198.51.100.7", port: 40007 };
const ID = testPeerId("shared cookie peer");
const TAG = new Uint8Array(8).fill(0x41);

/** A server of the net: its registry, its clock's offset, whether it runs. */
interface Node {
  r: Registry;
  /** Its monotonic clock reads the net's time plus this. */
  delta: number;
  alive: boolean;
}

/** How a node is made: its cookie secret (none: its own cookies), its clocks. */
interface Spec {
  secret?: Uint8Array;
  /** Its monotonic clock's offset from the net's time. */
  delta: number;
  /** How far its wall clock is ahead of the others', ms. */
  skew?: number;
}

let seeds = 0, nonces = 0;

/** Two (or more) servers joined through an in-memory engine, on one virtual time. */
class Net {
  now = 0;
  nodes: Node[];

  constructor(specs: Spec[]) {
    this.nodes = specs.map((s, i) => {
      const r = new Registry({}, seededRandom(++seeds));
      r.joinCluster({
        ...DEFAULT_CLUSTER,
        server: new Uint8Array(8).fill(i + 1),
        key: null,
        endpoints: [{ hostname: "192.0.2.1", port: 7000 + i }],
        cookieKey: s.secret ? clusterCookieKey(s.secret) : null,
      });
      r.handleWallClock(s.delta, WALL + (s.skew ?? 0));
      r.handleEngine(s.delta, true);
      return { r, delta: s.delta, alive: true };
    });
    this.pump();
  }

  /** Delivers what live nodes published to the other live nodes, until none is left. */
  pump(): void {
    for (let moved = true; moved;) {
      moved = false;
      for (const n of this.nodes) {
        for (let p = n.r.pollPublish(); p; p = n.r.pollPublish()) {
          if (!n.alive) continue;
          moved = true;
          for (const m of this.nodes) {
            if (m !== n && m.alive) m.r.handleCluster(this.now + m.delta, p.data);
          }
        }
      }
    }
  }

  /** Advances the time in steps of 500 ms, running live nodes' timers. */
  advance(ms: number): void {
    const end = this.now + ms;
    while (this.now < end) {
      this.now = Math.min(end, this.now + 500);
      for (const n of this.nodes) if (n.alive) n.r.handleTimeout(this.now + n.delta);
      this.pump();
    }
  }

  /** `m` from the peer (at `from`) to node `n`: what `n` answered there. */
  send(n: Node, m: ServerMsg, from = PEER): ServerMsg[] {
    n.r.handleDatagram(this.now + n.delta, from, encodeServerMsg(m));
    this.pump();
    const out: ServerMsg[] = [];
    for (let t = n.r.pollTransmit(); t; t = n.r.pollTransmit()) {
      const d = decodeServerMsg(t.data);
      if (d.ok && t.to.port === from.port) out.push(d.value);
    }
    return out;
  }

  /** WELCOMEs the peer got, each with the shared cookie it carried, if any. */
  welcomes: { token: Uint8Array; cookie?: Uint8Array }[] = [];

  /**
   * A HELLO of the peer with `cookie` (a new attempt's nonce) to `n`: the answer (a COOKIE, or a
   * WELCOME, kept in {@link welcomes} with the shared cookie it carried, if any; nothing follows
   * it since protocol 8).
   */
  hello(n: Node, cookie?: Uint8Array, nonce = new Uint8Array(8).fill(++nonces)): ServerMsg {
    const m = signedHello("shared", { id: ID, cookie, nonce, nameTag: TAG });
    const a = this.send(n, m).filter((x) =>
      x.type === MsgType.Cookie || x.type === MsgType.Welcome
    );
    const [w] = a;
    assert.equal(a.length, 1, JSON.stringify(a.map((x) => x.type)));
    if (w?.type === MsgType.Welcome) {
      this.welcomes.push({
        token: w.token,
        ...(w.sharedCookie ? { cookie: w.sharedCookie } : {}),
      });
    }
    return w!;
  }

  /** Registers the peer at `n` (COOKIE round trip, HELLO): its token, the WELCOME's cookie. */
  register(n: Node): { token: Uint8Array; cookie?: Uint8Array } {
    const c = this.hello(n);
    assert.ok(c.type === MsgType.Cookie);
    assert.ok(this.hello(n, c.cookie).type === MsgType.Welcome);
    const w = this.welcomes.at(-1)!;
    return { token: w.token, ...(w.cookie ? { cookie: w.cookie } : {}) };
  }

  /** A PING of the registered peer to `n` (from `from`, with `cookie`): the answers. */
  ping(
    n: Node,
    token: Uint8Array,
    from = PEER,
    cookie: Uint8Array = new Uint8Array(8),
  ): ServerMsg[] {
    return this.send(n, { type: MsgType.Ping, id: ID, token, cookie, digest: 0 }, from);
  }
}

Deno.test("cluster cookies: a peer of a silent server registers at another without a COOKIE round trip", () => {
  for (const bSecret of [SECRET, undefined, OTHER]) {
    // The servers' monotonic clocks are far apart; their wall clocks agree.
    const net = new Net([{ secret: SECRET, delta: 5_000 }, { secret: bSecret, delta: 9_876_543 }]);
    const [a, b] = net.nodes as [Node, Node];
    // In the WELCOME: the cluster's cookie (a cluster server's WELCOME is all that follows the
    // HELLO: no COOKIE, no SERVERS after it).
    const { cookie } = net.register(a);
    assert.ok(cookie, "the WELCOME's shared cookie");
    // a dies at once; b hears nothing of it for 3 s (three heartbeats); the peer fails over.
    a.alive = false;
    net.advance(3_000);
    const cookiesBefore = b.r.stats.cookies;
    const answer = net.hello(b, cookie);
    const shared = bSecret === SECRET;
    assert.equal(answer.type, shared ? MsgType.Welcome : MsgType.Cookie, String(bSecret));
    assert.equal(b.r.stats.cookies - cookiesBefore, shared ? 0 : 1);
    if (shared) assert.equal(b.r.cluster!.stats.takeovers, 1, "it took the member over");
  }
});

Deno.test("cluster cookies: a HELLO replayed at another server while the peer's server runs gets a COOKIE", () => {
  const net = new Net([{ secret: SECRET, delta: 0 }, { secret: SECRET, delta: 777 }]);
  const [a, b] = net.nodes as [Node, Node];
  const shared = net.register(a).cookie!;
  assert.ok(shared);
  // The peer's HELLO with the shared cookie (it would send one re-registering at a), captured
  // and replayed at b while a heartbeats: b wants its own cookie first; nothing moves.
  const nonce = new Uint8Array(8).fill(0x77);
  net.advance(1_000);
  assert.equal(net.hello(b, shared, nonce).type, MsgType.Cookie);
  assert.equal(b.r.cluster!.stats.takeovers, 0);
  assert.equal(b.r.peerCount, 0, "still a's member");
  assert.equal(a.r.peerCount, 1);
  // At its own server, the shared cookie does (a member of ours).
  assert.equal(net.hello(a, shared).type, MsgType.Welcome);
  // Once a is silent the same HELLO is a failover.
  a.alive = false;
  net.advance(3_000);
  assert.equal(net.hello(b, shared, nonce).type, MsgType.Welcome);
});

Deno.test("cluster cookies: periods follow the wall clock; valid in the period and the next, not after", () => {
  // b's wall clock is ahead of a's by `skew`: still in the next period, or past it.
  const rest = COOKIE_ROTATION - 10_000; // to the end of the period the net starts in
  for (const [skew, valid] of [[rest + 1_000, true], [rest + COOKIE_ROTATION + 1_000, false]]) {
    const net = new Net([
      { secret: SECRET, delta: 0 },
      { secret: SECRET, delta: 123_456, skew: skew as number },
    ]);
    const [a, b] = net.nodes as [Node, Node];
    const shared = net.register(a).cookie!;
    a.alive = false;
    net.advance(3_000);
    assert.equal(net.hello(b, shared).type, valid ? MsgType.Welcome : MsgType.Cookie, `${skew}`);
  }
  // A reading of the wall clock within a second of the last moves nothing; a stepped one does.
  const net = new Net([{ secret: SECRET, delta: 0, skew: COOKIE_ROTATION - 10_300 - 10_000 }]);
  const r = net.nodes[0]!.r;
  const before = r.sharedCookieFor(ID, PEER, 0);
  r.handleWallClock(0, WALL + COOKIE_ROTATION - 20_300 + 500);
  assert.deepEqual(r.sharedCookieFor(ID, PEER, 0), before);
  r.handleWallClock(0, WALL + COOKIE_ROTATION - 20_300 + COOKIE_ROTATION);
  assert.notDeepEqual(r.sharedCookieFor(ID, PEER, 0), before);
});

Deno.test("cluster cookies: members get each period's cookie unasked once; none without the secret", () => {
  for (const secret of [SECRET, undefined]) {
    const net = new Net([{ secret, delta: 0 }]);
    const a = net.nodes[0]!;
    const { token, cookie } = net.register(a);
    assert.equal(cookie !== undefined, secret !== undefined, "the WELCOME's shared cookie");
    const types = (answers: ServerMsg[]) => answers.map((m) => m.type);
    const withCookie = secret ? [MsgType.Pong, MsgType.Cookie] : [MsgType.Pong];
    net.advance(1_000);
    assert.deepEqual(types(net.ping(a, token)), [MsgType.Pong], "it has this period's");
    let latest: Uint8Array | undefined;
    for (let k = 1; k <= 3; k++) {
      // Into the next period (PINGs keep the member alive on the way).
      for (let t = 0; t < COOKIE_ROTATION; t += 20_000) {
        net.advance(20_000);
        const answers = net.ping(a, token);
        assert.deepEqual(types(answers), t === 40_000 ? withCookie : [MsgType.Pong], `${k} ${t}`);
        const c = answers[1];
        if (c?.type === MsgType.Cookie) latest = c.cookie;
      }
    }
    assert.equal(a.r.stats.cookiesRefreshed, secret ? 3 : 0, "3 periods (the WELCOME had one)");
    assert.equal(a.r.stats.cookies, 1, "the registration's COOKIE only");
    if (!secret) continue;
    // Into the next period: the last cookie, now the previous period's, still does (a HELLO of
    // the member again, from its address).
    net.advance(50_000);
    assert.equal(net.hello(a, latest).type, MsgType.Welcome, "the previous period's cookie");
    // The peer's NAT gives it a new port: its PING from there (with the cookie of its old
    // address) gets a COOKIE, the cluster's for the new address, and with that the PING moves
    // the registration; the cookie the peer holds stays one it can fail over with.
    const there = { ...PEER, port: PEER.port + 1 };
    net.advance(10_000);
    const asked = net.ping(a, token, there, latest);
    assert.deepEqual(types(asked), [MsgType.Cookie]);
    const c = asked[0]!;
    assert.ok(c.type === MsgType.Cookie);
    assert.deepEqual(c.cookie, a.r.sharedCookieFor(ID, there), "the shared cookie");
    assert.deepEqual(types(net.ping(a, token, there, c.cookie)), [MsgType.Pong]);
  }
});
