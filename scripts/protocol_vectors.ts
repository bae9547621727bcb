/**
 * `deno task vectors`: writes `tests/vectors/protocol_vectors.json`, the test vectors of
 * `docs/protocol.md` (appendix A): the exact bytes of every client ↔ server message and every
 * peer frame built from fixed fields, the room key derivation of a fixed room and passphrase,
 * name tags, owner tags, a HELLO signature, address cookies, REACH MACs, roster digests, fingerprints, and a
 * full transcript of a pair's two Noise_XXpsk0 handshakes from fixed static and ephemeral keys
 * with the transport keys and one SEALED frame each way.
 *
 * The bytes come from the code of `lib/`; every cryptographic value is also recomputed by the
 * independent implementation in `tests/wire/reference.ts`, and the script refuses to write
 * anything on which the two disagree. `tests/wire/protocol_vectors_test.ts` checks the code
 * against the committed file, so a change to the wire format fails that test until the vectors
 * are regenerated here (and the protocol version and `docs/protocol.md` updated with them).
 *
 * Options: `--check` compares with the committed file and writes nothing (exit code 1 when they
 * differ).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { addressCookie, reachMac } from "../lib/crypto/cookie.ts";
import { Identity } from "../lib/crypto/identity.ts";
import { OWNER_TAG_INFO, ownerTag } from "../lib/crypto/owner.ts";
import { fingerprint } from "../lib/crypto/fingerprint.ts";
import { peerIdKey } from "../lib/crypto/peer_id.ts";
import { puzzleDigest, puzzleSolved, solvePuzzle } from "../lib/crypto/puzzle.ts";
import { deriveRoomKeys, nameTag, ROOM_KDF, roomSalt, roomSign } from "../lib/crypto/room_key.ts";
import { NOISE_PROTOCOL, payloadOf } from "../lib/peer/handshake/handshake.ts";
import { pairPrologue } from "../lib/peer/handshake/secure_link.ts";
import { Registry } from "../lib/server/registry.ts";
import { ChatKind, type ChatMessage, encodeChat } from "../lib/wire/chat_message.ts";
import { bindingRequest, StunResponder } from "../lib/nat/stun.ts";
import type { Endpoint } from "../lib/wire/address.ts";
import { MsgType, PROTOCOL_VERSION } from "../lib/wire/header.ts";
import {
  BirthdayStage,
  encodeHandshake,
  encodeInner,
  encodeSealedHeader,
  type HandshakeFrame,
  type InnerFrame,
  InnerKind,
  NatMapping,
  RTT_UNKNOWN,
} from "../lib/wire/peer_frame.ts";
import {
  encodeServerMsg,
  FLAG_RELAY_ONLY,
  FLAG_SUPERNODE,
  helloSigningInput,
  idDigest,
  LeftReason,
  RefuseCode,
  rosterDigest,
  type ServerMsg,
} from "../lib/wire/server_msg.ts";
import { replayPair, type ReplayPeer } from "../tests/wire/pair_replay.ts";
import {
  addressCookieRef,
  clusterCookieKeyRef,
  clusterKeyRef,
  clusterMacRef,
  ed25519PublicRef,
  ed25519SignRef,
  endpointText,
  fingerprintRef,
  helloSigningInputRef,
  hex,
  idDigestRef,
  nameTagRef,
  noiseNonce,
  ownerTagRef,
  payloadRef,
  peerIdRef,
  periodSecretRef,
  prologueRef,
  puzzleDigestRef,
  reachMacRef,
  roomKeysRef,
  rosterDigestRef,
  sealedHeaderRef,
  sealedRef,
  unhex,
  x25519Public,
  xxpsk0Ref,
} from "../tests/wire/reference.ts";
import { type Json, toJson, VECTORS_PATH } from "../tests/wire/vector_json.ts";
import { clusterCookieKey, clusterKey } from "../lib/crypto/cluster_mac.ts";
import {
  type ClusterEnvelope,
  type ClusterMsg,
  type ClusterRecord,
  ClusterType,
  encodeCluster,
  recordDigest,
} from "../lib/server/cluster_wire.ts";

const utf8 = new TextEncoder();

/** Stops with a message when the code and the reference implementation disagree. */
function same(what: string, code: Uint8Array | number | string, ref: Uint8Array | number | string) {
  const c = code instanceof Uint8Array ? hex(code) : String(code);
  const r = ref instanceof Uint8Array ? hex(ref) : String(ref);
  if (c !== r) throw new Error(`${what}: the code gives ${c}, the reference ${r}`);
}

