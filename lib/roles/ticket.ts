/**
 * Room tickets: one forgiving string that holds everything needed to join a room (the server
 * addresses, the room name and its secret), so a person passes on one thing and nothing can be
 * mistyped into a different, empty room.
 *
 * Text form: `p2p` then lowercase RFC 4648 base32 of the binary form, in dash-separated groups of
 * five (`p2p-aeaqc-...`). Reading ignores case, spaces, dashes and underscores, and reads `0` as
 * `o` and `1` as `l` (digits people write for those letters; base32 has neither). The binary
 * form ends in a 32-bit checksum over everything before it (SHA-256), so a ticket with any
 * character changed, dropped or added is refused ({@link TicketError}, "this ticket has a typo")
 * rather than landing in another room: a random change passes with probability 2^-32.
 *
 * Binary form, version 1 (all lengths one byte):
 *
 * ```
 * version (1) | flags | room len | room (UTF-8) | secret | server count | servers... | checksum (4)
 * secret: flags bit 0 set: the 15 bytes of a generated secret (`k3xq-7hmd-...`);
 *         clear: len | UTF-8 passphrase
 * server: kind 4: IPv4 (4) port (2) | kind 6: IPv6 (16) port (2) | kind 0: len | "host:port"
 * ```
 *
 * Pure: no I/O. The checksum comes from `node:crypto`'s SHA-256.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { base32, BASE32_ALPHABET } from "../crypto/base32.ts";
import { ROOM_SECRET_BYTES } from "../crypto/room_key.ts";
import { formatIPv6, parseIPv4, parseIPv6 } from "../wire/address.ts";
import { splitHostPort } from "../core/host_port.ts";

/** What a ticket holds. */
export interface Ticket {
  /** Servers as `HOST:PORT` (IPv6 in brackets), in the order to try them; at least one. */
  servers: string[];
  /** The room name, as typed when the room was made. */
  room: string;
  /** The room passphrase (a generated one in its `xxxx-xxxx-...` form). */
  passphrase: string;
}

/** A ticket that cannot be read; the message says why and what to do. */
export class TicketError extends Error {
  /** A ticket error with a message for the user. */
  constructor(message: string) {
    super(message);
    this.name = "TicketError";
  }
}

const VERSION = 1;
const FLAG_GENERATED = 1;
const CHECKSUM_LEN = 4;
const PREFIX = "p2p";
const GROUP = 5;
/** Most servers a ticket carries. */
export const MAX_TICKET_SERVERS = 8;
const TYPO = "this ticket has a typo: copy it again from whoever sent it";

/** True when `text` looks like a ticket rather than a passphrase (it starts with `p2p`). */
export function looksLikeTicket(text: string): boolean {
  return squeeze(text).startsWith(PREFIX) && squeeze(text).length > PREFIX.length + 8;
}

/** The text form of `t` (`p2p-xxxxx-xxxxx-...`). Throws on a ticket that cannot be encoded. */
export function encodeTicket(t: Ticket): string {
  const out: number[] = [VERSION];
  const generated = generatedSecret(t.passphrase);
  out.push(generated ? FLAG_GENERATED : 0);
  pushString(out, t.room, "room name");
  if (generated) out.push(...generated);
  else pushString(out, t.passphrase, "passphrase");
  if (t.servers.length < 1 || t.servers.length > MAX_TICKET_SERVERS) {
    throw new TicketError(`a ticket holds 1 to ${MAX_TICKET_SERVERS} servers`);
  }
  out.push(t.servers.length);
  for (const s of t.servers) pushServer(out, s);
  const body = Uint8Array.from(out);
  const all = new Uint8Array(body.length + CHECKSUM_LEN);
  all.set(body);
  all.set(checksum(body), body.length);
  const text = base32(all);
  const groups = [PREFIX];
  for (let i = 0; i < text.length; i += GROUP) groups.push(text.slice(i, i + GROUP));
  return groups.join("-");
}

