/**
 * The messages between a peer and a rendezvous point (the server, or a supernode): HELLO,
 * WELCOME, REFUSED, INTRO, LEFT, PING, PONG, ROSTER, BYE, RELAY, RELAYED, REPUNCH, COOKIE,
 * REACH and REACHED ({@link ServerMsg}), their sizes and codes, what a HELLO's room signature
 * covers ({@link helloSigningInput}) and the roster digest PING and PONG carry
 * ({@link rosterDigest}). These travel in clear: the server must read them. See
 * `docs/protocol.md`, "Client ↔ server messages". Pure; decoders never throw.
 *
 * @module
 */
import type { Endpoint } from "./address.ts";
import { type Decoded, Reader, ShortRead, Writer } from "./codec.ts";
import { ID_LEN, MAX_DATAGRAM, MsgType, peekType, writeHeader } from "./header.ts";
import { COOKIE_LEN, REACH_MAC_LEN } from "../crypto/cookie.ts";
import { OWNER_TAG_LEN } from "../crypto/owner.ts";

/** Sizes of the server's MACs, defined with them in `lib/crypto/cookie.ts`. */
export { COOKIE_LEN, REACH_MAC_LEN };

/**
 * Size of a HELLO's owner tag, defined with it in `lib/crypto/owner.ts`: the same for one
 * identity in one room, so a name binds to whoever registered it.
 */
export { OWNER_TAG_LEN };

const encoder = new TextEncoder();

/** Most peers in one room: a ROSTER of everyone else must fit in one datagram. */
export const MAX_ROOM_SIZE: number = Math.floor((MAX_DATAGRAM - 4 - 8 - 4 - 2) / ID_LEN) + 1;

/** Size of a pair's introduction epoch in bytes. */
export const EPOCH_LEN = 8;

/** Size of a registration token in bytes. */
export const TOKEN_LEN = 8;

/** Size of a room id (the room's Ed25519 public key) in bytes. */
export const ROOM_ID_LEN = 32;

/** Size of a HELLO's nonce (echoed by WELCOME and REFUSED) in bytes. */
export const NONCE_LEN = 8;

/** Size of a HELLO's Ed25519 signature in bytes. */
export const SIGNATURE_LEN = 64;
/** Size of a HELLO's puzzle solution. */
export const POW_LEN = 8;
/** Size of a HELLO's id key (an Ed25519 public key; the peer id is derived from it). */
export const ID_KEY_LEN = 32;

/** Size of an opaque name tag in bytes. */
export const NAME_TAG_LEN = 8;

/** Size of a WELCOME's boot id (drawn when the rendezvous point's registry is made) in bytes. */
export const BOOT_LEN = 8;

/** Size of a RELAY datagram before its payload: header, from id, token, to id. */
export const RELAY_HEADER_LEN: number = 4 + ID_LEN + TOKEN_LEN + ID_LEN;

/** Size of a RELAYED datagram before its payload: header, token, from id. */
export const RELAYED_HEADER_LEN: number = 4 + TOKEN_LEN + ID_LEN;

/** Largest payload one RELAY carries (1172 bytes: the RELAY is then {@link MAX_DATAGRAM}). */
export const MAX_RELAY_PAYLOAD: number = MAX_DATAGRAM - RELAY_HEADER_LEN;

/** Why the server refused a request. */
export const RefuseCode = {
  /** The server does not know this peer id (it restarted or expired us): register again. */
  Unknown: 1,
  /** The request was malformed or not allowed. */
  Invalid: 2,
  /** The room has reached its size limit. */
  RoomFull: 3,
  /** Another member of the room has this name tag: pick another name. */
  NameTaken: 4,
  /** A server limit was reached (peers, registrations per address, rooms per address). */
  Limit: 5,
} as const;

/** Why a peer left a room. */
export const LeftReason = {
  /** The peer said goodbye. */
  Bye: 1,
  /** The server heard nothing from the peer for too long. */
  Expired: 2,
  /**
   * The same identity registered again under the same name (a new process after a crash or a
   * lost BYE): this registration is a ghost of it. Receivers may treat it like Bye.
   */
  Replaced: 3,
} as const;