/** 32 bytes named by a label: SHA-256 of it (so the inputs are reproducible from their names). */
function labelled(label: string): Uint8Array {
  return new Uint8Array(createHash("sha256").update(label).digest());
}

// ---------------------------------------------------------------------------------------------
// Fixed inputs

const ROOM = "friends", PASS = "correct horse battery staple";
/** Alice's and bob's id keys for the run: their ids are derived from them (5.3). */
const ALICE_ID_SEED = labelled("p2p protocol vectors: alice id key");
const BOB_ID_SEED = labelled("p2p protocol vectors: bob id key");
const aliceIdKey = peerIdKey(ALICE_ID_SEED), bobIdKey = peerIdKey(BOB_ID_SEED);
same("alice's id key", aliceIdKey.publicKey, ed25519PublicRef(ALICE_ID_SEED));
same("alice's id", aliceIdKey.id, peerIdRef(ed25519PublicRef(ALICE_ID_SEED)));
same("bob's id", bobIdKey.id, peerIdRef(ed25519PublicRef(BOB_ID_SEED)));
const ALICE = aliceIdKey.id, BOB = bobIdKey.id;
const CAROL = unhex("c1c2c3c4c5c6c7c8");
const TOKEN_ALICE = unhex("d0d1d2d3d4d5d6d7"), TOKEN_BOB = unhex("e0e1e2e3e4e5e6e7");
const NONCE = unhex("4e4f4e4345000001");
const EPOCH = unhex("0e0f1011121314fe");
const REACH_NONCE = unhex("5245414348000001");
const BOOT = unhex("b0075eed00000001");
const MASTER = labelled("p2p protocol vectors: server master secret");
const ALICE_AT: Endpoint = { hostname: "203.0.113.7", port: 51820 };
const BOB_AT: Endpoint = { hostname: "2001:db8::b0b", port: 40001 };
const ALICE_PRIVATE: Endpoint[] = [
  { hostname: "192.168.1.20", port: 40000 },
  { hostname: "fd00::20", port: 40000 },
];

const keys = deriveRoomKeys(ROOM, PASS);
const ref = roomKeysRef(ROOM, PASS);
same("room salt", roomSalt(ROOM), ref.salt);
same("room id", keys.id, ref.roomId);
same("psk", keys.psk, ref.psk);
same("name key", keys.nameKey, ref.nameKey);
same("room KDF N", ROOM_KDF.N, 32768);

/** The identities (static keys) of alice and bob: their owner tags, and their handshakes. */
const ALICE_STATIC = labelled("p2p protocol vectors: alice static");
const BOB_STATIC = labelled("p2p protocol vectors: bob static");

const ownerCases = [
  { name: "alice", key: ALICE_STATIC },
  { name: "bob", key: BOB_STATIC },
].map(({ name, key }) => {
  const owner = ownerTag(key, keys.id);
  same(`owner tag of ${name}`, owner, ownerTagRef(key, keys.id));
  return { name, identity_private: key, room_id: keys.id, info: OWNER_TAG_INFO, owner };
});
const OWNER_ALICE = ownerCases[0]!.owner;

function tag(name: string): Uint8Array {
  const t = nameTag(keys, name);
  same(`name tag of ${name}`, t, nameTagRef(ref.nameKey, name));
  return t;
}

// ---------------------------------------------------------------------------------------------
// Server-side MACs

const registry = new Registry({}, (n) => new Uint8Array(n), MASTER);
/** Cookies at t = 90 s: period 1 (periods are 60 s). */
const COOKIE_AT = 90_000;
const cookieCases = [
  { id: ALICE, endpoint: ALICE_AT },
  { id: BOB, endpoint: BOB_AT },
].map(({ id, endpoint }) => {
  const period = Math.floor(COOKIE_AT / 60_000);
  const secret = periodSecretRef(MASTER, period);
  const text = endpointText(endpoint.hostname, endpoint.port);
  const cookie = registry.cookieFor(id, endpoint, COOKIE_AT);
  same(`cookie for ${text}`, cookie, addressCookie(secret, id, text));
  same(`cookie for ${text}`, cookie, addressCookieRef(secret, id, text));
  return {
    master: MASTER,
    now_ms: COOKIE_AT,
    period,
    period_secret: secret,
    id,
    endpoint,
    text,
    cookie,
  };
});
const COOKIE = cookieCases[0]!.cookie;

const reachCase = (() => {
  const mac = reachMac(TOKEN_ALICE, REACH_NONCE);
  same("REACH MAC", mac, reachMacRef(TOKEN_ALICE, REACH_NONCE));
  return { token: TOKEN_ALICE, nonce: REACH_NONCE, mac };
})();

