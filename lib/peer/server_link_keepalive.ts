/**
 * When a peer's server link PINGs (`lib/peer/server_link.ts` sends them): soon after
 * registering, then every keepalive (the option's, or less when a cluster's SERVERS asks for
 * less), sooner while a PONG is missing (1 s, 2 s, 4 s … up to the keepalive), the first
 * {@link EARLY_SAMPLES} a second apart so the round-trip time settles early; how long PONGs may
 * be missing before the server counts as lost (less once a cluster told us its other servers);
 * and the round-trip time itself. {@link PingSchedule} holds it. Pure.
 *
 * @module
 */
import { PingRtt } from "./server_link_parts.ts";
import {
  CLUSTER_FAILOVER_AFTER,
  CLUSTER_MOVE_GIVE_UP,
  EARLY_SAMPLES,
  SERVER_LOST_AFTER,
} from "./server_link_types.ts";

/**
 * The PING timing of one server link.
 *
 * Call order: {@link advise} for each believed SERVERS; read {@link first}, {@link answered},
 * {@link retry} or {@link moved} for the next PING's time when registering, on an awaited PONG,
 * on sending a PING, or on moving to the server's other transport; {@link rtt} takes the samples.
 */
export class PingSchedule {
  /** The keepalive option, in ms. */
  #base: number;
  /** The PING interval: the option's, or less when a cluster asks for less. */
  #keepalive: number;
  /** A cluster told us its other servers: fail over after {@link CLUSTER_FAILOVER_AFTER}. */
  #cluster = false;
  /** PING→PONG round trips to the server in use: the first few samples come a second apart. */
  #rtt = new PingRtt();

  /** PINGs every `keepalive` ms while the server answers. */
  constructor(keepalive: number) {
    this.#base = keepalive;
    this.#keepalive = keepalive;
  }

  /** The round-trip times to the server in use. */
  get rtt(): PingRtt {
    return this.#rtt;
  }

  /** How long PONGs may be missing before the server counts as lost, in ms. */
  get giveUp(): number {
    return this.#cluster ? CLUSTER_FAILOVER_AFTER : SERVER_LOST_AFTER;
  }

  /**
   * How long the lost server's other transport, tried with the same registration, may leave
   * PINGs unanswered before the next server, in ms: {@link CLUSTER_MOVE_GIVE_UP} in a cluster
   * (its other servers wait), else {@link giveUp}.
   */
  get moveGiveUp(): number {
    return this.#cluster ? CLUSTER_MOVE_GIVE_UP : this.giveUp;
  }

  /**
   * A cluster's SERVERS: `learned` when it named other servers, `keepalive` its advice in
   * seconds (0: none; never more than the option).
   */
  advise(learned: boolean, keepalive: number): void {
    if (keepalive > 0) this.#keepalive = Math.min(this.#base, keepalive * 1_000);
    this.#cluster ||= learned;
  }

  /** Registered at `now`: a first PING soon checks that no introduction was lost on the way. */
  first(now: number): number {
    return now + Math.min(1_000, this.#keepalive);
  }

  /** An awaited PONG came at `now`: the next PING (a second apart for the early samples). */
  answered(now: number): number {
    const k = this.#keepalive;
    return now + (this.#rtt.samples < EARLY_SAMPLES ? Math.min(1_000, k) : k);
  }

  /**
   * A PING went out at `now` after awaiting a PONG for `waited` ms: the next one, sooner (1 s,
   * 2 s, 4 s …) up to the keepalive interval; in a cluster no later than `lostAt`, when the
   * server would count as lost (so that failover starts on time, not at the next retry).
   */
  retry(now: number, waited: number, lostAt = Infinity): number {
    const k = this.#keepalive;
    const next = now + (waited === 0 ? Math.min(1_000, k) : Math.min(Math.max(waited, 1_000), k));
    return this.#cluster && lostAt > now ? Math.min(next, lostAt) : next;
  }

  /** Moved to the server's other transport at `now`: the next PING soon. */
  moved(now: number): number {
    return now + Math.min(1_000, this.#base);
  }
}
