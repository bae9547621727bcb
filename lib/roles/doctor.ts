/**
 * `p2p doctor`: runs the pure {@link Doctor} (`lib/nat/doctor.ts`) on UDP sockets against one
 * server and prints what it found: plain words, or with `--json` one JSON object on the last
 * line of stdout. Exit code 0 when UDP reaches the server, 1 when it does not (then it tries a
 * TCP connection to the server's port and says whether `p2p join` gets through over TCP). Sends
 * only to the server given (and, for the hairpin test, to the public address the server
 * reports).
 *
 * @module
 */
import { systemRandom } from "../io/random.ts";
import { DEFAULT_TIMEOUT, describeReport, Doctor, type DoctorEvent } from "../nat/doctor.ts";
import { withTcp } from "../nat/doctor_tcp.ts";
import { resolveHostPort } from "../io/resolve.ts";
import { UdpDriver } from "../io/udp.ts";
import type { Endpoint } from "../wire/address.ts";

/** Time budget of `p2p doctor --lifetime` given without a value, ms. */
export const DEFAULT_LIFETIME_BUDGET = 300_000;

/** Options of {@link doctor} (what `p2p doctor`'s arguments ask for). */
export interface DoctorCliOptions {
  /** The server, `HOST:PORT`. */
  server: string;
  /** One JSON object on stdout instead of plain words. */
  json: boolean;
  /** How long to wait for each answer, ms. */
  timeout: number;
  /** Also measure the mapping lifetime, taking at most this long, ms (null: do not). */
  lifetime: number | null;
}

/** Where {@link doctor} writes (stdout and stderr lines); tests may capture them. */
export interface DoctorOutput {
  /** A line for stdout. */
  out(line: string): void;
  /** A line for stderr. */
  err(line: string): void;
}

const CONSOLE: DoctorOutput = {
  out: (l) => console.log(l),
  err: (l) => console.error(l),
};

/**
 * Resolves the server's `HOST:PORT` to an IPv4 endpoint (the doctor examines IPv4 NAT
 * behaviour; an IPv6 address is refused with a message saying so).
 */
export function resolveServer(spec: string): Promise<Endpoint> {
  return resolveHostPort(spec, "Server", "ipv4");
}

function progress(e: DoctorEvent): string | null {
  if (e.type === "lifetime-probe") {
    const s = e.waitMs / 1000;
    return `  mapping ${e.alive ? "still there" : "gone"} after ${s} s idle`;
  }
  return null;
}

/** Runs `p2p doctor` and returns the exit code (0: UDP reaches the server, 1: it does not). */
export async function doctor(o: DoctorCliOptions, output: DoctorOutput = CONSOLE): Promise<number> {
  const server = await resolveServer(o.server);
  const timeout = o.timeout > 0 ? o.timeout : DEFAULT_TIMEOUT;
  const doc = new Doctor({
    server,
    timeout,
    random: systemRandom,
    ...(o.lifetime !== null ? { lifetime: { budget: o.lifetime } } : {}),
  });
  const finished = Promise.withResolvers<void>();
  let primary: UdpDriver | undefined;
  let secondary: UdpDriver | undefined;
  const drain = () => {
    for (let e = doc.pollEvent(); e; e = doc.pollEvent()) {
      const line = o.json ? null : progress(e);
      if (line) output.err(line);
    }
    if (doc.done) finished.resolve();
  };
  primary = UdpDriver.bind("0.0.0.0", 0, doc, {
    onStep: () => {
      // The hairpin test and lifetime probes leave from the second socket: step it to send.
      if (doc.secondaryPending) secondary?.step(() => {});
      drain();
    },
  });
  try {
    secondary = UdpDriver.bind("0.0.0.0", 0, doc.secondary, {
      // Whatever socket 1 hears may move the machine on: step socket 0 to send and re-arm.
      onStep: () => primary?.step(() => {}),
    });
    if (!o.json) {
      output.err(
        `p2p doctor: asking ${o.server} about your network` +
          (o.lifetime !== null
            ? `; measuring the mapping lifetime takes up to ${Math.round(o.lifetime / 1000)} s`
            : ""),
      );
    }
    primary.start();
    secondary.start();
    const local = primary.localAddr;
    primary.step((now) => doc.start(now, local));
    // Every test ends by itself; this guard only bounds the run if something is amiss.
    const bound = 4 * timeout + (o.lifetime ?? 0) + 5000;
    const guard = setTimeout(() => primary?.step((now) => doc.abort(now)), bound);
    try {
      await finished.promise;
    } finally {
      clearTimeout(guard);
    }
  } finally {
    await primary.close();
    await secondary?.close();
    primary = secondary = undefined;
  }
  const udpOnly = doc.report();
  const report = udpOnly.udp ? udpOnly : withTcp(udpOnly, await tcpConnects(server, timeout));
  if (o.json) {
    output.out(JSON.stringify(report));
    if (!report.udp) output.err(`p2p doctor: ${report.verdict}`);
  } else {
    for (const line of describeReport(report)) output.out(line);
  }
  return report.udp ? 0 : 1;
}

/** Whether a TCP connection to `server` opens within `timeout` ms (closed at once). */
async function tcpConnects(server: Endpoint, timeout: number): Promise<boolean> {
  const attempt = Deno.connect({ hostname: server.hostname, port: server.port, transport: "tcp" });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<null>((r) => timer = setTimeout(() => r(null), timeout));
  try {
    const conn = await Promise.race([attempt, late]);
    if (conn) conn.close();
    // Too late: closed whenever it opens.
    else attempt.then((c) => c.close(), () => {});
    return conn !== null;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
