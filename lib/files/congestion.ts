/**
 * Congestion control and pacing for the bulk file stream: CUBIC (RFC 9438) with the RFC 9002
 * recovery rules, and a token-bucket pacer.
 *
 * Why CUBIC: file transfer shares its path with everything else the user does, so it has to be
 * fair to TCP on the same bottleneck, and CUBIC is what the TCP stacks it meets run (Linux,
 * Windows, macOS), with a published specification and its "Reno-friendly" region built in. It
 * reacts to loss, which is the one signal every path gives: a policer (`nft limit rate`, a
 * relay's rate limit) drops without queueing, so a delay-based controller such as LEDBAT would
 * see no delay rise, never back off, and lose a large share of its packets; LEDBAT also yields
 * to every TCP flow, which is right for background updates but not for a file a user is
 * waiting for. Chat lines are not governed by this controller at all: they go out before any
 * bulk packet (the bulk sender is only polled after them) and are tiny; but they queue behind
 * bulk packets wherever the path queues (a bottleneck's buffer, a busy receiver's socket), so the
 * bulk sender also counts queueing delay over a small target as a (gentler, β 0.85) congestion
 * event ({@link Cubic.onDelay}, `QUEUE_TARGET` in `bulk_sender.ts`): loss-based CUBIC alone
 * fills any buffer before it backs off. A delay that does not shrink as the window does is a
 * longer path, not our queue: its new minimum RTT is taken and the window given back
 * ({@link Cubic.restore}). Against a TCP flow that fills a deep buffer this yields, as LEDBAT
 * would; on policed and shallow paths it is CUBIC.
 *
 * Two departures from plain CUBIC, both measured in a lab link policed to 20 Mbit/s (issue 19):
 * random loss under {@link LOSS_TOLERANCE} (a moving average) is sent again without shrinking the
 * window (plain CUBIC ran a 2 % lossy link at 64 % of its rate with a 1 ms RTT and 8 % with
 * 40 ms), and a policer is recognised by congestion events at one delivery rate (BBR's
 * "long-term" bandwidth does the same), after which the pacer keeps to that rate instead of
 * probing into the policer once per round trip (plain CUBIC lost 7–10 % of its packets to it
 * with a 1 ms RTT, where the bandwidth-delay product is a packet or two).
 *
 * The parts: slow start from 10 packets (RFC 6928) until the first loss; on a congestion event
 * (once per round trip: losses of packets sent before the recovery started do not count again)
 * the window drops to β = 0.7 of itself, W_max is remembered (with fast convergence), and in
 * congestion avoidance it grows along `C·(t − K)³ + W_max` (C = 0.4, t in seconds), never below
 * the Reno-friendly estimate; persistent congestion (every packet of two PTOs lost) restarts at
 * 2 packets. The window only grows while the sender actually used it (an application-limited
 * sender, waiting for the receiver's requests, does not inflate it). The pacer spreads packets
 * at 2× (slow start) or 1.25× (after) cwnd/srtt, like Linux, with bursts of at most
 * max(10 packets, 2 ms of rate), the timer resolution a JavaScript driver has. Pure; time in ms.
 *
 * @module
 */

/** The bulk stream's packet size for window arithmetic (a full datagram). */
export const MSS = 1200;
/** Initial window in bytes (RFC 6928: 10 packets). */
export const INITIAL_WINDOW: number = 10 * MSS;
/** Smallest window in bytes. */
export const MIN_WINDOW: number = 2 * MSS;
/** Largest window in bytes: bounds the packets one sender keeps track of. */
export const MAX_WINDOW: number = 8 * 1024 * 1024;
/** CUBIC's multiplicative decrease factor. */
export const BETA = 0.7;
/** The decrease on queueing delay over the target (gentler than a loss's). */
export const BETA_DELAY = 0.85;
/** CUBIC's scaling constant (segments / s³). */
export const CUBIC_C = 0.4;
/**
 * Loss rate (an average over about the last 100 packets) below which a lost packet is sent again
 * but not taken for congestion: random loss on a lossy link (Wi-Fi, a noisy line) is no queue of
 * ours, and a loss-based window halved at every one of them runs a 2 % lossy path at a fraction
 * of its rate. Congestion shows as more than this (a queue overflowing drops runs of packets),
 * or as queueing delay first (`QUEUE_TARGET` in `bulk_sender.ts`).
 */
