/**
 * The UDP driver: the only module that touches `Deno.listenDatagram`. It owns a machine's
 * sockets and one timer and runs a sans-IO state machine: received datagrams and expired timers
 * go in, the machine's transmits go out.
 *
 * ## Sockets
 *
 * - **Main sockets**: one IPv4 and optionally one IPv6 ({@link DriverOptions.ipv6}). A
 *   {@link Transmit} without `via` (or `via: 0`) leaves from the main socket of its
 *   destination's family; a family with no main socket counts a send error.
 * - **Auxiliary sockets** 1..{@link MAX_AUX_SOCKETS}: IPv4 sockets bound to the main IPv4
 *   socket's address with a fresh OS port, opened on the first Transmit with `via: n`, closed
 *   when the machine's `pollRelease()` returns n (a later send via n opens a fresh socket).
 *   What they receive is delivered with `via: n`. Any other `via` counts a send error.
 *
 * Binding both families on one port: Deno does not set IPV6_V6ONLY, so on a Linux host with the
 * default `net.ipv6.bindv6only = 0` a socket on `[::]:P` also takes IPv4 and conflicts with
 * `0.0.0.0:P`. When the IPv4 socket is on `0.0.0.0`, the IPv6 one on `::` and the ports are the
 * same, the driver binds `[::]:P` first and then tries `0.0.0.0:P`: if that fails with "address
 * in use" the `::` socket is dual-stack and serves both families (IPv4-mapped sources
 * `::ffff:a.b.c.d` are reported as `a.b.c.d`); if it succeeds the host is v6-only and the
 * driver keeps two sockets.
 *
 * Each socket has ONE receive buffer, reused for every datagram (the machine must copy what it
 * keeps; the codec does): a buffer shared by sockets whose receives are pending at once could be
 * overwritten by one before the machine has read the other. Main sockets get 64 KiB, auxiliary
 * ones 2 KiB (more than `MAX_DATAGRAM`; 512 of them cost 1 MiB). A failed receive or
 * send is counted, never fatal and never thrown.
 *
 * Per datagram the driver does as little as it can (a relay server runs this loop once per
 * relayed packet): a send costs one promise reaction and a counter, and the timer is only
 * re-armed when the machine's deadline moves earlier. A timer that fires before the machine's
 * (later) deadline just re-arms, so `handleTimeout` still only runs when something is due.
 *
 * @module
 */
import { monotonicNow, WakeTimer } from "./wake_timer.ts";
import type { Endpoint } from "../wire/address.ts";
import { MAX_AUX_SOCKETS, type Transmit } from "../wire/transmit.ts";

/** What the driver needs from a state machine. */
export interface SansIo {
  /**
   * Handles one received datagram. `data` is only valid during the call. `via`: the socket it
   * arrived on (0 or undefined: a main socket; n: auxiliary socket n).
   */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array, via?: number): void;
  /** Advances timers. */
  handleTimeout(now: number): void;
  /** Takes the next datagram to send. */
  pollTransmit(): Transmit | undefined;
  /** When the machine next wants {@link handleTimeout}, if ever. */
  nextTimeout(): number | undefined;
  /** Auxiliary sockets the machine no longer needs; the driver closes each one returned. */
  pollRelease?(): number | undefined;
}

/** Options of {@link UdpDriver.bind}. */
export interface DriverOptions {
  /** Called after every step (datagram, timer, or {@link UdpDriver.step}), e.g. to drain events. */
  onStep?: () => void;
  /** Return false to drop a datagram to or from `peer` (test hooks). */
  filter?: (peer: Endpoint) => boolean;
  /**
   * Also bind an IPv6 main socket (when the main address given to {@link UdpDriver.bind} is
   * IPv4). With `optional`, a failure to bind it leaves the driver IPv4-only and is reported in
   * {@link UdpDriver.ipv6Error} instead of thrown.
   */
  ipv6?: { hostname: string; port: number; optional?: boolean };
}

/** Counters of a driver. */
export interface DriverStats {
  /** Datagrams received. */
  received: number;
  /** Datagrams sent. */
  sent: number;
  /** Sends the OS refused (e.g. unreachable network), and sends no socket could carry. */
  sendErrors: number;
  /** Receives that failed. */
  receiveErrors: number;
  /** Datagrams dropped by the filter. */
  filtered: number;
}

