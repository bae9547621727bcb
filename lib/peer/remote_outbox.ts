/**
 * What one remote peer sends, on its way out: inner frames sealed with the pair's link and sent
 * straight to an endpoint or through the relay that reaches the peer now, and the datagrams
 * that are never sent (to IPv6 without an IPv6 socket, from an auxiliary socket a birthday search
 * gave back) counted as drops. {@link RemotePeer} (`lib/peer/remote.ts`) queues here and the
 * client polls it. Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import { encodeInner, type InnerFrame } from "../wire/peer_frame.ts";
import { encodeFileDataInto, FILE_DATA_HEADER, FileKind } from "../wire/file_frame.ts";
import type { SecureLink } from "./handshake/secure_link.ts";
import type { PathMachine } from "./path/path.ts";
import { countDrop } from "./drops.ts";
import type { RemoteContext, RemoteTransmit } from "./remote_context.ts";

/** One remote's outgoing datagrams. Drain {@link pollTransmit} until undefined. */
export class RemoteOutbox {
  #ctx: RemoteContext;
  #secure: SecureLink;
  #key: string;
  #out: RemoteTransmit[] = [];

  /** The outbox of the remote with map key `key`, sealing with `secure`. */
  constructor(ctx: RemoteContext, secure: SecureLink, key: string) {
    this.#ctx = ctx;
    this.#secure = secure;
    this.#key = key;
  }

  /** The next datagram to send, if any. */
  pollTransmit(): RemoteTransmit | undefined {
    return this.#out.shift();
  }

  /** Asks the server for a repunch (sent by the client). */
  repunch(): void {
    this.#out.push({ kind: "repunch" });
  }

  /**
   * Seals `f` and sends it to `to` from our socket `via`, or along `path` (direct or relay) when
   * `to` is absent; relayed, it avoids the supernode `stalledOn`.
   */
  frame(
    now: number,
    f: InnerFrame,
    path: PathMachine | null,
    stalledOn: string | null,
    to?: Endpoint | null,
    via = 0,
  ): void {
    // A block is encoded straight into its datagram (the bulk of a transfer: no copy more).
    const frame = f.kind === FileKind.Data
      ? this.#secure.sealWith(FILE_DATA_HEADER + f.data.length, (o) => encodeFileDataInto(f, o))
      : this.#secure.seal(encodeInner(f));
    if (!frame) return;
    const dest = to === undefined ? path?.route() ?? null : to;
    if (dest && !this.#ctx.settings.relayOnly) {
      if (to === undefined) {
        path?.onSentDirect(now);
        via = path?.routeVia() ?? 0;
      }
      this.direct(dest, frame, via);
    } else {
      this.relay(frame, stalledOn);
    }
  }

  /** Queues a datagram straight to the peer at `to`, from our socket `via`. */
  direct(to: Endpoint, data: Uint8Array, via = 0): void {
    // No IPv6 socket: never offered as a candidate, and a peer-reflexive one is refused.
    if (!this.#ctx.settings.ipv6 && to.hostname.includes(":")) return this.#drop("no-ipv6");
    // A late ACK or probe through a socket a search already gave back: not sent.
    if (via && !this.#ctx.shared.birthday.inUse(via)) return this.#drop("aux-released");
    this.#out.push({ kind: "direct", to, data, via });
  }

  /** Queues a RELAY of `data` to the peer, through the relay that reaches it now. */
  relay(data: Uint8Array, stalledOn: string | null): void {
    const through = this.#ctx.view.supernodeFor(this.#key, stalledOn);
    this.#out.push({ kind: "relay", data, through });
  }

  #drop(reason: string): void {
    countDrop(this.#ctx.shared.drops, reason);
  }
}
