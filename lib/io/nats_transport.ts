/**
 * The NATS client's socket (**I/O**): a `Transport` for `@nats-io/nats-core` over Deno's own TCP
 * (and TLS when the server requires or offers it, as `@nats-io/transport-node` does), in place of
 * transport-node's Node-compatible streams (a `node:net` write and a `Buffer` per message). The
 * NATS protocol itself stays the library's: this module only moves bytes. Writes are queued and
 * joined while one is in flight, at most {@link MAX_PENDING} bytes (an engine that stops reading
 * closes the connection, and the client reconnects); reads go into one buffer and each is handed
 * on as a copy of the bytes read (the client keeps what it parses, and views of a message keep
 * only that message's read alive, not a 64 KiB buffer).
 *
 * A dial that fails never resolves {@link DenoNatsTransport.closed} (the client would count a
 * disconnection per failed attempt while the engine is down), and every socket opened is closed
 * on any failure, before or after the server's INFO.
 *
 * @module
 */
import type { ConnectionOptions, Server } from "@nats-io/nats-core";
import { extractProtocolMessage, type Transport } from "@nats-io/nats-core/internal";

/** Bytes read at a time. */
const READ_SIZE = 64 * 1024;

/** Longest INFO line accepted, bytes. */
const MAX_INFO = 64 * 1024;

/** Most bytes queued for the engine; beyond, the connection is closed. */
export const MAX_PENDING = 16 * 1024 * 1024;

/** The INFO line a NATS server sends first: its JSON. */
const INFO = /^INFO\s+([^\r\n]+)\r\n/i;

/** A NATS transport over `Deno.connect` (and `Deno.startTls`). */
export class DenoNatsTransport implements Transport {
  /** Reported to the server in CONNECT. */
  readonly lang = "nats.js";
  /** Reported to the server in CONNECT. */
  readonly version = "3.4.0-p2p";
  /** Why the connection closed, when by an error. */
  closeError?: Error;
  #conn?: Deno.Conn;
  #connected = false;
  #encrypted = false;
  #done = false;
  /** The INFO line, the first thing the client parses. */
  #info?: Uint8Array;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #writing = false;
  #closed = Promise.withResolvers<void | Error>();

  /** Whether the connection is closed. */
  get isClosed(): boolean {
    return this.#done;
  }

  /** Dials `server`, reads its INFO and upgrades to TLS when it asks (or offers it). */
  async connect(server: Server, opts: ConnectionOptions): Promise<void> {
    try {
      const tcp = await Deno.connect({ hostname: server.hostname, port: server.port });
      this.#conn = tcp;
      if (this.#done) throw new Error("The NATS connection was closed while it was being made");
      tcp.setNoDelay(true);
      const info = await this.#readInfo(tcp);
      if (info.tls_required === true || (info.tls_available === true && opts.tls !== null)) {
        const tls = await Deno.startTls(tcp, { hostname: server.tlsName || server.hostname });
        this.#conn = tls;
        // The handshake now, so that a refused certificate fails the dial with its reason.
        await tls.handshake();
        this.#encrypted = true;
      }
      if (this.#done) throw new Error("The NATS connection was closed while it was being made");
      this.#connected = true;
    } catch (e) {
      this.#drop();
      const err = e instanceof Error ? e : new Error(String(e));
      throw err instanceof Deno.errors.ConnectionRefused
        ? new Error("connection refused", { cause: err })
        : err;
    }
  }

  /**
   * Reads up to the end of the first protocol line (INFO), at most {@link MAX_INFO} bytes, and
   * keeps that line to be yielded to the client; anything the server sent after it before a TLS
   * upgrade is dropped (it must come again over TLS), and without one it is kept.
   */
  async #readInfo(conn: Deno.Conn): Promise<{ tls_required?: boolean; tls_available?: boolean }> {
    const all = new Uint8Array(MAX_INFO);
    let have = 0;
    for (;;) {
      if (have === all.length) throw new Error("No INFO line from the NATS server");
      const n = await conn.read(all.subarray(have));
      if (n === null) throw new Error("The NATS server closed the connection before its INFO");
      have += n;
      const line = extractProtocolMessage(all.subarray(0, have));
      if (line === "") continue;
      const m = INFO.exec(line);
      if (!m) throw new Error("Unexpected response from the NATS server (no INFO)");
      const info = JSON.parse(m[1]!);
      const end = new TextEncoder().encode(line).length;
      const upgrade = info.tls_required === true || info.tls_available === true;
      this.#info = all.slice(0, upgrade ? end : have);
      return info;
    }
  }

  /** What the server sends, chunk by chunk (the INFO line first). */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    try {
      if (this.#info) yield this.#info;
      this.#info = undefined;
      const conn = this.#conn;
      if (!conn || !this.#connected) return;
      const buf = new Uint8Array(READ_SIZE);
      while (!this.#done) {
        const n = await conn.read(buf);
        if (n === null) break;
        yield buf.slice(0, n);
      }
    } catch (e) {
      if (!this.#done) this.closeError = e instanceof Error ? e : new Error(String(e));
    } finally {
      // Also when the client stops reading (its parser threw): the socket goes with it.
      await this.#close(this.closeError);
    }
  }

  /** Whether the connection is TLS. */
  isEncrypted(): boolean {
    return this.#encrypted;
  }

  /** Queues `frame`; frames queued while a write is in flight go out joined. */
  send(frame: Uint8Array): void {
    if (this.#done || !this.#conn || !this.#connected) return;
    this.#pendingBytes += frame.length;
    if (this.#pendingBytes > MAX_PENDING) {
      void this.#close(new Error("The NATS server stopped reading: too much waits for it"));
      return;
    }
    this.#pending.push(frame);
    if (!this.#writing) void this.#flush(this.#conn);
  }

  async #flush(conn: Deno.Conn): Promise<void> {
    this.#writing = true;
    try {
      while (this.#pending.length > 0 && !this.#done) {
        const frames = this.#pending.splice(0);
        let out = frames[0]!;
        if (frames.length > 1) {
          out = new Uint8Array(frames.reduce((a, f) => a + f.length, 0));
          let at = 0;
          for (const f of frames) out.set(f, at), at += f.length;
        }
        for (let at = 0; at < out.length;) at += await conn.write(out.subarray(at));
        this.#pendingBytes -= out.length;
      }
    } catch (e) {
      if (!this.#done) await this.#close(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.#writing = false;
    }
  }

  /** Closes the connection (with `err` as the reason, if any). */
  close(err?: Error): Promise<void> {
    return this.#close(err);
  }

  /** Closes the connection without a reason. */
  disconnect(): void {
    void this.#close(undefined);
  }

  /**
   * Resolves when an established connection closes: with its error, if one closed it (never for
   * a dial that failed).
   */
  closed(): Promise<void | Error> {
    return this.#closed.promise;
  }

  /** Drops the connection at once, reporting nothing. */
  discard(): void {
    this.#drop();
  }

  /** Marks the transport done and closes its socket, if any, reporting nothing. */
  #drop(): void {
    this.#done = true;
    this.#pending = [];
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
  }

  #close(err: Error | undefined): Promise<void> {
    if (this.#done) return Promise.resolve();
    const connected = this.#connected;
    this.closeError = err;
    this.#drop();
    // Only an established connection's end is news to the client (see the module's note).
    if (connected) this.#closed.resolve(err);
    return Promise.resolve();
  }
}