export const LOSS_TOLERANCE = 0.05;
/** Weight of one packet in the loss rate's moving average. */
const LOSS_GAIN = 1 / 100;
/** Shortest interval over which the delivery rate is measured, in ms (and at least 4 RTTs). */
export const DELIVERY_INTERVAL = 100;
/** Delivery rates at two congestion events within this fraction of each other: a policer. */
const POLICER_MATCH = 1 / 8;
/**
 * How long a policer's cap holds before the window probes on its own again, in ms (a loss rate
 * taken for a policer's does the least harm this way; a real one is found again).
 */
export const POLICER_HOLD = 3_000;
/** The lowest pacing cap, bytes/ms (4 packets per delivery interval). */
const MIN_CAP: number = 4 * MSS / DELIVERY_INTERVAL;
/** Delivery rates remembered for setting a policer's cap back (see `#recent`). */
const RECENT_RATES = 3;
/** How much a policer's cap rises after each interval that used it with little loss. */
export const POLICER_PROBE = 1 / 32;

/** The Reno-friendly region's additive increase per RTT, in segments. */
const ALPHA: number = 3 * (1 - BETA) / (1 + BETA);

/** CUBIC's window (RFC 9438), in bytes. Call order: `onSent`, then `onAcked`/`onLost`. */
export class Cubic {
  /** The congestion window in bytes. */
  cwnd: number = INITIAL_WINDOW;
  /** Slow start threshold in bytes (Infinity until the first loss). */
  ssthresh = Infinity;
  #wMax = 0;
  #k = 0;
  #epochStart: number | null = null;
  #wEst = 0;
  /** Packets sent before this time do not start another congestion event. */
  #recoveryStart = -Infinity;
  /** Congestion events so far (for tests and stats). */
  events = 0;
  /** Moving average of the fraction of packets lost (see {@link LOSS_TOLERANCE}). */
  lossRate = 0;
  /** The delivery rate interval under way: when it started, bytes acknowledged, all limited. */
  #meter = { at: -Infinity, bytes: 0, limited: true };
  /** The last interval's delivery rate (bytes/ms) and its number (0: none yet). */
  #delivery = { rate: 0, n: 0 };
  /** The last {@link RECENT_RATES} delivery rates (see `#typicalRate`). */
  #recent: number[] = [];
  /** The delivery rate at the last congestion event, and its interval's number. */
  #atEvent = { rate: 0, n: 0 };
  /** A policer's rate (bytes/ms) the pacer keeps to, until `#capUntil`. */
  #cap = Infinity;
  #capUntil = -Infinity;
  /** Times a policer was detected (for tests and stats). */
  policed = 0;

  /** Whether the window is still in slow start. */
  get slowStart(): boolean {
    return this.cwnd < this.ssthresh;
  }

