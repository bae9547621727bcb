/**
 * Leaving so that the room knows: a peer that leaves sends each established peer a sealed
 * GOODBYE (the caller seals and sends them) and its server a BYE. One datagram each can be lost
 * (a server's receive buffer overflowing while it was stopped is enough), and a lost goodbye
 * leaves a ghost in the room until the server expires it. So GOODBYEs to peers reached directly
 * are repeated every {@link GOODBYE_REPEAT} ms until each answers GOODBYE_ACK, for at most
 * {@link GOODBYE_FOR}; the BYE goes {@link BYE_COPIES} times, {@link BYE_REPEAT} ms apart. (A
 * relayed GOODBYE goes once: it travels just ahead of the BYE, after which the server relays
 * nothing for us, and the server's LEFT tells those peers anyway.)
 *
 * Pure timing and bookkeeping. Driving it: {@link start} once; {@link handleAck} for each
 * GOODBYE_ACK; {@link handleTimeout} at {@link nextTimeout}, sending what it returns; the
 * caller waits for {@link done} (bounded by {@link GOODBYE_FOR}) before it closes its socket.
 *
 * @module
 */
import type { Transmit } from "../wire/transmit.ts";

/** GOODBYE repeats to a peer that has not answered, every this many ms. */
export const GOODBYE_REPEAT = 200;
/** How long GOODBYEs are repeated at most, ms. */
export const GOODBYE_FOR = 1_000;
/** BYE copies to the server (the first at once). */
export const BYE_COPIES = 3;
/** Gap between BYE copies, ms. */
export const BYE_REPEAT = 100;

/** What is due at a {@link Farewell.handleTimeout}. */
export interface FarewellDue {
  /** Peers (their keys) to send a GOODBYE again. */
  goodbyes: string[];
  /** A copy of the BYE to send, if one is due. */
  bye: Transmit | undefined;
}

/** One leave: the GOODBYEs awaiting their answer, and the BYE copies still to send. */
export class Farewell {
  #awaiting = new Set<string>();
  #bye: Transmit | undefined;
  #byesLeft = 0;
  #nextBye = Infinity;
  #nextGoodbye = Infinity;
  #until = -Infinity;

  /**
   * Starts at `now`, the first GOODBYEs and BYE just sent: `awaiting` are the peers whose answer
   * is awaited, `bye` the BYE to repeat (none when we were not registered).
   */
  start(now: number, awaiting: Iterable<string>, bye: Transmit | undefined): void {
    this.#awaiting = new Set(awaiting);
    this.#until = now + GOODBYE_FOR;
    this.#nextGoodbye = this.#awaiting.size > 0 ? now + GOODBYE_REPEAT : Infinity;
    this.#bye = bye;
    this.#byesLeft = bye ? BYE_COPIES - 1 : 0;
    this.#nextBye = this.#byesLeft > 0 ? now + BYE_REPEAT : Infinity;
  }

  /** Peer `key` answered our GOODBYE. */
  handleAck(key: string): void {
    this.#awaiting.delete(key);
  }

  /** True while a GOODBYE_ACK is awaited from `key`. */
  awaits(key: string): boolean {
    return this.#awaiting.has(key);
  }

  /** True once every BYE copy went and every GOODBYE was answered, or time is up. */
  get done(): boolean {
    return this.#byesLeft === 0 && (this.#awaiting.size === 0 || this.#nextGoodbye === Infinity);
  }

  /** When {@link handleTimeout} next has work, if ever. */
  nextTimeout(): number | undefined {
    const t = Math.min(this.#nextBye, this.#awaiting.size > 0 ? this.#nextGoodbye : Infinity);
    return t === Infinity ? undefined : t;
  }

  /** What is due at `now`. */
  handleTimeout(now: number): FarewellDue {
    const due: FarewellDue = { goodbyes: [], bye: undefined };
    if (now >= this.#nextBye && this.#bye) {
      due.bye = this.#bye;
      this.#byesLeft--;
      this.#nextBye = this.#byesLeft > 0 ? now + BYE_REPEAT : Infinity;
    }
    if (now >= this.#nextGoodbye && this.#awaiting.size > 0) {
      if (now >= this.#until) this.#nextGoodbye = Infinity;
      else {
        due.goodbyes = [...this.#awaiting];
        this.#nextGoodbye = now + GOODBYE_REPEAT;
      }
    }
    return due;
  }
}
