/**
 * Datagrams over TCP and TLS: the only module besides the roles that touches `Deno.listen`,
 * `Deno.listenTls`, `Deno.connect` and `Deno.connectTls`. Each datagram travels as one frame
 * (`lib/wire/stream_frame.ts`, `docs/protocol.md` 22).
 *
 * - {@link StreamServer} (`p2p serve`): accepts connections on a TCP port (and a TLS one with a
 *   certificate), admits them under a {@link StreamPolicy} (connections in all and per source,
 *   a deadline for the first frame and for idleness, bytes queued, writes that do not
 *   progress), and hands each frame on as a datagram from the connection's endpoint: its
 *   remote address with `stream` = the connection's id.
 * - {@link StreamDialer} (`p2p join`): one connection to a server over TCP or TLS, opened on the
 *   first datagram to send and again (at most once a second) after it closed; what arrives is
 *   handed on as from the server's stream endpoint.
 * - {@link withStreams}: a machine whose transmits to stream endpoints go to a stream sender
 *   and the rest to the UDP driver.
 *
 * Memory per connection: a 2 KiB read buffer, one frame's worth of partial bytes, and at most
 * `maxQueued` bytes waiting to be written (what the OS buffers aside).
 *
 * @module
 */
import { concatBytes } from "../core/bytes.ts";
import {
  DEFAULT_STREAM_LIMITS,
  type StreamDropReason,
  type StreamLimits,
  StreamPolicy,
} from "../core/stream_policy.ts";
import type { Endpoint } from "../wire/address.ts";
import { Deframer, frame } from "../wire/stream_frame.ts";
import type { Transmit } from "../wire/transmit.ts";
import { monotonicNow, type SansIo } from "./udp.ts";
import { WakeTimer } from "./wake_timer.ts";

/** Read buffer of one connection. */
const READ_BUFFER = 2_048;
/** Bytes a dialer queues while its connection is being opened. */
const DIAL_QUEUE = 64 * 1024;
/** Least time between two connection attempts of a dialer, ms. */
const REDIAL_GAP = 1_000;
/** Longest wait for a dialer's last writes when it closes, ms. */
const CLOSE_WAIT = 1_000;

/** `machine` with its transmits to stream endpoints handed to `send` instead of the driver. */
export function withStreams(machine: SansIo, send: (t: Transmit) => void): SansIo {
  return {
    handleDatagram: (now, from, data, via) => machine.handleDatagram(now, from, data, via),
    handleTimeout: (now) => machine.handleTimeout(now),
    nextTimeout: () => machine.nextTimeout(),
    pollRelease: machine.pollRelease ? () => machine.pollRelease!() : undefined,
    pollTransmit: () => {
      for (let t = machine.pollTransmit(); t; t = machine.pollTransmit()) {
        if (t.to.stream === undefined) return t;
        send(t);
      }
      return undefined;
    },
  };
}

/** One open connection and its write queue. */
class Wire {
  #conn: Deno.Conn;
  #queue: Uint8Array[] = [];
  #writing = false;
  #closed = false;
  /** Called with the bytes each completed write took. */
  #wrote: (n: number) => void;
  #failed: () => void;

