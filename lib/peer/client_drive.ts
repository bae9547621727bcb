/**
 * What one step of the client learned that its end (`StepEnd`, `lib/peer/client_step.ts`)
 * acts on: a peer's SERVER_HINT (check our registration), the peers whose GOODBYE came (they
 * depart), the peers first introduced (they are sent our history), our supernode's direct path failing (it is gone), and how many registrations our
 * server link has seen (a new one after the first: tell the peers); and when the client must be
 * driven next ({@link nextDeadline}). Pure.
 *
 * @module
 */
import { hintMatters } from "./client_outputs.ts";
import type { Discovery } from "./discovery.ts";
import type { Farewell } from "./farewell.ts";
import type { PeerTable } from "./peer_table.ts";
import type { ServerLink } from "./server_link.ts";
import type { Supernodes } from "./supernodes.ts";
import type { RemotePeer } from "./remote.ts";
import type { RemoteOutput } from "./remote_context.ts";

/** The remote events that are news for the end of the step (see {@link DriveState.noteEvent}). */
export type StepNews = Extract<
  RemoteOutput,
  { type: "direct-lost" | "relay-worse" | "server-hint" | "goodbye" }
>;

/** One step's news for the end of the step. Record with {@link noteEvent}, read with `take*`. */
export class DriveState {
  /** Registrations of our server link seen. */
  #registrations = 0;
  /** A peer's SERVER_HINT came in this step. */
  #hinted = false;
  /** Peers whose GOODBYE came in this step. */
  #goodbyes: RemotePeer[] = [];
  /** Our supernode's key, when the direct path to it failed in this step. */
  #supernodeFailed: string | undefined;
  /** Peers first introduced in this step (they are owed our history before anything else). */
  #introduced: RemotePeer[] = [];

  /** Peer `r` was first introduced (see {@link takeIntroduced}). */
  introduced(r: RemotePeer): void {
    this.#introduced.push(r);
  }

  /** The peers first introduced in this step, in order (then forgotten). */
  takeIntroduced(): RemotePeer[] {
    return this.#introduced.splice(0);
  }

  /**
   * Takes remote `r`'s event `e` if it is news for the end of the step: its direct path lost
   * (news only when `r` is our supernode, key `ourSupernode`: it is reachable by definition, so
   * it is gone), our supernode relaying worse than the server would (it is left), a SERVER_HINT (news unless we are registered with that very server instance,
   * boot id `bootId`), a GOODBYE. False for any other event.
   */
  noteEvent(
    r: RemotePeer,
    e: RemoteOutput,
    ourSupernode: string | undefined,
    bootId: Uint8Array | null,
  ): e is StepNews {
    switch (e.type) {
      case "direct-lost":
        if (r.key === ourSupernode) this.#supernodeFailed = r.key;
        return true;
      case "relay-worse":
        // What our supernode relays arrives late or not at all: leave it for every pair.
        if (e.supernode === ourSupernode) this.#supernodeFailed = e.supernode;
        return true;
      case "server-hint":
        if (hintMatters(bootId, e.boot)) this.#hinted = true;
        return true;
      case "goodbye":
        this.#goodbyes.push(r);
        return true;
    }
    return false;
  }

  /** The supernode whose direct path failed in this step, if any (then forgotten). */
  takeSupernodeFailed(): string | undefined {
    const failed = this.#supernodeFailed;
    this.#supernodeFailed = undefined;
    return failed;
  }

  /** The peers whose GOODBYE came in this step, in order (then forgotten). */
  takeGoodbyes(): RemotePeer[] {
    return this.#goodbyes.splice(0);
  }

  /** Whether a SERVER_HINT came in this step (then forgotten). */
  takeHint(): boolean {
    const hinted = this.#hinted;
    this.#hinted = false;
    return hinted;
  }

  /**
   * Records that our server link has seen `n` registrations; true when that is a new one after
   * the first (we registered again: the peers are told).
   */
  registeredAgain(n: number): boolean {
    if (n === this.#registrations) return false;
    const again = this.#registrations > 0;
    this.#registrations = n;
    return again;
  }
}

/** The client's parts whose deadlines make the client's. */
export interface TimedParts {
  /** Our server link (after leaving, it is closed). */
  link: ServerLink;
  /** The STUN probe and the port mapper. */
  discovery: Discovery;
  /** The supernode side. */
  sn: Supernodes;
  /** The remotes and their deadlines. */
  peers: PeerTable;
  /** Our goodbyes, once we leave. */
  farewell: Farewell;
  /** File transfers (their timers run after leaving too). */
  files: { nextTimeout(): number | undefined };
}

/**
 * The earliest deadline among the parts: after leaving (the link closed), only the goodbyes and
 * the port mapper's deletions go on.
 */
export function nextDeadline(p: TimedParts): number | undefined {
  const files = p.files.nextTimeout() ?? Infinity;
  if (p.link.closed) {
    const t = Math.min(
      p.discovery.nextMapperTimeout() ?? Infinity,
      p.farewell.nextTimeout() ?? Infinity,
      files,
    );
    return t === Infinity ? undefined : t;
  }
  let t = p.link.nextTimeout() ?? Infinity;
  t = Math.min(t, p.discovery.nextMapperTimeout() ?? Infinity);
  t = Math.min(t, p.discovery.nextTimeout() ?? Infinity);
  t = Math.min(t, p.sn.nextTimeout() ?? Infinity);
  t = Math.min(t, p.peers.nextTimeout() ?? Infinity, files);
  return t === Infinity ? undefined : t;
}
