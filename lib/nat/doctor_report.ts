/**
 * What `p2p doctor` (`lib/nat/doctor.ts`) reports: the RFC 4787 behaviours it tells apart
 * ({@link Behaviour}), the kinds of peer NAT a network is relayed with ({@link PeerNat}), and the
 * JSON object it prints ({@link DoctorReport}). Types only.
 *
 * @module
 */

/** RFC 4787 mapping or filtering behaviour. */
export type Behaviour =
  | "endpoint-independent"
  | "address-dependent"
  | "address-and-port-dependent";

/** Kinds of NAT a peer may be behind that this one is relayed with. */
export type PeerNat = "port-restricted" | "symmetric";

/** What `p2p doctor` found: the JSON object it prints (snake_case, as printed). */
export interface DoctorReport {
  /** The server asked, `IP:PORT`. */
  server: string;
  /** The local socket, `IP:PORT` (null before the machine started). */
  local: string | null;
  /** Whether the server answered at all. */
  udp: boolean;
  /**
   * Whether a TCP connection to the server's port opened: tried only when UDP got no answer
   * (`p2p join` then registers over TCP by itself); null when not tried.
   */
  tcp: boolean | null;
  /** The public address the server saw, `IP:PORT`. */
  public: string | null;
  /** Round-trip time of the first answer, ms. */
  rtt_ms: number | null;
  /** Whether the server offers RFC 5780 behaviour discovery (sent OTHER-ADDRESS). */
  rfc5780: boolean;
  /** Mapping behaviour, null when it cannot be known. */
  mapping: Behaviour | null;
  /** Filtering behaviour, null when it cannot be known. */
  filtering: Behaviour | null;
  /**
   * Whether the mapping depends on the destination port (address-and-port-dependent), also
   * from a server with one address and two ports (where false leaves endpoint-independent and
   * address-dependent apart unknown: {@link mapping} is null then); null when not tested.
   */
  mapping_per_port: boolean | null;
  /** Whether filtering is address-and-port-dependent (as {@link mapping_per_port}). */
  filtering_per_port: boolean | null;
  /** Whether the public port equals the local one. */
  port_preserved: boolean | null;
  /** Whether a datagram to our own public address comes back (hairpinning). */
  hairpin: boolean | null;
  /** Lower bound of the idle lifetime of a UDP mapping, s (null when not measured). */
  lifetime_s: number | null;
  /** Shortest idle wait after which the mapping had expired, s (null if none did). */
  lifetime_expired_s: number | null;
  /** Kinds of peer NAT this network is relayed with ([] none; null unknown). */
  relayed_with: PeerNat[] | null;
  /** What it means and what to do, in one sentence. */
  verdict: string;
}
