/**
 * The NAT-PMP and PCP clients: one mapping each, asked of the default gateway's port 5351.
 * Both follow the same life, so one machine ({@link UdpMapping}) runs either, through a
 * small {@link GatewayWire} that encodes the protocol's requests and checks its responses:
 *
 * - **request**: the request goes out at 0, 250, 750, 1750 ms… until `timeout` (no answer:
 *   failed). NAT-PMP needs two answers (external address, mapping); PCP one.
 * - **granted**: renewed at half the granted lifetime (**renew**, retried until the mapping
 *   expires: then it is lost). A renewal may move the external endpoint: reported again.
 * - A response whose epoch shows the gateway lost its state (a reboot) triggers a new
 *   request at once.
 * - **delete** on stop: lifetime 0, retried until answered or `timeout`.
 *
 * Only responses that match our request are used: the mapper checks the source (the gateway,
 * port 5351), the wire checks the opcode, the internal port and (PCP) the mapping nonce.
 *
 * @module
 */

import type { Endpoint } from "../../wire/address.ts";
import {
  Backoff,
  EpochCheck,
  type PortMapProtocol,
  type ProtocolSink,
  type ProtocolState,
} from "./common.ts";
import {
  decodeNatPmpResponse,
  encodeExternalAddressRequest,
  encodeMapRequest,
  NatPmpResult,
  natPmpResultName,
} from "./natpmp.ts";
import {
  decodePcpResponse,
  encodePcpMapRequest,
  PCP_NONCE_LEN,
  PcpOp,
  PcpResult,
  pcpResultName,
} from "./pcp.ts";
import { constantTimeEqual } from "../../crypto/constant_time.ts";

/** A response, as far as the machine cares. */
export type GatewayReply =
  | { kind: "address"; epoch: number; address: string }
  | { kind: "mapped"; epoch: number; externalPort: number; lifetime: number; address?: string }
  | { kind: "error"; epoch: number | null; reason: string };

/** One protocol's encoding. */
export interface GatewayWire {
  /** The protocol. */
  readonly protocol: PortMapProtocol;
  /** Datagrams of one attempt: map for `lifetime` s (0 deletes), suggesting `externalPort`. */
  requests(lifetime: number, externalPort: number, needAddress: boolean): Uint8Array[];
  /** Reads a response; null when it is not an answer to our requests. */
  parse(data: Uint8Array): GatewayReply | null;
}

/** NAT-PMP's wire (RFC 6886). */
export function natPmpWire(localPort: number): GatewayWire {
  return {
    protocol: "natpmp",
    requests(lifetime, externalPort, needAddress) {
      const map = encodeMapRequest(localPort, lifetime === 0 ? 0 : externalPort, lifetime);
      return needAddress ? [encodeExternalAddressRequest(), map] : [map];
    },
    parse(data) {
      const d = decodeNatPmpResponse(data);
      if (!d.ok) return null;
      const r = d.value;
      // "Unsupported version" answers our PCP request, not a NAT-PMP one (see the mapper).
      if (r.result === NatPmpResult.UnsupportedVersion) return null;
      if (r.result !== NatPmpResult.Success) {
        return { kind: "error", epoch: r.epoch, reason: natPmpResultName(r.result) };
      }
      if (r.op === 0) {
        return r.external ? { kind: "address", epoch: r.epoch, address: r.external } : null;
      }
      const m = r.mapping;
      if (!m || m.internalPort !== localPort) return null;
      return { kind: "mapped", epoch: r.epoch, externalPort: m.externalPort, lifetime: m.lifetime };
    },
  };
}

/** PCP's wire (RFC 6887), MAP for UDP with a fixed 12-byte `nonce`. */
export function pcpWire(client: string, localPort: number, nonce: Uint8Array): GatewayWire {
  if (nonce.length !== PCP_NONCE_LEN) throw new Error("PCP nonce must be 12 bytes");
  return {
    protocol: "pcp",
    requests(lifetime, externalPort) {
      return [encodePcpMapRequest({
        client,
        nonce,
        internalPort: localPort,
        externalPort: lifetime === 0 ? 0 : externalPort,
        externalAddress: "0.0.0.0",
        lifetime,
      })];
    },
    parse(data) {
      const d = decodePcpResponse(data);
      if (!d.ok || d.value.opcode !== PcpOp.Map || !d.value.map) return null;
      const r = d.value, m = d.value.map;
      if (!constantTimeEqual(m.nonce, nonce) || m.protocol !== 17) return null;
      if (m.internalPort !== localPort) return null;
      if (r.result !== PcpResult.Success) {
        return { kind: "error", epoch: r.epoch, reason: pcpResultName(r.result) };
      }
      if (m.externalAddress === null) return null;
      return {
        kind: "mapped",
        epoch: r.epoch,
        externalPort: m.externalPort,
        lifetime: r.lifetime,
        address: m.externalAddress,
      };
    },
  };
}

type Phase = "idle" | "request" | "granted" | "renew" | "failed" | "delete" | "done";

/** Options of a {@link UdpMapping}. */
export interface UdpMappingOptions {
  wire: GatewayWire;
  sink: ProtocolSink;
  /** Sends a datagram to the gateway's port 5351. */
  send: (data: Uint8Array) => void;
  /** Our main socket's port (suggested as the external port). */
  localPort: number;
  /** Requested lifetime, s. */
  lifetime: number;
  /** How long a request waits for an answer, ms. */
  timeout: number;
}

