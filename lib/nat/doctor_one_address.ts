/**
 * What `p2p doctor` can say after asking a server with one address and two ports (a plain
 * `p2p serve`): the port half of RFC 5780's mapping and filtering tests. Such a server tells
 * whether the NAT gives each destination *port* its own mapping (address-and-port-dependent:
 * a hard NAT) and whether it lets in datagrams from a port it never sent to, but not whether it
 * does so per destination *host* only: an address-dependent mapping (or filtering) looks like an
 * endpoint-independent one from two ports of one address. The words and the verdict here say
 * exactly that, and what a second server address (`--alt-host`) would add. Pure.
 *
 * @module
 */
import type { Behaviour, DoctorReport, PeerNat } from "./doctor_report.ts";

/** Why mapping or filtering stay partly unknown with such a server. */
export const ONE_ADDRESS_WHY =
  "the server has one address (two ports): a NAT that gives each destination host its own " +
  "mapping looks endpoint-independent from there (its operator can add --alt-host)";

/** What one address cannot tell apart, for the user. */
const CANNOT_TELL = "one server address cannot tell these apart; a server with --alt-host can";

/** The fields of a report this module reads. */
type Fields = Pick<
  DoctorReport,
  "mapping" | "filtering" | "mapping_per_port" | "filtering_per_port"
>;

/**
 * The doctor's `Mapping` and `Filtering` lines for behaviour known only per port (each
 * undefined when the report has nothing of the kind to say).
 */
export function oneAddressWords(r: Fields): { mapping?: string; filtering?: string } {
  const out: { mapping?: string; filtering?: string } = {};
  if (r.mapping === null && r.mapping_per_port === false) {
    out.mapping = "endpoint-independent or address-dependent: the same public address " +
      `towards both ports of the server (${CANNOT_TELL})`;
  }
  if (r.filtering === null && r.filtering_per_port === false) {
    out.filtering = "endpoint-independent or address-dependent: the server's other port got " +
      `in (${CANNOT_TELL})`;
  }
  return out;
}

/**
 * The verdict when mapping or filtering are known only per port; undefined when the report
 * has no per-port result (the caller says "unknown" then).
 */
export function oneAddressVerdict(
  r: Fields,
): { relayedWith: PeerNat[] | null; verdict: string } | undefined {
  const map: Behaviour | "not per port" | null = r.mapping ??
    (r.mapping_per_port === false ? "not per port" : null);
  if (map === null) return undefined;
  if (map === "not per port") {
    const search = r.filtering_per_port === false
      ? ""
      : " (after a birthday search of a few seconds when your NAT filters on port)";
    return {
      relayedWith: null,
      verdict: `direct with peers behind most NATs, symmetric ones included${search}, as far ` +
        "as a server with one address can tell: your NAT keeps your public port for both of " +
        "the server's ports, but if it gives each destination host its own port " +
        "(address-dependent mapping, rare) peers behind symmetric NATs are relayed; " +
        CANNOT_TELL,
    };
  }
  // The mapping is per port (proven); what filtering allows decides about symmetric peers.
  const hard = "your NAT gives each destination another port (address-and-port-dependent)";
  if (r.filtering_per_port === true) {
    return {
      relayedWith: ["symmetric"],
      verdict: "direct with peers behind most NATs (with port-restricted ones after a birthday " +
        "search of a few seconds); relayed with peers behind symmetric NATs: " + hard +
        "; let p2p map a port (enable UPnP or NAT-PMP/PCP on the router), forward a UDP port " +
        "to this machine and join with --port PORT, or use IPv6",
    };
  }
  return {
    relayedWith: null,
    verdict: "direct with peers behind most NATs (with port-restricted ones after a birthday " +
      "search of a few seconds); " + hard + ", so peers behind symmetric NATs are relayed " +
      "unless your NAT lets anyone in (endpoint-independent filtering; " + CANNOT_TELL + ")",
  };
}