  constructor(conn: Deno.Conn, wrote: (n: number) => void, failed: () => void) {
    this.#conn = conn;
    this.#wrote = wrote;
    this.#failed = failed;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves once everything queued was handed to the OS (or the connection is gone). */
  async drained(): Promise<void> {
    while (!this.#closed && (this.#writing || this.#queue.length > 0)) {
      this.#idle ??= Promise.withResolvers();
      await this.#idle.promise;
    }
  }

  #idle: PromiseWithResolvers<void> | undefined;

  /** Queues `bytes` and starts writing if idle. */
  write(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#queue.push(bytes);
    if (!this.#writing) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        // Small frames go out together (one write, one segment when they fit).
        const parts = this.#queue.splice(0, 64);
        let data = parts.length === 1 ? parts[0]! : concatBytes(parts);
        while (data.length > 0) {
          const n = await this.#conn.write(data);
          this.#wrote(n);
          data = data.subarray(n);
        }
      }
    } catch {
      if (!this.#closed) this.#failed();
    } finally {
      this.#writing = false;
      this.#idle?.resolve();
      this.#idle = undefined;
    }
  }

  /** Reads chunks into `buf` until the stream ends or fails; `onChunk` gets each one. */
  async read(buf: Uint8Array, onChunk: (chunk: Uint8Array) => boolean): Promise<void> {
    try {
      while (!this.#closed) {
        const n = await this.#conn.read(buf);
        if (n === null || this.#closed) return;
        if (!onChunk(buf.subarray(0, n))) return;
      }
    } catch {
      // Reset, closed under us, or a TLS failure: the connection is over.
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#idle?.resolve();
    this.#idle = undefined;
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** A certificate chain and its private key (PEM text) for a TLS listener. */
export interface TlsFiles {
  /** The certificate chain, PEM. */
  cert: string;
  /** Its private key, PEM. */
  key: string;
}

/** What a {@link StreamServer} listens on. */
export interface StreamServerOptions {
  /** Address to bind. */
  hostname: string;
  /**
   * Also an IPv6 address, same ports (`::` with `0.0.0.0`: one dual-stack listener where the
   * host has them). A failure to bind it leaves the listener IPv4-only.
   */
  hostname6?: string;
  /** TCP port (0: any); undefined: no plain TCP listener. */
  port?: number;
  /** TLS port and certificate; undefined: no TLS listener. */
  tls?: { port: number; files: TlsFiles };
  /** Bounds (default {@link DEFAULT_STREAM_LIMITS}). */
  limits?: StreamLimits;
}

/** Counters of a {@link StreamServer}. */
export interface StreamServerStats {
  /** Connections accepted and admitted. */
  accepted: number;
  /** Connections refused at once (limits), by reason, and dropped later, by reason. */
  dropped: Partial<Record<StreamDropReason, number>>;
  /** Frames received and sent. */
  framesIn: number;
  framesOut: number;
  /** Frames for a connection that is gone, or too large to frame. */
  sendErrors: number;
}

/** Accepts stream connections and runs them as datagram endpoints. */
export class StreamServer {
  #host: string;
  #tcp: Deno.Listener[];
  #tls: Deno.Listener[];
  #policy: StreamPolicy;
  #wires = new Map<number, Wire>();
  #nextId = 1;
  #deliver: (from: Endpoint, data: Uint8Array) => void;
  #wake = new WakeTimer();
  #closed = false;
  #loops: Promise<void>[] = [];
  /** Counters. */
  readonly stats: StreamServerStats = {
    accepted: 0,
    dropped: {},
    framesIn: 0,
    framesOut: 0,
    sendErrors: 0,
  };

  private constructor(
    host: string,
    tcp: Deno.Listener[],
    tls: Deno.Listener[],
    limits: StreamLimits,
    deliver: (from: Endpoint, data: Uint8Array) => void,
  ) {
    this.#host = host;
    this.#tcp = tcp;
    this.#tls = tls;
    this.#policy = new StreamPolicy(limits);
    this.#deliver = deliver;
  }

  /**
   * Listens as `o` says and hands every frame received to `deliver` (in a step of the caller's
   * driver). Throws a clear error when a port cannot be bound.
   */
  static listen(
    o: StreamServerOptions,
    deliver: (from: Endpoint, data: Uint8Array) => void,
  ): StreamServer {
    const tcp: Deno.Listener[] = [], tls: Deno.Listener[] = [];
    let port: number | undefined;
    try {
      if (o.port !== undefined) {
        port = o.port;
        tcp.push(
          ...bindPair(
            o,
            o.port,
            (hostname, p) => Deno.listen({ hostname, port: p, transport: "tcp" }),
          ),
        );
      }
      const t = o.tls;
      if (t) {
        port = t.port;
        tls.push(
          ...bindPair(
            o,
            t.port,
            (hostname, p) =>
              Deno.listenTls({ hostname, port: p, cert: t.files.cert, key: t.files.key }),
          ),
        );
      }
    } catch (e) {
      for (const l of [...tcp, ...tls]) l.close();
      const why = e instanceof Error ? e.message : String(e);
      throw new Error(
        `Cannot listen on TCP ${o.hostname}:${port} (${why}); choose another port, or --no-tcp`,
        { cause: e },
      );
    }
    const s = new StreamServer(o.hostname, tcp, tls, o.limits ?? DEFAULT_STREAM_LIMITS, deliver);
    for (const l of [...tcp, ...tls]) s.#loops.push(s.#accept(l));
    return s;
  }

  /** The plain TCP listener's endpoint (its IPv4 or dual-stack one), if it has one. */
  get tcpAddr(): Endpoint | undefined {
    return this.#addr(this.#tcp[0]);
  }

  /** The TLS listener's endpoint (its IPv4 or dual-stack one), if it has one. */
  get tlsAddr(): Endpoint | undefined {
    return this.#addr(this.#tls[0]);
  }

  /** `l`'s endpoint with the IPv4 address asked for (a dual-stack listener says `::`). */
  #addr(l: Deno.Listener | undefined): Endpoint | undefined {
    if (!l) return undefined;
    return { hostname: this.#host, port: (l.addr as Deno.NetAddr).port };
  }

  /** Connections open now. */
  get open(): number {
    return this.#policy.size;
  }

  /** Bytes waiting to be written, in all. */
  get queued(): number {
    let n = 0;
    for (const id of this.#wires.keys()) n += this.#policy.queued(id);
    return n;
  }

  /** Sends `t.data` as one frame on connection `t.to.stream`. */
  send(t: Transmit): void {
    const id = t.to.stream!;
    const w = this.#wires.get(id);
    const f = frame(t.data);
    if (!w || !f) {
      this.stats.sendErrors++;
      return;
    }
    if (!this.#policy.queue(monotonicNow(), id, f.length)) return this.#reap();
    this.stats.framesOut++;
    w.write(f);
    this.#arm();
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake.cancel();
    for (const l of [...this.#tcp, ...this.#tls]) {
      try {
        l.close();
      } catch {
        // Already closed.
      }
    }
    for (const [id, w] of this.#wires) {
      w.close();
      this.#policy.closed(id);
    }
    this.#wires.clear();
    await Promise.allSettled(this.#loops);
  }

  async #accept(l: Deno.Listener): Promise<void> {
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await l.accept();
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) return;
        continue;
      }
      this.#admit(conn);
    }
  }

  #admit(conn: Deno.Conn): void {
    const a = conn.remoteAddr as Deno.NetAddr;
    const id = this.#nextId++;
    const refused = this.#policy.admit(monotonicNow(), id, unmap(a.hostname));
    if (refused) {
      this.#count(refused);
      try {
        conn.close();
      } catch {
        // Gone already.
      }
      return;
    }
    this.stats.accepted++;
    try {
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    } catch {
      // Not a TCP socket underneath (never here), or already closed.
    }
    const from: Endpoint = { hostname: unmap(a.hostname), port: a.port, stream: id };
    const w = new Wire(
      conn,
      (n) => this.#policy.wrote(monotonicNow(), id, n),
      () => this.#gone(id),
    );
    this.#wires.set(id, w);
    this.#arm();
    void this.#readLoop(id, w, from);
  }

  async #readLoop(id: number, w: Wire, from: Endpoint): Promise<void> {
    const d = new Deframer();
    const buf = new Uint8Array(READ_BUFFER);
    await w.read(buf, (chunk) => {
      d.push(chunk);
      for (let f = d.next(); f; f = d.next()) {
        if (w.closed) return false;
        this.stats.framesIn++;
        this.#policy.received(monotonicNow(), id);
        this.#deliver(from, f);
      }
      if (d.failed) {
        this.#policy.badFrame(id);
        this.#reap();
        return false;
      }
      return true;
    });
    this.#gone(id);
  }

  /** Connection `id` ended (either side): forgotten. */
  #gone(id: number): void {
    const w = this.#wires.get(id);
    if (!w) return;
    w.close();
    this.#wires.delete(id);
    this.#policy.closed(id);
  }

  /** Closes what the policy dropped. */
  #reap(): void {
    for (let d = this.#policy.pollDrop(); d; d = this.#policy.pollDrop()) {
      this.#count(d.reason);
      this.#gone(d.id);
    }
  }

  #count(reason: StreamDropReason): void {
    this.stats.dropped[reason] = (this.stats.dropped[reason] ?? 0) + 1;
  }

