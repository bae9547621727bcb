/**
 * `p2p doctor` where UDP gets no answer: what a TCP connection to the server's port tells
 * ({@link withTcp}). `p2p join` registers over TCP by itself when its UDP gets no answer, so a
 * network that blocks UDP is not the end: the verdict says whether TCP gets through, and what
 * that means (relayed through the server, no direct paths). Pure.
 *
 * @module
 */
import type { DoctorReport } from "./doctor_report.ts";

/** The verdict of a doctor whose UDP got no answer from `server`, and whose TCP did or not. */
export function noUdpVerdict(server: string, tcp: boolean): string {
  return tcp
    ? `no UDP reply from the server at ${server}, but TCP to its port connects: UDP is ` +
      `probably blocked by a firewall; p2p join registers over TCP by itself (or with --tcp) ` +
      `and is relayed through the server, with no direct paths while UDP is blocked`
    : `no UDP reply from the server at ${server}, and TCP to its port does not connect ` +
      `either: check the address and that p2p serve runs there (a firewall may block both; a ` +
      `server with --tls-port is reached with tls://HOST:PORT)`;
}

/**
 * `r`, a report whose UDP got no answer, with what a TCP connection to the server's port found
 * (`tcp`: it opened); a report with UDP is returned as it is.
 */
export function withTcp(r: DoctorReport, tcp: boolean): DoctorReport {
  if (r.udp) return r;
  return { ...r, tcp, verdict: noUdpVerdict(r.server, tcp) };
}
