/**
 * The NAT traversal matrix: every pair of router types plus special scenarios (same LAN,
 * CGNAT with and without hairpin, short UDP timeouts, a conntrack flush mid-conversation,
 * random loss), each run with real `p2p` processes in a {@link NatLab}.
 *
 * {@link runCell} never throws: it returns a {@link CellResult} whose `error` carries the
 * routers' conntrack tables and the processes' stderr when something went wrong.
 *
 * @module
 */
import { type Host, NAT_TYPES, NatLab, type NatType, type Router } from "./natlab.ts";
import { type P2pEvent, type P2pProcess, prepareProduct, startPeer, startServer } from "./proc.ts";

/** Messages each peer sends in every cell. */
export const MESSAGES_EACH_WAY = 20;
const SERVER_PORT = 7000;
const CELL_BUDGET_MS = 60_000;

/** What a cell's topology builder returns. */
export interface Topology {
  /** First peer's host. */
  a: Host;
  /** Second peer's host. */
  b: Host;
  /** Routers whose conntrack tables matter for diagnostics and scenarios. */
  routers: Router[];
  /** IP at which `a` must see `b` on a direct path. */
  aSeesB: string;
  /** IP at which `b` must see `a` on a direct path. */
  bSeesA: string;
}

/** One cell of the matrix. */
export interface Cell {
  /** Short unique id (test names, CLI filter). */
  id: string;
  /** Human description for the table. */
  title: string;
  /** NAT behaviour of each side, for the table. */
  sides: [string, string];
  /** The path theory predicts. */
  expect: "direct" | "relay";
  /** Builds the hosts and routers. */
  build(lab: NatLab): Promise<Topology>;
  /** `--keepalive` for both peers, in seconds. */
  keepaliveSec?: number;
  /** Idle time after connecting, before messages (lets mappings expire). */
  idleMs?: number;
  /** Runs after half of the messages are delivered (e.g. flush conntrack). */
  midway?(lab: NatLab, topo: Topology): Promise<void>;
}

/** The outcome of one cell. */
export interface CellResult {
  /** The cell. */
  cell: Cell;
  /** First path each side reported (`a→b`, `b→a`), or `none`. */
  firstPath: [string, string];
  /** Last path each side reported. */
  finalPath: [string, string];
  /** Address each side saw for the other on its last direct path, or null. */
  addr: [string | null, string | null];
  /** Milliseconds from both peers being registered to both having a path. */
  connectMs: number | null;
  /** Messages delivered exactly once and in order (`a→b`, `b→a`), out of MESSAGES_EACH_WAY. */
  delivered: [number, number];
  /** Path changes after the first path, summed over both sides. */
  pathChanges: number;
  /** Null when every assertion held; otherwise what failed, with diagnostics. */
  error: string | null;
}

/** IP at which the Internet (the public segment) sees `h`. */
function publicIp(h: Host): string {
  let r = h.router;
  if (!r || r.nat === "public") return h.ip;
  while (r.upstream && r.upstream.nat !== "public") r = r.upstream;
  return r.wanIp!;
}

/** Two peers, each behind its own router of type `x` / `y` with the given options. */
async function twoHomes(
  lab: NatLab,
  x: NatType,
  y: NatType,
  opts: { udpTimeoutSec?: number; lossPercent?: number; upstreamA?: Router } = {},
): Promise<Topology> {
  const extra = { udpTimeoutSec: opts.udpTimeoutSec, lossPercent: opts.lossPercent };
  const ra = await lab.addRouter({ nat: x, name: "ra", upstream: opts.upstreamA, ...extra });
  const rb = await lab.addRouter({ nat: y, name: "rb", ...extra });
  const a = await lab.addHost(ra, "alice");
  const b = await lab.addHost(rb, "bob");
  const routers = opts.upstreamA ? [opts.upstreamA, ra, rb] : [ra, rb];
  return { a, b, routers, aSeesB: publicIp(b), bSeesA: publicIp(a) };
}

