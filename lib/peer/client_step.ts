/**
 * The end of every client step (`lib/peer/client.ts` runs it after each input): the peers' views
 * and file transfers are brought up to date, what the step learned of the server is acted on
 * (goodbyes to membership, a peer's SERVER_HINT rechecks our registration, registering again
 * tells every present peer), and the supernode side's in-process traffic with our own role runs
 * to quiescence in bounded rounds; peers introduced in the step get the chat history last.
 * {@link StepEnd} does it. Pure.
 *
 * @module
 */
import type { ChatOut } from "./client_chat.ts";
import type { ClientDrain } from "./client_drain.ts";
import type { DriveState } from "./client_drive.ts";
import type { ClientFiles } from "./client_files.ts";
import type { ClientInbox } from "./client_inbox.ts";
import type { MadeParts } from "./client_options.ts";
import { HINT_BOOT_LEN } from "../wire/peer_frame.ts";

/** Rounds of in-process traffic with our own supernode role per step, at most. */
const MAX_ROUNDS = 16;

/** What a step's end acts on and drains through. */
export interface StepParts {
  /** The client's parts. */
  readonly parts: MadeParts;
  /** Where their outputs go. */
  readonly drain: ClientDrain;
  /** What the step learned. */
  readonly step: DriveState;
  /** File transfers with the peers. */
  readonly files: ClientFiles;
  /** Chat lines out (history for peers introduced in the step). */
  readonly chat: ChatOut;
  /** Where what our own supernode role delivers to us goes. */
  readonly inbox: ClientInbox;
}

/** The end of a client step. Call {@link run} after every input the client handles. */
export class StepEnd {
  #p: MadeParts;
  #d: ClientDrain;
  #step: DriveState;
  #files: ClientFiles;
  #chat: ChatOut;
  #inbox: ClientInbox;

  /** A step end over the parts in `s`. */
  constructor(s: StepParts) {
    this.#p = s.parts;
    this.#d = s.drain;
    this.#step = s.step;
    this.#files = s.files;
    this.#chat = s.chat;
    this.#inbox = s.inbox;
  }

  /**
   * Ends a step at `now`: the supernode side's output goes out and its events are acted on; our
   * own registration's traffic with our own role runs to quiescence (in bounded rounds).
   */
  run(now: number): void {
    const sn = this.#p.supernodes;
    this.#d.peerViews(now);
    this.#files.step(now, (r) => this.#d.remote(r));
    for (let e = this.#files.pollEvent(); e; e = this.#files.pollEvent()) this.#d.events.push(e);
    this.#serverNews(now);
    const failed = this.#step.takeSupernodeFailed();
    if (failed !== undefined) sn.pathFailed(now, failed);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const fed = sn.pump(now);
      if (!this.#snOut(now) && !fed) break;
    }
    // Peers introduced in this step get our history before any line written later.
    for (const r of this.#step.takeIntroduced()) this.#chat.history(now, r);
  }

  /**
   * Restarts learned at once: when our link registered again (the server refused us as unknown,
   * or was lost), each established peer gets a SERVER_HINT along its path; a peer's hint makes
   * us check our own registration (see `ServerLink.recheck`).
   */
  #serverNews(now: number): void {
    const { link, members, peers } = this.#p;
    const goodbyes = this.#step.takeGoodbyes();
    if (goodbyes.length > 0) {
      for (const r of goodbyes) members.goodbye(now, r);
      this.#d.members();
    }
    if (this.#step.takeHint()) {
      link.recheck(now);
      this.#d.link();
    }
    if (!this.#step.registeredAgain(link.registrations) || link.closed) return;
    // The boot id of the server instance we registered with (zeros when it gave none).
    const boot = link.bootId ?? new Uint8Array(HINT_BOOT_LEN);
    for (const r of peers.values()) {
      if (!r.present) continue;
      r.tell.serverHint(now, boot);
      this.#d.remote(r);
    }
  }

  /** Moves what the supernode side queued out and acts on its events; true if there was any. */
  #snOut(now: number): boolean {
    const { supernodes: sn, members, peers } = this.#p;
    let any = this.#d.supernodeTransmits();
    for (let e = sn.pollEvent(); e; e = sn.pollEvent()) {
      any = true;
      switch (e.type) {
        case "delivered":
          this.#inbox.fromLink(now, e.data, e.from);
          break;
        case "routes-changed":
          for (const r of peers.values()) members.refresh(now, r);
          this.#d.members();
          break;
        case "relays-changed":
          for (const r of peers.values()) {
            if (!r.present) continue;
            r.tell.relays(now);
            members.refresh(now, r);
          }
          this.#d.members();
          break;
        case "serving":
          this.#d.notice({ kind: "supernode" });
          break;
        case "not-serving":
          this.#d.notice({ kind: "not-supernode" });
          break;
      }
    }
    return any;
  }
}
