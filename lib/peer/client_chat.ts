/**
 * The chat lines a client sends: each line is checked against {@link MAX_MESSAGE}, fragmented,
 * and queued on the reliable channel of every peer present (or of the peers named), without
 * sending yet, so that the lines of one step share DATA frames; the client flushes them when its
 * output is next polled. Peers whose queue is full are named in a `queue-full` notice. The
 * client (`lib/peer/client.ts`) owns one. Pure.
 *
 * @module
 */
import type { ClientDrain } from "./client_drain.ts";
import { fragment, MAX_MESSAGE } from "./fragment.ts";
import type { PeerTable } from "./peer_table.ts";
import type { RemotePeer } from "./remote.ts";

const textEncoder = new TextEncoder();

/**
 * Outgoing chat lines.
 *
 * Driving it: {@link send} queues; when {@link pending}, call {@link flush} before the client's
 * output is taken, and drive the client at the time it returns.
 */
export class ChatOut {
  #peers: PeerTable;
  #drain: ClientDrain;
  /** Remotes with lines queued but not yet sent, and since when. */
  #unsent = new Set<RemotePeer>();
  #unsentAt = 0;

  /** Lines to the remotes of `peers`, their outputs drained through `drain`. */
  constructor(peers: PeerTable, drain: ClientDrain) {
    this.#peers = peers;
    this.#drain = drain;
  }

  /** True when lines wait for {@link flush}. */
  get pending(): boolean {
    return this.#unsent.size > 0;
  }

  /**
   * Queues `text` for every peer present, or for `to` only. Returns how many peers it was queued
   * for (0 when it is too long: a `too-long` notice says so).
   */
  send(now: number, text: string, to?: readonly RemotePeer[]): number {
    const bytes = textEncoder.encode(text);
    if (bytes.length > MAX_MESSAGE) {
      this.#drain.notice({ kind: "too-long", bytes: bytes.length, limit: MAX_MESSAGE });
      return 0;
    }
    const parts = fragment(bytes);
    let n = 0;
    const behind: string[] = [];
    for (const r of to ?? this.#peers.values()) {
      if (!r.present) continue;
      if (r.send(now, parts, false)) (n++, this.#unsent.add(r), this.#unsentAt = now);
      else behind.push(r.name || "a peer still connecting");
      this.#drain.remote(r);
    }
    if (behind.length > 0) this.#drain.notice({ kind: "queue-full", names: behind });
    return n;
  }

  /** Sends the lines queued since the last flush; returns when they were queued. */
  flush(): number {
    for (const r of this.#unsent) {
      r.flush(this.#unsentAt);
      this.#drain.remote(r);
    }
    this.#unsent.clear();
    return this.#unsentAt;
  }
}