/** One NAT-PMP or PCP mapping's life: request, renew, re-request after a reboot, delete. */
export class UdpMapping {
  #o: UdpMappingOptions;
  #phase: Phase = "idle";
  #retry: Backoff | undefined;
  #epoch = new EpochCheck();
  /** This exchange's answers (NAT-PMP needs both). */
  #address: string | undefined;
  #mapped: { externalPort: number; lifetime: number } | undefined;
  /** The granted mapping. */
  #external: Endpoint | undefined;
  #renewAt = 0;
  #expiresAt = 0;

  /** A machine for one mapping; {@link start} sends the first request. */
  constructor(o: UdpMappingOptions) {
    this.#o = o;
  }

  /** The protocol. */
  get protocol(): PortMapProtocol {
    return this.#o.wire.protocol;
  }

  /** Where it stands. */
  get state(): ProtocolState {
    const p = this.#phase;
    if (p === "idle" || p === "failed") return p;
    if (p === "granted" || p === "renew" || (p === "request" && this.#external)) return "granted";
    if (p === "request") return "working";
    return this.#retry ? "working" : "done";
  }

  /** True when nothing is pending (after {@link stop}, the deletion was answered or given up). */
  get idle(): boolean {
    return this.#phase !== "request" && this.#phase !== "renew" && this.#phase !== "delete";
  }

  /** Sends the first request. */
  start(now: number): void {
    if (this.#phase !== "idle") return;
    this.#exchange(now, "request", now + this.#o.timeout);
  }

  #exchange(now: number, phase: Phase, giveUpAt: number): void {
    this.#phase = phase;
    this.#address = undefined;
    this.#mapped = undefined;
    this.#retry = new Backoff(now, giveUpAt);
    this.handleTimeout(now);
  }

  /** When {@link handleTimeout} has work. */
  nextTimeout(): number | undefined {
    if (this.#phase === "granted") return this.#renewAt;
    return this.#retry?.next();
  }

  /** Sends what is due, renews, gives up. */
  handleTimeout(now: number): void {
    if (this.#phase === "granted" && now >= this.#renewAt) {
      this.#exchange(now, "renew", this.#expiresAt);
      return;
    }
    const r = this.#retry;
    if (!r) return;
    if (r.expired(now)) return this.#noAnswer(now);
    if (r.due(now)) {
      const lifetime = this.#phase === "delete" ? 0 : this.#o.lifetime;
      const suggested = this.#external?.port ?? this.#o.localPort;
      const needAddress = this.#phase !== "delete" && this.#address === undefined;
      const datagrams = this.#o.wire.requests(lifetime, suggested, needAddress);
      for (const d of datagrams) this.#o.send(d);
    }
  }

  #noAnswer(now: number): void {
    this.#retry = undefined;
    switch (this.#phase) {
      case "request":
        return this.#fail(now, "no answer from the gateway");
      case "renew":
        return this.#fail(now, "the gateway did not renew the mapping");
      case "delete":
        this.#phase = "done";
    }
  }

  #fail(now: number, reason: string): void {
    const had = this.#external !== undefined;
    this.#phase = "failed";
    this.#retry = undefined;
    this.#external = undefined;
    if (had) this.#o.sink.lost(this.protocol, now, reason);
    else this.#o.sink.failed(this.protocol, now, reason);
  }

  /** A NAT-PMP-only gateway answered our PCP request with "unsupported version". */
  refuse(now: number): void {
    if (this.#phase === "request" && !this.#external) this.#fail(now, "unsupported version");
  }

  /** Handles a datagram from the gateway's port 5351. Returns false when it is not ours. */
  handleDatagram(now: number, data: Uint8Array): boolean {
    const r = this.#o.wire.parse(data);
    if (!r) return false;
    if (r.epoch !== null && !this.#epoch.accept(now, r.epoch)) this.#rebooted(now);
    if (this.#phase === "delete") {
      this.#phase = "done";
      this.#retry = undefined;
      return true;
    }
    if (this.#phase !== "request" && this.#phase !== "renew") return true;
    if (r.kind === "error") {
      this.#fail(now, r.reason);
      return true;
    }
    if (r.kind === "address") this.#address = r.address;
    else {
      if (r.externalPort === 0 || r.lifetime === 0) {
        this.#fail(now, "the gateway granted no port");
        return true;
      }
      this.#mapped = { externalPort: r.externalPort, lifetime: r.lifetime };
      if (r.address !== undefined) this.#address = r.address;
    }
    if (this.#address !== undefined && this.#mapped) this.#grant(now);
    return true;
  }

  /** The gateway lost its mappings: ask again at once (if we had or were renewing one). */
  #rebooted(now: number): void {
    if (this.#phase === "granted" || this.#phase === "renew") {
      this.#exchange(now, "request", now + this.#o.timeout);
    }
  }

  #grant(now: number): void {
    const m = this.#mapped!;
    const external = { hostname: this.#address!, port: m.externalPort };
    const before = this.#external;
    this.#external = external;
    this.#phase = "granted";
    this.#retry = undefined;
    this.#expiresAt = now + m.lifetime * 1000;
    this.#renewAt = now + Math.max(1000, m.lifetime * 500);
    if (!before || before.hostname !== external.hostname || before.port !== external.port) {
      this.#o.sink.granted(this.protocol, now, external, m.lifetime);
    }
  }

  /** Deletes a granted mapping (lifetime 0); anything else just stops. */
  stop(now: number): void {
    if (this.#phase === "delete") return;
    if (!this.#external || this.#phase === "failed" || this.#phase === "done") {
      this.#phase = "done";
      this.#retry = undefined;
      return;
    }
    this.#exchange(now, "delete", now + this.#o.timeout);
  }
}