/** HELLO/INTRO flag: this peer only talks through the relay and hides its addresses. */
export const FLAG_RELAY_ONLY = 1;

/**
 * HELLO flag: this peer offers to be its room's supernode (the server checks its reachability
 * with REACH). INTRO flag: this member passed that check and serves as a supernode. The server
 * never passes a HELLO's bit on as it is: only its own check sets the INTRO bit.
 */
export const FLAG_SUPERNODE = 2;

/** Size of a REACH's nonce and of its MAC, in bytes. */
export const REACH_NONCE_LEN = 8;

/** Every server-facing message, discriminated by `type`. */
export type ServerMsg =
  | {
    type: typeof MsgType.Hello;
    id: Uint8Array;
    cookie: Uint8Array;
    /** Fresh random bytes per registration attempt, echoed by WELCOME and REFUSED. */
    nonce: Uint8Array;
    flags: number;
    /** Room id: the room's Ed25519 public key (from the room name and passphrase). */
    room: Uint8Array;
    /** Opaque name tag (unique per room). */
    nameTag: Uint8Array;
    /** The identity's owner tag in this room ({@link OWNER_TAG_LEN} bytes). */
    owner: Uint8Array;
    /** The peer's id key for this run: `id` is derived from it (`lib/crypto/peer_id.ts`). */
    idKey: Uint8Array;
    /** The room key's signature over {@link helloSigningInput}. */
    signature: Uint8Array;
    /** The id key's signature over {@link helloSigningInput}. */
    idSignature: Uint8Array;
    /** The solution of the COOKIE's puzzle (`lib/crypto/puzzle.ts`; zeros when none was asked). */
    pow: Uint8Array;
    privateEndpoints: Endpoint[];
  }
  | {
    type: typeof MsgType.Welcome;
    id: Uint8Array;
    /** The HELLO's nonce, echoed. */
    nonce: Uint8Array;
    token: Uint8Array;
    /** The rendezvous point's boot id: another one on a later WELCOME means it restarted. */
    boot: Uint8Array;
    observed: Endpoint;
    /**
     * A cluster server's shared cookie (protocol 8; what a COOKIE after the WELCOME carried
     * before): the peer fails over with it from its first moment.
     */
    sharedCookie?: Uint8Array;
    /**
     * A cluster server's other servers and the keepalive it asks for, s (what a SERVERS after the
     * WELCOME carried before; SERVERS still tells of changes).
     */
    cluster?: { keepalive: number; servers: Endpoint[] };
  }
  | { type: typeof MsgType.Refused; echo: Uint8Array; code: number; message: string }
  | {
    type: typeof MsgType.Intro;
    token: Uint8Array;
    seq: number;
    id: Uint8Array;
    /** Same value in both INTROs of a pair; changes when either side registers anew. */
    epoch: Uint8Array;
    flags: number;
    publicEndpoint: Endpoint | null;
    privateEndpoints: Endpoint[];
  }
  | { type: typeof MsgType.Left; token: Uint8Array; seq: number; id: Uint8Array; reason: number }
  | {
    type: typeof MsgType.Ping;
    id: Uint8Array;
    token: Uint8Array;
    cookie: Uint8Array;
    digest: number;
  }
  | { type: typeof MsgType.Pong; token: Uint8Array; observed: Endpoint; digest: number }
  | { type: typeof MsgType.Roster; token: Uint8Array; seq: number; ids: Uint8Array[] }
  | { type: typeof MsgType.Bye; id: Uint8Array; token: Uint8Array }
  | {
    type: typeof MsgType.Relay;
    from: Uint8Array;
    token: Uint8Array;
    to: Uint8Array;
    payload: Uint8Array;
  }
  | { type: typeof MsgType.Relayed; token: Uint8Array; from: Uint8Array; payload: Uint8Array }
  | { type: typeof MsgType.Repunch; id: Uint8Array; token: Uint8Array; target: Uint8Array }
  | {
    type: typeof MsgType.Cookie;
    /** The request's nonce (HELLO) or token (PING): only its sender knows it. */
    echo: Uint8Array;
    cookie: Uint8Array;
    /** Leading zero bits the HELLO's puzzle solution must give (0: no puzzle; 6.11). */
    difficulty: number;
  }
  | { type: typeof MsgType.Reach; nonce: Uint8Array; mac: Uint8Array }
  | { type: typeof MsgType.Reached; id: Uint8Array; token: Uint8Array; nonce: Uint8Array }
  | {
    /** The server asks a member to send the REACH (`nonce`, `mac`) to `target`. */
    type: typeof MsgType.Check;
    token: Uint8Array;
    seq: number;
    target: Endpoint;
    nonce: Uint8Array;
    mac: Uint8Array;
  }
  | {
    type: typeof MsgType.Servers;
    token: Uint8Array;
    seq: number;
    /** The longest keepalive interval the cluster asks for, in seconds (0: no advice). */
    keepalive: number;
    /** The cluster's other servers, where to register when this one is lost. */
    servers: Endpoint[];
  };