function pairCell(x: NatType, y: NatType): Cell {
  // Theory (RFC 4787 / 5128): punching fails only when one side maps per destination
  // (symmetric) and the other filters on address and port, or both map per destination.
  const hard = (t: NatType) => t === "symmetric";
  const strict = (t: NatType) => t === "symmetric" || t === "port-restricted";
  const expect = (hard(x) && strict(y)) || (hard(y) && strict(x)) ? "relay" : "direct";
  return {
    id: `${x}--${y}`,
    title: `${x} ↔ ${y}`,
    sides: [x, y],
    expect,
    build: (lab) => twoHomes(lab, x, y),
  };
}

/** Every cell, in table order. */
export const CELLS: Cell[] = [
  ...NAT_TYPES.flatMap((x, i) => NAT_TYPES.slice(i).map((y) => pairCell(x, y))),
  {
    id: "same-lan",
    title: "two hosts on one LAN (hairpin off)",
    sides: ["port-restricted", "same router"],
    expect: "direct",
    async build(lab) {
      const r = await lab.addRouter({ nat: "port-restricted", name: "home", hairpin: false });
      const a = await lab.addHost(r, "alice");
      const b = await lab.addHost(r, "bob");
      return { a, b, routers: [r], aSeesB: b.ip, bSeesA: a.ip };
    },
  },
  ...[false, true].map((hairpin): Cell => ({
    id: `cgnat-shared${hairpin ? "-hairpin" : ""}`,
    title: `both behind one CGNAT, hairpin ${hairpin ? "on" : "off"}`,
    sides: ["port-restricted + CGNAT", "port-restricted + same CGNAT"],
    // Without hairpin neither side can reach the other's public mapping (it is the CGNAT's
    // own address) nor its private one (behind another home router).
    expect: hairpin ? "direct" : "relay",
    async build(lab) {
      const cg = await lab.addRouter({
        nat: "port-restricted",
        name: "cgnat",
        lanPrefix: "100.64.0",
        hairpin,
      });
      const ra = await lab.addRouter({ nat: "port-restricted", name: "ra", upstream: cg });
      const rb = await lab.addRouter({ nat: "port-restricted", name: "rb", upstream: cg });
      const a = await lab.addHost(ra, "alice");
      const b = await lab.addHost(rb, "bob");
      return { a, b, routers: [cg, ra, rb], aSeesB: publicIp(b), bSeesA: publicIp(a) };
    },
  })),
  {
    id: "cgnat-to-port-restricted",
    title: "port-restricted behind CGNAT ↔ port-restricted",
    sides: ["port-restricted + CGNAT", "port-restricted"],
    expect: "direct",
    async build(lab) {
      const cg = await lab.addRouter({
        nat: "port-restricted",
        name: "cgnat",
        lanPrefix: "100.64.0",
      });
      return twoHomes(lab, "port-restricted", "port-restricted", { upstreamA: cg });
    },
  },
  {
    id: "udp-timeout-5s",
    title: "5 s UDP mapping timeout on both routers, 12 s idle (keepalive 2 s)",
    sides: ["port-restricted", "port-restricted"],
    expect: "direct",
    keepaliveSec: 2,
    idleMs: 12_000,
    build: (lab) => twoHomes(lab, "port-restricted", "port-restricted", { udpTimeoutSec: 5 }),
  },
  {
    id: "conntrack-flush",
    title: "conntrack -F on both routers mid-conversation",
    sides: ["port-restricted", "port-restricted"],
    expect: "direct",
    build: (lab) => twoHomes(lab, "port-restricted", "port-restricted"),
    async midway(lab, topo) {
      for (const r of topo.routers) await lab.flushConntrack(r);
    },
  },
  {
    id: "loss-5pct",
    title: "5 % random loss on both routers",
    sides: ["port-restricted", "port-restricted"],
    expect: "direct",
    build: (lab) => twoHomes(lab, "port-restricted", "port-restricted", { lossPercent: 5 }),
  },
];

function hostOf(addr: unknown): string | null {
  return typeof addr === "string" ? addr.slice(0, addr.lastIndexOf(":")) : null;
}

function inOrderPrefix(got: P2pEvent[], from: string, want: string[]): number {
  const texts = got.filter((e) => e.from === from).map((e) => String(e.text));
  let n = 0;
  while (n < want.length && texts[n] === want[n]) n++;
  // Anything beyond the expected sequence (a duplicate, a stray) spoils exactness.
  return texts.length === want.length ? n : Math.min(n, want.length - 1);
}

