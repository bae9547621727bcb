/**
 * The framing every p2p datagram shares (magic, protocol version, message type) and the map of
 * the protocol. The normative specification, with byte diagrams, state machines, timers and
 * test vectors, is `docs/protocol.md`; this overview must agree with it.
 *
 * The codecs live per layer: `address.ts` (endpoints and IP literals), `codec.ts` (the
 * bounds-checked reader and writer), `server_msg.ts` (peer ↔ server messages),
 * `peer_frame.ts` (SEALED and HANDSHAKE frames and the inner frames), `transmit.ts` (a datagram
 * to send). All are pure: bytes in, values out, never a throw on input.
 *
 * ## Framing
 *
 * Every datagram starts with a 4-byte header:
 *
 * | offset | size | field                                 |
 * | ------ | ---- | ------------------------------------- |
 * | 0      | 2    | magic `0x70 0x32` (ASCII `p2`)        |
 * | 2      | 1    | protocol version ({@link PROTOCOL_VERSION}) |
 * | 3      | 1    | message type ({@link MsgType})        |
 *
 * All integers are big-endian. `id` fields are 8-byte random peer identifiers. Strings are
 * UTF-8 with a one-byte length prefix (`str8`). An endpoint is `family u8` (4 or 6), the
 * address (4 or 16 bytes) and `port u16`. A list of endpoints is `count u8` then the
 * endpoints.
 *
 * ## Peer ↔ server (plain text on the wire; the server must read them)
 *
 * | type | name     | body                                                                  |
 * | ---- | -------- | --------------------------------------------------------------------- |
 * | 0x01 | HELLO    | id, cookie[8], nonce[8], flags u8, room id[32], name tag[8], owner[16], signature[64], private endpoints |
 * | 0x02 | WELCOME  | id, nonce[8] (the HELLO's, echoed), token[8], boot[8], observed endpoint |
 * | 0x03 | REFUSED  | echo[8] (the request's nonce or token), code u8 (`RefuseCode`), message str8 |
 * | 0x04 | INTRO    | token[8], seq u32, id, epoch[8], flags u8, public list (0 or 1), private list |
 * | 0x05 | LEFT     | token[8], seq u32, id, reason u8 (`LeftReason`)                 |
 * | 0x06 | PING     | id, token[8], cookie[8], digest u32 (of the peer ids it knows)        |
 * | 0x07 | PONG     | token[8], observed endpoint, digest u32 (of the room as the server sees it) |
 * | 0x08 | ROSTER   | token[8], seq u32, count u16, ids                                     |
 * | 0x09 | BYE      | id, token[8]                                                          |
 * | 0x0a | RELAY    | from id, token[8], to id, payload (rest: a peer frame)                |
 * | 0x0b | RELAYED  | token[8], from id, payload (rest)                                     |
 * | 0x0c | REPUNCH  | id, token[8], target id                                               |
 * | 0x0d | COOKIE   | cookie[8]                                                             |
 * | 0x0e | REACH    | nonce[8], mac[16] (server → peer, from its alternate address)         |
 * | 0x0f | REACHED  | id, token[8], nonce[8] (peer → server's main address: the REACH got in) |
 *
 * The server never learns room names, peer names or keys: a room id is the 32-byte Ed25519
 * public key the peers derive from the room passphrase, and a name an opaque 8-byte tag.
 *
 * Room membership: every HELLO carries an Ed25519 signature, by the room's key (which only
 * holders of the passphrase can derive), over `helloSigningInput`: a fixed label, the id,
 * the cookie, the nonce, the flags, the name tag and the owner tag. The server verifies it (only after the
 * cookie check, so spoofed HELLOs cost it no signature check) and refuses a bad one with
 * REFUSED Invalid. A captured HELLO is useless from another address (the cookie binds the
 * address) and after two cookie periods (the cookie expires), so the room id is no credential.
 *
 * Return routability: the server acts on a HELLO, or on a PING from an address other than the
 * one the peer registered from, only when it carries the cookie the server issues for that
 * peer id and source address (an HMAC under a secret the server rotates every minute).
 * Otherwise it answers with a COOKIE, no larger than the request.
 *
 * Registration secret: WELCOME hands the peer a random token and echoes the HELLO's nonce (8
 * random bytes, new for every registration attempt), so an off-path attacker cannot forge it;
 * a forged COOKIE can only change which cookie the peer's next HELLO carries. Every later message in either direction carries the
 * token, so nobody who has not seen the WELCOME can forge the server's word (INTRO, LEFT,
 * ROSTER, PONG, RELAYED) or the peer's (PING, BYE, RELAY, REPUNCH). REFUSED echoes the token or
 * nonce of the request it answers. INTRO, LEFT, ROSTER and CHECK also carry a per-registration
 * sequence number, so a duplicated or replayed old one (an empty ROSTER from long ago) changes
 * nothing.
 *
 * Names bind to identities: a HELLO carries an owner tag (`ownerTag` of `lib/crypto/owner.ts`:
 * HKDF of the identity's private key and the room id), the same whenever one identity registers
 * in one room and unknowable to anyone else. A HELLO for a name tag held by a member with the
 * same owner tag replaces that member (LEFT with reason `Replaced` to the room) instead of being
 * refused NameTaken: whoever comes back after a lost BYE or a crash takes its own name.
 *
 * Server restarts: WELCOME carries the rendezvous point's boot id (8 random bytes drawn when its
 * registry is made). A peer that registers again and sees another boot id than before knows the
 * server restarted, so its roster does not yet list everyone who is still in the room.
 *
 * HELLO flag bit 0 is "relay only": the server then never reveals this peer's endpoints and
 * never gives it anybody else's. INTRO carries the same flag.
 *
 * Supernodes (`FLAG_SUPERNODE`, HELLO and INTRO bit 1): a peer that may serve its room as
 * rendezvous and relay sets the bit in its HELLO. The server then checks, once per registration
 * and rate-limited, that the peer is reachable without a prior outbound packet: it sends a REACH
 * (nonce, `HMAC-SHA256(token, "p2p reach v1" ‖ nonce)` truncated to 16 bytes; 28 bytes, smaller
 * than the HELLO) from an address the peer never contacted to the peer's observed endpoint: its
 * second address (`--alt-host`); with one address, its second port to a peer without a NAT, or,
 * for a NATted peer, a supernode of another room sends it on the server's CHECK. Only a public
 * address or a NAT that filters endpoint-independently lets it in. The peer checks the MAC (a forged REACH is
 * ignored) and answers the server's main address with REACHED (its id, token and the nonce).
 * Only then is the member a supernode: INTROs about it, which only authenticated members of its
 * room receive, carry bit 1. A supernode runs the same registry (`lib/server/registry.ts`) restricted
 * to its own room inside the join process, on the same socket; members register with it too
 * (same HELLO, cookie and token rules) and relay through it, end-to-end sealed.
 *
 * Relay size limit: a RELAY, like every datagram, is at most {@link MAX_DATAGRAM} bytes, so its
 * payload is at most `MAX_RELAY_PAYLOAD` (1172) bytes, and the RELAYED carrying it is 8
 * bytes shorter still. The largest frame a peer ever sends, a SEALED DATA frame of
 * `MAX_FRAGMENT` bytes of text, is 1058 bytes; HANDSHAKE frames are under 200. The server
 * refuses a larger RELAY visibly: it counts the drop (`relay-oversize`) and answers a sender whose
 * id, address and token check out with REFUSED Limit, at most every 5 s.
 *
 * ## Peer ↔ peer (end-to-end sealed; the server relays them without being able to read them)
 *
 * | type | name      | body                                                                  |
 * | ---- | --------- | --------------------------------------------------------------------- |
 * | 0x20 | SEALED    | from id, to id, counter u64, AEAD ciphertext of an inner frame + tag  |
 * | 0x21 | HANDSHAKE | from id, to id, stage u8 (0..3), attempt u32, cookie u32, Noise handshake message |
 *
 * HANDSHAKE carries the three messages of Noise_XXpsk0_25519_ChaChaPoly_SHA256 (see
 * `lib/peer/handshake/handshake.ts`; each peer initiates one handshake, so messages 1 and 3 from a peer belong
 * to its handshake and message 2 to ours; stage 0 is ignored); a peer without the room secret
 * cannot produce a first message that a member accepts. HANDSHAKE frames travel relayed and
 * directly: a message 1 sent directly carries a random cookie, which the message 2 answering it
 * directly echoes (0 otherwise). The 28 bytes before a SEALED ciphertext are the AEAD's associated data. Inner
 * frames:
 *
 * | kind | name      | body                                                  |
 * | ---- | --------- | ----------------------------------------------------- |
 * | 1    | PROBE     | txid u32                                              |
 * | 2    | PROBE_ACK | txid u32, observed endpoint (where the probe came from) |
 * | 3    | DATA      | seq u32, stream u32, base u32, flags u8 (bit 0: more fragments follow; bit 1: first fragment), text |
 * | 4    | ACK       | stream u32, cumulative seq u32, selective bitmap u32 (bit i: cum+2+i) |
 * | 5    | ANNOUNCE  | attempt u32: the responder's confirmation that it completed the recipient's handshake attempt |
 * | 6    | CANDIDATES | endpoint list: more addresses to punch to (from `join --stun`) |
 * | 7    | NAT       | mapping u8 (0 unknown, 1 endpoint-independent, 2 address-dependent), ports list (count u8, u16 each: the public ports STUN servers saw, in order) |
 * | 8    | BIRTHDAY  | stage u8 (1 propose, 2 accept, 3 go), round u32, sockets u16 (see `lib/peer/path/birthday.ts`) |
 * | 9    | DATA_BATCH | seq u32, stream u32, base u32, then 2 or more parts to the end, each flags u8 (as DATA's), length u16, text |
 * | 10   | RELAYS    | server RTT u16 (ms; 0xffff unknown), supernode id (zeros: none), supernode RTT u16: for choosing the relay with the lowest RTT sum |
 *
 * DATA_BATCH is a DATA frame that carries several payloads under one sequence number (a sender
 * packs payloads queued behind its window): the receiver delivers its parts in order, as if each
 * had come in a DATA of its own. Its parts take at most `MAX_BATCH` bytes, counting
 * `BATCH_PART_OVERHEAD` per part, so it is never larger than a DATA of
 * `MAX_FRAGMENT` bytes of text. Both decode to the same `InnerFrame` (kind DATA); a
 * batch has its first part in `first`/`more`/`text` and the rest in `packed`.
 *
 * @module
 */

