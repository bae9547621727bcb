/**
 * The UDP driver: the only module that touches `Deno.listenDatagram`. It owns one socket and
 * one timer and runs a sans-IO state machine: received datagrams and expired timers go in,
 * the machine's transmits go out.
 *
 * One receive buffer is reused for every datagram (the machine must copy what it keeps;
 * the codec does). A failed receive or send is counted, never fatal.
 *
 * Per datagram the driver does as little as it can (a relay server runs this loop once per
 * relayed packet): a send costs one promise reaction and a counter, and the timer is only
 * re-armed when the machine's deadline moves earlier. A timer that fires before the machine's
 * (later) deadline just re-arms, so `handleTimeout` still only runs when something is due.
 *
 * @module
 */
import type { Endpoint, Transmit } from "./wire.ts";

/** What the driver needs from a state machine. */
export interface SansIo {
  /** Handles one received datagram. `data` is only valid during the call. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void;
  /** Advances timers. */
  handleTimeout(now: number): void;
  /** Takes the next datagram to send. */
  pollTransmit(): Transmit | undefined;
  /** When the machine next wants {@link handleTimeout}, if ever. */
  nextTimeout(): number | undefined;
}

/** Options of {@link UdpDriver.bind}. */
export interface DriverOptions {
  /** Called after every step (datagram, timer, or {@link UdpDriver.step}), e.g. to drain events. */
  onStep?: () => void;
  /** Return false to drop a datagram to or from `peer` (test hooks). */
  filter?: (peer: Endpoint) => boolean;
}

/** Counters of a driver. */
export interface DriverStats {
  /** Datagrams received. */
  received: number;
  /** Datagrams sent. */
  sent: number;
  /** Sends the OS refused (e.g. unreachable network). */
  sendErrors: number;
  /** Receives that failed. */
  receiveErrors: number;
  /** Datagrams dropped by the filter. */
  filtered: number;
}

const RECEIVE_BUFFER = 65_536;

/** Milliseconds on a monotonic clock. */
export function monotonicNow(): number {
  return performance.now();
}

/** Owns a UDP socket and runs a state machine on it. */
export class UdpDriver {
  #conn: Deno.DatagramConn;
  #machine: SansIo;
  #o: DriverOptions;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt: number | undefined;
  #closed = false;
  #loop: Promise<void> | undefined;
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

  private constructor(conn: Deno.DatagramConn, machine: SansIo, o: DriverOptions) {
    this.#conn = conn;
    this.#machine = machine;
    this.#o = o;
  }

  /**
   * Binds a UDP socket on `hostname:port` (port 0 picks a free one) for `machine`. Throws a
   * clear error when the address cannot be bound.
   */
  static bind(hostname: string, port: number, machine: SansIo, o: DriverOptions = {}): UdpDriver {
    let conn: Deno.DatagramConn;
    try {
      conn = Deno.listenDatagram({ hostname, port, transport: "udp" });
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(
        `Cannot bind UDP ${hostname}:${port} (${why}); choose another address or port`,
      );
    }
    return new UdpDriver(conn, machine, o);
  }

  /** The bound local endpoint. */
  get localAddr(): Endpoint {
    const a = this.#conn.addr as Deno.NetAddr;
    return { hostname: a.hostname, port: a.port };
  }

  /** Starts receiving and arms the machine's timer. */
  start(): void {
    this.#loop ??= this.#receiveLoop();
    this.#after();
  }

  /** Runs `fn` (an outside input such as a typed line) as a step, then flushes. */
  step(fn: (now: number) => void): void {
    if (this.#closed) return;
    fn(monotonicNow());
    this.#after();
  }

  /** Flushes pending sends, stops the timer, closes the socket and awaits the loop. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    if (this.#pending > 0) {
      this.#drained ??= Promise.withResolvers();
      await this.#drained.promise;
    }
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
    await this.#loop;
  }

  async #receiveLoop(): Promise<void> {
    const buf = new Uint8Array(RECEIVE_BUFFER);
    while (!this.#closed) {
      let data: Uint8Array, addr: Deno.Addr;
      try {
        [data, addr] = await this.#conn.receive(buf);
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) break;
        this.stats.receiveErrors++;
        continue;
      }
      if (this.#closed) break;
      const a = addr as Deno.NetAddr;
      const from = { hostname: a.hostname, port: a.port };
      if (this.#o.filter && !this.#o.filter(from)) {
        this.stats.filtered++;
        continue;
      }
      this.stats.received++;
      this.#machine.handleDatagram(monotonicNow(), from, data);
      this.#after();
    }
  }

  #after(): void {
    this.#flush();
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
      this.#pending++;
      this.#conn.send(t.data, { transport: "udp", hostname: t.to.hostname, port: t.to.port })
        .then(this.#sent, this.#sendFailed);
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
    const at = this.#machine.nextTimeout();
    if (at === undefined || (this.#timerAt !== undefined && this.#timerAt <= at)) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = undefined;
      if (this.#closed) return;
      const now = monotonicNow();
      const due = this.#machine.nextTimeout();
      if (due !== undefined && due <= now) this.#machine.handleTimeout(now);
      this.#after();
    }, Math.max(0, Math.ceil(at - monotonicNow())));
  }
}