  #arm(): void {
    if (this.#closed) return;
    this.#wake.arm(this.#policy.nextTimeout(), () => {
      if (this.#closed) return;
      this.#policy.handleTimeout(monotonicNow());
      this.#reap();
      this.#arm();
    });
  }
}

/** Where a {@link StreamDialer} connects. */
export interface DialTarget {
  /** Host to connect to: a name or a literal address (TLS checks the certificate against it). */
  hostname: string;
  /** TCP port. */
  port: number;
  /** TLS: on, with these CA certificates (PEM) besides the public CAs (Mozilla's list, built into
   * Deno); undefined: plain TCP. */
  tls?: { caCerts: string[] };
}

/** Counters of a {@link StreamDialer}. */
export interface DialerStats {
  /** Connections opened, and attempts that failed. */
  connected: number;
  connectErrors: number;
  /** Frames received and sent; datagrams dropped (not connected, queue full, bad size). */
  framesIn: number;
  framesOut: number;
  dropped: number;
}

/** One stream connection from a peer to a server, opened when there is something to send. */
export class StreamDialer {
  #target: DialTarget;
  #from: Endpoint;
  #deliver: (from: Endpoint, data: Uint8Array) => void;
  #wire: Wire | undefined;
  #connecting: Promise<void> | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #lastDial = -Infinity;
  #closed = false;
  #onError: (message: string) => void;
  #onClose: () => void;
  /** Counters. */
  readonly stats: DialerStats = {
    connected: 0,
    connectErrors: 0,
    framesIn: 0,
    framesOut: 0,
    dropped: 0,
  };

