/**
 * A client leaving the room (`lib/peer/client.ts`'s `leave`): the ACKs still delayed go first (so
 * the peers do not resend what was delivered), then a sealed GOODBYE to each established peer
 * along its path, repeated to those reached directly until they answer, the supernode side
 * closed, BYE to the server (three times), and the router's port mapping deleted. The timing is
 * {@link Farewell}'s (`lib/peer/farewell.ts`); {@link ClientLeave} acts on it. Pure.
 *
 * @module
 */
import type { ClientDrain } from "./client_drain.ts";
import { byeOf } from "./client_outputs.ts";
import type { MadeParts } from "./client_options.ts";
import type { StepEnd } from "./client_step.ts";
import type { Farewell } from "./farewell.ts";

/** What leaving acts on and drains through. */
export interface LeaveParts {
  /** The client's parts. */
  readonly parts: MadeParts;
  /** Where their outputs go. */
  readonly drain: ClientDrain;
  /** The goodbyes' timing. */
  readonly farewell: Farewell;
  /** The end of a step, run once the goodbyes are queued. */
  readonly end: StepEnd;
}

/** A client's leaving. Call {@link start} once, then {@link handleTimeout} while it is due. */
export class ClientLeave {
  #p: MadeParts;
  #d: ClientDrain;
  #farewell: Farewell;
  #end: StepEnd;

  /** Leaving over the parts in `l`. */
  constructor(l: LeaveParts) {
    this.#p = l.parts;
    this.#d = l.drain;
    this.#farewell = l.farewell;
    this.#end = l.end;
  }

  /** Says goodbye at `now`: GOODBYEs to the peers, BYE to the server, mapping deleted. */
  start(now: number): void {
    const { peers, supernodes, link, id, discovery } = this.#p;
    const awaiting: string[] = [];
    for (const r of peers.values()) {
      r.flushAck(now);
      if (r.goodbye(now) && r.direct) awaiting.push(r.key);
      this.#d.remote(r);
    }
    supernodes.close(now);
    this.#end.run(now);
    const bye = byeOf(link, id);
    link.close();
    this.#d.link();
    this.#farewell.start(now, awaiting, bye);
    discovery.stop(now);
    this.#d.discovery(now);
  }

  /** Repeats the goodbyes and the BYE that are due at `now`. */
  handleTimeout(now: number): void {
    const due = this.#farewell.handleTimeout(now);
    if (due.bye) this.#d.out.push(due.bye);
    for (const key of due.goodbyes) {
      const r = this.#p.peers.get(key);
      if (!r) continue;
      r.goodbye(now);
      this.#d.remote(r);
    }
  }
}