/** Runs one cell in a fresh lab. Never throws. */
export async function runCell(cell: Cell): Promise<CellResult> {
  const end = performance.now() + CELL_BUDGET_MS;
  const left = (cap = Infinity) => Math.max(1, Math.min(cap, end - performance.now()));
  const result: CellResult = {
    cell,
    firstPath: ["none", "none"],
    finalPath: ["none", "none"],
    addr: [null, null],
    connectMs: null,
    delivered: [0, 0],
    pathChanges: 0,
    error: null,
  };
  const problems: string[] = [];
  const procs: P2pProcess[] = [];
  let lab: NatLab | undefined;
  let topo: Topology | undefined;
  try {
    await prepareProduct(); // Namespaces have no route to a registry: cache dependencies first.
    lab = await NatLab.create();
    const srvHost = await lab.addPublicHost("srv");
    topo = await cell.build(lab);
    const server = await startServer({
      host: srvHost.ip,
      port: SERVER_PORT,
      netns: srvHost.ns,
      timeoutMs: left(15_000),
    });
    procs.push(server.proc);
    const extra = cell.keepaliveSec ? ["--keepalive", String(cell.keepaliveSec)] : [];
    const room = `m-${cell.id}`;
    // Fresh namespaces hand out the same ephemeral port; two peers behind one CGNAT would then
    // collide there, and the lab's nftables cone map (keyed by the pre-SNAT port) cannot follow
    // the remap. Distinct local ports keep the emulation faithful.
    // Each peer gets its own temporary configuration directory (identity, known peers) from
    // startPeer; both get the room's passphrase.
    const passphrase = `matrix passphrase ${cell.id}`;
    const start = (name: string, host: Host, port: number) =>
      startPeer({
        server: server.addr,
        room,
        passphrase,
        name,
        netns: host.ns,
        extraArgs: [...extra, "--port", String(port)],
      });
    const a = start("alice", topo.a, 41001), b = start("bob", topo.b, 41002);
    procs.push(a, b);
    const sides = [
      { me: a, name: "alice", other: "bob", sees: topo.aSeesB },
      { me: b, name: "bob", other: "alice", sees: topo.bSeesA },
    ] as const;

    const readies = await Promise.all(
      sides.map((s) => s.me.waitForEvent("ready", {}, left(15_000))),
    );
    const firsts = await Promise.all(
      sides.map((s) =>
        s.me.waitFor(
          (e) => e.event === "peer" && e.name === s.other,
          left(15_000),
          `peer ${s.other}`,
        )
      ),
    );
    const registered = Math.max(...readies.map((e, i) => sides[i]!.me.receivedAt(e)!));
    const connected = Math.max(...firsts.map((e, i) => sides[i]!.me.receivedAt(e)!));
    result.connectMs = Math.max(0, Math.round(connected - registered));
    result.firstPath = [String(firsts[0]!.path), String(firsts[1]!.path)];

    if (cell.idleMs) await new Promise((r) => setTimeout(r, cell.idleMs)); // The scenario: idle time.

    const texts = (from: string) =>
      Array.from({ length: MESSAGES_EACH_WAY }, (_, i) => `${from} says #${i + 1}`);
    const half = MESSAGES_EACH_WAY / 2;
    const sendRange = async (from: number, to: number) => {
      for (let i = from; i < to; i++) for (const s of sides) await s.me.send(texts(s.name)[i]!);
      await Promise.all(sides.map((s) =>
        s.me.waitFor(
          (e) => e.event === "message" && e.from === s.other && e.text === texts(s.other)[to - 1],
          left(),
          `message "${texts(s.other)[to - 1]}"`,
        )
      ));
    };
    await sendRange(0, half);
    if (cell.midway) await cell.midway(lab, topo);
    await sendRange(half, MESSAGES_EACH_WAY);
    // The path must be (back to) the expected one.
    await Promise.all(sides.map((s) =>
      s.me.waitFor(
        () => s.me.eventsOf("peer").filter((e) => e.name === s.other).at(-1)?.path === cell.expect,
        left(30_000),
        `final path ${cell.expect}`,
      )
    ));
    await Promise.all(sides.map((s) => s.me.closeStdin()));
    const codes = await Promise.all(sides.map((s) => s.me.wait(left(15_000))));

    sides.forEach((s, i) => {
      const peers = s.me.eventsOf("peer").filter((e) => e.name === s.other);
      const last = peers.at(-1);
      result.finalPath[i] = String(last?.path ?? "none");
      result.addr[i] = last?.path === "direct" ? String(last.addr) : null;
      result.pathChanges += Math.max(0, peers.length - 1);
      result.delivered[i === 0 ? 1 : 0] = inOrderPrefix(
        s.me.eventsOf("message"),
        s.other,
        texts(s.other),
      );
      if (codes[i] !== 0) problems.push(`${s.name} exited ${codes[i]} after end of input`);
      if (result.firstPath[i] !== cell.expect) {
        problems.push(`${s.name}: first path ${result.firstPath[i]}, expected ${cell.expect}`);
      }
      if (cell.expect === "direct" && hostOf(last?.addr) !== s.sees) {
        problems.push(`${s.name}: direct address ${last?.addr}, expected host ${s.sees}`);
      }
    });
    result.delivered.forEach((n, i) => {
      if (n !== MESSAGES_EACH_WAY) {
        problems.push(
          `${i === 0 ? "alice→bob" : "bob→alice"}: ${n}/${MESSAGES_EACH_WAY} exactly once in order`,
        );
      }
    });
  } catch (e) {
    problems.push(e instanceof Error ? e.message.split("\n")[0]! : String(e));
  }
  if (problems.length > 0 && lab) {
    const diag: string[] = [`*** cell ${cell.id} failed: ${problems.join("; ")}`];
    for (const r of topo?.routers ?? []) {
      diag.push(`conntrack ${r.name}:\n${await lab.conntrackDump(r)}`);
    }
    for (const p of procs) diag.push(p.describe(6000));
    result.error = diag.join("\n\n");
  } else if (problems.length > 0) {
    result.error = problems.join("; ");
  }
  for (const p of procs) await p.close();
  await lab?.destroy();
  return result;
}

