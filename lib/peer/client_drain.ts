/**
 * Where a client's parts' outputs become the client's own: the datagrams of the server link,
 * discovery, the supernode side and each remote go onto one outgoing queue, their events onto
 * the user's (a remote's `identified`, GOODBYE_ACK and file frames and what a step must act on are
 * taken on the way; chat lines are shown once each, see `lib/peer/chat_log.ts`), discovery's
 * findings are told to every peer, and drops are counted. The client
 * (`lib/peer/client.ts`) and its inbox (`lib/peer/client_inbox.ts`) drain through one
 * {@link ClientDrain}. Pure.
 *
 * @module
 */
import type { Transmit } from "../wire/transmit.ts";
import { toHex } from "../wire/codec.ts";
import type { ClientEvent } from "./client_options.ts";
import type { MadeParts } from "./client_options.ts";
import type { DriveState } from "./client_drive.ts";
import { discoveryNotice, linkEventOf, remoteTransmits } from "./client_outputs.ts";
import type { Farewell } from "./farewell.ts";
import { notice, type NoticeFact } from "./notices.ts";
import type { RemotePeer } from "./remote.ts";
import type { MessageEvent, RemoteOutput } from "./remote_context.ts";
import type { ChatLog } from "./chat_log.ts";
import { ChatKind } from "../wire/chat_message.ts";
import type { ClientFiles } from "./client_files.ts";

/** What a drain moves outputs from, besides the client's parts. */
export interface DrainParts {
  /** The client's parts. */
  readonly parts: MadeParts;
  /** What the current step learned. */
  readonly step: DriveState;
  /** Our own goodbyes (GOODBYE_ACKs are theirs). */
  readonly farewell: Farewell;
  /** The room's recent lines and the ids shown. */
  readonly log: ChatLog;
  /** File transfers (file frames are theirs). */
  readonly files: ClientFiles;
}

/** The client's outgoing datagrams and user events, filled from its parts. */
export class ClientDrain {
  /** Datagrams to send, in order. */
  readonly out: Transmit[] = [];
  /** Events for the user, in order. */
  readonly events: ClientEvent[] = [];
  #p: MadeParts;
  #step: DriveState;
  #farewell: Farewell;
  #log: ChatLog;
  /** A peer's view of our address reached discovery: its news is drained at the step's end. */
  #views = false;
  #files: ClientFiles;

  /** A drain for the parts in `d`. */
  constructor(d: DrainParts) {
    this.#p = d.parts;
    this.#step = d.step;
    this.#farewell = d.farewell;
    this.#log = d.log;
    this.#files = d.files;
  }

  /**
   * After anything touched remote `r`: its datagrams go out (RELAYs through the relay it chose:
   * our supernode, or the server), its events to the user, and its deadline is filed again.
   */
  remote(r: RemotePeer): void {
    const { id, link, supernodes: sn, members } = this.#p;
    remoteTransmits(r, id, link, sn, this.out);
    for (let e = r.pollEvent(); e; e = r.pollEvent()) {
      if (this.#step.noteEvent(r, e, sn.link?.key, link.bootId)) continue;
      if (e.type === "identified") {
        members.identified(r);
        this.members();
      } else if (e.type === "introduced") this.#step.introduced(r);
      else if (e.type === "goodbye-ack") this.#farewell.handleAck(r.key);
      else if (e.type === "chat") this.#chat(r, e.msg);
      else if (e.type === "file") this.#files.receive(r, e.frame);
      else if (e.type === "observed") {
        this.#p.discovery.handlePeerView(e.observed, e.from);
        this.#views = true;
      } else this.events.push(e);
    }
    this.#p.peers.track(r);
  }

  /** A chat line from `r`: shown unless it was shown before (live, or as history). */
  #chat(r: RemotePeer, m: Extract<RemoteOutput, { type: "chat" }>["msg"]): void {
    const author = r.fingerprint ?? r.key;
    const history = m.kind !== ChatKind.Line;
    if (!this.#log.received(author, m.id, history)) return this.drop("chat-duplicate");
    const e: MessageEvent = { type: "message", from: r.name, text: m.text };
    if (m.kind === ChatKind.Private) e.private = true;
    if (m.kind === ChatKind.History) (e.history = true, e.ago = m.age);
    this.events.push(e);
  }

  /** Moves what membership queued: the remotes it touched are drained, its events shown. */
  members(): void {
    const m = this.#p.members;
    for (let r = m.pollTouched(); r; r = m.pollTouched()) this.remote(r);
    for (let e = m.pollEvent(); e; e = m.pollEvent()) this.events.push(e);
  }

  /** Moves what the server link queued out: its datagrams, then its events. */
  link(): void {
    const link = this.#p.link;
    for (let t = link.pollTransmit(); t; t = link.pollTransmit()) this.out.push(t);
    for (let e = link.pollEvent(); e; e = link.pollEvent()) {
      this.events.push(linkEventOf(e, this.#p.fingerprint, toHex(this.#p.id)));
    }
  }

  /** Moves what discovery queued out and tells the peers what it found. */
  discovery(now: number): void {
    const d = this.#p.discovery;
    for (let t = d.pollTransmit(); t; t = d.pollTransmit()) this.out.push(t);
    for (let e = d.pollEvent(); e; e = d.pollEvent()) {
      if (e.type !== "nat" && e.type !== "candidates") {
        this.notice(discoveryNotice(e));
        continue;
      }
      for (const r of this.#p.peers.values()) {
        if (e.type === "nat") r.tell.nat(now);
        else r.tell.candidates(now);
        this.remote(r);
      }
    }
  }

  /** Drains discovery if peers' views of our address reached it in this step. */
  peerViews(now: number): void {
    if (!this.#views) return;
    this.#views = false;
    this.discovery(now);
  }

  /** Moves what the supernode side queued out; its events are returned for the client. */
  supernodeTransmits(): boolean {
    const sn = this.#p.supernodes;
    let any = false;
    for (let t = sn.pollTransmit(); t; t = sn.pollTransmit()) {
      any = true;
      this.out.push(t);
    }
    return any;
  }

  /** Tells the user `f`. */
  notice(f: NoticeFact): void {
    this.events.push(notice(f));
  }

  /** Counts a dropped datagram under `reason`. */
  drop(reason: string): void {
    const drops = this.#p.drops;
    drops[reason] = (drops[reason] ?? 0) + 1;
  }
}
