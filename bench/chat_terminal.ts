/**
 * What a person at a terminal waits for (issue 16), in pseudo-terminals made by `script(1)`,
 * each figure beside a baseline measured in the same run:
 *
 * - **Start-up**: from starting `p2p join` (ticket-less: `P2P_PASSPHRASE`, an identity made
 *   before) to its first prompt (`> `, where typing starts) and to the prompt with our name
 *   (registered). Baseline: Deno starting a script that prints a prompt.
 * - **Keystroke to screen**: a key typed at the chat screen until the terminal shows it.
 *   Baseline: the kernel's echo of a key to `cat` in a cooked terminal.
 * - **Send to display**: Enter at alice's screen until bob's screen shows the line. Baseline: the
 *   same line between two `--json` peers on pipes (no screen).
 *
 * Usage: `deno run -A bench/chat_terminal.ts [CHECKOUT]` (default: this one; another checkout,
 * say an older commit's, is measured with its own server). Medians and 90th percentiles, ms.
 *
 * @module
 */
const ROOT = Deno.args[0] ?? new URL("..", import.meta.url).pathname;
const STARTS = 7, KEYS = 40, LINES = 20;
const enc = new TextEncoder(), dec = new TextDecoder();
const CONFIG = await Deno.makeTempDir({ prefix: "p2p-chat-bench-" });

/** A process in a pseudo-terminal of 120 × 30, its output collected. */
class Pty {
  text = "";
  #proc: Deno.ChildProcess;
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #wake: (() => void)[] = [];
  readonly started = performance.now();

