/**
 * A real `nats-server` (Debian's package) for the cluster tests: started on a free TCP port of
 * 127.0.0.1 (or on a given address inside a NAT lab's namespace), waited for until it accepts
 * connections, stopped by its PID (and started again on the same port, for an engine outage).
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

/** Where a {@link NatsServer} runs: a lab namespace and an address of it. */
export interface NatsPlace {
  /** The network namespace (`ip netns exec`), default none. */
  netns?: string;
  /** The address it listens on, default 127.0.0.1. */
  host?: string;
}

/** A running `nats-server`. */
export class NatsServer implements AsyncDisposable {
  readonly port: number;
  readonly host: string;
  #netns: string | undefined;
  #child: Deno.ChildProcess | undefined;
  #unregister: (() => void) | undefined;

  /** On `port` (a free one of the root namespace by default) of `place`. */
  constructor(port = freeTcpPort(), place: NatsPlace = {}) {
    this.port = port;
    this.host = place.host ?? "127.0.0.1";
    this.#netns = place.netns;
  }

  /** The server's process id while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** `nats://HOST:PORT`. */
  get url(): string {
    return `nats://${this.host}:${this.port}`;
  }

  /** Starts it and waits (at most 10 s) for its "Server is ready" line. */
  async start(): Promise<this> {
    const args = ["-a", this.host, "-p", String(this.port)];
    // `ip netns exec` execs the server: the child's PID is the server's.
    const [cmd, ...rest] = this.#netns
      ? ["ip", "netns", "exec", this.#netns, "nats-server", ...args]
      : ["nats-server", ...args];
    const child = this.#child = new Deno.Command(cmd!, {
      args: rest,
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
