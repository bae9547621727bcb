/**
 * What a `p2p join` peer does with its input lines: chat lines sent in one driver step per
 * batch (held until the room's roster is in, and while a peer taking messages has
 * {@link INPUT_BACKLOG} of them queued), and the commands (`/peers`, `/msg`, `/nick`,
 * `/trust`, `/send`, `/accept`, `/reject`, `/help`, `/quit`). On the chat screen our own lines
 * are shown like everyone's, with our name.
 *
 * I/O: timers, the clock.
 *
 * @module
 */
import type { Client } from "../peer/client.ts";
import type { PeerInfo } from "../peer/remote_context.ts";
import { displayName } from "../core/names.ts";
import { monotonicNow } from "../io/udp.ts";
import { MAX_MESSAGE } from "../peer/fragment.ts";
import type { ChatScreen } from "./chat_screen.ts";
import type { FileSession } from "./file_session.ts";
import type { KnownFingerprints } from "./known_fingerprints.ts";
import { type InputCommand, parseInput, type PeerView } from "./view.ts";

/**
 * Input waits while a peer that is taking messages has this many payloads queued behind its
 * window (the queue itself holds 4096; a peer that stopped acknowledging does not hold input).
 */
export const INPUT_BACKLOG = 256;

/** Longest wait for room to send before trying again, ms. */
const ROOM_WAIT = 250;

/** What the input of a peer acts on. */
export interface ChatInputOptions {
  client: Client;
  /** Runs `fn` in a driver step (then the client's output is drained). */
  step: (fn: (now: number) => void) => void;
  view: PeerView;
  /** Shows lines to the user. */
  print: (lines: readonly string[]) => void;
  /** The chat screen, when a person is at a terminal. */
  screen: ChatScreen | null;
  files: FileSession;
  known: KnownFingerprints;
  /** A `/peers` row as shown (with the transport our server relays it over). */
  row: (p: PeerInfo) => PeerInfo;
}

/** The input side of a running peer. */
export class ChatInput {
  #o: ChatInputOptions;
  /** False until the roster is in (or a second passed): lines typed before wait in #pending. */
  #sendable = false;
  #pending: string[] = [];
  #interrupted = false;
  /** Our name in the room, once registered (our own lines are shown with it on the screen). */
  #self: string | null = null;
  /** Input waiting for the send queues to drain: resolved after the next step. */
  #room: (() => void) | undefined;
  /** Lines (and `/msg` lines) that went to nobody: too long, nobody there, or queues full. */
  #unsent = 0;

  constructor(o: ChatInputOptions) {
    this.#o = o;
  }

  /**
   * How many typed lines went to nobody (a notice said why each time): the exit code says so.
   */
  get unsent(): number {
    return this.#unsent;
  }

  /** Registered as `name`: the screen's prompt shows it. */
  registered(name: string): void {
    this.#self = name;
    this.#o.screen?.setPrompt(`${displayName(name)}> `);
  }

  /** The roster is in: lines typed before go out now, and the next ones at once. */
  open(): void {
    this.#sendable = true;
    this.#sendAll(this.#pending.splice(0));
  }

  /** After every driver step: input waiting for room to send looks again. */
  afterStep(): void {
    this.#room?.();
  }

  /** Ctrl-C or SIGTERM: input stops waiting for room to send. */
  interrupt(): void {
    this.#interrupted = true;
    this.#room?.();
  }

  /**
   * Acts on input lines until `/quit` or their end. Lines to send go out in one driver step per
   * batch; while a peer that is taking messages has {@link INPUT_BACKLOG} of them queued, input
   * waits (piped input is delivered, not refused for a full queue).
   */
  async read(input: AsyncIterable<readonly string[]>): Promise<"quit" | "eof"> {
    for await (const batch of input) {
      let texts: string[] = [];
      for (const raw of batch) {
        const cmd = parseInput(raw);
        if (cmd.kind === "send") {
          if (this.#sendable && this.#o.client.backlog(monotonicNow()) >= INPUT_BACKLOG) {
            this.#sendAll(texts);
            texts = [];
            await this.#roomToSend();
          }
          texts.push(cmd.text);
          continue;
        }
        if (cmd.kind === "empty") continue;
        // Anything else is shown in order with the sends around it.
        this.#sendAll(texts);
        texts = [];
        if (cmd.kind === "quit") return "quit";
        this.#command(cmd);
      }
      this.#sendAll(texts);
    }
    return "eof";
  }

