/**
 * The reliable channel's round-trip estimate and retransmission timeout (RFC 6298), as its
 * sending half (`lib/peer/reliable_send.ts`) keeps them. Pure; times in milliseconds.
 *
 * @module
 */

/**
 * Smoothed RTT, its variation and the RTO from them: the first sample `r` sets `srtt = r`,
 * `rttvar = r/2`; later ones `rttvar = 0.75·rttvar + 0.25·|srtt − r|`,
 * `srtt = 0.875·srtt + 0.125·r`; `rto = clamp(srtt + max(4·rttvar, 20), minRto, maxRto)`.
 */
export class RttEstimator {
  #minRto: number;
  #maxRto: number;
  #srtt: number | undefined;
  #rttvar = 0;
  #rto: number;

  /** An estimate with no sample yet: the RTO is `initialRto` until the first. */
  constructor(initialRto: number, minRto: number, maxRto: number) {
    this.#rto = initialRto;
    this.#minRto = minRto;
    this.#maxRto = maxRto;
  }

  /** The current retransmission timeout in ms. */
  get rto(): number {
    return this.#rto;
  }

  /** Smoothed RTT in ms, if any sample was taken. */
  get srtt(): number | undefined {
    return this.#srtt;
  }

  /**
   * How long past its sending a frame may be deemed lost by fast retransmit: the RTT estimate
   * plus four deviations (the RTO before its floor), or the RTO itself before any sample.
   */
  get lossDelay(): number {
    return (this.#srtt ?? this.#rto) + 4 * this.#rttvar;
  }

  /** Seeds the estimate (from path probes) when no sample exists yet. */
  seed(rtt: number): void {
    if (this.#srtt !== undefined) return;
    this.sample(rtt);
  }

  /** One RTT sample into the estimate and the RTO. */
  sample(rtt: number): void {
    if (this.#srtt === undefined) {
      this.#srtt = rtt;
      this.#rttvar = rtt / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - rtt);
      this.#srtt = 0.875 * this.#srtt + 0.125 * rtt;
    }
    this.#rto = clamp(this.#srtt + Math.max(4 * this.#rttvar, 20), this.#minRto, this.#maxRto);
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
