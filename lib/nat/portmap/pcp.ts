/**
 * PCP (RFC 6887) codec for the MAP opcode over IPv4: the 60-byte request a client sends to its
 * gateway's port 5351 and the response. Pure; decoders never throw.
 *
 * Request (all integers big-endian):
 *
 * ```
 * common header (24 bytes): version 2 | R=0, opcode 1 (MAP) | reserved (16)
 *                           | requested lifetime (32) | client IP (128, IPv4-mapped IPv6)
 * MAP body (36 bytes):      mapping nonce (96) | protocol 17 (8) | reserved (24)
 *                           | internal port (16) | suggested external port (16)
 *                           | suggested external IP (128, IPv4-mapped; ::ffff:0.0.0.0 = any)
 * ```
 *
 * Response header: version 2 | R=1, opcode (0x81 for MAP) | reserved (8) | result code (8)
 * | lifetime (32) | epoch time (32) | reserved (96); the MAP body follows with the assigned
 * external port and address. Options may follow; they are ignored. The nonce is 12 random
 * bytes chosen per mapping; the gateway echoes it, and a renewal or deletion (lifetime 0) must
 * repeat it.
 *
 * @module
 */

import { parseIPv4 } from "../../wire/address.ts";
import type { Decoded } from "../../wire/codec.ts";

/** PCP's version number. */
export const PCP_VERSION = 2;
/** Size of a MAP request or response without options. */
export const PCP_MAP_LEN = 60;
/** Largest PCP message (RFC 6887 §7). */
export const PCP_MAX_LEN = 1100;
/** Length of a mapping nonce. */
export const PCP_NONCE_LEN = 12;

/** PCP opcodes. */
export const PcpOp = {
  Announce: 0,
  Map: 1,
} as const;

/** PCP result codes (RFC 6887 §7.4). */
export const PcpResult = {
  Success: 0,
  UnsuppVersion: 1,
  NotAuthorized: 2,
  MalformedRequest: 3,
  UnsuppOpcode: 4,
  UnsuppOption: 5,
  MalformedOption: 6,
  NetworkFailure: 7,
  NoResources: 8,
  UnsuppProtocol: 9,
  UserExQuota: 10,
  CannotProvideExternal: 11,
  AddressMismatch: 12,
  ExcessiveRemotePeers: 13,
} as const;

const UDP = 17;

/** A MAP request. */
export interface PcpMapRequest {
  /** Our own IPv4 address (as the gateway sees it on the LAN). */
  client: string;
  /** 12 random bytes, the same for every request about this mapping. */
  nonce: Uint8Array;
  internalPort: number;
  /** Suggested external port (0: any). */
  externalPort: number;
  /** Suggested external IPv4 address ("0.0.0.0": any). */
  externalAddress: string;
  /** Requested lifetime in seconds (0 deletes). */
  lifetime: number;
}

/** A decoded PCP response. */
export interface PcpResponse {
  opcode: number;
  result: number;
  /** Granted lifetime (success) or how long the error holds (seconds). */
  lifetime: number;
  /** The server's epoch time (seconds). */
  epoch: number;
  /** The MAP body, when the opcode is MAP and it is present. */
  map?: {
    nonce: Uint8Array;
    protocol: number;
    internalPort: number;
    externalPort: number;
    /** Dotted IPv4 when the address is IPv4-mapped, else null. */
    externalAddress: string | null;
  };
}

/** Writes `ip` as an IPv4-mapped IPv6 address at `b[at..at+16]` (zeros if not IPv4). */
function putMapped(b: Uint8Array, at: number, ip: string): void {
  const v4 = parseIPv4(ip);
  b[at + 10] = 0xff;
  b[at + 11] = 0xff;
  if (v4) b.set(v4, at + 12);
}

/** Encodes a 60-byte MAP request for UDP. */
export function encodePcpMapRequest(r: PcpMapRequest): Uint8Array {
  const b = new Uint8Array(PCP_MAP_LEN);
  const v = new DataView(b.buffer);
  b[0] = PCP_VERSION;
  b[1] = PcpOp.Map;
  v.setUint32(4, r.lifetime >>> 0);
  putMapped(b, 8, r.client);
  b.set(r.nonce.subarray(0, PCP_NONCE_LEN), 24);
  b[36] = UDP;
  v.setUint16(40, r.internalPort);
  v.setUint16(42, r.externalPort);
  putMapped(b, 44, r.externalAddress);
  return b;
}

/** Whether `data` could be a PCP response (version 2, R bit set, ≥ 24 bytes). */
export function looksLikePcp(data: Uint8Array): boolean {
  return data.length >= 24 && data[0] === PCP_VERSION && (data[1]! & 0x80) !== 0;
}

/** Decodes a PCP response. Never throws. */
export function decodePcpResponse(data: Uint8Array): Decoded<PcpResponse> {
  if (data.length < 24) return { ok: false, reason: "pcp-short" };
  if (data.length > PCP_MAX_LEN) return { ok: false, reason: "pcp-long" };
  if (data[0] !== PCP_VERSION) return { ok: false, reason: "pcp-version" };
  if ((data[1]! & 0x80) === 0) return { ok: false, reason: "pcp-not-response" };
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: PcpResponse = {
    opcode: data[1]! & 0x7f,
    result: data[3]!,
    lifetime: v.getUint32(4),
    epoch: v.getUint32(8),
  };
  if (out.opcode === PcpOp.Map && data.length >= PCP_MAP_LEN) {
    const mapped = data.subarray(44, 56).every((x, i) => x === (i >= 10 ? 0xff : 0));
    out.map = {
      nonce: data.slice(24, 36),
      protocol: data[36]!,
      internalPort: v.getUint16(40),
      externalPort: v.getUint16(42),
      externalAddress: mapped ? `${data[56]}.${data[57]}.${data[58]}.${data[59]}` : null,
    };
  } else if (out.opcode === PcpOp.Map && out.result === PcpResult.Success) {
    return { ok: false, reason: "pcp-short" };
  }
  return { ok: true, value: out };
}

/** A short text for a PCP result code (for logs). */
export function pcpResultName(code: number): string {
  const names = Object.entries(PcpResult).find(([, c]) => c === code);
  return names ? names[0] : `result ${code}`;
}
