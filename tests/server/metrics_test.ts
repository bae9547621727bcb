/**
 * Tests of the server's metrics (`lib/server/metrics.ts`, `lib/io/metrics_http.ts`): the text format
 * checked by Prometheus's own parser and linter (`promtool check metrics`, Debian package
 * `prometheus`; skipped with a reason where it is missing, failed under `CI=true`), label
 * escaping, the event counts, and the HTTP listener on 127.0.0.1.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  escapeHelp,
  escapeLabelValue,
  EventCounts,
  formatValue,
  METRICS_CONTENT_TYPE,
  type MetricsSnapshot,
  renderMetrics,
} from "../../lib/server/metrics.ts";
import { serveMetrics } from "../../lib/io/metrics_http.ts";
import { Registry } from "../../lib/server/registry.ts";
import { seededRandom } from "../support/prng.ts";
import type { DriverStats } from "../../lib/io/udp.ts";
import { type P2pProcess, startPeer, startServer } from "../support/proc.ts";
import { run, toolTest } from "../support/tools.ts";

const LOOP = { hostname: "127.0.0.1", port: 1 };
const EVIL_REASON = 'bad "quote" \\ back\\slash\nnew line é{}';

function snapshot(over: Partial<MetricsSnapshot> = {}): MetricsSnapshot {
  const driver: DriverStats = {
    received: 10,
    sent: 9,
    sendErrors: 1,
    receiveErrors: 0,
    filtered: 2,
  };
  return {
    peers: 3,
    rooms: 2,
    registrations: 5,
    introductions: 4,
    registry: {
      relayedPackets: 7,
      relayedBytes: 7000,
      drops: { "too-short": 2, [EVIL_REASON]: 1 },
      cookies: 6,
    },
    driver,
    stunRequests: 0,
    memory: { rss: 50_000_000, heapTotal: 8_000_000, heapUsed: 6_000_000, external: 1_000 },
    ...over,
  };
}

/** The samples of `text`: `name{labels}` → value (labels as written). */
function samples(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

Deno.test("metrics: every family has HELP and TYPE and the snapshot's values", () => {
  const text = renderMetrics(snapshot());
  assert.ok(text.endsWith("\n"), "the exposition ends with a line feed");
  const types = new Map(
    [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const),
  );
  const helps = new Set([...text.matchAll(/^# HELP (\S+) /gm)].map((m) => m[1]!));
  const expected: Record<string, string> = {
    p2p_peers: "gauge",
    p2p_rooms: "gauge",
    p2p_registrations_total: "counter",
    p2p_introductions_total: "counter",
    p2p_relayed_datagrams_total: "counter",
    p2p_relayed_bytes_total: "counter",
    p2p_drops_total: "counter",
    p2p_stun_requests_total: "counter",
    p2p_datagrams_received_total: "counter",
    p2p_datagrams_sent_total: "counter",
    process_resident_memory_bytes: "gauge",
    p2p_heap_used_bytes: "gauge",
  };
  for (const [name, type] of Object.entries(expected)) {
    assert.equal(types.get(name), type, `${name} is a ${type}`);
    assert.ok(helps.has(name), `${name} has HELP`);
  }
  assert.deepEqual([...helps].sort(), [...types.keys()].sort(), "HELP and TYPE go together");
  const s = samples(text);
  assert.equal(s.get("p2p_peers"), "3");
  assert.equal(s.get("p2p_rooms"), "2");
  assert.equal(s.get("p2p_registrations_total"), "5");
  assert.equal(s.get("p2p_introductions_total"), "4");
  assert.equal(s.get("p2p_relayed_datagrams_total"), "7");
  assert.equal(s.get("p2p_relayed_bytes_total"), "7000");
  assert.equal(s.get('p2p_drops_total{reason="too-short"}'), "2");
  assert.equal(
    s.get('p2p_drops_total{reason="bad \\"quote\\" \\\\ back\\\\slash\\nnew line é{}"}'),
    "1",
  );
  assert.equal(s.get("p2p_stun_requests_total"), "0");
  assert.equal(s.get("p2p_datagrams_received_total"), "10");
  assert.equal(s.get("p2p_datagrams_sent_total"), "9");
  assert.equal(s.get("p2p_send_errors_total"), "1");
  assert.equal(s.get("p2p_cookies_total"), "6");
  assert.equal(s.get("process_resident_memory_bytes"), "50000000");
  assert.equal(s.get("p2p_heap_used_bytes"), "6000000");
  assert.equal(s.get("p2p_heap_total_bytes"), "8000000");
  // Each family's lines are contiguous: no name shows up again after another family began.
  const order = text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) =>
    l.split(/[{ ]/)[0]
  );
  assert.deepEqual(order.filter((n, i) => n !== order[i - 1]), [...new Set(order)]);
});

Deno.test("metrics: STUN absent from the snapshot is 0; drops are sorted by reason", () => {
  const { stunRequests: _, ...rest } = snapshot();
  const text = renderMetrics({
    ...rest,
    registry: { relayedPackets: 0, relayedBytes: 0, drops: { zeta: 1, alpha: 2 } },
  });
  assert.match(text, /^p2p_stun_requests_total 0$/m);
  assert.match(text, /^p2p_cookies_total 0$/m);
  assert.ok(text.indexOf('reason="alpha"') < text.indexOf('reason="zeta"'));
});

Deno.test("metrics: label values and HELP are escaped per the text format", () => {
  assert.equal(escapeLabelValue('a"b'), 'a\\"b');
  assert.equal(escapeLabelValue("a\\b"), "a\\\\b");
  assert.equal(escapeLabelValue("a\nb"), "a\\nb");
  assert.equal(escapeLabelValue('\\"\n'), '\\\\\\"\\n');
  assert.equal(escapeLabelValue("tab\tand é and {}"), "tab\tand é and {}", "nothing else");
  assert.equal(escapeHelp('say "hi"\\\n'), 'say "hi"\\\\\\n', "HELP keeps quotes");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(2 ** 53), "9007199254740992");
  assert.equal(formatValue(0.5), "0.5");
});

Deno.test("metrics: EventCounts counts registrations and introductions; a Registry fills a snapshot", () => {
  const counts = new EventCounts();
  counts.count({ type: "registered", room: "r", name: "a", addr: LOOP, relayOnly: false });
  counts.count({ type: "registered", room: "r", name: "b", addr: LOOP, relayOnly: true });
  counts.count({ type: "introduced", room: "r", a: "a", b: "b", repunch: false });
  counts.count({ type: "introduced", room: "r", a: "a", b: "b", repunch: true });
  counts.count({ type: "moved", room: "r", name: "a", addr: LOOP });
  counts.count({ type: "left", room: "r", name: "a", reason: "bye" });
  assert.equal(counts.registrations, 2);
  assert.equal(counts.introductions, 2);
  // A fresh registry's own numbers fill a snapshot as server.ts does.
  const registry = new Registry({}, seededRandom(1));
  const text = renderMetrics({
    peers: registry.peerCount,
    rooms: registry.roomCount,
    registrations: counts.registrations,
    introductions: counts.introductions,
    registry: registry.stats,
    driver: { received: 0, sent: 0, sendErrors: 0, receiveErrors: 0, filtered: 0 },
    memory: Deno.memoryUsage(),
  });
  assert.match(text, /^p2p_peers 0$/m);
  assert.match(text, /^p2p_registrations_total 2$/m);
});

Deno.test(
  toolTest(
    "promtool",
    "prometheus",
    "metrics: promtool check metrics accepts the output",
    async () => {
      for (
        const s of [
          snapshot(),
          snapshot({ registry: { relayedPackets: 0, relayedBytes: 0, drops: {} } }),
        ]
      ) {
        const text = renderMetrics(s);
        const r = await run("promtool", ["check", "metrics"], { stdin: text });
        assert.equal(r.code, 0, `promtool: ${r.stdout}${r.stderr}\n--- input:\n${text}`);
        assert.equal((r.stdout + r.stderr).trim(), "", "no lint findings");
      }
      // The parser is real: a broken escape is refused.
      const bad = 'p2p_drops_total{reason="a"b"} 1\n';
      const r = await run("promtool", ["check", "metrics"], { stdin: bad });
      assert.notEqual(r.code, 0, "promtool refuses an unescaped quote");
    },
  ),
);

Deno.test("metrics http: GET /metrics on 127.0.0.1:0, 404 elsewhere, 405 for POST", async () => {
  let calls = 0;
  const server = serveMetrics("127.0.0.1", 0, () => {
    calls++;
    return snapshot({ peers: calls });
  });
  try {
    assert.equal(server.addr.hostname, "127.0.0.1");
    assert.ok(server.addr.port > 0);
    const base = `http://127.0.0.1:${server.addr.port}`;
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), METRICS_CONTENT_TYPE);
    const body = await res.text();
    assert.equal(body, renderMetrics(snapshot({ peers: 1 })));
    const again = await fetch(`${base}/metrics?x=1`);
    assert.match(await again.text(), /^p2p_peers 2$/m, "a fresh snapshot per request");
    const missing = await fetch(`${base}/`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();
    const other = await fetch(`${base}/metrics/x`);
    assert.equal(other.status, 404);
    await other.body?.cancel();
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await server.close();
  }
  await assert.rejects(fetch(`http://127.0.0.1:${server.addr.port}/metrics`), "closed");
});

Deno.test("metrics http: a port in use throws, naming the address and what to do", async () => {
  const first = serveMetrics("127.0.0.1", 0, () => snapshot());
  try {
    const port = first.addr.port;
    assert.throws(
      () => serveMetrics("127.0.0.1", port, () => snapshot()),
      new RegExp(`Cannot serve metrics on 127\\.0\\.0\\.1:${port} .*choose another --metrics`),
    );
  } finally {
    await first.close();
  }
});

Deno.test(
  toolTest(
    "promtool",
    "prometheus",
    "metrics: a real server with --metrics counts two peers and a relay; promtool accepts it",
    async () => {
      const server = await startServer({
        host: "127.0.0.1",
        port: 0,
        extraArgs: ["--metrics", "127.0.0.1:0"],
      });
      const peers: P2pProcess[] = [];
      try {
        const m = await server.proc.waitFor((e) => e.event === "metrics", 15_000, "metrics");
        const url = String(m.url);
        for (const name of ["ma", "mb"]) {
          peers.push(startPeer({ server: server.addr, room: "metrics", name, relayOnly: true }));
        }
        await peers[0]!.waitFor((e) => e.event === "peer" && e.name === "mb", 20_000, "peer mb");
        const text = await (await fetch(url)).text();
        assert.match(text, /^p2p_peers 2$/m);
        assert.match(text, /^p2p_rooms 1$/m);
        assert.match(text, /^p2p_registrations_total 2$/m);
        assert.match(text, /^p2p_relayed_datagrams_total [1-9]\d*$/m, "handshakes were relayed");
        const r = await run("promtool", ["check", "metrics"], { stdin: text });
        assert.equal(r.code, 0, `promtool: ${r.stdout}${r.stderr}`);
        assert.equal((await fetch(url.replace("/metrics", "/nope"))).status, 404);
      } finally {
        for (const p of peers) await p.close();
        await server.proc.close();
      }
    },
  ),
);

Deno.test("metrics: TCP and TLS connections when the server has them, none without", () => {
  assert.ok(!renderMetrics(snapshot()).includes("p2p_tcp_"));
  const text = renderMetrics(snapshot({
    streams: { open: 3, accepted: 40, dropped: { "slow-reader": 1, idle: 2 } },
  }));
  const s = samples(text);
  assert.equal(s.get("p2p_tcp_connections"), "3");
  assert.equal(s.get("p2p_tcp_accepted_total"), "40");
  assert.equal(s.get('p2p_tcp_dropped_total{reason="idle"}'), "2");
  assert.equal(s.get('p2p_tcp_dropped_total{reason="slow-reader"}'), "1");
  assert.match(text, /^# TYPE p2p_tcp_connections gauge$/m);
  assert.match(text, /^# TYPE p2p_tcp_dropped_total counter$/m);
});