/** Most servers a SERVERS message lists (a peer keeps no more). */
export const MAX_CLUSTER_SERVERS = 8;

/** The server-facing message of type `T`, e.g. `MsgOf<typeof MsgType.Intro>`. */
export type MsgOf<T extends ServerMsg["type"]> = Extract<ServerMsg, { type: T }>;

/** The label that starts every {@link helloSigningInput} (ASCII, then a zero byte). */
export const HELLO_SIGNING_LABEL = "p2p hello v3";
const HELLO_LABEL_BYTES = encoder.encode(HELLO_SIGNING_LABEL);

/**
 * What a HELLO's two signatures (the room key's and the id key's) cover: `"p2p hello v3" ‖ 0x00
 * ‖ id ‖ cookie ‖ nonce ‖ flags u8 ‖ room id ‖ name tag ‖ owner ‖ id key`. Throws RangeError on
 * wrong sizes.
 */
export function helloSigningInput(
  m: Pick<
    MsgOf<typeof MsgType.Hello>,
    "id" | "cookie" | "nonce" | "flags" | "room" | "nameTag" | "owner" | "idKey"
  >,
): Uint8Array {
  const w = new Writer();
  return w.bytes(HELLO_LABEL_BYTES).u8(0).fixed(m.id, ID_LEN)
    .fixed(m.cookie, COOKIE_LEN).fixed(m.nonce, NONCE_LEN).u8(m.flags)
    .fixed(m.room, ROOM_ID_LEN).fixed(m.nameTag, NAME_TAG_LEN).fixed(m.owner, OWNER_TAG_LEN)
    .fixed(m.idKey, ID_KEY_LEN).finish();
}

/** Encodes a server-facing message. Throws RangeError only on values the caller built wrong. */
export function encodeServerMsg(m: ServerMsg): Uint8Array {
  return encodeServerMsgInto(m, undefined);
}

/**
 * {@link encodeServerMsg} into the `n` bytes `alloc(n)` provides (e.g. cut from a slab shared by
 * many datagrams, which saves a backing-store allocation per datagram); undefined: fresh ones.
 */