/** Counters of a driver's auxiliary sockets. */
export interface AuxStats {
  /** Auxiliary sockets opened. */
  opened: number;
  /** Auxiliary sockets closed on the machine's `pollRelease()`. */
  released: number;
  /** Auxiliary sockets that could not be bound (each also counts a send error). */
  bindErrors: number;
}

const RECEIVE_BUFFER = 65_536;
/** Receive buffer of an auxiliary socket: more than `MAX_DATAGRAM`. */
const AUX_RECEIVE_BUFFER = 2_048;

export { monotonicNow } from "./wake_timer.ts";

/** One socket, its buffer, and which `via` it delivers as. */
interface Sock {
  conn: Deno.DatagramConn;
  via: number;
  buf: Uint8Array;
  closed: boolean;
  loop: Promise<void> | undefined;
}

function isV6(hostname: string): boolean {
  return hostname.includes(":");
}

function listen(hostname: string, port: number): Deno.DatagramConn {
  if (typeof Deno.listenDatagram !== "function") throw new Error(NO_UNSTABLE_NET);
  return Deno.listenDatagram({ hostname, port, transport: "udp" });
}

/** What to do when Deno runs without its UDP API (a bundle run without the flag). */
export const NO_UNSTABLE_NET = "UDP needs Deno's --unstable-net flag, which this run lacks: " +
  "run the bundle as `deno run --allow-all --unstable-net dist/p2p.js ...` (deno task serve and " +
  "join, and the compiled binaries, have it already)";

function bindError(hostname: string, port: number, e: unknown): Error {
  if (e instanceof Error && e.message === NO_UNSTABLE_NET) return e;
  const why = e instanceof Error ? e.message : String(e);
  const host = isV6(hostname) ? `[${hostname}]` : hostname;
  return new Error(`Cannot bind UDP ${host}:${port} (${why}); choose another address or port`);
}

function sock(conn: Deno.DatagramConn, via: number, size: number): Sock {
  return { conn, via, buf: new Uint8Array(size), closed: false, loop: undefined };
}

function portOf(conn: Deno.DatagramConn): number {
  return (conn.addr as Deno.NetAddr).port;
}

/** The main sockets: IPv4, IPv6, or one dual-stack socket serving as both. */
interface Mains {
  v4: Deno.DatagramConn | undefined;
  v6: Deno.DatagramConn | undefined;
  /** The hostname auxiliary sockets bind (the IPv4 main socket's). */
  host4: string;
  ipv6Error: string | undefined;
}

/** Binds `[::]:port` first; `0.0.0.0:port` then fails exactly when the `::` socket is dual-stack. */
function bindDualStack(port: number): Mains {
  let v6: Deno.DatagramConn;
  try {
    v6 = listen("::", port);
  } catch (e) {
    throw bindError("::", port, e);
  }
  try {
    return { v4: listen("0.0.0.0", portOf(v6)), v6, host4: "0.0.0.0", ipv6Error: undefined };
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      return { v4: v6, v6, host4: "0.0.0.0", ipv6Error: undefined };
    }
    v6.close();
    throw bindError("0.0.0.0", port, e);
  }
}

function bindMains(hostname: string, port: number, o: DriverOptions["ipv6"]): Mains {
  if (isV6(hostname)) {
    try {
      return { v4: undefined, v6: listen(hostname, port), host4: "0.0.0.0", ipv6Error: undefined };
    } catch (e) {
      throw bindError(hostname, port, e);
    }
  }
  if (o && hostname === "0.0.0.0" && o.hostname === "::" && o.port === port) {
    try {
      return bindDualStack(port);
    } catch (e) {
      if (!o.optional) throw e;
      // No IPv6 on this host: fall through to IPv4 alone.
    }
  }
  let v4: Deno.DatagramConn;
  try {
    v4 = listen(hostname, port);
  } catch (e) {
    throw bindError(hostname, port, e);
  }
  if (!o) return { v4, v6: undefined, host4: hostname, ipv6Error: undefined };
  try {
    return { v4, v6: listen(o.hostname, o.port), host4: hostname, ipv6Error: undefined };
  } catch (e) {
    const err = bindError(o.hostname, o.port, e);
    if (o.optional) return { v4, v6: undefined, host4: hostname, ipv6Error: err.message };
    v4.close();
    throw err;
  }
}

