/**
 * NAT-PMP (RFC 6886) codec: the external-address request and the UDP mapping request a client
 * sends to its default gateway's port 5351, and the responses. Pure; decoders never throw.
 *
 * Layouts (all integers big-endian):
 *
 * ```
 * external address request  (2 bytes):  version 0 | opcode 0
 * external address response (12 bytes): version 0 | opcode 128 | result code (16)
 *                                        | seconds since start of epoch (32) | external IPv4 (32)
 * UDP map request           (12 bytes): version 0 | opcode 1 | reserved (16)
 *                                        | internal port (16) | suggested external port (16)
 *                                        | requested lifetime in seconds (32)
 * UDP map response          (16 bytes): version 0 | opcode 129 | result code (16)
 *                                        | seconds since start of epoch (32) | internal port (16)
 *                                        | mapped external port (16) | lifetime in seconds (32)
 * ```
 *
 * A request with lifetime 0 (and suggested external port 0) deletes the mapping. Error
 * responses may stop after the epoch field (8 bytes): a NAT-PMP-only gateway answers a PCP
 * (version 2) request that way, with result code 1 (unsupported version).
 *
 * @module
 */

import type { Decoded } from "../../wire/codec.ts";

/** The gateway's NAT-PMP and PCP port. */
export const NATPMP_PORT = 5351;

/** NAT-PMP opcodes (requests; a response sets the top bit). */
export const NatPmpOp = {
  /** Ask for the gateway's external IPv4 address. */
  ExternalAddress: 0,
  /** Map a UDP port. */
  MapUdp: 1,
} as const;

/** NAT-PMP result codes (RFC 6886 §3.5). */
export const NatPmpResult = {
  Success: 0,
  UnsupportedVersion: 1,
  NotAuthorized: 2,
  NetworkFailure: 3,
  OutOfResources: 4,
  UnsupportedOpcode: 5,
} as const;

/** A decoded NAT-PMP response. */
export type NatPmpResponse =
  | {
    op: typeof NatPmpOp.ExternalAddress;
    result: number;
    /** Seconds since the gateway's mapping table was (re)initialised. */
    epoch: number;
    /** The external IPv4 address (present on success). */
    external?: string;
  }
  | {
    op: typeof NatPmpOp.MapUdp;
    result: number;
    epoch: number;
    /** Present on success (and when the gateway sent the full layout). */
    mapping?: { internalPort: number; externalPort: number; lifetime: number };
  };

/** The 2-byte external address request. */
export function encodeExternalAddressRequest(): Uint8Array {
  return new Uint8Array([0, NatPmpOp.ExternalAddress]);
}

/**
 * A UDP map request for `internalPort`, suggesting `externalPort`, for `lifetime` seconds
 * (0 deletes the mapping; pass externalPort 0 then).
 */
export function encodeMapRequest(
  internalPort: number,
  externalPort: number,
  lifetime: number,
): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  b[1] = NatPmpOp.MapUdp;
  v.setUint16(4, internalPort);
  v.setUint16(6, externalPort);
  v.setUint32(8, lifetime >>> 0);
  return b;
}

/** Whether `data` could be a NAT-PMP response (version 0, response opcode, ≥ 8 bytes). */
export function looksLikeNatPmp(data: Uint8Array): boolean {
  return data.length >= 8 && data[0] === 0 && data[1]! >= 128;
}

/** Decodes a response to one of our requests. Never throws. */
export function decodeNatPmpResponse(data: Uint8Array): Decoded<NatPmpResponse> {
  if (data.length < 8) return { ok: false, reason: "natpmp-short" };
  if (data[0] !== 0) return { ok: false, reason: "natpmp-version" };
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const op = data[1]!;
  const result = v.getUint16(2);
  const epoch = v.getUint32(4);
  if (op === 128 + NatPmpOp.ExternalAddress) {
    if (result !== NatPmpResult.Success) return { ok: true, value: { op: 0, result, epoch } };
    if (data.length < 12) return { ok: false, reason: "natpmp-short" };
    const external = `${data[8]}.${data[9]}.${data[10]}.${data[11]}`;
    return { ok: true, value: { op: 0, result, epoch, external } };
  }
  if (op === 128 + NatPmpOp.MapUdp) {
    if (result !== NatPmpResult.Success) {
      return { ok: true, value: { op: 1, result, epoch } };
    }
    if (data.length < 16) return { ok: false, reason: "natpmp-short" };
    const mapping = {
      internalPort: v.getUint16(8),
      externalPort: v.getUint16(10),
      lifetime: v.getUint32(12),
    };
    return { ok: true, value: { op: 1, result, epoch, mapping } };
  }
  return { ok: false, reason: "natpmp-opcode" };
}

/** A short text for a NAT-PMP result code (for logs). */
export function natPmpResultName(code: number): string {
  const names = [
    "success",
    "unsupported version",
    "not authorized",
    "network failure",
    "out of resources",
    "unsupported opcode",
  ];
  return names[code] ?? `result ${code}`;
}