const puzzleCase = (() => {
  const difficulty = 12;
  const pow = solvePuzzle(difficulty, COOKIE, ALICE, NONCE)!;
  const digest = puzzleDigest(COOKIE, ALICE, NONCE, pow);
  same("puzzle digest", digest, puzzleDigestRef(COOKIE, ALICE, NONCE, pow));
  if (!puzzleSolved(difficulty, COOKIE, ALICE, NONCE, pow)) throw new Error("puzzle unsolved");
  return { cookie: COOKIE, id: ALICE, nonce: NONCE, difficulty, pow, digest };
})();

/**
 * A one-address server's answer naming its second port in ALT-PORT (section 17): the server
 * on 192.0.2.1:7777 and :7778, a Binding request with a fixed transaction id from 203.0.113.5:40000.
 */
const stunAltPortCase = (() => {
  const primary = { hostname: "192.0.2.1", port: 7777 };
  const second = { hostname: "192.0.2.1", port: 7778 };
  const client = { hostname: "203.0.113.5", port: 40000 };
  const request = bindingRequest(unhex("0102030405060708090a0b0c"), { fingerprint: true });
  const r = new StunResponder({ sockets: [primary, second] }).handle(0, 0, client, request);
  if (!r) throw new Error("the responder did not answer the vector's request");
  const attribute = new Uint8Array([0xc0, 0x70, 0, 4, second.port >> 8, second.port & 0xff, 0, 0]);
  if (!hex(r.data).includes(hex(attribute))) throw new Error("no ALT-PORT in the answer");
  return { primary, second, client, request, response: r.data, alt_port_attribute: attribute };
})();

const digestCases = [[], [BOB], [BOB, CAROL], [CAROL, BOB]].map((ids) => {
  const digest = rosterDigest(ids);
  same("roster digest", digest, rosterDigestRef(ids));
  for (const id of ids) same("id digest", idDigest(id), idDigestRef(id));
  return { ids, id_digests: ids.map(idDigest), digest };
});

// ---------------------------------------------------------------------------------------------
// Client ↔ server messages

const helloSigned = {
  id: ALICE,
  cookie: COOKIE,
  nonce: NONCE,
  flags: FLAG_SUPERNODE,
  room: keys.id,
  nameTag: tag("alice"),
  owner: OWNER_ALICE,
  idKey: aliceIdKey.publicKey,
};
const signingInput = helloSigningInput(helloSigned);
same(
  "HELLO signing input",
  signingInput,
  helloSigningInputRef(
    ALICE,
    COOKIE,
    NONCE,
    FLAG_SUPERNODE,
    keys.id,
    helloSigned.nameTag,
    OWNER_ALICE,
    aliceIdKey.publicKey,
  ),
);
const signature = roomSign(keys, signingInput);
same("HELLO signature", signature, ed25519SignRef(ref.signSeed, signingInput));
const idSignature = aliceIdKey.sign(signingInput);
same("HELLO id signature", idSignature, ed25519SignRef(ALICE_ID_SEED, signingInput));

/** The frame alice's handshake starts with, relayed (cookie 0): a RELAY's payload. */
let relayedA1: Uint8Array = new Uint8Array(0);