/** A fixed-width text table of results, for terminals and test output. */
export function textTable(results: CellResult[]): string {
  const rows = [["scenario", "expected", "path a→b / b→a", "connect", "delivered", "result"]];
  for (const r of results) {
    rows.push([
      r.cell.title,
      r.cell.expect,
      `${r.finalPath[0]} / ${r.finalPath[1]}`,
      r.connectMs === null ? "-" : `${r.connectMs} ms`,
      `${r.delivered[0]}/${MESSAGES_EACH_WAY}, ${r.delivered[1]}/${MESSAGES_EACH_WAY}`,
      r.error ? "FAIL" : "ok",
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => [...row[c]!].length)));
  return rows.map((row) => row.map((v, c) => v + " ".repeat(widths[c]! - [...v].length)).join("  "))
    .join("\n");
}

/** The results as a Markdown document. */
export function markdown(results: CellResult[], context: string): string {
  const lines = [
    "# NAT traversal matrix",
    "",
    "Measured by `deno task natlab`: real `p2p serve` and `p2p join --json` processes in Linux",
    "network namespaces, each peer behind nftables NAT routers built from RFC 4787's mapping and",
    "filtering behaviours (see `tests/support/natlab.ts`). In every cell each peer sends",
    `${MESSAGES_EACH_WAY} messages; "delivered" counts those that arrived exactly once and in order.`,
    '"Connect" is the time from both peers being registered to both reporting a path.',
    "The same cells run as tests on every CI run (`tests/nat_matrix_test.ts`).",
    "",
    context,
    "",
    "| scenario | side A | side B | expected | path A→B / B→A | direct address seen | connect | delivered A→B, B→A | result |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const r of results) {
    const addr = r.addr.some((x) => x) ? r.addr.map((x) => x ?? "-").join(" / ") : "-";
    lines.push(
      `| ${r.cell.title} | ${r.cell.sides[0]} | ${r.cell.sides[1]} | ${r.cell.expect} | ${
        r.finalPath[0]
      } / ${r.finalPath[1]} | ${addr} | ${r.connectMs === null ? "-" : `${r.connectMs} ms`} | ${
        r.delivered[0]
      }/${MESSAGES_EACH_WAY}, ${r.delivered[1]}/${MESSAGES_EACH_WAY} | ${
        r.error ? "**fail**" : "ok"
      } |`,
    );
  }
  lines.push("");
  return lines.join("\n");
}