/** Reads a ticket's text form; throws {@link TicketError} on anything but an intact ticket. */
export function decodeTicket(text: string): Ticket {
  const s = squeeze(text);
  if (!s.startsWith(PREFIX)) throw new TicketError("not a ticket: a ticket starts with p2p");
  const bytes = unbase32(s.slice(PREFIX.length));
  if (!bytes || bytes.length < 1 + CHECKSUM_LEN) throw new TicketError(TYPO);
  const body = bytes.subarray(0, bytes.length - CHECKSUM_LEN);
  const sum = checksum(body);
  for (let i = 0; i < CHECKSUM_LEN; i++) {
    if (sum[i] !== bytes[body.length + i]) throw new TicketError(TYPO);
  }
  if (body[0] !== VERSION) {
    throw new TicketError(`ticket version ${body[0]} is not known here: update p2p`);
  }
  const r = new ByteReader(body, 1);
  const flags = r.byte();
  const room = r.string();
  const passphrase = flags & FLAG_GENERATED
    ? base32(r.bytes(ROOM_SECRET_BYTES)).match(/.{4}/g)!.join("-")
    : r.string();
  const count = r.byte();
  const servers: string[] = [];
  for (let i = 0; i < count; i++) servers.push(readServer(r));
  if (!r.done || count < 1 || room === "" || passphrase === "") throw new TicketError(TYPO);
  return { servers, room, passphrase };
}

/** Lowercase, without spaces, dashes and underscores; `0` and `1` read as `o` and `l`. */
function squeeze(text: string): string {
  return text.toLowerCase().replace(/[\s\-_]/g, "").replaceAll("0", "o").replaceAll("1", "l");
}

function checksum(body: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash("sha256").update("p2p ticket").update(body).digest().subarray(0, CHECKSUM_LEN),
  );
}

/** The 15 bytes of a generated secret (`xxxx-xxxx-...`), or null for any other passphrase. */
function generatedSecret(passphrase: string): number[] | null {
  if (!/^([a-z2-7]{4}-){5}[a-z2-7]{4}$/.test(passphrase)) return null;
  const bytes = unbase32(passphrase.replaceAll("-", ""));
  if (!bytes || bytes.length !== ROOM_SECRET_BYTES) return null;
  // Only when it reads back exactly (24 characters carry 120 bits: no spare bits to lose).
  return base32(bytes).match(/.{4}/g)!.join("-") === passphrase ? [...bytes] : null;
}

function pushString(out: number[], s: string, what: string): void {
  const b = new TextEncoder().encode(s);
  if (b.length > 255) throw new TicketError(`the ${what} is too long for a ticket`);
  out.push(b.length, ...b);
}

function pushServer(out: number[], server: string): void {
  const hp = splitHostPort(server);
  const port = hp ? hp.port : NaN;
  if (!hp || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new TicketError(`server ${server} is not HOST:PORT`);
  }
  const v4 = parseIPv4(hp.host);
  const v6 = v4 ? null : parseIPv6(hp.host);
  if (v4) out.push(4, ...v4);
  else if (v6) out.push(6, ...v6);
  else {
    out.push(0);
    return pushString(out, server, "server name");
  }
  out.push(port >> 8, port & 255);
}

function readServer(r: ByteReader): string {
  const kind = r.byte();
  if (kind === 0) return r.string();
  if (kind !== 4 && kind !== 6) throw new TicketError(TYPO);
  const ip = r.bytes(kind === 4 ? 4 : 16);
  const port = (r.byte() << 8) | r.byte();
  return kind === 4 ? `${ip.join(".")}:${port}` : `[${formatIPv6(ip)}]:${port}`;
}

/** Base32 (lowercase, no padding) back to bytes; null on a character outside the alphabet. */
function unbase32(s: string): Uint8Array | null {
  const out: number[] = [];
  let acc = 0, bits = 0;
  for (const c of s) {
    const v = BASE32_ALPHABET.indexOf(c);
    if (v < 0) return null;
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 255);
      acc &= (1 << bits) - 1;
    }
  }
  // What is left must be the zero padding of the last character: no spare character or bits.
  if (bits >= 5 || acc !== 0) return null;
  return Uint8Array.from(out);
}

/** Reads a ticket body; any read past its end is a typo. */
class ByteReader {
  #b: Uint8Array;
  #at: number;
  constructor(b: Uint8Array, at: number) {
    this.#b = b;
    this.#at = at;
  }
  get done(): boolean {
    return this.#at === this.#b.length;
  }
  byte(): number {
    if (this.#at >= this.#b.length) throw new TicketError(TYPO);
    return this.#b[this.#at++]!;
  }
  bytes(n: number): Uint8Array {
    if (this.#at + n > this.#b.length) throw new TicketError(TYPO);
    return this.#b.slice(this.#at, this.#at += n);
  }
  string(): string {
    const b = this.bytes(this.byte());
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(b);
    } catch {
      throw new TicketError(TYPO);
    }
  }
}