function serverMessages(): { name: string; fields: ServerMsg }[] {
  return [
    {
      name: "HELLO",
      fields: {
        type: MsgType.Hello,
        id: ALICE,
        cookie: COOKIE,
        nonce: NONCE,
        flags: FLAG_SUPERNODE,
        room: keys.id,
        nameTag: helloSigned.nameTag,
        owner: OWNER_ALICE,
        idKey: aliceIdKey.publicKey,
        signature,
        idSignature,
        pow: new Uint8Array(8),
        privateEndpoints: ALICE_PRIVATE,
      },
    },
    {
      name: "HELLO (relay only, no endpoints)",
      fields: (() => {
        const m = {
          id: ALICE,
          cookie: COOKIE,
          nonce: NONCE,
          flags: FLAG_RELAY_ONLY,
          room: keys.id,
          nameTag: tag("alice"),
          owner: OWNER_ALICE,
          idKey: aliceIdKey.publicKey,
        };
        const sig = roomSign(keys, helloSigningInput(m));
        same("HELLO signature", sig, ed25519SignRef(ref.signSeed, helloSigningInput(m)));
        const idSig = aliceIdKey.sign(helloSigningInput(m));
        same("HELLO id signature", idSig, ed25519SignRef(ALICE_ID_SEED, helloSigningInput(m)));
        const { id, cookie, nonce, flags, nameTag, owner, idKey } = m;
        return {
          type: MsgType.Hello,
          id,
          cookie,
          nonce,
          flags,
          room: keys.id,
          nameTag,
          owner,
          idKey,
          signature: sig,
          idSignature: idSig,
          pow: new Uint8Array(8),
          privateEndpoints: [],
        };
      })(),
    },
    {
      name: "WELCOME",
      fields: {
        type: MsgType.Welcome,
        id: ALICE,
        nonce: NONCE,
        token: TOKEN_ALICE,
        boot: BOOT,
        observed: ALICE_AT,
      },
    },
    {
      name: "WELCOME (cluster)",
      fields: {
        type: MsgType.Welcome,
        id: ALICE,
        nonce: NONCE,
        token: TOKEN_ALICE,
        boot: BOOT,
        observed: ALICE_AT,
        sharedCookie: COOKIE,
        cluster: { keepalive: 4, servers: [{ hostname: "198.51.100.2", port: 7777 }] },
      },
    },
    {
      name: "REFUSED",
      fields: {
        type: MsgType.Refused,
        echo: NONCE,
        code: RefuseCode.NameTaken,
        message: "Name taken in this room",
      },
    },
    {
      name: "INTRO",
      fields: {
        type: MsgType.Intro,
        token: TOKEN_ALICE,
        seq: 1,
        id: BOB,
        epoch: EPOCH,
        flags: FLAG_SUPERNODE,
        publicEndpoint: BOB_AT,
        privateEndpoints: [{ hostname: "10.0.0.9", port: 40001 }],
      },
    },
    {
      name: "INTRO (relay only: no endpoints)",
      fields: {
        type: MsgType.Intro,
        token: TOKEN_ALICE,
        seq: 2,
        id: CAROL,
        epoch: EPOCH,
        flags: FLAG_RELAY_ONLY,
        publicEndpoint: null,
        privateEndpoints: [],
      },
    },
    {
      name: "LEFT",
      fields: {
        type: MsgType.Left,
        token: TOKEN_ALICE,
        seq: 4,
        id: CAROL,
        reason: LeftReason.Expired,
      },
    },
    {
      name: "LEFT (replaced: the same identity registered the name again)",
      fields: {
        type: MsgType.Left,
        token: TOKEN_ALICE,
        seq: 5,
        id: BOB,
        reason: LeftReason.Replaced,
      },
    },
    {
      name: "PING",
      fields: {
        type: MsgType.Ping,
        id: ALICE,
        token: TOKEN_ALICE,
        cookie: COOKIE,
        digest: rosterDigest([BOB, CAROL]),
      },
    },
    {
      name: "PONG",
      fields: {
        type: MsgType.Pong,
        token: TOKEN_ALICE,
        observed: ALICE_AT,
        digest: rosterDigest([BOB, CAROL]),
      },
    },
    {
      name: "ROSTER",
      fields: { type: MsgType.Roster, token: TOKEN_ALICE, seq: 3, ids: [BOB, CAROL] },
    },
    { name: "BYE", fields: { type: MsgType.Bye, id: ALICE, token: TOKEN_ALICE } },
    {
      name: "RELAY",
      fields: { type: MsgType.Relay, from: ALICE, token: TOKEN_ALICE, to: BOB, payload: relayedA1 },
    },
    {
      name: "RELAYED",
      fields: { type: MsgType.Relayed, token: TOKEN_BOB, from: ALICE, payload: relayedA1 },
    },
    {
      name: "REPUNCH",
      fields: { type: MsgType.Repunch, id: ALICE, token: TOKEN_ALICE, target: BOB },
    },
    {
      name: "COOKIE",
      fields: { type: MsgType.Cookie, echo: NONCE, cookie: COOKIE, difficulty: 0 },
    },
    {
      name: "COOKIE (puzzle)",
      fields: { type: MsgType.Cookie, echo: NONCE, cookie: COOKIE, difficulty: 14 },
    },
    { name: "REACH", fields: { type: MsgType.Reach, nonce: REACH_NONCE, mac: reachCase.mac } },
    {
      name: "REACHED",
      fields: { type: MsgType.Reached, id: ALICE, token: TOKEN_ALICE, nonce: REACH_NONCE },
    },
    {
      // The server asks bob (another room) to send alice's REACH to her.
      name: "CHECK",
      fields: {
        type: MsgType.Check,
        token: TOKEN_BOB,
        seq: 5,
        target: ALICE_AT,
        nonce: REACH_NONCE,
        mac: reachCase.mac,
      },
    },
    {
      name: "SERVERS",
      fields: {
        type: MsgType.Servers,
        token: TOKEN_ALICE,
        seq: 5,
        keepalive: 4,
        servers: [{ hostname: "203.0.113.8", port: 7777 }, { hostname: "2001:db8::8", port: 7777 }],
      },
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// Inner frames

const STREAM = new DataView(EPOCH.buffer).getUint32(0);
const hello = utf8.encode("hello");
const FILE_ID = utf8.encode("transfer");

const innerFrames: { name: string; fields: InnerFrame }[] = [
  { name: "PROBE", fields: { kind: InnerKind.Probe, txid: 0x01020304 } },
  {
    name: "PROBE_ACK",
    fields: {
      kind: InnerKind.ProbeAck,
      txid: 0x01020304,
      observed: { hostname: "198.51.100.4", port: 6000 },
    },
  },
  {
    name: "PROBE_ACK (IPv6)",
    fields: {
      kind: InnerKind.ProbeAck,
      txid: 7,
      observed: { hostname: "2001:db8::1:2", port: 443 },
    },
  },
  {
    name: "DATA (a whole message)",
    fields: {
      kind: InnerKind.Data,
      seq: 1,
      stream: STREAM,
      base: 1,
      first: true,
      more: false,
      text: hello,
    },
  },
  {
    name: "DATA (a middle fragment)",
    fields: {
      kind: InnerKind.Data,
      seq: 0x01000002,
      stream: 0xffffffff,
      base: 0x01000001,
      first: false,
      more: true,
      text: utf8.encode("ragmen"),
    },
  },
  {
    name: "DATA_BATCH (kind 9: three payloads under one sequence number)",
    fields: {
      kind: InnerKind.Data,
      seq: 7,
      stream: STREAM,
      base: 5,
      first: true,
      more: false,
      text: utf8.encode("one"),
      packed: [
        { first: true, more: true, text: utf8.encode("two, ") },
        { first: false, more: false, text: utf8.encode("continued") },
      ],
    },
  },
  {
    name: "ACK",
    fields: { kind: InnerKind.Ack, stream: STREAM, cumulative: 5, selective: 0b101 },
  },
  { name: "ANNOUNCE", fields: { kind: InnerKind.Announce, attempt: 1 } },
  {
    name: "CANDIDATES",
    fields: {
      kind: InnerKind.Candidates,
      endpoints: [{ hostname: "203.0.113.99", port: 40000 }, {
        hostname: "2001:db8::99",
        port: 40000,
      }],
    },
  },
  {
    name: "NAT",
    fields: { kind: InnerKind.Nat, mapping: NatMapping.AddressDependent, ports: [40000, 40001] },
  },
  {
    name: "BIRTHDAY",
    fields: { kind: InnerKind.Birthday, stage: BirthdayStage.Propose, round: 1, sockets: 256 },
  },
  {
    name: "RELAYS",
    fields: { kind: InnerKind.Relays, serverRtt: 42, supernode: CAROL, supernodeRtt: 17 },
  },
  {
    name: "RELAYS (nothing measured, no supernode)",
    fields: {
      kind: InnerKind.Relays,
      serverRtt: RTT_UNKNOWN,
      supernode: new Uint8Array(8),
      supernodeRtt: RTT_UNKNOWN,
    },
  },
  {
    name: "SERVER_HINT",
    fields: { kind: InnerKind.ServerHint, boot: utf8.encode("boot-id!") },
  },
  {
    name: "SERVER_HINT (boot id not known)",
    fields: { kind: InnerKind.ServerHint, boot: new Uint8Array(8) },
  },
  { name: "GOODBYE", fields: { kind: InnerKind.Goodbye } },
  { name: "GOODBYE_ACK", fields: { kind: InnerKind.GoodbyeAck } },
  {
    name: "FILE_OFFER",
    fields: {
      kind: InnerKind.FileOffer,
      id: FILE_ID,
      name: "Zoë's notes.txt",
      size: 300_000,
      chunkShift: 18,
      sha256: labelled("the file"),
      root: labelled("the root"),
    },
  },
  { name: "FILE_REPLY", fields: { kind: InnerKind.FileReply, id: FILE_ID, status: 1 } },
  { name: "FILE_REQUEST", fields: { kind: InnerKind.FileRequest, id: FILE_ID, chunks: [0, 1] } },
  {
    name: "FILE_DATA",
    fields: { kind: InnerKind.FileData, id: FILE_ID, pn: 7, chunk: 1, offset: 1107, data: hello },
  },
  {
    name: "FILE_SWARM",
    fields: {
      kind: InnerKind.FileSwarm,
      id: FILE_ID,
      index: 1,
      peers: [utf8.encode("peer-one"), utf8.encode("peer-two")],
    },
  },
  {
    name: "FILE_ACK",
    fields: { kind: InnerKind.FileAck, delay: 25, ranges: [[9, 8], [6, 0]] },
  },
];

// ---------------------------------------------------------------------------------------------
// Chat messages (the envelope inside a reassembled message)

const LINE_ID = new Uint8Array([0xa1, 0xb2, 0xc3, 0xd4, 0, 0, 0, 7]);
const chatMessages: { name: string; fields: ChatMessage }[] = [
  { name: "LINE", fields: { kind: ChatKind.Line, id: LINE_ID, text: "hello, room 👋" } },
  { name: "PRIVATE", fields: { kind: ChatKind.Private, id: LINE_ID, text: "just for you" } },
  {
    name: "HISTORY",
    fields: { kind: ChatKind.History, id: LINE_ID, age: 300, text: "said five minutes ago" },
  },
  { name: "NICK", fields: { kind: ChatKind.Nick, name: "Zoë" } },
];

// ---------------------------------------------------------------------------------------------
// The pair's handshakes

const alice: ReplayPeer = {
  id: ALICE,
  name: "alice",
  staticKey: ALICE_STATIC,
  initiatorEphemeral: labelled("p2p protocol vectors: alice ephemeral, her handshake"),
  responderEphemeral: labelled("p2p protocol vectors: alice ephemeral, bob's handshake"),
  inner: encodeInner(innerFrames[3]!.fields),
};
const bob: ReplayPeer = {
  id: BOB,
  name: "bob",
  staticKey: BOB_STATIC,
  initiatorEphemeral: labelled("p2p protocol vectors: bob ephemeral, his handshake"),
  responderEphemeral: labelled("p2p protocol vectors: bob ephemeral, alice's handshake"),
  inner: encodeInner({ kind: InnerKind.Ack, stream: STREAM, cumulative: 1, selective: 0 }),
};
const replay = replayPair(keys.id, keys.psk, alice, bob);
same("alice learns bob's static key", replay.learned[0], x25519Public(bob.staticKey));
same("bob learns alice's static key", replay.learned[1], x25519Public(alice.staticKey));

function handshakeVector(i: ReplayPeer, r: ReplayPeer, which: 0 | 1) {
  const run = replay.handshakes[which];
  const prologue = pairPrologue(keys.id, i.id, r.id);
  same("prologue", prologue, prologueRef(keys.id, i.id, r.id));
  const payloads: [Uint8Array, Uint8Array, Uint8Array] = [
    payloadOf(run.attempt),
    payloadOf(run.attempt, utf8.encode(r.name)),
    payloadOf(run.attempt, utf8.encode(i.name)),
  ];
  same("payload 1", payloads[0], payloadRef(run.attempt));
  same("payload 2", payloads[1], payloadRef(run.attempt, r.name));
  same("payload 3", payloads[2], payloadRef(run.attempt, i.name));
  const hs = xxpsk0Ref({
    prologue,
    psk: keys.psk,
    i: { s: i.staticKey, e: i.initiatorEphemeral },
    r: { s: r.staticKey, e: r.responderEphemeral },
    payloads,
  });
  hs.messages.forEach((m, k) => same(`message ${k + 1}`, run.messages[k]!, m));
  const frames = run.messages.map((message, k) => {
    const stage = k + 1;
    const from = stage === 2 ? r.id : i.id, to = stage === 2 ? i.id : r.id;
    const f: HandshakeFrame = { from, to, stage, attempt: run.attempt, cookie: 0, message };
    return encodeHandshake(f);
  });
  if (which === 0) relayedA1 = frames[0]!;
  return {
    initiator: i.name,
    responder: r.name,
    attempt: run.attempt,
    prologue,
    initiator_ephemeral_private: i.initiatorEphemeral,
    initiator_ephemeral_public: x25519Public(i.initiatorEphemeral),
    responder_ephemeral_private: r.responderEphemeral,
    responder_ephemeral_public: x25519Public(r.responderEphemeral),
    messages: run.messages.map((noise, k) => ({
      stage: k + 1,
      from: k === 1 ? r.name : i.name,
      payload: payloads[k]!,
      noise,
      length: noise.length,
      frame: frames[k]!,
    })),
    handshake_hash: hs.handshakeHash,
    initiator_to_responder: hs.initiatorToResponder,
    responder_to_initiator: hs.responderToInitiator,
  };
}

const handshakes = [handshakeVector(alice, bob, 0), handshakeVector(bob, alice, 1)];

function sealedVector(from: ReplayPeer, to: ReplayPeer, which: 0 | 1) {
  const key = handshakes[which]!.initiator_to_responder;
  const frame = replay.sealed[which];
  same("SEALED frame", frame, sealedRef(key, from.id, to.id, 1n, from.inner));
  same(
    "SEALED header",
    encodeSealedHeader(from.id, to.id, 1n),
    sealedHeaderRef(from.id, to.id, 1n),
  );
  same("opened", replay.opened[which], from.inner);
  return {
    from: from.name,
    to: to.name,
    key_is: `${from.name}'s handshake, initiator_to_responder`,
    key,
    counter: 1,
    nonce: noiseNonce(1n),
    header: encodeSealedHeader(from.id, to.id, 1n),
    plaintext: from.inner,
    frame,
  };
}

const peers = Object.fromEntries([alice, bob].map((p) => {
  const pub = Identity.fromPrivate(p.staticKey).publicKey;
  same("static public key", pub, x25519Public(p.staticKey));
  same("fingerprint", fingerprint(pub), fingerprintRef(pub));
  return [p.name, {
    id: p.id,
    name: p.name,
    static_private: p.staticKey,
    static_public: pub,
    fingerprint: fingerprint(pub),
  }];
}));

const handshakeSection = {
  protocol: NOISE_PROTOCOL,
  room_id: keys.id,
  psk: keys.psk,
  peers,
  handshakes,
  sealed: [sealedVector(alice, bob, 0), sealedVector(bob, alice, 1)],
};

// The RELAY samples carry alice's first handshake frame: built after the transcript.
const serverSection = serverMessages().map(({ name, fields }) => ({
  name,
  fields,
  hex: encodeServerMsg(fields),
}));

const peerFrames = [
  {
    name: "HANDSHAKE (message 1, direct copy with a cookie)",
    fields: { ...handshakeFrameFields(0, 0), cookie: 0x5eed1234 },
  },
  { name: "HANDSHAKE (message 2, relayed)", fields: handshakeFrameFields(0, 1) },
].map(({ name, fields }) => ({ name, fields, hex: encodeHandshake(fields) }));

function handshakeFrameFields(which: 0 | 1, k: number): HandshakeFrame {
  const h = handshakes[which]!;
  const from = k === 1 ? BOB : ALICE, to = k === 1 ? ALICE : BOB;
  return {
    from,
    to,
    stage: k + 1,
    attempt: h.attempt,
    cookie: 0,
    message: replay.handshakes[which].messages[k]!,
  };
}

// ---------------------------------------------------------------------------------------------
// Cluster messages (section 21)

const CLUSTER_SECRET = "the shared secret of the cluster vectors";
const CLUSTER_KEY = clusterKey(utf8.encode(CLUSTER_SECRET));
same("cluster key", CLUSTER_KEY, clusterKeyRef(utf8.encode(CLUSTER_SECRET)));
/** A cookie of the cluster's servers (section 23): the shared master, the wall clock's period. */
const clusterCookie = (() => {
  const master = clusterCookieKey(utf8.encode(CLUSTER_SECRET));
  same("cluster cookie key", master, clusterCookieKeyRef(utf8.encode(CLUSTER_SECRET)));
  const wallMs = 1_796_000_000_000, now = 5_000;
  const r = new Registry({}, (n) => new Uint8Array(n), MASTER);
  r.joinCluster({
    server: new Uint8Array(8),
    key: null,
    heartbeat: 1_000,
    lease: 10_000,
    endpoints: [],
    keepalive: 4,
    cookieKey: master,
  });
  r.handleWallClock(now, wallMs);
  const period = Math.floor(wallMs / 60_000);
  const text = endpointText(ALICE_AT.hostname, ALICE_AT.port);
  const cookie = r.sharedCookieFor(ALICE, ALICE_AT, now);
  same("cluster cookie", cookie, addressCookieRef(periodSecretRef(master, period), ALICE, text));
  return { master, wall_ms: wallMs, period, id: ALICE, endpoint: ALICE_AT, text, cookie };
})();
const SERVER_A = labelled("cluster server A").slice(0, 8);
const SERVER_B = labelled("cluster server B").slice(0, 8);
const clusterRecord: ClusterRecord = {
  id: ALICE,
  room: keys.id,
  nameTag: tag("alice"),
  owner: labelled("alice owner").slice(0, 16),
  inc: labelled("alice incarnation").slice(0, 8),
  flags: 2,
  moves: 1,
  addr: { hostname: "203.0.113.7", port: 51820 },
  privateEndpoints: [{ hostname: "192.168.1.7", port: 51820 }],
};
const clusterCases = ([
  [
    "HEARTBEAT",
    {
      type: ClusterType.Heartbeat,
      lease: 10_000,
      digest: recordDigest(clusterRecord),
      count: 1,
      endpoints: [{ hostname: "198.51.100.1", port: 7777 }],
    },
  ],
  ["MEMBERS", { type: ClusterType.Members, snapshot: 0, last: false, records: [clusterRecord] }],
  ["GONE", { type: ClusterType.Gone, gone: [{ id: BOB, reason: 1 }] }],
  ["SYNC", { type: ClusterType.Sync, target: SERVER_B }],
  [
    "RELAY",
    { type: ClusterType.Relay, target: SERVER_B, from: ALICE, to: BOB, payload: relayedA1 },
  ],
  ["REPUNCH", { type: ClusterType.Repunch, target: SERVER_B, from: ALICE, to: BOB }],
] as [string, ClusterMsg][]).map(([name, msg], i) => {
  const fields: ClusterEnvelope = { server: SERVER_A, seq: i + 1, msg };
  const bytes = encodeCluster(fields, CLUSTER_KEY);
  same(`cluster MAC of ${name}`, bytes.slice(-16), clusterMacRef(CLUSTER_KEY, bytes.slice(0, -16)));
  return { name, fields, hex: bytes };
});

const vectors = {
  description: "Test vectors of docs/protocol.md (appendix A). Bytes are lowercase hex; " +
    "regenerate with `deno task vectors`; tests/wire/protocol_vectors_test.ts checks the code " +
    "against this file.",
  protocol_version: PROTOCOL_VERSION,
  room_key: {
    section: "4. Room key derivation",
    room: ROOM,
    passphrase: PASS,
    scrypt: { N: ROOM_KDF.N, r: ROOM_KDF.r, p: ROOM_KDF.p, length: ROOM_KDF.keyLength },
    salt: ref.salt,
    ikm: ref.ikm,
    sign_seed: ref.signSeed,
    room_id: keys.id,
    psk: keys.psk,
    name_key: keys.nameKey,
    name_tags: ["alice", "bob", "Zoë"].map((name) => ({ name, tag: tag(name) })),
  },
  owner_tags: { section: "5.3 HELLO (owner tag)", cases: ownerCases },
  hello_signature: {
    section: "5.3 HELLO",
    fields: helloSigned,
    id_key_seed: ALICE_ID_SEED,
    signing_input: signingInput,
    signature,
    id_signature: idSignature,
  },
  cookies: { section: "6.2 Cookies", cases: cookieCases },
  reach_mac: { section: "5.16 REACH, 6.8 Reachability checks", ...reachCase },
  puzzle: { section: "6.11 Under pressure", ...puzzleCase },
  stun_alt_port: { section: "17. STUN on the same port (ALT-PORT)", ...stunAltPortCase },
  roster_digests: { section: "5.9 PING", cases: digestCases },
  server_messages: { section: "5. Client ↔ server messages", cases: serverSection },
  peer_frames: { section: "8.3 HANDSHAKE", cases: peerFrames },
  inner_frames: {
    section: "11. Inner frames",
    cases: innerFrames.map(({ name, fields }) => ({ name, fields, hex: encodeInner(fields) })),
  },
  handshake: { section: "9. The pair handshake, 10. SEALED frames", ...handshakeSection },
  cluster_messages: {
    section: "21. Server clusters",
    secret: CLUSTER_SECRET,
    key: CLUSTER_KEY,
    cookie: clusterCookie,
    record_digest: recordDigest(clusterRecord),
    cases: clusterCases,
  },
  chat_messages: {
    section: "13. Messages and fragments",
    cases: chatMessages.map(({ name, fields }) => ({ name, fields, hex: encodeChat(fields) })),
  },
};

// Every sample decodes back (checked by the test too); the file is stable JSON.
const text = JSON.stringify(toJson(vectors) as Json, null, 2) + "\n";
if (Deno.args.includes("--check")) {
  const old = await Deno.readTextFile(VECTORS_PATH).catch(() => "");
  const same = JSON.stringify(JSON.parse(old || "null")) === JSON.stringify(JSON.parse(text));
  console.log(same ? `${VECTORS_PATH} is up to date` : `${VECTORS_PATH} differs from the code`);
  if (!same) Deno.exit(1);
} else {
  await Deno.writeTextFile(VECTORS_PATH, text);
  console.log(`wrote ${VECTORS_PATH} (${text.length} bytes)`);
}