  /** Runs a command other than sending, empty or `/quit`. */
  #command(cmd: InputCommand): void {
    const { client, files, view } = this.#o;
    switch (cmd.kind) {
      case "peers":
        this.#o.print(view.peers(client.peers().map((p) => this.#o.row(p))));
        break;
      case "help":
        this.#o.print(view.help());
        break;
      case "trust":
        this.#trust(cmd.name);
        break;
      case "private":
        this.#private(cmd.name, cmd.text);
        break;
      case "nick":
        this.#nick(cmd.name);
        break;
      case "unknown":
        this.#o.print(view.notice(`Unknown command ${cmd.command}; try /help`));
        break;
      case "send-file":
        void files.sendCommand(cmd.args);
        break;
      case "accept":
        void files.accept(cmd.id);
        break;
      case "reject":
        files.reject(cmd.id);
        break;
    }
  }

  /** Resolves after a step that leaves room to send (or on a signal, or after a while). */
  #roomToSend(): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const timer = setTimeout(resolve, ROOM_WAIT);
    this.#room = () => {
      if (this.#interrupted || this.#o.client.backlog(monotonicNow()) < INPUT_BACKLOG) resolve();
    };
    return promise.finally(() => {
      clearTimeout(timer);
      this.#room = undefined;
    });
  }

  /**
   * Sends chat lines (before registering, they wait in #pending). Piped lines go in one driver
   * step per batch (sharing DATA frames); on the chat screen each line is a step of its own, so
   * that our line, or the notice saying why it was not sent, shows in the order typed.
   */
  #sendAll(texts: readonly string[]): void {
    if (texts.length === 0) return;
    if (!this.#sendable) {
      this.#pending.push(...texts);
      return;
    }
    if (!this.#o.screen) return this.#sendStep(texts);
    for (const text of texts) this.#sendStep([text]);
  }

  /** Sends `texts` in one driver step; says which went to nobody for want of peers. */
  #sendStep(texts: readonly string[]): void {
    const { client, view, print } = this.#o;
    const sent: number[] = [];
    this.#o.step((now) => {
      for (const text of texts) sent.push(client.send(now, text));
    });
    const alone = client.peers().length === 0;
    for (const [i, text] of texts.entries()) {
      if (sent[i] === 0) {
        this.#unsent++;
        // A line too long has had its notice from the client.
        if (alone && !tooLong(text)) print(view.notice("Nobody else is in the room; not sent"));
      } else if (this.#o.screen && this.#self !== null) {
        // On the chat screen our own lines are shown like everyone's, with our name.
        print(view.event({ type: "message", from: this.#self, text }));
      }
    }
  }

  /** `/trust NAME`: records the identity NAME has now as the one to expect. */
  #trust(name: string): void {
    const { view, print } = this.#o;
    const peer = this.#o.client.peers().find((p) => p.name === name);
    if (!peer) {
      print(view.notice(`Nobody called ${name} is here; /peers lists who is`));
      return;
    }
    this.#o.known.trust(name, peer.fingerprint);
    print(view.notice(`${name} is now expected with fingerprint ${peer.fingerprint}`));
  }

  /** `/msg NAME text`: sends `text` to `name` alone; on the chat screen, shows it as sent. */
  #private(name: string, text: string): void {
    const { client, view, print } = this.#o;
    if (!this.#sendable) {
      print(view.notice("Not in the room yet; /msg waits for no one: try again soon"));
      this.#unsent++;
      return;
    }
    let sent = 0;
    this.#o.step((now) => sent = client.sendPrivate(now, name, text));
    if (sent === 0) this.#unsent++;
    if (sent > 0 && this.#o.screen && this.#self !== null) {
      print(view.event({ type: "message", from: this.#self, to: name, text, private: true }));
    }
  }

  /** `/nick NAME`: renames us; the peers are told (the client's notice says so). */
  #nick(name: string): void {
    let why: string | null = null;
    this.#o.step((now) => why = this.#o.client.rename(now, name));
    if (why !== null) return this.#o.print(this.#o.view.notice(why));
    this.registered(this.#o.client.name);
  }
}

/** True when `text` is past the message limit (the client refuses it with a notice). */
function tooLong(text: string): boolean {
  return text.length * 3 > MAX_MESSAGE && new TextEncoder().encode(text).length > MAX_MESSAGE;
}