export function encodeServerMsgInto(
  m: ServerMsg,
  alloc: ((n: number) => Uint8Array) | undefined,
): Uint8Array {
  const w = writeHeader(m.type);
  w.alloc = alloc;
  switch (m.type) {
    case MsgType.Hello:
      return w.fixed(m.id, ID_LEN).fixed(m.cookie, COOKIE_LEN).fixed(m.nonce, NONCE_LEN)
        .u8(m.flags).fixed(m.room, ROOM_ID_LEN).fixed(m.nameTag, NAME_TAG_LEN)
        .fixed(m.owner, OWNER_TAG_LEN).fixed(m.idKey, ID_KEY_LEN).fixed(m.signature, SIGNATURE_LEN)
        .fixed(m.idSignature, SIGNATURE_LEN).fixed(m.pow, POW_LEN).endpoints(m.privateEndpoints)
        .finish();
    case MsgType.Welcome: {
      w.fixed(m.id, ID_LEN).fixed(m.nonce, NONCE_LEN).fixed(m.token, TOKEN_LEN)
        .fixed(m.boot, BOOT_LEN).endpoint(m.observed)
        .u8((m.sharedCookie ? WELCOME_COOKIE : 0) | (m.cluster ? WELCOME_SERVERS : 0));
      if (m.sharedCookie) w.fixed(m.sharedCookie, COOKIE_LEN);
      if (m.cluster) {
        if (m.cluster.servers.length > MAX_CLUSTER_SERVERS) {
          throw new RangeError("Too many servers");
        }
        w.u16(m.cluster.keepalive).endpoints(m.cluster.servers);
      }
      return w.finish();
    }
    case MsgType.Refused:
      return w.fixed(m.echo, TOKEN_LEN).u8(m.code).str8(m.message).finish();
    case MsgType.Intro:
      return w.fixed(m.token, TOKEN_LEN).u32(m.seq).fixed(m.id, ID_LEN).fixed(m.epoch, EPOCH_LEN)
        .u8(m.flags)
        .endpoints(m.publicEndpoint ? [m.publicEndpoint] : []).endpoints(m.privateEndpoints)
        .finish();
    case MsgType.Left:
      return w.fixed(m.token, TOKEN_LEN).u32(m.seq).fixed(m.id, ID_LEN).u8(m.reason).finish();
    case MsgType.Ping:
      return w.fixed(m.id, ID_LEN).fixed(m.token, TOKEN_LEN).fixed(m.cookie, COOKIE_LEN)
        .u32(m.digest).finish();
    case MsgType.Pong:
      return w.fixed(m.token, TOKEN_LEN).endpoint(m.observed).u32(m.digest).finish();
    case MsgType.Roster: {
      w.fixed(m.token, TOKEN_LEN).u32(m.seq).u16(m.ids.length);
      for (const id of m.ids) w.fixed(id, ID_LEN);
      return w.finish();
    }
    case MsgType.Bye:
      return w.fixed(m.id, ID_LEN).fixed(m.token, TOKEN_LEN).finish();
    case MsgType.Relay:
      return w.fixed(m.from, ID_LEN).fixed(m.token, TOKEN_LEN).fixed(m.to, ID_LEN)
        .bytes(m.payload).finish();
    case MsgType.Relayed:
      return w.fixed(m.token, TOKEN_LEN).fixed(m.from, ID_LEN).bytes(m.payload).finish();
    case MsgType.Repunch:
      return w.fixed(m.id, ID_LEN).fixed(m.token, TOKEN_LEN).fixed(m.target, ID_LEN).finish();
    case MsgType.Cookie:
      return w.fixed(m.echo, TOKEN_LEN).fixed(m.cookie, COOKIE_LEN).u8(m.difficulty).finish();
    case MsgType.Reach:
      return w.fixed(m.nonce, REACH_NONCE_LEN).fixed(m.mac, REACH_MAC_LEN).finish();
    case MsgType.Reached:
      return w.fixed(m.id, ID_LEN).fixed(m.token, TOKEN_LEN).fixed(m.nonce, REACH_NONCE_LEN)
        .finish();
    case MsgType.Check:
      return w.fixed(m.token, TOKEN_LEN).u32(m.seq).endpoint(m.target)
        .fixed(m.nonce, REACH_NONCE_LEN).fixed(m.mac, REACH_MAC_LEN).finish();
    case MsgType.Servers:
      if (m.servers.length > MAX_CLUSTER_SERVERS) throw new RangeError("Too many servers");
      return w.fixed(m.token, TOKEN_LEN).u32(m.seq).u16(m.keepalive).endpoints(m.servers)
        .finish();
  }
}

/** Decodes a server-facing message; malformed input yields `{ ok: false }`, never a throw. */
export function decodeServerMsg(b: Uint8Array): Decoded<ServerMsg> {
  const t = peekType(b);
  if (!t.ok) return t;
  const r = new Reader(b, 4);
  try {
    const m = readServerMsg(t.value, r);
    if (!m) return { ok: false, reason: "unknown-type" };
    r.end();
    return { ok: true, value: m };
  } catch (e) {
    if (e instanceof ShortRead) return { ok: false, reason: "malformed" };
    throw e;
  }
}