import { type Decoded, toHex, Writer } from "./codec.ts";

/**
 * Protocol version carried in byte 2 of every datagram (not the program's version). Version 8:
 * a cluster server's WELCOME carries its shared cookie and the other servers (one datagram where
 * a COOKIE and a SERVERS followed it). Version 6:
 * HELLO carries an owner tag (names bind to identities) and WELCOME the server's boot id
 * (peers tell a restarted server at once); version 5 brought handshakes initiated by both peers,
 * the HANDSHAKE cookie and supernodes. Versions must not talk to each other.
 */
export const PROTOCOL_VERSION = 8;

/** Largest datagram p2p sends or accepts; stays under common path MTUs. */
export const MAX_DATAGRAM = 1200;

/**
 * Most endpoints in one list: the private endpoints the server passes on for one peer (keeps
 * INTRO under MAX_DATAGRAM), and the addresses of one CANDIDATES frame.
 */
export const MAX_PRIVATE_ENDPOINTS = 8;

/** Size of a peer identifier in bytes. */
export const ID_LEN = 8;

/** Message type codes (byte 3 of the header). */
export const MsgType = {
  Hello: 0x01,
  Welcome: 0x02,
  Refused: 0x03,
  Intro: 0x04,
  Left: 0x05,
  Ping: 0x06,
  Pong: 0x07,
  Roster: 0x08,
  Bye: 0x09,
  Relay: 0x0a,
  Relayed: 0x0b,
  Repunch: 0x0c,
  Cookie: 0x0d,
  Reach: 0x0e,
  Reached: 0x0f,
  Check: 0x10,
  Servers: 0x11,
  Sealed: 0x20,
  Handshake: 0x21,
} as const;

