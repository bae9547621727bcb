/**
 * A NAT lab built from Linux network namespaces, veth pairs, bridges and nftables (no Docker).
 *
 * Topology:
 *
 * ```
 *   [host] ──┐                                    ┌── [router A: wan0 | lan0 bridge] ── [host a1]
 *   [host] ──┼── "internet" namespace, bridge br0 ┤        (NAT per nftables recipe)   └─ [host a2]
 *            │    203.0.113.0/24 (documentation)  └── [router B] ── ...
 * ```
 *
 * Every namespace is named `p2pt-<pid>-<lab>-<random>-<role>`; nothing is ever configured in
 * the root namespace (veth pairs are created directly inside lab namespaces) and there is no
 * route out of the lab. A router may also sit behind another router (`upstream`), which is how a
 * carrier-grade NAT layer is built. A router built with `portmap: true` runs Debian's
 * `miniupnpd-nftables` ({@link NatLab.startPortmap}): NAT-PMP, PCP and UPnP IGD for its LAN.
 *
 * NAT recipes follow `/work/shared/natlab-recipes.md` (verified with RFC 5780 tools).
 *
 * @module
 */

import { P2pProcess, registerEmergencyCleanup, settleEmergencyCleanup } from "./proc.ts";

/** Kinds of router the lab can build. `public` means no router: hosts sit on the upstream. */
export type NatType =
  | "public"
  | "full-cone"
  | "address-restricted"
  | "port-restricted"
  | "symmetric";

/** All NAT types, in order of increasing strictness. */
export const NAT_TYPES: readonly NatType[] = [
  "public",
  "full-cone",
  "address-restricted",
  "port-restricted",
  "symmetric",
];

/** Options for {@link NatLab.addRouter}. */
export interface RouterOptions {
  /** NAT behaviour. */
  nat: NatType;
  /** Short role name used in the namespace name (`[a-z0-9]`, ≤ 12 chars). */
  name?: string;
  /** Router this one sits behind (CGNAT); default: the public segment. */
  upstream?: Router;
  /** First three octets of the LAN /24 (default `10.0.<n>`; e.g. `100.64.0` for a CGNAT). */
  lanPrefix?: string;
  /** Hairpinning: LAN hosts can reach each other via the WAN address (not for `symmetric`). */
  hairpin?: boolean;
  /** UDP conntrack timeouts (unreplied and stream) and cone-map timeout, in seconds. */
  udpTimeoutSec?: number;
  /** Random loss of forwarded UDP packets, in percent (both directions). */
  lossPercent?: number;
  /**
   * Router port mapping: the router's rules live in `table inet filter` with the chains Debian's
   * `miniupnpd-nftables` fills, and {@link NatLab.startPortmap} runs miniupnpd (NAT-PMP, PCP and
   * UPnP IGD) on it. Only for `port-restricted` and `symmetric` routers.
   */
  portmap?: boolean;
}

/** A router (or, for `nat: "public"`, a placeholder whose hosts sit on the upstream segment). */
export interface Router {
  /** Role name. */
  readonly name: string;
  /** NAT behaviour. */
  readonly nat: NatType;
  /** Namespace, or `null` for `public`. */
  readonly ns: string | null;
  /** Address on the upstream segment, or `null` for `public`. */
  readonly wanIp: string | null;
  /** LAN prefix (three octets), or `null` for `public`. */
  readonly lanPrefix: string | null;
  /** Router this one sits behind, or `null` (public segment). */
  readonly upstream: Router | null;
  /** The options it was built with. */
  readonly options: Readonly<RouterOptions>;
}

/** A host namespace with one interface `eth0`. */
export interface Host {
  /** Role name. */
  readonly name: string;
  /** Namespace name, for `ip netns exec` (or the `netns` option of `P2pProcess`). */
  readonly ns: string;
  /** Its address on its segment. */
  readonly ip: string;
  /** The router it sits behind, or `null` if directly on the public segment. */
  readonly router: Router | null;
}

/** Result of {@link NatLab.exec}. */
export interface ExecResult {
  /** Exit code. */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
}

/** Result of {@link labAvailable}. */
export type LabAvailability = { ok: true } | { ok: false; reason: string };

/** Options for {@link NatLab.create}. */
export interface LabOptions {
  /** Prefix of the public segment (three octets, default `203.0.113`). */
  publicPrefix?: string;
}

interface Segment {
  /** Namespace holding the bridge. */
  ns: string;
  /** Bridge name inside `ns`. */
  bridge: string;
  /** Three octets. */
  prefix: string;
  /** Gateway address for attached nodes, or null (flat segment). */
  gateway: string | null;
  /** Next host octet to hand out. */
  next: number;
}

const decoder = new TextDecoder();
const ROLE_RE = /^[a-z0-9]{1,12}$/;
const NS_PREFIX = "p2pt-";

let labCounter = 0;

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

async function run(cmd: readonly string[], stdin?: string): Promise<ExecResult> {
  const [program, ...args] = cmd as [string, ...string[]];
  const child = new Deno.Command(program, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(stdin));
      await w.close();
    } catch {
      // the command may exit without reading; its status tells
    }
  }
  const out = await child.output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