/** Reads the body of a message of `type` (undefined: no such server message); may throw ShortRead. */
function readServerMsg(type: number, r: Reader): ServerMsg | undefined {
  return (READERS as Record<number, ((r: Reader) => ServerMsg) | undefined>)[type]?.(r);
}

/** One body reader per server message type (fields in wire order; a short body throws ShortRead). */
const READERS: { [T in ServerMsg["type"]]: (r: Reader) => MsgOf<T> } = {
  [MsgType.Hello]: readHello,
  [MsgType.Welcome]: readWelcome,
  [MsgType.Refused]: (r) => ({
    type: MsgType.Refused,
    echo: r.bytes(TOKEN_LEN),
    code: r.u8(),
    message: r.str8(),
  }),
  [MsgType.Intro]: readIntro,
  [MsgType.Left]: (r) => ({
    type: MsgType.Left,
    token: r.bytes(TOKEN_LEN),
    seq: r.u32(),
    id: r.bytes(ID_LEN),
    reason: r.u8(),
  }),
  [MsgType.Ping]: (r) => {
    // One copy, three views: a server reads a PING from every peer every 25 s.
    const b = r.bytes(ID_LEN + TOKEN_LEN + COOKIE_LEN);
    return {
      type: MsgType.Ping,
      id: b.subarray(0, ID_LEN),
      token: b.subarray(ID_LEN, ID_LEN + TOKEN_LEN),
      cookie: b.subarray(ID_LEN + TOKEN_LEN),
      digest: r.u32(),
    };
  },
  [MsgType.Pong]: (r) => ({
    type: MsgType.Pong,
    token: r.bytes(TOKEN_LEN),
    observed: r.endpoint(),
    digest: r.u32(),
  }),
  [MsgType.Roster]: (r) => {
    const token = r.bytes(TOKEN_LEN), seq = r.u32(), n = r.u16();
    const ids: Uint8Array[] = [];
    for (let i = 0; i < n; i++) ids.push(r.bytes(ID_LEN));
    return { type: MsgType.Roster, token, seq, ids };
  },
  [MsgType.Bye]: (r) => ({ type: MsgType.Bye, id: r.bytes(ID_LEN), token: r.bytes(TOKEN_LEN) }),
  [MsgType.Relay]: (r) => ({
    type: MsgType.Relay,
    from: r.bytes(ID_LEN),
    token: r.bytes(TOKEN_LEN),
    to: r.bytes(ID_LEN),
    payload: r.rest(),
  }),
  [MsgType.Relayed]: (r) => ({
    type: MsgType.Relayed,
    token: r.bytes(TOKEN_LEN),
    from: r.bytes(ID_LEN),
    payload: r.rest(),
  }),
  [MsgType.Repunch]: (r) => ({
    type: MsgType.Repunch,
    id: r.bytes(ID_LEN),
    token: r.bytes(TOKEN_LEN),
    target: r.bytes(ID_LEN),
  }),
  [MsgType.Cookie]: (r) => ({
    type: MsgType.Cookie,
    echo: r.bytes(TOKEN_LEN),
    cookie: r.bytes(COOKIE_LEN),
    difficulty: r.u8(),
  }),
  [MsgType.Reach]: (r) => ({
    type: MsgType.Reach,
    nonce: r.bytes(REACH_NONCE_LEN),
    mac: r.bytes(REACH_MAC_LEN),
  }),
  [MsgType.Reached]: (r) => ({
    type: MsgType.Reached,
    id: r.bytes(ID_LEN),
    token: r.bytes(TOKEN_LEN),
    nonce: r.bytes(REACH_NONCE_LEN),
  }),
  [MsgType.Check]: (r) => ({
    type: MsgType.Check,
    token: r.bytes(TOKEN_LEN),
    seq: r.u32(),
    target: r.endpoint(),
    nonce: r.bytes(REACH_NONCE_LEN),
    mac: r.bytes(REACH_MAC_LEN),
  }),
  [MsgType.Servers]: (r) => {
    const head = { type: MsgType.Servers, token: r.bytes(TOKEN_LEN), seq: r.u32() };
    const keepalive = r.u16(), servers = r.endpoints();
    if (servers.length > MAX_CLUSTER_SERVERS) throw new ShortRead("Too many servers");
    return { ...head, keepalive, servers };
  },
};