  /**
   * `bytes` were acknowledged at `now`; the packet was sent at `sentAt`; `srtt` is the smoothed
   * RTT in ms; `limited` says whether the sender filled the window lately (else no growth).
   */
  onAcked(bytes: number, sentAt: number, now: number, srtt: number, limited: boolean): void {
    this.lossRate -= LOSS_GAIN * this.lossRate;
    this.#measure(bytes, now, srtt, limited);
    if (this.#cap !== Infinity && now >= this.#capUntil) this.#uncap();
    if (this.#cap !== Infinity) {
      // Paced at the policer's rate: a window of twice its bandwidth-delay product is plenty
      // (and at least the initial one, since the receiver acknowledges every 8 packets).
      this.cwnd = this.ssthresh = Math.min(
        MAX_WINDOW,
        Math.max(INITIAL_WINDOW, 2 * this.#cap * srtt),
      );
      return;
    }
    if (sentAt <= this.#recoveryStart || !limited) return;
    if (this.slowStart) {
      this.cwnd = Math.min(MAX_WINDOW, this.cwnd + bytes);
      return;
    }
    if (this.#epochStart === null) {
      this.#epochStart = now;
      if (this.cwnd >= this.#wMax) {
        this.#k = 0;
        this.#wMax = this.cwnd;
      } else this.#k = Math.cbrt((this.#wMax - this.cwnd) / MSS / CUBIC_C);
      this.#wEst = this.cwnd;
    }
    const t = (now - this.#epochStart + srtt) / 1000;
    const target = Math.min(
      1.5 * this.cwnd,
      Math.max(this.cwnd, CUBIC_C * (t - this.#k) ** 3 * MSS + this.#wMax),
    );
    this.#wEst += ALPHA * MSS * bytes / this.cwnd;
    let next = this.cwnd + (target - this.cwnd) * bytes / this.cwnd;
    if (this.#wEst > next) next = this.#wEst;
    this.cwnd = Math.min(MAX_WINDOW, Math.max(MIN_WINDOW, next));
  }

  /**
   * A packet sent at `sentAt` was declared lost at `now`: a congestion event, once per RTT, when
   * the loss rate is over {@link LOSS_TOLERANCE}. Two such events at the same delivery rate are a
   * policer's doing (a token bucket without a queue: it drops whatever exceeds its rate, and a
   * loss-based window keeps probing into it): the pacer then keeps to that rate (see
   * {@link paceCap}), probing above it slowly, for {@link POLICER_HOLD} or until queueing delay
   * shows a queue instead.
   */
  onLost(sentAt: number, now: number): void {
    this.lossRate += LOSS_GAIN * (1 - this.lossRate);
    if (sentAt <= this.#recoveryStart || this.lossRate < LOSS_TOLERANCE) return;
    this.#recoveryStart = now;
    this.events++;
    this.#policer(now);
    // Fast convergence: a flow whose W_max shrinks releases bandwidth for newcomers.
    this.#wMax = this.cwnd < this.#wMax ? this.cwnd * (1 + BETA) / 2 : this.cwnd;
    this.cwnd = Math.max(MIN_WINDOW, this.cwnd * BETA);
    this.ssthresh = this.cwnd;
    this.#epochStart = null;
  }

  /**
   * A packet sent at `sentAt` came back at `now` with queueing delay over the target: a gentler
   * congestion event ({@link BETA_DELAY}), at most once per round trip, as for a loss.
   */
  onDelay(sentAt: number, now: number): void {
    if (sentAt <= this.#recoveryStart) return;
    this.#uncap();
    this.#recoveryStart = now;
    this.events++;
    this.#wMax = this.cwnd;
    this.cwnd = Math.max(MIN_WINDOW, this.cwnd * BETA_DELAY);
    this.ssthresh = this.cwnd;
    this.#epochStart = null;
  }

  /** The pacing rate's ceiling in bytes/ms: a policer's rate, or Infinity. */
  get paceCap(): number {
    return this.#cap;
  }

  /**
   * Delivery rate over intervals of {@link DELIVERY_INTERVAL} (and 4 RTTs) of a busy sender.
   * Under a policer's cap, an interval that used the cap with little loss raises it by
   * {@link POLICER_PROBE} (the probe for more); one with 3/4 of the tolerated loss or more sets it
   * back to what arrived.
   */
  #measure(bytes: number, now: number, srtt: number, limited: boolean): void {
    const m = this.#meter;
    if (now - m.at >= Math.max(DELIVERY_INTERVAL, 4 * srtt)) {
      // A sample needs a few packets (an interval of probe timeouts says nothing of a rate).
      if (m.limited && m.at > -Infinity && m.bytes >= 4 * MSS) {
        const rate = m.bytes / (now - m.at);
        this.#delivery = { rate, n: this.#delivery.n + 1 };
        this.#recent.push(rate);
        if (this.#recent.length > RECENT_RATES) this.#recent.shift();
        if (this.#cap !== Infinity) this.#probeCap(rate);
      }
      this.#meter = { at: now, bytes: 0, limited: true };
      return;
    }
    m.bytes += bytes;
    if (!limited) m.limited = false;
  }

  /**
   * The delivery rate a cap goes back to: the median of the last {@link RECENT_RATES} (`rate`
   * alone until there are that many), so neither one interval in which this process did not run
   * nor one burst that a full token bucket let through passes for the policer's rate.
   */
  #typicalRate(rate: number): number {
    const r = this.#recent;
    if (r.length < RECENT_RATES) return rate;
    return [...r].sort((a, b) => a - b)[r.length >> 1]!;
  }

  /** Under a cap, after an interval that delivered `rate`: probe above it, or step back. */
  #probeCap(rate: number): void {
    if (this.lossRate >= 0.75 * LOSS_TOLERANCE) {
      this.#cap = Math.max(MIN_CAP, Math.min(this.#cap, this.#typicalRate(rate)));
    } else if (rate >= 0.9 * this.#cap) this.#cap *= 1 + POLICER_PROBE;
  }

  /**
   * At a congestion event: under a cap, the cap goes back to the delivery rate measured (what
   * the policer let through); else a delivery rate that matches the last event's is a policer's,
   * and the pacer keeps to it from now on.
   */
  #policer(now: number): void {
    const d = this.#delivery, last = this.#atEvent;
    if (d.n === 0 || d.n === last.n) return; // no new measurement since
    this.#atEvent = { ...d };
    if (this.#cap !== Infinity) {
      this.#cap = Math.max(MIN_CAP, Math.min(this.#cap, this.#typicalRate(d.rate)));
      return;
    }
    if (last.n === 0 || Math.abs(d.rate - last.rate) > POLICER_MATCH * last.rate) return;
    this.#cap = Math.max(d.rate, last.rate, MIN_CAP);
    this.#capUntil = now + POLICER_HOLD;
    this.policed++;
  }

  /** A queue, not a policer, limits the path: the window takes over from the cap. */
  #uncap(): void {
    if (this.#cap === Infinity) return;
    this.#cap = Infinity;
    this.#wMax = this.cwnd;
    this.#epochStart = null;
  }

  /** Takes back delay-based decreases that were no congestion (the path changed): `cwnd` again. */
  restore(cwnd: number, now: number): void {
    this.cwnd = Math.min(MAX_WINDOW, Math.max(this.cwnd, cwnd));
    this.ssthresh = this.cwnd;
    this.#wMax = this.cwnd;
    this.#epochStart = null;
    this.#recoveryStart = now;
  }

  /** Every packet over two PTOs was lost: start again from the smallest window. */
  onPersistentCongestion(now: number): void {
    this.#recoveryStart = now;
    this.ssthresh = Math.max(MIN_WINDOW, this.cwnd * BETA);
    this.cwnd = MIN_WINDOW;
    this.#epochStart = null;
    this.#wMax = 0;
  }
}

/** Shortest burst interval the pacer lets out at once, in ms (a JavaScript timer's resolution). */
export const PACING_BURST_MS = 2;

/** Rounding slack of the pacer's arithmetic (bytes, and ms). */
const EPSILON = 1e-3;

/** A token-bucket pacer: how many bytes may leave now, and when the next packet may. */
export class Pacer {
  #tokens: number = INITIAL_WINDOW;
  #at = 0;
  #rate = Infinity; // bytes per ms

  /**
   * Sets the rate from the window and RTT (ms), at most `cap` (bytes/ms: a policer's rate, see
   * {@link Cubic.paceCap}); without an RTT sample, no pacing but the cap.
   */
  update(cwnd: number, srtt: number | null, slowStart: boolean, now: number, cap = Infinity): void {
    this.#refill(now);
    const rate = srtt === null ? Infinity : (slowStart ? 2 : 1.25) * cwnd / Math.max(srtt, 0.05);
    this.#rate = Math.min(rate, cap);
  }

  #burst(): number {
    return Math.max(10 * MSS, this.#rate * PACING_BURST_MS);
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.#burst(), this.#tokens + (now - this.#at) * this.#rate);
      this.#at = now;
    }
  }

  /** Whether a packet of `bytes` may leave at `now`. */
  canSend(now: number, bytes: number): boolean {
    this.#refill(now);
    return this.#tokens >= bytes - EPSILON || this.#rate === Infinity;
  }

  /** A packet of `bytes` left at `now`. */
  onSent(now: number, bytes: number): void {
    this.#refill(now);
    this.#tokens -= bytes;
  }

  /** When a packet of `bytes` may leave (now or later). */
  nextSend(now: number, bytes: number): number {
    this.#refill(now);
    if (this.#tokens >= bytes - EPSILON || this.#rate === Infinity) return now;
    return now + Math.max(EPSILON, (bytes - this.#tokens) / this.#rate);
  }
}
