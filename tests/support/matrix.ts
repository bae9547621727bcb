/**
 * The NAT traversal matrix: every pair of router types plus special scenarios (same LAN,
 * CGNAT with and without hairpin, hard NATs behind CGNATs, router port mapping, short UDP
 * timeouts, a conntrack flush mid-conversation, random loss), each run with real `p2p`
 * processes in a {@link NatLab}.
 *
 * The lab's server has a second public address (`p2p serve --alt-host --alt-port`), so every
 * peer's STUN probe of the server gives a mapping verdict (endpoint-independent or
 * address-dependent): the peers decide from it which of them is the hard side. The one-address
 * cells ({@link Cell.server} `"one-address"`) run a plain `p2p serve` instead (one address, no
 * flags: its second port, PORT+1, tells the peers whether their NAT maps per port).
 *
 * {@link runCell} never throws: it returns a {@link CellResult} whose `error` carries the
 * routers' conntrack tables and the processes' stderr when something went wrong.
 * {@link summarize} folds repeated runs of a cell into a success rate and times.
 *
 * @module
 */
import { type Host, NAT_TYPES, NatLab, type NatType, type Router } from "./natlab.ts";
import {
  type P2pEvent,
  type P2pProcess,
  prepareProduct,
  type RunningServer,
  startPeer,
  startServer,
} from "./proc.ts";

/** Messages each peer sends in every cell. */
export const MESSAGES_EACH_WAY = 20;
const SERVER_PORT = 7000;
/** The server's second STUN port, on both of its addresses (RFC 5780 "change port"). */
const ALT_PORT = 7001;
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
  /**
   * How a direct path is expected to come about when plain hole punching cannot make it: the
   * first path may then be the relay, upgraded later. Absent: the first path is the expected one.
   */
  upgrade?: "birthday probing" | "port mapping";
  /** External tools the cell runs in the lab, and their Debian package (to skip without). */
  needs?: { tools: string[]; pkg: string };
  /** Builds the hosts and routers. */
  build(lab: NatLab): Promise<Topology>;
  /**
   * The server: `"two-address"` (default) with `--alt-host` and `--alt-port`, `"one-address"` a
   * plain `p2p serve` on one address without flags.
   */
  server?: "two-address" | "one-address";
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
  /**
   * Milliseconds from both peers being registered to both reporting their final path for the
   * first time (the time to direct, for cells expected direct), or null.
   */
  finalMs: number | null;
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

/** Whether some router between `h` and the Internet maps per destination (symmetric). */
function behindSymmetric(h: Host): boolean {
  for (let r = h.router; r; r = r.upstream) if (r.nat === "symmetric") return true;
  return false;
}

/** Options of {@link twoHomes}. */
interface HomeOptions {
  udpTimeoutSec?: number;
  lossPercent?: number;
  /** Router (a CGNAT) that side A's home router sits behind. */
  upstreamA?: Router;
  /** Router (a CGNAT) that side B's home router sits behind. */
  upstreamB?: Router;
  /** Side A's router runs miniupnpd (router port mapping). */
  portmapA?: boolean;
}

/** Two peers, each behind its own router of type `x` / `y` with the given options. */
async function twoHomes(
  lab: NatLab,
  x: NatType,
  y: NatType,
  opts: HomeOptions = {},
): Promise<Topology> {
  const extra = { udpTimeoutSec: opts.udpTimeoutSec, lossPercent: opts.lossPercent };
  const ra = await lab.addRouter({
    nat: x,
    name: "ra",
    upstream: opts.upstreamA,
    portmap: opts.portmapA,
    ...extra,
  });
  const rb = await lab.addRouter({ nat: y, name: "rb", upstream: opts.upstreamB, ...extra });
  const a = await lab.addHost(ra, "alice");
  const b = await lab.addHost(rb, "bob");
  const routers = [opts.upstreamA, ra, opts.upstreamB, rb].filter((r): r is Router => !!r);
  return { a, b, routers, aSeesB: publicIp(b), bSeesA: publicIp(a) };
}

/** A carrier-grade NAT of type `nat` on the public segment, with `100.64.0.0/24` inside. */
function cgnat(lab: NatLab, nat: NatType): Promise<Router> {
  return lab.addRouter({ nat, name: "cgnat", lanPrefix: "100.64.0" });
}

