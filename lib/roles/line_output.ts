/**
 * The peer's lines in and out: input read from a byte stream in batches of lines, and output
 * lines written in batches ({@link OutputLines}) to stdout or the chat screen, the screen's with
 * the local time in front.
 *
 * I/O: stdout, the clock, `setImmediate`.
 *
 * @module
 */
import { setImmediate } from "node:timers";

/** Most output lines written at once (see {@link OutputLines}). */
const OUTPUT_BATCH = 256;

/**
 * The lines of a byte stream (without `\n`), in batches: each chunk read gives the lines it
 * completes. A final partial line is included.
 */
export function readLineBatches(stream: ReadableStream<Uint8Array>): AsyncIterable<string[]> {
  return stream.pipeThrough(new TextDecoderStream()).pipeThrough(new LineBatcher());
}

/** Splits a text stream into batches of lines (without the newline). */
class LineBatcher extends TransformStream<string, string[]> {
  constructor() {
    let rest = "";
    super({
      transform(chunk, controller) {
        const parts = (rest + chunk).split("\n");
        rest = parts.pop() ?? "";
        if (parts.length > 0) controller.enqueue(parts);
      },
      flush(controller) {
        if (rest !== "") controller.enqueue([rest]);
      },
    });
  }
}

/**
 * Output lines in batches: a line goes out once the event loop has handled what is ready now
 * (`setImmediate`), so one write carries every message that arrived meanwhile (a flood costs a
 * write per batch, not per line) while a lone line waits microseconds, not the millisecond or
 * two a timer would take. `write` takes a batch: stdout, or the chat screen.
 */
export class OutputLines {
  #lines: string[] = [];
  #scheduled = false;
  #write: (lines: string[]) => void;
  #dress: (text: string) => string;
  #soon = () => {
    this.#scheduled = false;
    this.flush();
  };

  /** Lines go to `write`, each through `dress` first (the time in front, on the screen). */
  constructor(write: (lines: string[]) => void, dress: (text: string) => string = (t) => t) {
    this.#write = write;
    this.#dress = dress;
  }

  /** Queues one line (without its newline). */
  line(text: string): void {
    this.#lines.push(this.#dress(text));
    if (this.#lines.length >= OUTPUT_BATCH) this.flush();
    else if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#soon);
    }
  }

  /** Writes everything queued. */
  flush(): void {
    if (this.#lines.length === 0) return;
    const lines = this.#lines;
    this.#lines = [];
    this.#write(lines);
  }
}

const encoder = new TextEncoder();

/** Writes lines to stdout; a closed pipe (nobody reads any more) is nothing to show them to. */
export function writeStdout(lines: string[]): void {
  const bytes = encoder.encode(lines.join("\n") + "\n");
  try {
    for (let o = 0; o < bytes.length;) o += Deno.stdout.writeSync(bytes.subarray(o));
  } catch {
    // Nobody reads stdout any more.
  }
}

/** `text` with the local time (`HH:MM`) in front, dim when `color`: a chat screen's line. */
export function timed(color: boolean): (text: string) => string {
  return (text) => {
    const d = new Date();
    const hh = String(d.getHours()).padStart(2, "0"), mm = String(d.getMinutes()).padStart(2, "0");
    return `${color ? `\x1b[2m${hh}:${mm}\x1b[22m` : `${hh}:${mm}`} ${text}`;
  };
}