/** First byte of every p2p datagram (ASCII `p`). */
export const MAGIC0 = 0x70;
/** Second byte of every p2p datagram (ASCII `2`). */
export const MAGIC1 = 0x32;

/** Hex form of a peer id, for map keys and logs. */
export const idHex: (id: Uint8Array) => string = toHex;

/** Reads the header; returns the message type or a drop reason. */
export function peekType(b: Uint8Array): Decoded<number> {
  if (b.length < 4) return { ok: false, reason: "short" };
  if (b.length > MAX_DATAGRAM) return { ok: false, reason: "oversize" };
  if (b[0] !== MAGIC0 || b[1] !== MAGIC1) return { ok: false, reason: "bad-magic" };
  if (b[2] !== PROTOCOL_VERSION) return { ok: false, reason: "bad-version" };
  return { ok: true, value: b[3]! };
}

/** True when `b` starts with a valid header of message type `type`; allocates nothing. */
export function hasHeader(b: Uint8Array, type: number): boolean {
  return b.length >= 4 && b[3] === type && b[0] === MAGIC0 && b[1] === MAGIC1 &&
    b[2] === PROTOCOL_VERSION;
}

/** A writer that starts with the 4-byte header of message type `type`. */
export function writeHeader(type: number): Writer {
  return new Writer().u8(MAGIC0).u8(MAGIC1).u8(PROTOCOL_VERSION).u8(type);
}