function pairCell(x: NatType, y: NatType): Cell {
  // Theory (RFC 4787 / 5128): plain punching fails only when one side maps per destination
  // (symmetric) and the other filters on address and port, or both map per destination. The
  // first case is what birthday probing is for; the second stays relayed: with random ports on
  // both sides no number of probes a peer can afford finds a pair of mappings.
  const hard = (t: NatType) => t === "symmetric";
  const birthday = (hard(x) && y === "port-restricted") || (hard(y) && x === "port-restricted");
  return {
    id: `${x}--${y}`,
    title: `${x} ↔ ${y}`,
    sides: [x, y],
    expect: hard(x) && hard(y) ? "relay" : "direct",
    ...(birthday ? { upgrade: "birthday probing" as const } : {}),
    build: (lab) => twoHomes(lab, x, y),
  };
}

/** A cell of the pair `x` ↔ `y` against a plain `p2p serve` on one address. */
function oneAddressCell(x: NatType, y: NatType): Cell {
  const c = pairCell(x, y);
  return {
    ...c,
    id: `one-address--${c.id}`,
    title: `${c.title}, one-address server`,
    server: "one-address",
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
    id: "cgnat-full-cone--symmetric",
    title: "full-cone home router behind a port-restricted CGNAT ↔ symmetric",
    // The CGNAT maps endpoint-independently but filters on address and port, so side A is
    // port-restricted overall: plain punching cannot reach it from B's random ports.
    sides: ["full-cone + port-restricted CGNAT (port-restricted overall)", "symmetric"],
    expect: "direct",
    upgrade: "birthday probing",
    async build(lab) {
      const cg = await cgnat(lab, "port-restricted");
      return twoHomes(lab, "full-cone", "symmetric", { upstreamA: cg });
    },
  },
  {
    id: "full-cone--cgnat-symmetric",
    title: "full-cone ↔ port-restricted home router behind a symmetric CGNAT",
    // Side B maps per destination at the carrier; A's full cone takes whatever port arrives.
    sides: ["full-cone", "port-restricted + symmetric CGNAT (symmetric overall)"],
    expect: "direct",
    async build(lab) {
      const cg = await cgnat(lab, "symmetric");
      return twoHomes(lab, "full-cone", "port-restricted", { upstreamB: cg });
    },
  },
  {
    id: "portmap-symmetric--symmetric",
    title: "symmetric with router port mapping (miniupnpd) ↔ symmetric",
    // A's router runs miniupnpd (NAT-PMP, PCP, UPnP IGD): a mapped port is a stable public
    // endpoint B can send to from any of its random ports.
    sides: ["symmetric + NAT-PMP/PCP/UPnP (miniupnpd)", "symmetric"],
    expect: "direct",
    upgrade: "port mapping",
    needs: { tools: ["miniupnpd"], pkg: "miniupnpd-nftables" },
    build: (lab) => twoHomes(lab, "symmetric", "symmetric", { portmapA: true }),
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
  // A plain `p2p serve` (one address, no flags): the hard side learns it is hard from the
  // server's two ports, so birthday probing works there too.
  ...([
    ["port-restricted", "symmetric"],
    ["full-cone", "symmetric"],
    ["address-restricted", "port-restricted"],
    ["symmetric", "symmetric"],
  ] as const).map(([x, y]) => oneAddressCell(x, y)),
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

/** One peer of a cell, as the cell sees it. */
interface Side {
  me: P2pProcess;
  name: string;
  other: string;
  /** IP at which it must see the other on a direct path. */
  sees: string;
  /** Whether its NAT maps per destination, so its STUN probe must say so. */
  hard: boolean;
}

/** The STUN probe's notice of a NAT that maps per destination. */
const isSymmetricNotice = (e: P2pEvent) => e.event === "notice" && e.kind === "symmetric-nat";

/** The messages `from` sends in every cell. */
function texts(from: string): string[] {
  return Array.from({ length: MESSAGES_EACH_WAY }, (_, i) => `${from} says #${i + 1}`);
}

/**
 * Starts the cell's server (with its second address, or a plain one on one address) and any
 * port-mapping daemons.
 */
async function startServices(
  cell: Cell,
  lab: NatLab,
  topo: Topology,
  srvHost: Host,
  left: (cap?: number) => number,
): Promise<RunningServer> {
  const extraArgs = cell.server === "one-address"
    ? []
    : ["--alt-host", await lab.addAddress(srvHost), "--alt-port", String(ALT_PORT)];
  const server = await startServer({
    host: srvHost.ip,
    port: SERVER_PORT,
    netns: srvHost.ns,
    timeoutMs: left(15_000),
    extraArgs,
  });
  try {
    // Port-mapping routers learn their public address from the server's RFC 5780 STUN.
    for (const r of topo.routers) {
      if (r.options.portmap) await lab.startPortmap(r, server.addr, left(15_000));
    }
  } catch (e) {
    await server.proc.close();
    throw e;
  }
  return server;
}

/** Starts both peers of a cell. */
function startPeers(cell: Cell, topo: Topology, server: string): [Side, Side] {
  const extra = cell.keepaliveSec ? ["--keepalive", String(cell.keepaliveSec)] : [];
  // Fresh namespaces hand out the same ephemeral port; two peers behind one CGNAT would then
  // collide there, and the lab's nftables cone map (keyed by the pre-SNAT port) cannot follow
  // the remap. Distinct local ports keep the emulation faithful.
  // Each peer gets its own temporary configuration directory (identity, known peers) from
  // startPeer; both get the room's passphrase.
  const start = (name: string, host: Host, port: number) =>
    startPeer({
      server,
      room: `m-${cell.id}`,
      passphrase: `matrix passphrase ${cell.id}`,
      name,
      netns: host.ns,
      extraArgs: [...extra, "--port", String(port)],
    });
  return [
    {
      me: start("alice", topo.a, 41001),
      name: "alice",
      other: "bob",
      sees: topo.aSeesB,
      hard: behindSymmetric(topo.a),
    },
    {
      me: start("bob", topo.b, 41002),
      name: "bob",
      other: "alice",
      sees: topo.bSeesA,
      hard: behindSymmetric(topo.b),
    },
  ];
}

/**
 * Waits for both peers to register and meet, then
 * sends the messages, half before and half after `midway` (and, for an upgrade, after the path
 * has become the expected one), and waits until both are on the expected path.
 */
async function converse(
  cell: Cell,
  lab: NatLab,
  topo: Topology,
  sides: Side[],
  result: CellResult,
  left: (cap?: number) => number,
): Promise<void> {
  const readies = await Promise.all(
    sides.map((s) => s.me.waitForEvent("ready", {}, left(15_000))),
  );
  const registered = Math.max(...readies.map((e, i) => sides[i]!.me.receivedAt(e)!));
  const firsts = await Promise.all(
    sides.map((s) =>
      s.me.waitFor((e) => e.event === "peer" && e.name === s.other, left(15_000), `peer ${s.other}`)
    ),
  );
  const connected = Math.max(...firsts.map((e, i) => sides[i]!.me.receivedAt(e)!));
  result.connectMs = Math.max(0, Math.round(connected - registered));
  result.firstPath = [String(firsts[0]!.path), String(firsts[1]!.path)];

  if (cell.idleMs) await new Promise((r) => setTimeout(r, cell.idleMs)); // The scenario: idle time.

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
  const onExpected = () =>
    Promise.all(sides.map((s) =>
      s.me.waitFor(
        () => s.me.eventsOf("peer").filter((e) => e.name === s.other).at(-1)?.path === cell.expect,
        left(30_000),
        `final path ${cell.expect}`,
      )
    ));
  await sendRange(0, half);
  // An upgrade happens while the first half travels over the relay; the second half must then
  // take the new path.
  if (cell.upgrade) await onExpected();
  if (cell.midway) await cell.midway(lab, topo);
  await sendRange(half, MESSAGES_EACH_WAY);
  // The path must be (back to) the expected one.
  await onExpected();
  // The server's two addresses gave each peer a mapping verdict: a NAT that maps per
  // destination is reported (the others are checked for no such report in verify()).
  await Promise.all(
    sides.filter((s) => s.hard).map((s) =>
      s.me.waitFor(isSymmetricNotice, left(5000), "the notice of a symmetric NAT")
    ),
  );
}

/** Fills in what both peers reported: final paths, addresses, deliveries, time to final path. */
function record(result: CellResult, sides: Side[]): void {
  const readies = sides.map((s) => s.me.eventsOf("ready")[0]);
  const registered = readies.every((e) => e)
    ? Math.max(...readies.map((e, i) => sides[i]!.me.receivedAt(e!)!))
    : null;
  const reachedFinal: number[] = [];
  sides.forEach((s, i) => {
    const peers = s.me.eventsOf("peer").filter((e) => e.name === s.other);
    const last = peers.at(-1);
    const firstFinal = peers.find((e) => e.path === last?.path);
    if (firstFinal) reachedFinal.push(s.me.receivedAt(firstFinal)!);
    result.finalPath[i] = String(last?.path ?? "none");
    result.addr[i] = last?.path === "direct" ? String(last.addr) : null;
    result.pathChanges += Math.max(0, peers.length - 1);
    result.delivered[i === 0 ? 1 : 0] = inOrderPrefix(
      s.me.eventsOf("message"),
      s.other,
      texts(s.other),
    );
  });
  if (registered !== null && reachedFinal.length === 2) {
    result.finalMs = Math.max(0, Math.round(Math.max(...reachedFinal) - registered));
  }
}

/** What is wrong with a finished run (empty when nothing). */
function verify(cell: Cell, result: CellResult, sides: Side[], codes: number[]): string[] {
  const problems: string[] = [];
  sides.forEach((s, i) => {
    if (codes[i] !== 0) problems.push(`${s.name} exited ${codes[i]} after end of input`);
    const firstOk = result.firstPath[i] === cell.expect ||
      (cell.upgrade !== undefined && result.firstPath[i] === "relay");
    if (!firstOk) {
      problems.push(`${s.name}: first path ${result.firstPath[i]}, expected ${cell.expect}`);
    }
    if (!s.hard && s.me.events.some(isSymmetricNotice)) {
      problems.push(`${s.name}: told its NAT is symmetric, but it is not`);
    }
    const addr = result.addr[i];
    if (cell.expect === "direct" && hostOf(addr) !== s.sees) {
      problems.push(`${s.name}: direct address ${addr}, expected host ${s.sees}`);
    }
  });
  result.delivered.forEach((n, i) => {
    if (n !== MESSAGES_EACH_WAY) {
      problems.push(
        `${i === 0 ? "alice→bob" : "bob→alice"}: ${n}/${MESSAGES_EACH_WAY} exactly once in order`,
      );
    }
  });
  return problems;
}

/** Conntrack tables (and port-mapping rules) of the cell's routers and the processes' output. */
async function diagnose(
  lab: NatLab,
  routers: readonly Router[],
  procs: readonly P2pProcess[],
): Promise<string[]> {
  const diag: string[] = [];
  for (const r of routers) {
    diag.push(`conntrack ${r.name}:\n${await lab.conntrackDump(r)}`);
    if (r.options.portmap) diag.push(`ruleset ${r.name}:\n${await lab.ruleset(r)}`);
  }
  for (const p of [...procs, ...lab.daemons]) diag.push(p.describe(6000));
  return diag;
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
    finalMs: null,
    delivered: [0, 0],
    pathChanges: 0,
    error: null,
  };
  const problems: string[] = [];
  const procs: P2pProcess[] = [];
  let lab: NatLab | undefined;
  let topo: Topology | undefined;
  let sides: Side[] = [];
  try {
    await prepareProduct(); // Namespaces have no route to a registry: cache dependencies first.
    lab = await NatLab.create();
    const srvHost = await lab.addPublicHost("srv");
    topo = await cell.build(lab);
    const server = await startServices(cell, lab, topo, srvHost, left);
    procs.push(server.proc);
    sides = startPeers(cell, topo, server.addr);
    procs.push(...sides.map((s) => s.me));
    await converse(cell, lab, topo, sides, result, left);
    await Promise.all(sides.map((s) => s.me.closeStdin()));
    const codes = await Promise.all(sides.map((s) => s.me.wait(left(15_000))));
    record(result, sides);
    problems.push(...verify(cell, result, sides, codes));
  } catch (e) {
    problems.push(e instanceof Error ? e.message.split("\n")[0]! : String(e));
    // What the peers got to before it went wrong, for the tables.
    record(result, sides);
  }
  if (problems.length > 0 && lab) {
    const head = `*** cell ${cell.id} failed: ${problems.join("; ")}`;
    result.error = [head, ...await diagnose(lab, topo?.routers ?? [], procs)].join("\n\n");
  } else if (problems.length > 0) {
    result.error = problems.join("; ");
  }
  for (const p of procs) await p.close();
  await lab?.destroy();
  return result;
}

/** Repeated runs of one cell, folded. */
export interface CellSummary {
  /** The cell. */
  cell: Cell;
  /** Runs made. */
  runs: number;
  /**
   * Runs in which both sides ended on the expected path and every message was delivered
   * exactly once and in order.
   */
  successes: number;
  /** Runs in which every check of {@link runCell} held (first path, addresses, exit codes too). */
  clean: number;
  /** Median of {@link CellResult.finalMs} over successful runs, or null. */
  medianMs: number | null;
  /** Largest {@link CellResult.finalMs} over successful runs, or null. */
  worstMs: number | null;
  /** The last run. */
  last: CellResult;
}

/** Whether a run reached the expected path on both sides and delivered every message. */
export function succeeded(r: CellResult): boolean {
  return r.finalPath.every((p) => p === r.cell.expect) &&
    r.delivered.every((n) => n === MESSAGES_EACH_WAY);
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
}

/** Folds results into one summary per cell, in the order cells first appear. */
export function summarize(results: readonly CellResult[]): CellSummary[] {
  const byCell = new Map<Cell, CellResult[]>();
  for (const r of results) {
    const list = byCell.get(r.cell) ?? [];
    list.push(r);
    byCell.set(r.cell, list);
  }
  return [...byCell].map(([cell, rs]) => {
    const good = rs.filter(succeeded);
    const times = good.map((r) => r.finalMs).filter((t): t is number => t !== null);
    return {
      cell,
      runs: rs.length,
      successes: good.length,
      clean: rs.filter((r) => !r.error).length,
      medianMs: median(times),
      worstMs: times.length ? Math.max(...times) : null,
      last: rs.at(-1)!,
    };
  });
}

/** How the expected path comes about: plain punching, an upgrade, or the relay. */
function how(cell: Cell): string {
  return cell.expect === "relay" ? "relay" : cell.upgrade ?? "punching";
}

function ms(x: number | null): string {
  return x === null ? "-" : `${x} ms`;
}

/** A fixed-width text table of results (one row per cell), for terminals and test output. */
export function textTable(results: readonly CellResult[]): string {
  const rows = [[
    "scenario",
    "expected",
    "how",
    "success",
    "to final path: median",
    "worst",
    "path a→b / b→a (last)",
    "checks",
  ]];
  for (const s of summarize(results)) {
    rows.push([
      s.cell.title,
      s.cell.expect,
      how(s.cell),
      `${s.successes}/${s.runs}`,
      ms(s.medianMs),
      ms(s.worstMs),
      `${s.last.finalPath[0]} / ${s.last.finalPath[1]}`,
      s.clean === s.runs ? "ok" : `FAIL ${s.runs - s.clean}/${s.runs}`,
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => [...row[c]!].length)));
  return rows.map((row) => row.map((v, c) => v + " ".repeat(widths[c]! - [...v].length)).join("  "))
    .join("\n");
}

/** The results (one or more runs per cell) as a Markdown document. */
export function markdown(results: readonly CellResult[], context: string): string {
  const summaries = summarize(results);
  const runs = [...new Set(summaries.map((s) => s.runs))];
  const lines = [
    "# NAT traversal matrix",
    "",
    "Measured by `deno task natlab`: real `p2p serve` and `p2p join --json` processes in Linux",
    "network namespaces, each peer behind nftables NAT routers built from RFC 4787's mapping and",
    "filtering behaviours (see `tests/support/natlab.ts`). The server has a second public address",
    "(`--alt-host`, `--alt-port`), so each peer learns from STUN whether its NAT maps per",
    'destination. The rows marked "one-address server" run a plain `p2p serve` instead: one address,',
    "no flags; its second port (PORT+1) tells each peer whether its NAT maps per destination port.",
    "",
    `Each cell ran ${runs.join(" or ")} time${runs.length === 1 && runs[0] === 1 ? "" : "s"}.`,
    `In every run each peer sends ${MESSAGES_EACH_WAY} messages. "Success" counts the runs in which`,
    "both sides ended on the expected path and every message arrived exactly once and in order.",
    '"To final path" is the time from both peers being registered to both reporting the path they',
    "ended on (for a direct cell: the time to direct), median and worst over the successful runs.",
    '"How" is what makes the path: plain hole punching, birthday probing (one side maps per',
    "destination with random ports, the other filters on address and port), router port mapping,",
    'or the relay. "Checks" adds the tests\' other assertions (first path, the address seen on a',
    "direct path, exit codes). The same cells run once each as tests on every CI run",
    "(`tests/lab/nat_matrix_test.ts`); `deno task natlab -- --trials 10` repeats them.",
    "",
    context,
    "",
    "| scenario | side A | side B | expected | how | success | to final path: median | worst | path A→B / B→A (last run) | direct address seen (last run) | checks |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const s of summaries) {
    const r = s.last;
    const addr = r.addr.some((x) => x) ? r.addr.map((x) => x ?? "-").join(" / ") : "-";
    lines.push(
      `| ${s.cell.title} | ${s.cell.sides[0]} | ${s.cell.sides[1]} | ${s.cell.expect} | ${
        how(s.cell)
      } | ${s.successes}/${s.runs} | ${ms(s.medianMs)} | ${ms(s.worstMs)} | ${r.finalPath[0]} / ${
        r.finalPath[1]
      } | ${addr} | ${s.clean === s.runs ? "ok" : `**fail** ${s.runs - s.clean}/${s.runs}`} |`,
    );
  }
  lines.push(
    "",
    "Notes:",
    "",
    "- Symmetric ↔ symmetric stays relayed, by design: with random ports on both sides a probe",
    "  has to guess a port pair, not one port, and no number of probes a peer can afford (or an",
    "  IDS would tolerate) finds one. Router port mapping on either side turns it direct.",
    "- CGNAT cells: a carrier NAT (`100.64.0.0/24` inside) in front of a home router. A full-cone",
    "  home router behind a port-restricted CGNAT is port-restricted overall (endpoint-independent",
    "  mapping, address-and-port-dependent filtering), so against a symmetric NAT it needs birthday",
    "  probing; a port-restricted home router behind a symmetric CGNAT is symmetric overall, which",
    "  a full cone on the other side punches without help.",
    "- Port mapping: side A's router is a symmetric NAT running Debian's `miniupnpd-nftables`",
    "  (NAT-PMP and PCP on UDP 5351, UPnP IGD on port 5000), which learns its public address from",
    "  the server's RFC 5780 STUN (CHANGE-REQUEST), since miniupnpd treats the lab's",
    "  `203.0.113.0/24` as a reserved range.",
    "- Birthday probing: the symmetric side opens 256 sockets, the other side probes random ports",
    "  of its address at 250 a second, at most 2048 (`lib/peer/path/birthday.ts`). `deno task bench:birthday`",
    "  runs 1,000 seeded searches in the simulator: 1024 probes hit 97–98 % of the time (analytic",
    "  98.3 %), 2048 probes 99.9–100 % (analytic 99.97 %), about 250 probes to the first hit.",
    "- One-address server (`tests/lab/one_address_lab_test.ts` runs these rows, a supernode room",
    "  and `p2p doctor` against a plain `p2p serve`): a symmetric NAT shows other public ports",
    "  towards the server's two ports, so it is the hard side and birthday probing starts; the",
    "  port-restricted side sees one port and counts as easy (an address-dependent-only mapping",
    "  would look the same from one address; such a search would fail). Supernodes there: only a",
    "  peer on its own address (no NAT) is probed from the second port; a NATted peer is probed by a",
    "  REACH a supernode of another room sends for the server (CHECK). alice on a public address",
    "  serves and relays for bob and carol behind symmetric NATs (the server relayed none of their",
    "  40 messages' bytes, and with the server stopped they keep talking through her); fion behind",
    "  a full cone passes via alice; address-restricted, port-restricted and symmetric peers never",
    "  serve.",
    "- IPv6 (`tests/lab/ipv6_lab_test.ts`, its own lab, run in CI): two dual-stack hosts behind",
    "  symmetric IPv4 NATs (`masquerade random`) and stateful IPv6 firewalls that drop new inbound",
    "  go direct over IPv6 in 0.5–1.1 s from process start, with the server reached over IPv4 or",
    "  over IPv6; without IPv6 the same pair is relayed.",
    "- Supernodes (`tests/lab/supernode_lab_test.ts`, its own lab, run in CI; 7 runs): alice on a public",
    "  address passes the server's reachability check (a REACH from `--alt-host`) and serves her room;",
    "  bob and carol, each behind a symmetric NAT, relay through her: the server relayed 104 bytes of",
    "  their 40 messages (about 2.5 KB sealed) in every run, and every message arrived once, in order.",
    "  With the server stopped they keep talking, and dave (behind a symmetric NAT, `--server S --server",
    "  alice`) joins through alice and reaches everyone. A supernode killed without a goodbye: its pair",
    "  is on the server's relay 3.2–3.4 s later, nothing lost. Public and full-cone peers pass the",
    "  check; address-restricted, port-restricted and symmetric ones never do.",
    "",
  );
  return lines.join("\n");
}