  constructor(shell: string) {
    const proc = this.#proc = new Deno.Command("script", {
      args: ["-q", "-c", `stty cols 120 rows 30; ${shell}`, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    this.#writer = this.#proc.stdin.getWriter();
    void (async () => {
      for await (const chunk of proc.stdout) {
        this.text += dec.decode(chunk, { stream: true });
        for (const f of this.#wake.splice(0)) f();
      }
      for (const f of this.#wake.splice(0)) f();
    })();
  }

  /** Types `s`. */
  async type(s: string): Promise<void> {
    await this.#writer.write(enc.encode(s));
  }

  /** Resolves (with the ms since `from`) once `ok` holds of the output; fails after 20 s. */
  async until(ok: (text: string) => boolean, from = this.started): Promise<number> {
    const end = performance.now() + 20_000;
    while (!ok(this.text)) {
      if (performance.now() > end) throw new Error(`timed out; the terminal shows ${this.text}`);
      await new Promise<void>((resolve) => {
        this.#wake.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return performance.now() - from;
  }

  /** Ends the process (Ctrl-C, then a kill). */
  async close(): Promise<void> {
    await this.type("\x03").catch(() => {});
    const done = await Promise.race([
      this.#proc.status.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 3000)),
    ]);
    if (!done) this.#proc.kill();
    await this.#proc.status;
  }
}

/** `p2p` of the checkout, as a shell command line. */
function p2p(args: string, env = ""): string {
  return `cd ${ROOT} && ${env} NO_COLOR=1 XDG_CONFIG_HOME=${CONFIG}/$NAME ${Deno.execPath()} ` +
    `run -A main.ts ${args}`;
}

/** Starts the checkout's server on loopback; resolves with its address. */
async function startServer(): Promise<{ addr: string; stop: () => Promise<void> }> {
  const proc = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "serve", "--host", "127.0.0.1", "--port", "0", "--json"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = proc.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the server did not start");
    text += value;
  }
  const addr = JSON.parse(text.split("\n")[0]!).addr as string;
  return {
    addr,
    stop: async () => {
      proc.kill();
      await reader.cancel();
      await proc.status;
    },
  };
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const at = (f: number) => s[Math.min(s.length - 1, Math.floor(s.length * f))]!.toFixed(1);
  return `median ${at(0.5)}, p90 ${at(0.9)} (n=${s.length})`;
}

const server = await startServer();
const PASSPHRASE = "P2P_PASSPHRASE=bench-bench-bench";
/** `p2p join` of `name` in `room`, with the room's passphrase and its own configuration. */
const join = (name: string, room: string, extra = "") =>
  p2p(`join --server ${server.addr} --room ${room} --name ${name} ${extra}`, PASSPHRASE)
    .replace("$NAME", name);

try {
  // Start-up. The first run makes the identity (and warms caches): not counted.
  const prompt: number[] = [], named: number[] = [], bare: number[] = [];
  const script = `${CONFIG}/prompt.ts`;
  await Deno.writeTextFile(script, 'Deno.stdout.writeSync(new TextEncoder().encode("> "));\n');
  for (let i = -1; i < STARTS; i++) {
    const t = new Pty(`${join("starter", `start${i}`)}`);
    const first = await t.until((x) => x.includes("> "));
    const registered = await t.until((x) => x.includes("starter> "));
    await t.close();
    const b = new Pty(`${Deno.execPath()} run ${script}; sleep 5`);
    const baseline = await b.until((x) => x.includes("> "));
    await b.close();
    if (i < 0) continue;
    prompt.push(first), named.push(registered), bare.push(baseline);
  }
  console.log(`start-up to first prompt:      ${stats(prompt)} ms`);
  console.log(`start-up to registered prompt: ${stats(named)} ms`);
  console.log(`  baseline, deno to a prompt:  ${stats(bare)} ms`);

  // Keystrokes and lines: alice and bob on chat screens.
  const bob = new Pty(`${join("bob", "talk")}`);
  await bob.until((x) => x.includes("bob> "));
  const alice = new Pty(`${join("alice", "talk")}`);
  await alice.until((x) => x.includes("bob is here"));
  await bob.until((x) => x.includes("alice is here"));
  const keys: number[] = [];
  for (let i = 0; i < KEYS; i++) {
    const ch = String.fromCharCode(97 + i % 26), from = alice.text.length, t0 = performance.now();
    await alice.type(ch);
    keys.push(await alice.until((x) => x.slice(from).includes(ch), t0));
  }
  await alice.type("\x15"); // Ctrl-U: an empty line again.
  const sends: number[] = [];
  for (let i = 0; i < LINES; i++) {
    const text = `line ${i} ${crypto.randomUUID().slice(0, 8)}`;
    await alice.type(text);
    await alice.until((x) => x.includes(text));
    const t0 = performance.now();
    await alice.type("\r");
    sends.push(await bob.until((x) => x.includes(text), t0));
  }
  await Promise.all([alice.close(), bob.close()]);
  const cat = new Pty("cat");
  const echoed: number[] = [];
  for (let i = 0; i < KEYS; i++) {
    const ch = String.fromCharCode(97 + i % 26), from = cat.text.length, t0 = performance.now();
    await cat.type(ch);
    echoed.push(await cat.until((x) => x.slice(from).includes(ch), t0));
  }
  await cat.close();
  console.log(`keystroke to screen:           ${stats(keys)} ms`);
  console.log(`  baseline, the tty's echo:    ${stats(echoed)} ms`);
  console.log(`send to display:               ${stats(sends)} ms`);

  // The same lines between two --json peers on pipes.
  const piped = (name: string) =>
    new Deno.Command("sh", {
      args: ["-c", `${join(name, "pipes", "--json")}`],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  const [pa, pb] = [piped("ann"), piped("ben")];
  const lines = pb.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const benSees = async (s: string) => {
    while (!seen.includes(s)) {
      const { value, done } = await lines.read();
      if (done) throw new Error("ben ended");
      seen += value;
    }
  };
  await benSees('"name":"ann"');
  const annIn = pa.stdin.getWriter();
  const base: number[] = [];
  for (let i = 0; i < LINES; i++) {
    const text = `line ${i} ${crypto.randomUUID().slice(0, 8)}`, t0 = performance.now();
    await annIn.write(enc.encode(`${text}\n`));
    await benSees(text);
    base.push(performance.now() - t0);
  }
  await annIn.close();
  pb.kill();
  await lines.cancel();
  await Promise.all([pa.status, pb.status]);
  await pa.stdout.cancel();
  console.log(`  baseline, --json on pipes:   ${stats(base)} ms`);
} finally {
  await server.stop();
  await Deno.remove(CONFIG, { recursive: true });
}