function runSync(cmd: readonly string[]): ExecResult {
  const [program, ...args] = cmd as [string, ...string[]];
  try {
    const out = new Deno.Command(program, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
    };
  } catch (e) {
    return { code: 127, stdout: "", stderr: String(e) };
  }
}

async function check(cmd: readonly string[], stdin?: string): Promise<string> {
  const r = await run(cmd, stdin);
  if (r.code !== 0) {
    const input = stdin === undefined ? "" : `\n--- stdin ---\n${stdin}`;
    throw new Error(`command failed (exit ${r.code}): ${cmd.join(" ")}\n${r.stderr}${input}`);
  }
  return r.stdout;
}

function pidAlive(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

function listNamespaces(): string[] {
  const r = runSync(["ip", "netns", "list"]);
  if (r.code !== 0) return [];
  return r.stdout.split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "").filter((n) => n);
}

function nsPids(ns: string): number[] {
  const r = runSync(["ip", "netns", "pids", ns]);
  if (r.code !== 0) return [];
  return r.stdout.split(/\s+/).filter((s) => s).map(Number).filter((n) => n > 0);
}

/**
 * Delete lab namespaces left behind by test processes that no longer exist (and that have no
 * processes left inside). Namespaces of live test processes are never touched.
 */
export function sweepStaleNamespaces(): string[] {
  const removed: string[] = [];
  for (const ns of listNamespaces()) {
    const m = /^p2pt-(\d+)-/.exec(ns);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === Deno.pid || pidAlive(pid)) continue;
    if (nsPids(ns).length > 0) {
      console.error(`natlab: stale namespace ${ns} still has processes; leaving it`);
      continue;
    }
    if (runSync(["ip", "netns", "del", ns]).code === 0) removed.push(ns);
  }
  return removed;
}

let availability: LabAvailability | undefined;

/**
 * Synchronously check whether the lab can run here: Linux, root, `--allow-run`, `ip`, `nft`
 * and `conntrack` present, and a namespace with a bridge, a veth pair and an nftables table
 * can be created. Memoized.
 */
export function labAvailable(): LabAvailability {
  availability ??= probe();
  return availability;
}

function probe(): LabAvailability {
  if (Deno.build.os !== "linux") return { ok: false, reason: `needs Linux, not ${Deno.build.os}` };
  for (const name of ["run", "read", "sys", "env"] as const) {
    if (Deno.permissions.querySync({ name }).state !== "granted") {
      return { ok: false, reason: `needs --allow-${name} (run with -A)` };
    }
  }
  if (Deno.uid() !== 0) return { ok: false, reason: `needs root (uid is ${Deno.uid()})` };
  for (const [tool, arg] of [["ip", "-V"], ["nft", "--version"], ["conntrack", "--version"]]) {
    const r = runSync([tool!, arg!]);
    if (r.code !== 0) return { ok: false, reason: `${tool} not usable: ${r.stderr.trim()}` };
  }
  const ns = `${NS_PREFIX}${Deno.pid}-probe${randomHex(3)}`;
  const add = runSync(["ip", "netns", "add", ns]);
  if (add.code !== 0) {
    return { ok: false, reason: `cannot create a network namespace: ${add.stderr.trim()}` };
  }
  try {
    const steps: string[][] = [
      ["ip", "-n", ns, "link", "add", "b0", "type", "bridge"],
      ["ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
      ["ip", "netns", "exec", ns, "nft", "add", "table", "ip", "probe"],
      ["ip", "netns", "exec", ns, "sysctl", "-w", "net.ipv4.ip_forward=1"],
    ];
    for (const step of steps) {
      const r = runSync(step);
      if (r.code !== 0) {
        return { ok: false, reason: `lab probe failed: ${step.join(" ")}: ${r.stderr.trim()}` };
      }
    }
    return { ok: true };
  } finally {
    runSync(["ip", "netns", "del", ns]);
  }
}

/**
 * Definition of a test that needs the lab, for `Deno.test(labTest(name, fn))`. If the lab is
 * unavailable: with `CI=true` the test fails with the reason; otherwise it is ignored and a
 * `SKIP: <name>: <reason>` line is printed at registration time.
 */
export function labTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: Omit<Deno.TestDefinition, "name" | "fn"> = {},
): Deno.TestDefinition {
  const cap = labAvailable();
  if (cap.ok) return { ...options, name, fn };
  return unavailableTest(
    name,
    fn,
    options,
    cap.reason,
    `NAT lab unavailable (CI=true, so this fails): ${cap.reason}`,
  );
}

/**
 * Definition of a test whose prerequisites are missing: under `CI=true` it fails with
 * `ciMessage`; otherwise it is ignored and `SKIP: <name>: <reason>` is printed.
 */
function unavailableTest(
  name: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: Omit<Deno.TestDefinition, "name" | "fn">,
  reason: string,
  ciMessage: string,
): Deno.TestDefinition {
  let ci = false;
  try {
    ci = Deno.env.get("CI") === "true";
  } catch {
    // no env permission: not CI as far as we can tell
  }
  if (ci) {
    return {
      ...options,
      name,
      fn: () => {
        throw new Error(ciMessage);
      },
    };
  }
  console.log(`SKIP: ${name}: ${reason}`);
  return { ...options, name, ignore: true, fn };
}

