/**
 * The NATS client's socket (**I/O**): a `Transport` for `@nats-io/nats-core` over Deno's own TCP
 * (and TLS when the server asks for it), in place of `@nats-io/transport-node`'s Node-compatible
 * streams, which cost a cluster server about a third of its CPU per registration (a
 * `node:net` write and a `Buffer` per message). The NATS protocol itself stays the library's:
 * this module only moves bytes. Writes are queued and joined while one is in flight; reads go
 * into a fresh buffer each (the client keeps them until parsed).
 *
 * @module
 */
import type { ConnectionOptions, Server } from "@nats-io/nats-core";
import { extractProtocolMessage, type Transport } from "@nats-io/nats-core/internal";

/** Bytes read at a time. */
const READ_SIZE = 64 * 1024;

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
  #encrypted = false;
  #done = false;
  #first: Uint8Array[] = [];
  #pending: Uint8Array[] = [];
  #writing = false;
  #closed = Promise.withResolvers<void | Error>();

  /** Whether the connection is closed. */
  get isClosed(): boolean {
    return this.#done;
  }

  /** Dials `server`, reads its INFO and upgrades to TLS when it asks (or offers and we want). */
  async connect(server: Server, opts: ConnectionOptions): Promise<void> {
    try {
      const tcp = await Deno.connect({ hostname: server.hostname, port: server.port });
      tcp.setNoDelay(true);
      let conn: Deno.Conn = tcp;
      const info = await this.#readInfo(conn);
      const wantTls = info.tls_required === true ||
        (info.tls_available === true && opts.tls !== null && opts.tls !== undefined);
      if (wantTls) {
        conn = await Deno.startTls(tcp, {
          hostname: server.tlsName || server.hostname,
        });
        this.#encrypted = true;
      }
      if (this.#done) conn.close();
      this.#conn = conn;
    } catch (e) {
      const err = e instanceof Error ? e : new Error(String(e));
      throw err instanceof Deno.errors.ConnectionRefused
        ? new Error("connection refused", { cause: err })
        : err;
    }
  }

  /** Reads until the first protocol line (INFO), which stays to be yielded to the client. */
  async #readInfo(conn: Deno.Conn): Promise<{ tls_required?: boolean; tls_available?: boolean }> {
    let all = new Uint8Array(0);
    for (;;) {
      const buf = new Uint8Array(READ_SIZE);
      const n = await conn.read(buf);
      if (n === null) throw new Error("The NATS server closed the connection before its INFO");
      this.#first.push(buf.subarray(0, n));
      const joined = new Uint8Array(all.length + n);
      joined.set(all);
      joined.set(buf.subarray(0, n), all.length);
      all = joined;
      const line = extractProtocolMessage(all);
      if (line === "") {
        if (all.length > 1024 * 1024) throw new Error("No INFO from the NATS server");
        continue;
      }
      const m = INFO.exec(line);
      if (!m) throw new Error("Unexpected response from the NATS server (no INFO)");
      return JSON.parse(m[1]!);
    }
  }

  /** What the server sends, chunk by chunk (the INFO's first). */
  async *[Symbol.asyncIterator](): AsyncIterableIterator<Uint8Array> {
    yield* this.#first.splice(0);
    const conn = this.#conn;
    if (!conn) return;
    try {
      while (!this.#done) {
        const buf = new Uint8Array(READ_SIZE);
        const n = await conn.read(buf);
        if (n === null) break;
        yield buf.subarray(0, n);
      }
    } catch (e) {
      if (!this.#done) this.closeError = e instanceof Error ? e : new Error(String(e));
    }
    await this.#close(this.closeError);
  }

  /** Whether the connection is TLS. */
  isEncrypted(): boolean {
    return this.#encrypted;
  }

  /** Queues `frame`; frames queued while a write is in flight go out joined. */
  send(frame: Uint8Array): void {
    if (this.#done || !this.#conn) return;
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

  /** Resolves when the connection closes: with its error, if one closed it. */
  closed(): Promise<void | Error> {
    return this.#closed.promise;
  }

  /** Drops the connection at once, reporting nothing. */
  discard(): void {
    this.#done = true;
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
  }

  #close(err: Error | undefined): Promise<void> {
    if (this.#done) return Promise.resolve();
    this.#done = true;
    this.closeError = err;
    try {
      this.#conn?.close();
    } catch {
      // Already closed.
    }
    this.#closed.resolve(err);
    return Promise.resolve();
  }
}
