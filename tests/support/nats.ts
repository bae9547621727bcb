/**
 * A real `nats-server` (Debian's package) for the cluster tests: started on a free TCP port of
 * 127.0.0.1, waited for until it accepts connections, stopped by its PID (and started again on
 * the same port, for an engine outage).
 *
 * @module
 */
import { registerEmergencyCleanup } from "./proc.ts";

/** A free TCP port on 127.0.0.1 (bound, then released). */
export function freeTcpPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running `nats-server`. */
export class NatsServer implements AsyncDisposable {
  readonly port: number;
  #child: Deno.ChildProcess | undefined;
  #unregister: (() => void) | undefined;

  constructor(port = freeTcpPort()) {
    this.port = port;
  }

  /** `nats://127.0.0.1:PORT`. */
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** Starts it and waits (at most 10 s) for its "Server is ready" line. */
  async start(): Promise<this> {
    const child = this.#child = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(this.port)],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#unregister = registerEmergencyCleanup(() => {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone
      }
    }, { pid: child.pid });
    const ready = Promise.withResolvers<void>();
    let text = "";
    // Read its log for the ready line, then keep draining it (the pipe must not fill).
    void (async () => {
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        if (text.length < 65_536) text += chunk;
        if (text.includes("Server is ready")) ready.resolve();
      }
      ready.reject(new Error(`nats-server exited before it was ready:\n${text}`));
    })();
    const timer = setTimeout(
      () => ready.reject(new Error("nats-server: not ready in 10 s")),
      10_000,
    );
    try {
      await ready.promise;
    } finally {
      clearTimeout(timer);
    }
    return this;
  }

  /** Stops it (SIGKILL to its PID) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    this.#child = undefined;
    try {
      child.kill("SIGKILL");
    } catch {
      // gone
    }
    await child.status;
    this.#unregister?.();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}