/** WELCOME's flags (protocol 8): a shared cookie follows; the cluster's servers follow. */
const WELCOME_COOKIE = 1, WELCOME_SERVERS = 2;

function readWelcome(r: Reader): MsgOf<typeof MsgType.Welcome> {
  const m: MsgOf<typeof MsgType.Welcome> = {
    type: MsgType.Welcome,
    id: r.bytes(ID_LEN),
    nonce: r.bytes(NONCE_LEN),
    token: r.bytes(TOKEN_LEN),
    boot: r.bytes(BOOT_LEN),
    observed: r.endpoint(),
  };
  const flags = r.u8();
  if ((flags & ~(WELCOME_COOKIE | WELCOME_SERVERS)) !== 0) throw new ShortRead("WELCOME flags");
  if (flags & WELCOME_COOKIE) m.sharedCookie = r.bytes(COOKIE_LEN);
  if (flags & WELCOME_SERVERS) {
    const keepalive = r.u16(), servers = r.endpoints();
    if (servers.length > MAX_CLUSTER_SERVERS) throw new ShortRead("Too many servers");
    m.cluster = { keepalive, servers };
  }
  return m;
}

/** Bytes of a HELLO body before its private endpoints. */
const HELLO_FIXED_LEN = ID_LEN + COOKIE_LEN + NONCE_LEN + 1 + ROOM_ID_LEN + NAME_TAG_LEN +
  OWNER_TAG_LEN + ID_KEY_LEN + 2 * SIGNATURE_LEN + POW_LEN;

/**
 * The body of a HELLO. Its fixed part is copied out once and the fields are views of that copy
 * (not of the receive buffer): one backing store a HELLO rather than ten, which a registration
 * burst feels in the allocator.
 */
function readHello(r: Reader): MsgOf<typeof MsgType.Hello> {
  const b = r.bytes(HELLO_FIXED_LEN);
  let o = 0;
  const take = (n: number) => b.subarray(o, o += n);
  const id = take(ID_LEN), cookie = take(COOKIE_LEN), nonce = take(NONCE_LEN);
  const flags = b[o++]!;
  const room = take(ROOM_ID_LEN), nameTag = take(NAME_TAG_LEN), owner = take(OWNER_TAG_LEN);
  const idKey = take(ID_KEY_LEN), signature = take(SIGNATURE_LEN);
  const idSignature = take(SIGNATURE_LEN), pow = take(POW_LEN);
  const privateEndpoints = r.endpoints();
  return {
    type: MsgType.Hello,
    id,
    cookie,
    nonce,
    flags,
    room,
    nameTag,
    owner,
    idKey,
    signature,
    idSignature,
    pow,
    privateEndpoints,
  };
}

/** The body of an INTRO (at most one public endpoint). */
function readIntro(r: Reader): MsgOf<typeof MsgType.Intro> {
  const token = r.bytes(TOKEN_LEN), seq = r.u32(), id = r.bytes(ID_LEN);
  const epoch = r.bytes(EPOCH_LEN), flags = r.u8(), pub = r.endpoints();
  if (pub.length > 1) throw new ShortRead("More than one public endpoint");
  const privateEndpoints = r.endpoints();
  return {
    type: MsgType.Intro,
    token,
    seq,
    id,
    epoch,
    flags,
    publicEndpoint: pub[0] ?? null,
    privateEndpoints,
  };
}

/** The 32-bit FNV-1a hash of one peer id; {@link rosterDigest} XORs these. */
export function idDigest(id: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of id) h = Math.imul(h ^ b, 0x01000193);
  return h >>> 0;
}

/**
 * Order-independent 32-bit digest of a set of peer ids (FNV-1a per id, XOR-combined). A peer
 * sends the digest of the peers it knows; the server compares it with its own view of the
 * room and sends a ROSTER plus introductions when they differ. Being an XOR, it can be kept
 * up to date in O(1) per change.
 */
export function rosterDigest(ids: Iterable<Uint8Array>): number {
  let acc = 0;
  for (const id of ids) acc ^= idDigest(id);
  return acc >>> 0;
}
