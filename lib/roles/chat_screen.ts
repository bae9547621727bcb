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
import { PassThrough } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { Buffer } from "node:buffer";
import {
  clearScreenDown,
  createInterface,
  cursorTo,
  type Interface,
  moveCursor,
} from "node:readline";
import { displayWidth } from "./view.ts";

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
  #input = new PassThrough() as PassThrough & {
    isTTY: boolean;
    setRawMode(mode: boolean): unknown;
  };
  #decoder = new StringDecoder("utf8");
  /** Pasted text still to insert; a piece starting with `\r` submits the line first. */
  #pasted: string[] = [];
  #pasting = false;
  #onData = (chunk: Uint8Array) => this.#feed(this.#decoder.write(chunk as Buffer));
  #onEnd = () => this.#input.end();

  private constructor(o: ChatScreenOptions) {
    // readline reads a filter of stdin: keys pass through, a paste is inserted at once (see
    // #feed); it still sets raw mode through us.
    this.#input.isTTY = true;
    this.#input.setRawMode = (mode: boolean) => process.stdin.setRawMode(mode);
    process.stdin.on("data", this.#onData);
    process.stdin.on("end", this.#onEnd);
    this.#rl = createInterface({
      input: this.#input,
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
      if (this.#pasting) this.#pasteNext();
    });
    // Ctrl-D on an empty line (end of input) closes it: leave the cursor on a fresh line.
    this.#rl.on("close", () => {
      if (!this.#closed) this.#out.write("\n");
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
   * Hands typed keys to readline. A chunk of plain text (what a paste delivers, not a key or an
   * escape sequence) is put into the input line at the cursor in one go: readline would redraw
   * the line once per character, which for a 10,000-character paste takes many seconds of CPU
   * and stalls the network meanwhile. Its line breaks submit lines as Enter does.
   */
  #feed(text: string): void {
    if (text.length < 8 || hasKeyControls(text)) {
      this.#input.write(text);
      return;
    }
    this.#pasted.push(...text.split(/\r\n|\r|\n/).map((part, i) => i === 0 ? part : "\r" + part));
    if (!this.#pasting) this.#pasteNext();
  }

  /**
   * Inserts the next pasted piece; a piece after a line break first submits the line (an Enter
   * through readline), and the rest waits for that line to come out.
   */
  #pasteNext(): void {
    const piece = this.#pasted.shift();
    if (piece === undefined) {
      this.#pasting = false;
      return;
    }
    this.#pasting = true;
    if (piece.startsWith("\r")) {
      this.#pasted.unshift(piece.slice(1));
      this.#input.write("\r");
      return; // The line event continues.
    }
    const rl = this.#rl as unknown as { line: string; cursor: number };
    rl.line = rl.line.slice(0, rl.cursor) + piece + rl.line.slice(rl.cursor);
    rl.cursor += piece.length;
    this.#rl.prompt(true);
    this.#pasteNext();
  }

  /**
   * Removes what readline left on the screen for a submitted line (the prompt and the line, on
   * as many rows as it wrapped to): the line is shown again the way the chat shows lines.
   */
  #eraseEcho(line: string): void {
    const cols = this.#out.columns || 80;
    const width = displayWidth(this.#rl.getPrompt()) + displayWidth(line);
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
    process.stdin.off("data", this.#onData);
    process.stdin.off("end", this.#onEnd);
    this.#rl.close();
    this.#out.write("\n");
    this.#wake?.();
  }
}

/** True when `text` holds a control character other than a line break (keys, escapes). */
function hasKeyControls(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a && c !== 0x0d) || c === 0x7f) return true;
  }
  return false;
}
