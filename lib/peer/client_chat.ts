/**
 * What a client says in its room: lines to everyone (LINE), private lines to one peer
 * (PRIVATE, `/msg`), its new name (NICK, `/nick`), and, to a peer that joins later, the lines it
 * wrote among the room's latest (HISTORY, see `lib/peer/chat_log.ts`). Each message is put in its
 * envelope (`lib/wire/chat_message.ts`), checked against {@link MAX_MESSAGE}, fragmented, and
 * queued on the reliable channel of every peer present (or the one named) without sending yet,
 * so that the messages of one step share DATA frames; the client flushes them when its output is
 * next polled. Peers whose queue is full are named in a `queue-full` notice. The client
 * (`lib/peer/client.ts`) owns one. Pure.
 *
 * @module
 */
import {
  CHAT_ID_LEN,
  ChatKind,
  type ChatMessage,
  encodeChat,
  encodeLine,
} from "../wire/chat_message.ts";
import type { ChatLog } from "./chat_log.ts";
import type { ClientDrain } from "./client_drain.ts";
import { fragment, MAX_MESSAGE } from "./fragment.ts";
import type { PeerTable } from "./peer_table.ts";
import type { RemotePeer } from "./remote.ts";
import type { ServerLink } from "./server_link.ts";
import { normalizeName } from "../core/names.ts";

const textEncoder = new TextEncoder();

/**
 * Outgoing chat.
 *
 * Driving it: {@link line}, {@link privately}, {@link rename} and {@link history} queue; when
 * {@link pending}, call {@link flush} before the client's output is taken, and drive the client
 * at the time it returns.
 */
export class ChatOut {
  #peers: PeerTable;
  #drain: ClientDrain;
  #log: ChatLog;
  /** Remotes with messages queued but not yet sent, and since when. */
  #unsent = new Set<RemotePeer>();
  #unsentAt = 0;

  /** Chat to the remotes of `peers`, remembered in `log`, outputs drained through `drain`. */
  constructor(peers: PeerTable, drain: ClientDrain, log: ChatLog) {
    this.#peers = peers;
    this.#drain = drain;
    this.#log = log;
  }

  /** True when messages wait for {@link flush}. */
  get pending(): boolean {
    return this.#unsent.size > 0;
  }

  /**
   * Queues the line `text` for every peer present. Returns how many peers it was queued for (0
   * when it is too long: a `too-long` notice says so). A line queued for anyone is kept for
   * peers that join later.
   */
  line(now: number, text: string): number {
    if (!this.#fits(text)) return 0;
    const bytes = encodeLine(ChatKind.Line, this.#log.run, this.#log.nextSeq(), text);
    const n = this.#queueBytes(now, bytes, this.#peers.values());
    // The id is the envelope's own bytes 1..8 (a view, not a copy).
    if (n > 0) this.#log.wrote(now, bytes.subarray(1, 1 + CHAT_ID_LEN), text);
    return n;
  }

  /**
   * Queues `text` for the present, established peer called `name` only (never repeated as
   * history). Returns 1 when queued; 0 with a notice when nobody is called that, or it is too
   * long.
   */
  privately(now: number, name: string, text: string): number {
    const to = this.#named(name);
    if (!to) {
      this.#drain.notice({ kind: "no-such-peer", name });
      return 0;
    }
    if (!this.#fits(text)) return 0;
    return this.#queueBytes(
      now,
      encodeLine(ChatKind.Private, this.#log.run, this.#log.nextSeq(), text),
      [to],
    );
  }

  /**
   * Renames us (`/nick`) to `wanted`: the peers present are told (NICK), and later handshakes and
   * registrations through `link` carry the new name. Returns why not, or null.
   */
  rename(now: number, wanted: string, link: ServerLink): string | null {
    const checked = normalizeName(wanted);
    if (!checked.ok) return `That name is not allowed: ${checked.reason}`;
    const name = checked.name;
    if (name === link.name) return null;
    if (this.#peers.infos().some((p) => p.name === name)) return `${name} is taken in this room`;
    link.rename(name);
    for (const r of this.#peers.values()) r.renameSelf(name);
    this.#queue(now, { kind: ChatKind.Nick, name }, this.#peers.values());
    this.#drain.notice({ kind: "nick", name: null, to: name });
    return null;
  }

  /**
   * Queues for `r`, a peer just introduced, the lines we wrote among the room's latest: first on
   * its stream, before any line written since, so they show in order (they go out once its
   * handshake proves it a member). Silent when its queue is full: history is a courtesy.
   */
  history(now: number, r: RemotePeer): void {
    for (const l of this.#log.ownHistory()) {
      const age = Math.max(0, Math.floor((now - l.at) / 1000));
      const m = encodeChat({ kind: ChatKind.History, id: l.id, age, text: l.text });
      if (!r.send(now, fragment(m), false)) break;
      this.#unsent.add(r);
      this.#unsentAt = now;
    }
  }

  /** Sends what was queued since the last flush; returns when it was queued. */
  flush(): number {
    for (const r of this.#unsent) {
      r.flush(this.#unsentAt);
      this.#drain.remote(r);
    }
    this.#unsent.clear();
    return this.#unsentAt;
  }

  /** True when `text` may be sent; else a `too-long` notice says why not. */
  #fits(text: string): boolean {
    // A UTF-16 unit is at most 3 bytes of UTF-8: most lines need no encoding to be checked.
    if (text.length * 3 <= MAX_MESSAGE) return true;
    const bytes = textEncoder.encode(text).length;
    if (bytes <= MAX_MESSAGE) return true;
    this.#drain.notice({ kind: "too-long", bytes, limit: MAX_MESSAGE });
    return false;
  }

  /** The present, established peer called `name`, if any. */
  #named(name: string): RemotePeer | undefined {
    for (const r of this.#peers.values()) {
      if (r.present && r.established && r.name === name) return r;
    }
    return undefined;
  }

  /** Queues `m` on the channel of each present remote of `to`; how many took it. */
  #queue(now: number, m: ChatMessage, to: Iterable<RemotePeer>): number {
    return this.#queueBytes(now, encodeChat(m), to);
  }

  /** Queues the message `bytes` on the channel of each present remote of `to`; how many took it. */
  #queueBytes(now: number, bytes: Uint8Array, to: Iterable<RemotePeer>): number {
    const parts = fragment(bytes);
    let n = 0;
    const behind: string[] = [];
    for (const r of to) {
      if (!r.present) continue;
      if (r.send(now, parts, false)) (n++, this.#unsent.add(r), this.#unsentAt = now);
      else behind.push(r.name || "a peer still connecting");
      this.#drain.remote(r);
    }
    if (behind.length > 0) this.#drain.notice({ kind: "queue-full", names: behind });
    return n;
  }
}
