/**
 * The chat screen for a person at a terminal: the input line stays pinned at the bottom with line
 * editing (arrows, Home/End, Ctrl-A/E/W/U, word moves) and history (Up/Down) from `node:readline`,
 * and incoming lines are printed above it without ever touching what is being typed. The
 * terminal is in raw mode, so a long paste is not cut at the tty's 4,095-byte canonical line
 * limit. Used by `p2p join` only when stdin and stdout are terminals and `--json` is off; pipes
 * keep the line protocol of `lib/roles/join.ts`.
 *
 * I/O: reads the process's stdin and writes its stdout.
 *
 * @module
 */
import process from "node:process";
import {
  clearScreenDown,
  createInterface,
  cursorTo,
  type Interface,
  moveCursor,
} from "node:readline";

/** Options of {@link ChatScreen.open}. */
export interface ChatScreenOptions {
  /** The prompt in front of the input line (e.g. `alice> `). */
  prompt: string;
  /** Lines kept for Up/Down (default 500). */
  historySize?: number;
}

/** The terminal chat screen: submitted lines come out of {@link lines}; {@link print} shows. */
export class ChatScreen {
  #rl: Interface;
  #queue: string[] = [];
  #wake: (() => void) | null = null;
  #closed = false;
  #out = process.stdout;

  private constructor(o: ChatScreenOptions) {
    this.#rl = createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: true,
      historySize: o.historySize ?? 500,
      removeHistoryDuplicates: true,
      prompt: o.prompt,
    });
    this.#rl.on("line", (line: string) => {
      this.#eraseEcho(line);
      this.#queue.push(line);
      this.#wake?.();
    });
    this.#rl.on("close", () => {
      this.#closed = true;
      this.#wake?.();
    });
    // Ctrl-C at the prompt: the same as SIGINT for the rest of the program.
    this.#rl.on("SIGINT", () => {
      this.close();
      Deno.kill(Deno.pid, "SIGINT");
    });
    this.#rl.prompt();
  }

  /**
   * Removes what readline left on the screen for a submitted line (the prompt and the line, on
   * as many rows as it wrapped to): the line is shown again the way the chat shows lines.
   */
  #eraseEcho(line: string): void {
    const cols = this.#out.columns || 80;
    const width = [...this.#rl.getPrompt()].length + [...line].length;
    const rows = Math.max(1, Math.ceil(width / cols));
    moveCursor(this.#out, 0, -rows);
    cursorTo(this.#out, 0);
    clearScreenDown(this.#out);
  }

  /** Takes over the terminal (raw mode, prompt at the bottom). */
  static open(o: ChatScreenOptions): ChatScreen {
    return new ChatScreen(o);
  }

  /** Changes the prompt (e.g. after a rename) and draws it again with the input kept. */
  setPrompt(prompt: string): void {
    this.#rl.setPrompt(prompt);
    if (!this.#closed) this.#rl.prompt(true);
  }

  /**
   * Shows `lines` above the input line: the input (every row of it, when a long line wraps) is
   * cleared, the lines written, and the prompt drawn again with what was typed and the cursor
   * where it was.
   */
  print(lines: readonly string[]): void {
    if (lines.length === 0) return;
    if (this.#closed) {
      this.#out.write(lines.join("\n") + "\n");
      return;
    }
    cursorTo(this.#out, 0);
    moveCursor(this.#out, 0, -this.#rl.getCursorPos().rows);
    clearScreenDown(this.#out);
    this.#out.write(lines.join("\n") + "\n");
    // readline redraws from where it believes the input starts: it starts here now.
    (this.#rl as unknown as { prevRows: number }).prevRows = 0;
    this.#rl.prompt(true);
  }

  /** The lines typed, in batches as they come, until Ctrl-D (end of input) or {@link close}. */
  async *lines(): AsyncIterable<readonly string[]> {
    while (true) {
      if (this.#queue.length > 0) {
        yield this.#queue.splice(0);
        continue;
      }
      if (this.#closed) return;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
  }

  /** Gives the terminal back (cooked mode; the cursor on a fresh line). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rl.close();
    this.#out.write("\n");
    this.#wake?.();
  }
}