/** Owns a machine's UDP sockets and runs the machine on them. */
export class UdpDriver {
  #main4: Sock | undefined;
  #main6: Sock | undefined;
  #host4: string;
  #aux = new Map<number, Sock>();
  #ipv6Error: string | undefined;
  #machine: SansIo;
  #o: DriverOptions;
  #wake = new WakeTimer();
  #started = false;
  #closed = false;
  /** Sends not settled yet, and who waits for them all to settle ({@link close}). */
  #pending = 0;
  #drained: PromiseWithResolvers<void> | undefined;
  #sent = (): void => {
    this.stats.sent++;
    this.#settled();
  };
  #sendFailed = (): void => {
    this.stats.sendErrors++;
    this.#settled();
  };
  /** Counters. */
  readonly stats: DriverStats = {
    received: 0,
    sent: 0,
    sendErrors: 0,
    receiveErrors: 0,
    filtered: 0,
  };
  /** Counters of the auxiliary sockets. */
  readonly auxStats: AuxStats = { opened: 0, released: 0, bindErrors: 0 };

  private constructor(m: Mains, machine: SansIo, o: DriverOptions) {
    this.#main4 = m.v4 ? sock(m.v4, 0, RECEIVE_BUFFER) : undefined;
    this.#main6 = m.v6 === m.v4 ? this.#main4 : m.v6 ? sock(m.v6, 0, RECEIVE_BUFFER) : undefined;
    this.#host4 = m.host4;
    this.#ipv6Error = m.ipv6Error;
    this.#machine = machine;
    this.#o = o;
  }

  /**
   * Binds a UDP socket on `hostname:port` (port 0 picks a free one; an IPv6 literal binds the
   * IPv6 main socket alone) and, with {@link DriverOptions.ipv6}, an IPv6 one, for `machine`.
   * Throws a clear error when an address cannot be bound.
   */
  static bind(hostname: string, port: number, machine: SansIo, o: DriverOptions = {}): UdpDriver {
    return new UdpDriver(bindMains(hostname, port, o.ipv6), machine, o);
  }

  /** The bound local endpoint: the IPv4 main socket's, else the IPv6 one's. */
  get localAddr(): Endpoint {
    if (this.#main4 && this.#main4 === this.#main6) {
      return { hostname: this.#host4, port: portOf(this.#main4.conn) };
    }
    const a = (this.#main4 ?? this.#main6)!.conn.addr as Deno.NetAddr;
    return { hostname: a.hostname, port: a.port };
  }

  /** The IPv6 main socket's endpoint, if there is one (`::` for a dual-stack socket). */
  get localAddr6(): Endpoint | undefined {
    if (!this.#main6) return undefined;
    const a = this.#main6.conn.addr as Deno.NetAddr;
    return { hostname: a.hostname, port: a.port };
  }

  /** Why the optional IPv6 main socket could not be bound, if it could not. */
  get ipv6Error(): string | undefined {
    return this.#ipv6Error;
  }

  /** The local endpoint of auxiliary socket `n`, while it is open. */
  auxAddr(n: number): Endpoint | undefined {
    const s = this.#aux.get(n);
    if (!s) return undefined;
    const a = s.conn.addr as Deno.NetAddr;
    return { hostname: a.hostname, port: a.port };
  }

  /** How many auxiliary sockets are open. */
  get auxOpen(): number {
    return this.#aux.size;
  }

  /** Starts receiving and arms the machine's timer. */
  start(): void {
    if (this.#closed) return;
    if (!this.#started) {
      this.#started = true;
      for (const s of this.#mains()) this.#listen(s);
      for (const s of this.#aux.values()) this.#listen(s);
    }
    this.#after();
  }

  /** Runs `fn` (an outside input such as a typed line) as a step, then flushes. */
  step(fn: (now: number) => void): void {
    if (this.#closed) return;
    fn(monotonicNow());
    this.#after();
  }

  /** Flushes pending sends, stops the timer, closes every socket and awaits their loops. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    if (this.#pending > 0) {
      this.#drained ??= Promise.withResolvers();
      await this.#drained.promise;
    }
    this.#closed = true;
    this.#wake.cancel();
    const all = [...this.#mains(), ...this.#aux.values()];
    this.#aux.clear();
    for (const s of all) this.#shut(s);
    await Promise.all(all.map((s) => s.loop));
  }

  #mains(): Sock[] {
    const out: Sock[] = [];
    if (this.#main4) out.push(this.#main4);
    if (this.#main6 && this.#main6 !== this.#main4) out.push(this.#main6);
    return out;
  }

  #listen(s: Sock): void {
    s.loop ??= this.#receiveLoop(s);
  }

  #shut(s: Sock): void {
    s.closed = true;
    try {
      s.conn.close();
    } catch {
      // Already closed.
    }
  }

  async #receiveLoop(s: Sock): Promise<void> {
    while (!s.closed) {
      let data: Uint8Array, addr: Deno.Addr;
      try {
        [data, addr] = await s.conn.receive(s.buf);
      } catch (e) {
        if (s.closed) break;
        this.stats.receiveErrors++;
        // The socket is gone (closed under us): nothing more can arrive on it.
        if (e instanceof Deno.errors.BadResource) break;
        continue;
      }
      if (s.closed) break;
      const a = addr as Deno.NetAddr;
      const from = { hostname: unmap(a.hostname), port: a.port };
      if (this.#o.filter && !this.#o.filter(from)) {
        this.stats.filtered++;
        continue;
      }
      this.stats.received++;
      this.#machine.handleDatagram(monotonicNow(), from, data, s.via);
      this.#after();
    }
  }

  #after(): void {
    this.#flush();
    this.#release();
    this.#o.onStep?.();
    this.#arm();
  }

  #flush(): void {
    for (let t = this.#machine.pollTransmit(); t; t = this.#machine.pollTransmit()) {
      if (this.#closed) continue;
      if (this.#o.filter && !this.#o.filter(t.to)) {
        this.stats.filtered++;
        continue;
      }
      const s = this.#socketFor(t);
      if (!s) {
        this.stats.sendErrors++;
        continue;
      }
      this.#pending++;
      s.conn.send(t.data, { transport: "udp", hostname: t.to.hostname, port: t.to.port })
        .then(this.#sent, this.#sendFailed);
    }
  }

  /** The socket a transmit leaves from, or undefined when none can carry it. */
  #socketFor(t: Transmit): Sock | undefined {
    const v6 = isV6(t.to.hostname);
    const via = t.via ?? 0;
    if (via === 0) return v6 ? this.#main6 : this.#main4;
    if (v6 || !Number.isInteger(via) || via < 1 || via > MAX_AUX_SOCKETS || !this.#main4) {
      return undefined;
    }
    return this.#aux.get(via) ?? this.#openAux(via);
  }

  #openAux(n: number): Sock | undefined {
    let conn: Deno.DatagramConn;
    try {
      conn = listen(this.#host4, 0);
    } catch {
      this.auxStats.bindErrors++;
      return undefined;
    }
    const s = sock(conn, n, AUX_RECEIVE_BUFFER);
    this.#aux.set(n, s);
    this.auxStats.opened++;
    if (this.#started) this.#listen(s);
    return s;
  }

  #release(): void {
    const poll = this.#machine.pollRelease;
    if (!poll) return;
    for (let n = poll.call(this.#machine); n !== undefined; n = poll.call(this.#machine)) {
      const s = this.#aux.get(n);
      if (!s) continue;
      this.#aux.delete(n);
      this.#shut(s);
      this.auxStats.released++;
    }
  }

  #settled(): void {
    if (--this.#pending === 0 && this.#drained) {
      this.#drained.resolve();
      this.#drained = undefined;
    }
  }

  /**
   * Makes sure a timer fires by the machine's deadline. A timer already due at or before it is
   * kept (it fires early and re-arms): moving a deadline later, as a relay server does with
   * every datagram when its least recently heard peer changes, costs nothing.
   */
  #arm(): void {
    if (this.#closed) return;
    this.#wake.arm(this.#machine.nextTimeout(), () => {
      if (this.#closed) return;
      const now = monotonicNow();
      const due = this.#machine.nextTimeout();
      if (due !== undefined && due <= now) this.#machine.handleTimeout(now);
      this.#after();
    });
  }
}

/** `::ffff:a.b.c.d` (an IPv4 source on a dual-stack socket) as `a.b.c.d`; others unchanged. */
function unmap(hostname: string): string {
  return hostname.startsWith("::ffff:") && hostname.includes(".") ? hostname.slice(7) : hostname;
}