/**
 * Like {@link labTest}, for a test that also runs external `tools` (Debian package `pkg`) in
 * the lab: when one is missing it is skipped with a visible reason, or fails under `CI=true`.
 */
export function labToolTest(
  name: string,
  tools: readonly string[],
  pkg: string,
  fn: (t: Deno.TestContext) => Promise<void>,
  options: Omit<Deno.TestDefinition, "name" | "fn"> = {},
): Deno.TestDefinition {
  const missing = missingTools(tools);
  if (missing.length === 0 || !labAvailable().ok) return labTest(name, fn, options);
  const reason = `${missing.join(", ")} not found (apt-get install ${pkg})`;
  return unavailableTest(name, fn, options, reason, `${reason}; CI=true, so this fails`);
}

/** Those of `tools` that are not executables on `PATH`. */
export function missingTools(tools: readonly string[]): string[] {
  return tools.filter((t) => !onPath(t));
}

/** Whether `tool` is an executable file in a directory of `PATH`. */
function onPath(tool: string): boolean {
  let path = "";
  try {
    path = Deno.env.get("PATH") ?? "";
  } catch {
    return false;
  }
  for (const dir of path.split(":")) {
    if (!dir) continue;
    try {
      const st = Deno.statSync(`${dir}/${tool}`);
      if (st.isFile && ((st.mode ?? 0o111) & 0o111) !== 0) return true;
    } catch {
      // not here
    }
  }
  return false;
}

/**
 * A lab instance. Build with {@link NatLab.create}, add routers and hosts, run processes in
 * hosts with `ip netns exec` (the `netns` option of `P2pProcess`), and {@link destroy} it (or use
 * `await using`). Namespaces are also removed on SIGINT/SIGTERM and on unload.
 */
export class NatLab implements AsyncDisposable {
  #id: string;
  #namespaces: string[] = [];
  #roles = new Set<string>();
  #public: Segment;
  #lans = new Map<Router, Segment>();
  #routers: Router[] = [];
  #hosts: Host[] = [];
  #ports = 0;
  #routerCount = 0;
  #destroyed = false;
  #unregister: () => void;
  /** Daemons the lab started itself (miniupnpd), stopped first by {@link destroy}. */
  #daemons: P2pProcess[] = [];
  #tempDirs: string[] = [];