  /**
   * A dialer to `target`; frames received are handed to `deliver` as from `from` (the server's
   * stream endpoint as the machine knows it); `onError` hears why a connection failed, and
   * `onClose` that an open one ended (the server closed it, or it broke), not by {@link close}.
   */
  constructor(
    target: DialTarget,
    from: Endpoint,
    deliver: (from: Endpoint, data: Uint8Array) => void,
    onError: (message: string) => void = () => {},
    onClose: () => void = () => {},
  ) {
    this.#target = target;
    this.#from = from;
    this.#deliver = deliver;
    this.#onError = onError;
    this.#onClose = onClose;
  }

  /** True while a connection is open. */
  get connected(): boolean {
    return this.#wire !== undefined && !this.#wire.closed;
  }

  /** Sends `data` as one frame, connecting first if need be (at most once a second). */
  send(data: Uint8Array): void {
    const f = frame(data);
    if (!f || this.#closed) {
      this.stats.dropped++;
      return;
    }
    if (this.#wire && !this.#wire.closed) {
      this.stats.framesOut++;
      return this.#wire.write(f);
    }
    if (this.#pendingBytes + f.length > DIAL_QUEUE) {
      this.stats.dropped++;
      return;
    }
    if (!this.#connecting && monotonicNow() - this.#lastDial < REDIAL_GAP) {
      this.stats.dropped++;
      return;
    }
    this.#pending.push(f);
    this.#pendingBytes += f.length;
    this.#connecting ??= this.#dial();
  }

  /** Closes the connection after what is queued was handed to the OS (a BYE), and stops. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#connecting;
    // At most a second: a server that stopped reading does not hold us.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((r) => timer = setTimeout(r, CLOSE_WAIT));
    await Promise.race([this.#wire?.drained(), late]);
    clearTimeout(timer);
    this.#wire?.close();
  }

  async #dial(): Promise<void> {
    this.#lastDial = monotonicNow();
    const t = this.#target;
    let conn: Deno.Conn;
    try {
      conn = t.tls
        ? await Deno.connectTls({
          hostname: t.hostname,
          port: t.port,
          ...(t.tls.caCerts.length > 0 ? { caCerts: t.tls.caCerts } : {}),
        })
        : await Deno.connect({ hostname: t.hostname, port: t.port, transport: "tcp" });
      if (t.tls) await (conn as Deno.TlsConn).handshake();
    } catch (e) {
      this.stats.connectErrors++;
      this.stats.dropped += this.#pending.length;
      this.#pending = [];
      this.#pendingBytes = 0;
      this.#connecting = undefined;
      const kind = t.tls ? "TLS" : "TCP";
      this.#onError(`${kind} to ${t.hostname}:${t.port}: ${(e as Error).message}`);
      return;
    }
    this.#connecting = undefined;
    if (this.#closed) return void conn.close();
    try {
      if ("setNoDelay" in conn) (conn as Deno.TcpConn).setNoDelay(true);
    } catch {
      // Not a plain TCP connection: fine.
    }
    this.stats.connected++;
    const w = new Wire(conn, () => {}, () => w.close());
    this.#wire = w;
    for (const f of this.#pending) {
      this.stats.framesOut++;
      w.write(f);
    }
    this.#pending = [];
    this.#pendingBytes = 0;
    void this.#readLoop(w);
  }

  async #readLoop(w: Wire): Promise<void> {
    const d = new Deframer();
    const buf = new Uint8Array(READ_BUFFER);
    await w.read(buf, (chunk) => {
      d.push(chunk);
      for (let f = d.next(); f; f = d.next()) {
        this.stats.framesIn++;
        this.#deliver(this.#from, f);
      }
      return !d.failed;
    });
    w.close();
    if (this.#wire === w) this.#wire = undefined;
    if (!this.#closed) this.#onClose();
  }
}

/**
 * Listeners on `o.hostname:port` and, with `o.hostname6`, on that IPv6 address: for `0.0.0.0`
 * with `::` the IPv6 one first, and the IPv4 one only if it is not taken by it (a dual-stack
 * socket takes both, as in `lib/io/udp.ts`). IPv6 that cannot be bound is left out.
 */
function bindPair(
  o: StreamServerOptions,
  port: number,
  make: (hostname: string, port: number) => Deno.Listener,
): Deno.Listener[] {
  if (o.hostname6 === undefined) return [make(o.hostname, port)];
  let v6: Deno.Listener;
  try {
    v6 = make(o.hostname6, port);
  } catch {
    return [make(o.hostname, port)];
  }
  const p = (v6.addr as Deno.NetAddr).port;
  try {
    return [make(o.hostname, p), v6];
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse && o.hostname === "0.0.0.0" && o.hostname6 === "::") {
      return [v6];
    }
    v6.close();
    throw e;
  }
}

/** `::ffff:a.b.c.d` (an IPv4 client on a dual-stack listener) as `a.b.c.d`; others unchanged. */
function unmap(hostname: string): string {
  return hostname.startsWith("::ffff:") && hostname.includes(".") ? hostname.slice(7) : hostname;
}
