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
 * server: 1, then an endpoint as the wire writes it (lib/wire/codec.ts: family 4 or 6, address,
 *         port) | 0, then len | "host:port" (a host name)
 * ```
 *
 * Written and read with the wire's `Writer` and `Reader`. Pure: no I/O. The checksum comes from
 * `node:crypto`'s SHA-256.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { base32, fromBase32 } from "../crypto/base32.ts";
import { ROOM_SECRET_BYTES, secretText } from "../crypto/room_key.ts";
import { formatEndpoint, parseIPv4, parseIPv6 } from "../wire/address.ts";
import { Reader, ShortRead, Writer } from "../wire/codec.ts";
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
/** A server written as a host name, or as a literal endpoint. */
const SERVER_NAME = 0, SERVER_ENDPOINT = 1;
/** Most servers a ticket carries. */
export const MAX_TICKET_SERVERS = 8;
const TYPO = "this ticket has a typo: copy it again from whoever sent it";

/**
 * True when `text` looks like a ticket rather than a passphrase: `p2p` and then at least 40
 * base32 characters (the shortest ticket has about 50), whatever the case, spaces and dashes.
 */
export function looksLikeTicket(text: string): boolean {
  return /^p2p[a-z2-7]{40,}$/.test(squeeze(text));
}

/** The text form of `t` (`p2p-xxxxx-xxxxx-...`). Throws on a ticket that cannot be encoded. */
export function encodeTicket(t: Ticket): string {
  if (t.servers.length < 1 || t.servers.length > MAX_TICKET_SERVERS) {
    throw new TicketError(`a ticket holds 1 to ${MAX_TICKET_SERVERS} servers`);
  }
  const generated = generatedSecret(t.passphrase);
  const w = new Writer().u8(VERSION).u8(generated ? FLAG_GENERATED : 0);
  writeString(w, t.room, "room name");
  if (generated) w.bytes(generated);
  else writeString(w, t.passphrase, "passphrase");
  w.u8(t.servers.length);
  for (const server of t.servers) writeServer(w, server);
  const body = w.finish();
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
  const bytes = fromBase32(s.slice(PREFIX.length));
  if (!bytes || bytes.length < 1 + CHECKSUM_LEN) throw new TicketError(TYPO);
  const body = bytes.subarray(0, bytes.length - CHECKSUM_LEN);
  const sum = checksum(body);
  for (let i = 0; i < CHECKSUM_LEN; i++) {
    if (sum[i] !== bytes[body.length + i]) throw new TicketError(TYPO);
  }
  if (body[0] !== VERSION) {
    throw new TicketError(`ticket version ${body[0]} is not known here: update p2p`);
  }
  try {
    const r = new Reader(body, 1);
    const flags = r.u8();
    const room = r.str8();
    const passphrase = flags & FLAG_GENERATED ? secretText(r.bytes(ROOM_SECRET_BYTES)) : r.str8();
    const servers: string[] = [];
    const count = r.u8();
    while (servers.length < count) {
      servers.push(r.u8() === SERVER_NAME ? r.str8() : formatEndpoint(r.endpoint()));
    }
    r.end();
    if (servers.length < 1 || room === "" || passphrase === "") throw new TicketError(TYPO);
    return { servers, room, passphrase };
  } catch (e) {
    if (e instanceof ShortRead) throw new TicketError(TYPO);
    throw e;
  }
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
function generatedSecret(passphrase: string): Uint8Array | null {
  if (!/^([a-z2-7]{4}-){5}[a-z2-7]{4}$/.test(passphrase)) return null;
  const bytes = fromBase32(passphrase.replaceAll("-", ""));
  return bytes?.length === ROOM_SECRET_BYTES ? bytes : null;
}

function writeString(w: Writer, s: string, what: string): void {
  if (new TextEncoder().encode(s).length > 255) {
    throw new TicketError(`the ${what} is too long for a ticket`);
  }
  w.str8(s);
}

/** A server as a literal endpoint (the wire's form) or, for a host name, its text. */
function writeServer(w: Writer, server: string): void {
  const hp = splitHostPort(server);
  if (!hp) throw new TicketError(`server ${server} is not HOST:PORT`);
  if (parseIPv4(hp.host) || parseIPv6(hp.host)) {
    w.u8(SERVER_ENDPOINT).endpoint({ hostname: hp.host, port: hp.port });
  } else {
    w.u8(SERVER_NAME);
    writeString(w, server, "server name");
  }
}