  private constructor(id: string, publicPrefix: string) {
    this.#id = id;
    this.#public = {
      ns: `${id}-inet`,
      bridge: "br0",
      prefix: publicPrefix,
      gateway: null,
      next: 1,
    };
    this.#unregister = registerEmergencyCleanup(() => this.destroySync(), { nsPrefix: id });
  }

  /** Build an empty lab: the "internet" namespace with its bridge. */
  static async create(opts: LabOptions = {}): Promise<NatLab> {
    const cap = labAvailable();
    if (!cap.ok) throw new Error(`NAT lab unavailable: ${cap.reason}`);
    sweepStaleNamespaces();
    const id = `${NS_PREFIX}${Deno.pid}-${++labCounter}-${randomHex(2)}`;
    const lab = new NatLab(id, opts.publicPrefix ?? "203.0.113");
    try {
      const seg = lab.#public;
      await lab.#addNamespace(seg.ns);
      await lab.#ipBatch(seg.ns, [
        `link add ${seg.bridge} type bridge forward_delay 0 stp_state 0`,
        `link set ${seg.bridge} up`,
      ]);
    } catch (e) {
      await lab.destroy();
      throw e;
    }
    return lab;
  }

  /** Unique id of this lab (prefix of all its namespace names). */
  get id(): string {
    return this.#id;
  }

  /** Namespaces created so far. */
  get namespaces(): readonly string[] {
    return this.#namespaces;
  }

  /** Routers added so far. */
  get routers(): readonly Router[] {
    return this.#routers;
  }

  /** Hosts added so far. */
  get hosts(): readonly Host[] {
    return this.#hosts;
  }

  /** Daemons the lab started (miniupnpd), for diagnostics. */
  get daemons(): readonly P2pProcess[] {
    return this.#daemons;
  }

  /** Add a host directly on the public segment (e.g. the rendezvous server). */
  addPublicHost(name: string): Promise<Host> {
    return this.#addHostOn(this.#public, name, null);
  }

  /**
   * Add a router of the given type with an empty LAN. For `nat: "public"` no namespace is made;
   * hosts added to it go on its upstream segment.
   */
  async addRouter(opts: RouterOptions): Promise<Router> {
    this.#assertLive();
    const n = ++this.#routerCount;
    const name = opts.name ?? `r${n}`;
    const upstreamSeg = opts.upstream ? this.#lanOf(opts.upstream) : this.#public;
    if (opts.nat === "public") {
      const router: Router = {
        name,
        nat: "public",
        ns: null,
        wanIp: null,
        lanPrefix: null,
        upstream: opts.upstream ?? null,
        options: { ...opts },
      };
      this.#claimRole(name);
      this.#routers.push(router);
      this.#lans.set(router, upstreamSeg);
      return router;
    }
    if (opts.hairpin && opts.nat === "symmetric") {
      throw new Error("natlab: hairpin is not supported for symmetric routers");
    }
    if (opts.lossPercent !== undefined && !(opts.lossPercent >= 0 && opts.lossPercent <= 100)) {
      throw new Error(`natlab: lossPercent out of range: ${opts.lossPercent}`);
    }
    if (opts.portmap && !(opts.nat === "symmetric" || opts.nat === "port-restricted")) {
      throw new Error(
        `natlab: portmap needs a symmetric or port-restricted router, not ${opts.nat}`,
      );
    }
    if (opts.portmap && opts.hairpin) throw new Error("natlab: portmap routers have no hairpin");
    this.#claimRole(name);
    const ns = `${this.#id}-${name}`;
    const lanPrefix = opts.lanPrefix ?? `10.0.${n}`;
    if (!/^\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(lanPrefix)) {
      throw new Error(`natlab: lanPrefix must be three octets, got ${lanPrefix}`);
    }
    const lan: Segment = {
      ns,
      bridge: "lan0",
      prefix: lanPrefix,
      gateway: `${lanPrefix}.1`,
      next: 10,
    };
    await this.#addNamespace(ns);
    await this.#ipBatch(ns, [
      `link add lan0 type bridge forward_delay 0 stp_state 0`,
      `addr add ${lan.gateway}/24 dev lan0`,
      `link set lan0 up`,
    ]);
    const wanIp = await this.#attach(upstreamSeg, ns, "wan0");
    const router: Router = {
      name,
      nat: opts.nat,
      ns,
      wanIp,
      lanPrefix,
      upstream: opts.upstream ?? null,
      options: { ...opts },
    };
    await check(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    const rules = opts.portmap ? portmapRuleset(router) : natRuleset(router);
    await check(["ip", "netns", "exec", ns, "nft", "-f", "-"], rules);
    if (opts.udpTimeoutSec !== undefined) {
      const t = Math.max(1, Math.round(opts.udpTimeoutSec));
      await check([
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        `net.netfilter.nf_conntrack_udp_timeout=${t}`,
        `net.netfilter.nf_conntrack_udp_timeout_stream=${t}`,
      ]);
    }
    this.#routers.push(router);
    this.#lans.set(router, lan);
    return router;
  }

  /** Add a host on `router`'s LAN (or on the public segment for `null`). */
  addHost(router: Router | null, name: string): Promise<Host> {
    if (router === null) return this.addPublicHost(name);
    return this.#addHostOn(this.#lanOf(router), name, router);
  }

  /**
   * Give `host` one more address on its segment (e.g. a public server's second address for
   * RFC 5780 STUN behaviour discovery); returns it.
   */
  async addAddress(host: Host): Promise<string> {
    this.#assertLive();
    const seg = host.router === null ? this.#public : this.#lanOf(host.router);
    if (seg.next > 254) throw new Error(`natlab: segment ${seg.prefix}.0/24 is full`);
    const ip = `${seg.prefix}.${seg.next++}`;
    await this.#ipBatch(host.ns, [`addr add ${ip}/24 dev eth0`]);
    return ip;
  }

  /**
   * Start miniupnpd on a `portmap` router and wait until it serves NAT-PMP and PCP (UDP 5351)
   * and UPnP IGD (`http://<lan>.1:5000/rootDesc.xml`) with port forwarding enabled. It learns its
   * public address from `stun` (`IP:PORT` of a STUN server that honours CHANGE-REQUEST from a
   * second address, such as `p2p serve --alt-host --alt-port`), which must already be running.
   * {@link destroy} stops it.
   */
  async startPortmap(router: Router, stun: string, timeoutMs = 15_000): Promise<P2pProcess> {
    this.#assertLive();
    if (!router.options.portmap || router.ns === null) {
      throw new Error(`natlab: router ${router.name} was not built with portmap: true`);
    }
    const dir = await Deno.makeTempDir({ prefix: "p2p-miniupnpd-" });
    this.#tempDirs.push(dir);
    const conf = `${dir}/miniupnpd.conf`;
    await Deno.writeTextFile(conf, miniupnpdConfig(router, stun));
    // miniupnpd neither creates nor flushes its chains: start from empty ones.
    for (const c of MINIUPNPD_CHAINS) {
      await this.execCheck(router.ns, "nft", "flush", "chain", "inet", "filter", c);
    }
    const proc = new P2pProcess(["miniupnpd", "-d", "-f", conf, "-P", `${dir}/miniupnpd.pid`], {
      netns: router.ns,
      label: `miniupnpd@${router.name}`,
    });
    this.#daemons.push(proc);
    const ready = () => /Listening for NAT-PMP\/PCP/.test(proc.stderr);
    try {
      await waitUntil(() => ready() || proc.exitCode !== null, timeoutMs, "miniupnpd to listen");
    } catch {
      // reported below with its log
    }
    const refused = /reserved|restrictive|STUN: .*fail/i.exec(proc.stderr);
    if (!ready() || refused) {
      throw new Error(
        `natlab: miniupnpd on ${router.name} ${
          refused ? `refuses port forwarding ("${refused[0]}")` : "did not come up"
        }:\n${proc.stderr.slice(-3000)}`,
      );
    }
    return proc;
  }

  /** Run `cmd` inside namespace `ns`; never throws for a non-zero exit. */
  exec(ns: string, ...cmd: string[]): Promise<ExecResult> {
    return run(["ip", "netns", "exec", ns, ...cmd]);
  }

  /** Like {@link exec}, but throws (with stderr) on a non-zero exit; returns stdout. */
  execCheck(ns: string, ...cmd: string[]): Promise<string> {
    return check(["ip", "netns", "exec", ns, ...cmd]);
  }

  /** `conntrack -L -p udp` on a router (stdout and the summary line), for diagnostics. */
  async conntrackDump(router: Router): Promise<string> {
    if (router.ns === null) return `(${router.name}: public, no router)`;
    const r = await this.exec(router.ns, "conntrack", "-L", "-p", "udp");
    return `${router.name} (${router.nat}, wan ${router.wanIp}) conntrack -L -p udp:\n` +
      (r.stdout.trim() || "  (no udp entries)") + `\n${r.stderr.trim()}`;
  }

  /** The router's current nftables ruleset (for diagnostics). */
  async ruleset(router: Router): Promise<string> {
    if (router.ns === null) return `(${router.name}: public, no router)`;
    const r = await this.exec(router.ns, "nft", "list", "ruleset");
    return r.stdout + r.stderr;
  }

  /**
   * Packets the router dropped on its WAN side (unsolicited inbound) so far: the sum of its
   * `wan_drop` counter. `loss` gives the random-loss counter instead.
   */
  async drops(router: Router, which: "wan" | "loss" = "wan"): Promise<number> {
    if (router.ns === null) return 0;
    const name = which === "wan" ? "wan_drop" : "loss_drop";
    const family = router.options.portmap ? "inet" : "ip";
    const out = await this.execCheck(
      router.ns,
      "nft",
      "-j",
      "list",
      "counter",
      family,
      "filter",
      name,
    );
    const json = JSON.parse(out) as { nftables: Array<{ counter?: { packets: number } }> };
    return json.nftables.reduce((sum, item) => sum + (item.counter?.packets ?? 0), 0);
  }

  /** Flush conntrack state on a router (or all routers). */
  async flushConntrack(router?: Router): Promise<void> {
    for (const r of router ? [router] : this.#routers) {
      if (r.ns !== null) await this.exec(r.ns, "conntrack", "-F");
    }
  }

  /** Conntrack dumps of the given routers (default: all), joined, for failure messages. */
  async diagnostics(routers: readonly Router[] = this.#routers): Promise<string> {
    const parts: string[] = [];
    for (const r of routers) parts.push(await this.conntrackDump(r));
    return parts.join("\n\n");
  }

  /**
   * Kill every process still running inside the lab's namespaces and delete them all
   * (idempotent).
   */
  async destroy(): Promise<void> {
    for (const p of this.#daemons) await p.close();
    this.destroySync();
    await settleEmergencyCleanup();
  }

  /** Synchronous {@link destroy} (used from signal handlers and `unload`). */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    const all = [...this.#namespaces].reverse();
    for (const ns of all) {
      for (const pid of nsPids(ns)) {
        try {
          Deno.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
    for (const ns of all) runSync(["ip", "netns", "del", ns]);
    this.#namespaces = [];
    for (const dir of this.#tempDirs) {
      try {
        Deno.removeSync(dir, { recursive: true });
      } catch {
        // already gone
      }
    }
    this.#unregister();
  }

  /** Same as {@link destroy}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  // -------------------------------------------------------------------------------------------

  #assertLive(): void {
    if (this.#destroyed) throw new Error("natlab: lab already destroyed");
  }

  #claimRole(name: string): void {
    if (!ROLE_RE.test(name)) throw new Error(`natlab: bad role name ${JSON.stringify(name)}`);
    if (name === "inet" || this.#roles.has(name)) {
      throw new Error(`natlab: role name ${name} already used`);
    }
    this.#roles.add(name);
  }

  #lanOf(router: Router): Segment {
    const seg = this.#lans.get(router);
    if (!seg) throw new Error(`natlab: router ${router.name} is not from this lab`);
    return seg;
  }

  async #addNamespace(ns: string): Promise<void> {
    this.#assertLive();
    await check(["ip", "netns", "add", ns]);
    this.#namespaces.push(ns);
    await this.#ipBatch(ns, ["link set lo up"]);
  }

  async #ipBatch(ns: string, commands: readonly string[]): Promise<void> {
    await check(["ip", "-n", ns, "-batch", "-"], commands.join("\n") + "\n");
  }

  async #addHostOn(seg: Segment, name: string, router: Router | null): Promise<Host> {
    this.#assertLive();
    this.#claimRole(name);
    const ns = `${this.#id}-${name}`;
    await this.#addNamespace(ns);
    const ip = await this.#attach(seg, ns, "eth0");
    const host: Host = { name, ns, ip, router };
    this.#hosts.push(host);
    return host;
  }

  /** Connect namespace `ns` to a segment with a veth `ifname`; returns its address. */
  async #attach(seg: Segment, ns: string, ifname: string): Promise<string> {
    if (seg.next > 254) throw new Error(`natlab: segment ${seg.prefix}.0/24 is full`);
    const ip = `${seg.prefix}.${seg.next++}`;
    const port = `v${++this.#ports}`;
    await this.#ipBatch(seg.ns, [
      `link add ${port} type veth peer name ${ifname} netns ${ns}`,
      `link set ${port} master ${seg.bridge}`,
      `link set ${port} up`,
    ]);
    const cmds = [`addr add ${ip}/24 dev ${ifname}`, `link set ${ifname} up`];
    if (seg.gateway) cmds.push(`route add default via ${seg.gateway} dev ${ifname}`);
    await this.#ipBatch(ns, cmds);
    await waitUntil(
      async () => await linkUp(ns, ifname) && await bridgePortForwarding(seg.ns, port),
      5000,
      `link ${ns}/${ifname} up and bridge port ${seg.ns}/${port} forwarding`,
    );
    return ip;
  }
}

async function linkUp(ns: string, ifname: string): Promise<boolean> {
  const r = await run(["ip", "-n", ns, "-j", "link", "show", "dev", ifname]);
  if (r.code !== 0) return false;
  const [link] = JSON.parse(r.stdout) as Array<{ operstate?: string; flags?: string[] }>;
  return link?.operstate === "UP" && (link.flags ?? []).includes("LOWER_UP");
}

async function bridgePortForwarding(ns: string, port: string): Promise<boolean> {
  const r = await run(["ip", "-n", ns, "-j", "-d", "link", "show", "dev", port]);
  if (r.code !== 0) return false;
  const [link] = JSON.parse(r.stdout) as Array<
    { linkinfo?: { info_slave_data?: { state?: string } } }
  >;
  return link?.linkinfo?.info_slave_data?.state === "forwarding";
}

/** Poll `cond` every 20 ms until it holds, or throw after `timeoutMs`. */
export async function waitUntil(
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() >= deadline) throw new Error(`natlab: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The nftables ruleset for a router (exported for inspection and documentation). */
export function natRuleset(router: Router): string {
  const { nat, wanIp, lanPrefix, options } = router;
  if (nat === "public" || wanIp === null || lanPrefix === null) {
    throw new Error("natlab: public routers have no ruleset");
  }
  const timeout = `${Math.max(1, Math.round(options.udpTimeoutSec ?? 300))}s`;
  const cone = nat === "full-cone" || nat === "address-restricted";
  const useMap = cone || (nat === "port-restricted" && options.hairpin === true);
  const hairpin = options.hairpin === true;
  const lan = `${lanPrefix}.0/24`;

  const natTable = [
    "table ip nat {",
    useMap
      ? `  map fc { type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout ${timeout}; }`
      : "",
    "  chain pre {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    useMap
      ? `    ${
        hairpin ? `ip daddr ${wanIp}` : `iif "wan0"`
      } meta l4proto udp dnat to udp dport map @fc`
      : "",
    "  }",
    "  chain post {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    useMap
      ? `    oif "wan0" meta l4proto udp update @fc { udp sport timeout ${timeout} : ip saddr . udp sport }`
      : "",
    hairpin ? `    oif "lan0" ip saddr ${lan} ct status dnat snat to ${wanIp}` : "",
    nat === "symmetric" ? `    oif "wan0" masquerade random` : `    oif "wan0" snat to ${wanIp}`,
    "  }",
    "}",
  ];

  let filterLine = "";
  if (nat === "full-cone") filterLine = `    iif "wan0" ct status dnat accept`;
  if (nat === "address-restricted") {
    filterLine = `    iif "wan0" meta l4proto udp ip daddr . udp dport . ip saddr @seen accept`;
  }
  const loss = options.lossPercent ?? 0;
  const filterTable = [
    "table ip filter {",
    "  counter wan_drop { }",
    "  counter loss_drop { }",
    nat === "address-restricted"
      ? `  set seen { type ipv4_addr . inet_service . ipv4_addr; flags dynamic,timeout; timeout ${timeout}; }`
      : "",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    `    iif "wan0" ct state new counter name "wan_drop" drop`,
    "  }",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    loss > 0
      ? `    meta l4proto udp numgen random mod 100 < ${
        Math.round(loss)
      } counter name "loss_drop" drop`
      : "",
    nat === "address-restricted"
      ? `    iif "lan0" oif "wan0" meta l4proto udp update @seen { ip saddr . udp sport . ip daddr }`
      : "",
    `    iif "wan0" ct state established,related accept`,
    filterLine,
    `    iif "wan0" counter name "wan_drop" drop`,
    "  }",
    "}",
  ];
  return [...natTable, ...filterTable].filter((l) => l !== "").join("\n") + "\n";
}

/** Chains Debian's `miniupnpd-nftables` adds its rules to (it never creates them). */
export const MINIUPNPD_CHAINS = ["miniupnpd", "prerouting_miniupnpd", "postrouting_miniupnpd"];

/**
 * The nftables ruleset of a router with `portmap` (see `../shared/natlab-recipes.md`, "Port
 * mapping"): everything in `table inet filter`, miniupnpd's own chains jumped to before the WAN
 * drop, and the NAT applied to LAN sources only (`masquerade random` would otherwise also move
 * the router's own STUN source ports, and miniupnpd would conclude it sits behind a strict NAT).
 */
export function portmapRuleset(router: Router): string {
  const { nat, wanIp, lanPrefix, options } = router;
  if (wanIp === null || lanPrefix === null || !options.portmap) {
    throw new Error("natlab: not a portmap router");
  }
  const loss = Math.round(options.lossPercent ?? 0);
  const snat = nat === "symmetric" ? "masquerade random" : `snat ip to ${wanIp}`;
  return [
    "table inet filter {",
    "  counter wan_drop { }",
    "  counter loss_drop { }",
    "  chain input {",
    "    type filter hook input priority filter; policy accept;",
    "    ct state established,related accept",
    "    jump miniupnpd",
    `    iifname "wan0" ct state new counter name "wan_drop" drop`,
    "  }",
    "  chain forward {",
    "    type filter hook forward priority filter; policy accept;",
    loss > 0
      ? `    meta l4proto udp numgen random mod 100 < ${loss} counter name "loss_drop" drop`
      : "",
    `    iifname "wan0" ct state established,related accept`,
    "    jump miniupnpd",
    `    iifname "wan0" counter name "wan_drop" drop`,
    "  }",
    "  chain prerouting {",
    "    type nat hook prerouting priority dstnat; policy accept;",
    "    jump prerouting_miniupnpd",
    "  }",
    "  chain postrouting {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    "    jump postrouting_miniupnpd",
    `    oifname "wan0" ip saddr ${lanPrefix}.0/24 ${snat}`,
    "  }",
    ...MINIUPNPD_CHAINS.map((c) => `  chain ${c} {\n  }`),
    "}",
  ].filter((l) => l !== "").join("\n") + "\n";
}

/** miniupnpd's configuration for a portmap router (NAT-PMP and PCP on 5351, UPnP on 5000). */
export function miniupnpdConfig(router: Router, stun: string): string {
  const i = stun.lastIndexOf(":");
  return [
    "ext_ifname=wan0",
    "listening_ip=lan0",
    // Fixed, so that UPnP clients can be pointed at http://GATEWAY:5000/rootDesc.xml.
    "http_port=5000",
    // In 2.3.1 this turns on NAT-PMP and PCP (enable_pcp_pmp does not exist and is fatal).
    "enable_natpmp=yes",
    "enable_upnp=yes",
    "ipv6_disable=yes",
    "secure_mode=yes",
    "system_uptime=no",
    "notify_interval=60",
    "min_lifetime=120",
    "max_lifetime=86400",
    "uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b",
    `friendly_name=${router.name} lab router`,
    // miniupnpd counts the lab's 203.0.113.0/24 as reserved and would refuse every mapping;
    // a STUN server that honours CHANGE-REQUEST (p2p serve --alt-host --alt-port) tells it the
    // address is public and unfiltered for it.
    "ext_perform_stun=yes",
    `ext_stun_host=${stun.slice(0, i)}`,
    `ext_stun_port=${stun.slice(i + 1)}`,
    `allow 1024-65535 ${router.lanPrefix}.0/24 1024-65535`,
    "deny 0-65535 0.0.0.0/0 0-65535",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// UDP tool: a tiny JSON-lines UDP endpoint for validating the lab without p2p.

/**
 * Source of the UDP tool run with `deno eval`. Arguments: `MODE BIND...` where MODE is `plain`
 * or `reflect` and each BIND is `IP:PORT` (port 0 = any). Prints
 * `{"event":"bound","index":i,"addr":...}` per socket, then `{"event":"recv","local":...,
 * "from":...,"text":...}` per datagram; in `reflect` mode it answers each datagram with the
 * text `{"observed":"IP:PORT","text":<received text>}` (the sender as seen). Each stdin line `{"to":"IP:PORT","text":...,"from":i}`
 * sends a datagram from socket `i` (default 0) and prints `{"event":"sent",...}`.
 */
export const UDP_TOOL_SOURCE = `
const [mode, ...binds] = Deno.args;
const enc = new TextEncoder();
const dec = new TextDecoder();
const out = (o) => console.log(JSON.stringify(o));
const ep = (s) => {
  const i = s.lastIndexOf(":");
  return { transport: "udp", hostname: s.slice(0, i), port: Number(s.slice(i + 1)) };
};
const str = (a) => a.hostname + ":" + a.port;
const socks = binds.map((b) => Deno.listenDatagram(ep(b)));
socks.forEach((s, index) => out({ event: "bound", index, addr: str(s.addr) }));
for (const s of socks) {
  (async () => {
    try {
      for await (const [data, from] of s) {
        const f = str(from);
        out({ event: "recv", local: str(s.addr), from: f, text: dec.decode(data) });
        if (mode === "reflect") {
          const reply = JSON.stringify({ observed: f, text: dec.decode(data) });
          await s.send(enc.encode(reply), from);
        }
      }
    } catch (e) {
      out({ event: "error", local: str(s.addr), message: String(e) });
    }
  })();
}
let buf = "";
for await (const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
  buf += chunk;
  let nl;
  while ((nl = buf.indexOf("\\n")) >= 0) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (!line.trim()) continue;
    const cmd = JSON.parse(line);
    const s = socks[cmd.from ?? 0];
    try {
      await s.send(enc.encode(cmd.text), ep(cmd.to));
      out({ event: "sent", local: str(s.addr), to: cmd.to, text: cmd.text });
    } catch (e) {
      out({ event: "error", to: cmd.to, message: String(e) });
    }
  }
}
Deno.exit(0);
`;

/** A running UDP tool (see {@link UDP_TOOL_SOURCE}). */
export class UdpTool implements AsyncDisposable {
  #proc: P2pProcess;
  #addrs: string[];

  private constructor(proc: P2pProcess, addrs: string[]) {
    this.#proc = proc;
    this.#addrs = addrs;
  }

  /**
   * Start the tool in `host` (or on the root namespace's loopback for `null`) with one socket
   * per bind address, and wait until all are bound.
   */
  static async start(
    host: Host | null,
    binds: readonly string[],
    opts: { reflect?: boolean; label?: string; timeoutMs?: number } = {},
  ): Promise<UdpTool> {
    const mode = opts.reflect ? "reflect" : "plain";
    const proc = new P2pProcess(
      [Deno.execPath(), "eval", "--unstable-net", UDP_TOOL_SOURCE, mode, ...binds],
      {
        ...(host ? { netns: host.ns } : {}),
        label: opts.label ?? `udp-tool@${host?.name ?? "root"}`,
      },
    );
    try {
      const addrs: string[] = [];
      for (let i = 0; i < binds.length; i++) {
        const ev = await proc.waitFor(
          (e) => e.event === "bound" && e.index === i,
          opts.timeoutMs ?? 15_000,
          `bound #${i}`,
        );
        addrs.push(String(ev.addr));
      }
      return new UdpTool(proc, addrs);
    } catch (e) {
      await proc.close();
      throw e;
    }
  }

  /** The underlying process (events, stderr, waitFor). */
  get proc(): P2pProcess {
    return this.#proc;
  }

  /** Bound local addresses, by socket index. */
  get addrs(): readonly string[] {
    return this.#addrs;
  }

  /** Send `text` to `to` from socket `from` and wait until it has been handed to the kernel. */
  async send(to: string, text: string, from = 0, timeoutMs = 5000): Promise<void> {
    await this.#proc.send(JSON.stringify({ to, text, from }));
    await this.#proc.waitFor(
      (e) => e.event === "sent" && e.to === to && e.text === text,
      timeoutMs,
      `sent ${text} to ${to}`,
    );
  }

  /** Wait for a datagram with `text` (and, if given, from `from`). */
  recv(text: string, timeoutMs: number, from?: string): Promise<{ from: string; text: string }> {
    return this.#proc.waitFor(
      (e) => e.event === "recv" && e.text === text && (from === undefined || e.from === from),
      timeoutMs,
      `recv ${JSON.stringify(text)}${from ? ` from ${from}` : ""}`,
    ).then((e) => ({ from: String(e.from), text: String(e.text) }));
  }

  /** Texts received so far (optionally only those from `from`). */
  received(from?: string): string[] {
    return this.#proc.eventsOf("recv")
      .filter((e) => from === undefined || e.from === from)
      .map((e) => String(e.text));
  }

  /**
   * Ask a reflector at `reflector` which public `IP:PORT` it sees for socket `from`.
   * Retries every 200 ms (UDP may be dropped) until `timeoutMs`.
   */
  async observe(reflector: string, from = 0, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (let attempt = 0;; attempt++) {
      const text = `observe-${from}-${attempt}`;
      await this.send(reflector, text, from);
      try {
        const ev = await this.#proc.waitFor(
          (e) => {
            if (e.event !== "recv" || e.from !== reflector || e.local !== this.#addrs[from]) {
              return false;
            }
            const reply = parseReflection(e.text);
            return reply?.text === text;
          },
          Math.max(1, Math.min(200, deadline - Date.now())),
          `reflection of ${text} from ${reflector}`,
        );
        return parseReflection(ev.text)!.observed;
      } catch (e) {
        if (Date.now() >= deadline) throw e;
      }
    }
  }

  /** Stop the tool (closes stdin, kills if needed, awaits everything). */
  async close(): Promise<void> {
    await this.#proc.close();
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Parse a reflector's reply text (`{"observed":...,"text":...}`), or `null`. */
export function parseReflection(text: unknown): { observed: string; text: string } | null {
  if (typeof text !== "string") return null;
  try {
    const v = JSON.parse(text) as { observed?: unknown; text?: unknown };
    if (typeof v.observed === "string" && typeof v.text === "string") {
      return { observed: v.observed, text: v.text };
    }
  } catch {
    // not a reflection
  }
  return null;
}
