/**
 * The code against `tests/vectors/protocol_vectors.json`, the test vectors of
 * `docs/protocol.md` (appendix A): every message is encoded from its fields and compared with
 * the committed bytes, and the bytes decoded and compared with the fields; the room keys, name
 * tags, owner tags, HELLO signature, cookies, REACH MAC, digests and fingerprints are recomputed by the code
 * and by the independent implementation of `reference.ts`; the pair's two handshakes are
 * replayed with the fixed static and ephemeral keys (injected as the handshake's randomness),
 * every message, the transport keys and both SEALED frames compared. A change to the wire fails
 * here until the vectors are regenerated (`deno task vectors`) and the spec updated.
 *
 * @module
 */
import { type ChatMessage, decodeChat, encodeChat } from "../../lib/wire/chat_message.ts";
import assert from "node:assert/strict";
import { addressCookie, reachMac } from "../../lib/crypto/cookie.ts";
import { Identity } from "../../lib/crypto/identity.ts";
import { fingerprint } from "../../lib/crypto/fingerprint.ts";
import { OWNER_TAG_INFO, ownerTag } from "../../lib/crypto/owner.ts";
import { peerIdKey, peerIdOf } from "../../lib/crypto/peer_id.ts";
import { puzzleDigest, puzzleSolved } from "../../lib/crypto/puzzle.ts";
import { deriveRoomKeys, nameTag, roomSalt, roomSign } from "../../lib/crypto/room_key.ts";
import { NOISE_PROTOCOL, payloadOf, readPayload } from "../../lib/peer/handshake/handshake.ts";
import { pairPrologue, PROLOGUE } from "../../lib/peer/handshake/secure_link.ts";
import { Registry } from "../../lib/server/registry.ts";
import { altPortOf, decodeStun, StunResponder } from "../../lib/nat/stun.ts";
import { type Endpoint, formatEndpoint } from "../../lib/wire/address.ts";
import { MsgType, peekType, PROTOCOL_VERSION } from "../../lib/wire/header.ts";
import {
  decodeHandshake,
  decodeInner,
  decodeSealed,
  encodeHandshake,
  encodeInner,
  encodeSealedHeader,
  type HandshakeFrame,
  type InnerFrame,
} from "../../lib/wire/peer_frame.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  helloSigningInput,
  idDigest,
  rosterDigest,
  type ServerMsg,
} from "../../lib/wire/server_msg.ts";
import { replayPair, type ReplayPeer } from "./pair_replay.ts";
import { clusterCookieKey, clusterKey } from "../../lib/crypto/cluster_mac.ts";
import {
  type ClusterEnvelope,
  ClusterType,
  decodeCluster,
  encodeCluster,
  recordDigest,
} from "../../lib/server/cluster_wire.ts";
import {
  addressCookieRef,
  aeadOpen,
  clusterCookieKeyRef,
  clusterKeyRef,
  clusterMacRef,
  ed25519PublicRef,
  ed25519SignRef,
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
} from "./reference.ts";
import { fromJson, type Json, toJson, VECTORS_PATH } from "./vector_json.ts";

// deno-lint-ignore no-explicit-any
type Any = any;

const V: Any = JSON.parse(
  Deno.readTextFileSync(new URL(`../../${VECTORS_PATH}`, import.meta.url)),
);
const utf8 = new TextEncoder();

/** A sample's fields as the codec's value. */
function fields<T>(sample: { fields: Json }): T {
  return fromJson(sample.fields) as T;
}

Deno.test("vectors: the file is for this protocol version and covers every message type", () => {
  assert.equal(V.protocol_version, PROTOCOL_VERSION);
  const types = new Set<number>();
  for (const s of V.server_messages.cases) types.add(s.fields.type);
  const server = Object.entries(MsgType).filter(([, t]) => t < 0x20).map(([, t]) => t);
  assert.deepEqual([...types].sort((a, b) => a - b), server, "a sample of every server message");
  const kinds = new Set<number>(V.inner_frames.cases.map((s: Any) => unhex(s.hex)[0]));
  assert.deepEqual(
    [...kinds].sort((a, b) => a - b),
    Array.from({ length: 19 }, (_, i) => i + 1),
  );
});

Deno.test("vectors: every client ↔ server message encodes to its bytes and decodes to its fields", () => {
  for (const s of V.server_messages.cases) {
    const m = fields<ServerMsg>(s);
    assert.equal(hex(encodeServerMsg(m)), s.hex, `encode ${s.name}`);
    const d = decodeServerMsg(unhex(s.hex));
    assert.ok(d.ok, `decode ${s.name}`);
    assert.deepEqual(toJson(d.value), s.fields, `decode ${s.name}`);
    const t = peekType(unhex(s.hex));
    assert.ok(t.ok && t.value === s.fields.type, `header of ${s.name}`);
  }
});

Deno.test("vectors: cluster messages: the key, each message's bytes and MAC, decoded fields", () => {
  const c = V.cluster_messages;
  const key = clusterKey(new TextEncoder().encode(c.secret));
  assert.equal(hex(key), c.key);
  assert.equal(hex(clusterKeyRef(new TextEncoder().encode(c.secret))), c.key, "the reference");
  const cookieKey = clusterCookieKey(new TextEncoder().encode(c.secret));
  assert.equal(hex(cookieKey), c.cookie.master, "the shared cookie master");
  assert.equal(hex(clusterCookieKeyRef(new TextEncoder().encode(c.secret))), c.cookie.master);
  const secret = periodSecretRef(cookieKey, Math.floor(c.cookie.wall_ms / 60_000));
  assert.equal(hex(addressCookieRef(secret, unhex(c.cookie.id), c.cookie.text)), c.cookie.cookie);
  const types = new Set<number>();
  for (const s of c.cases) {
    const e = fields<ClusterEnvelope>(s);
    assert.equal(hex(encodeCluster(e, key)), s.hex, `encode ${s.name}`);
    const bytes = unhex(s.hex);
    assert.equal(hex(clusterMacRef(key, bytes.slice(0, -16))), s.hex.slice(-32), `MAC ${s.name}`);
    const d = decodeCluster(bytes, key);
    assert.ok(d.ok, `decode ${s.name}`);
    assert.deepEqual(toJson(d.value), s.fields, `decode ${s.name}`);
    types.add(s.fields.msg.type);
    if (e.msg.type === ClusterType.Members) {
      assert.equal(recordDigest(e.msg.records[0]!), c.record_digest, "a record's digest");
    }
  }
  assert.deepEqual([...types].sort(), Object.values(ClusterType).sort(), "every cluster type");
});

Deno.test("vectors: every inner frame encodes to its bytes and decodes to its fields", () => {
  for (const s of V.inner_frames.cases) {
    const f = fields<InnerFrame>(s);
    assert.equal(hex(encodeInner(f)), s.hex, `encode ${s.name}`);
    const d = decodeInner(unhex(s.hex));
    assert.ok(d.ok, `decode ${s.name}`);
    assert.deepEqual(toJson(d.value), s.fields, `decode ${s.name}`);
  }
});

Deno.test("vectors: HANDSHAKE frames encode to their bytes and decode to their fields", () => {
  for (const s of V.peer_frames.cases) {
    const f = fields<HandshakeFrame>(s);
    assert.equal(hex(encodeHandshake(f)), s.hex, `encode ${s.name}`);
    const d = decodeHandshake(unhex(s.hex));
    assert.ok(d.ok, `decode ${s.name}`);
    assert.deepEqual(toJson(d.value), s.fields, `decode ${s.name}`);
  }
});

Deno.test("vectors: room keys from the fixed room and passphrase, by the code and the reference", () => {
  const r = V.room_key;
  const keys = deriveRoomKeys(r.room, r.passphrase);
  const ref = roomKeysRef(r.room, r.passphrase);
  assert.deepEqual(r.scrypt, { N: 32768, r: 8, p: 1, length: 32 });
  assert.equal(hex(roomSalt(r.room)), r.salt);
  assert.equal(hex(ref.salt), r.salt);
  assert.equal(hex(ref.ikm), r.ikm);
  assert.equal(hex(ref.signSeed), r.sign_seed);
  for (
    const [name, code, reference] of [
      ["room id", keys.id, ref.roomId],
      ["psk", keys.psk, ref.psk],
      ["name key", keys.nameKey, ref.nameKey],
    ] as const
  ) {
    const want = r[name === "room id" ? "room_id" : name === "psk" ? "psk" : "name_key"];
    assert.equal(hex(code), want, name);
    assert.equal(hex(reference), want, `${name} (reference)`);
  }
  for (const t of r.name_tags) {
    assert.equal(hex(nameTag(keys, t.name)), t.tag, t.name);
    assert.equal(hex(nameTagRef(ref.nameKey, t.name)), t.tag, `${t.name} (reference)`);
  }
  // The HELLO signature: signing input and the room key's deterministic Ed25519 signature.
  const h = V.hello_signature;
  const f = fromJson(h.fields) as Any;
  assert.equal(hex(helloSigningInput(f)), h.signing_input);
  assert.equal(
    hex(
      helloSigningInputRef(f.id, f.cookie, f.nonce, f.flags, f.room, f.nameTag, f.owner, f.idKey),
    ),
    h.signing_input,
  );
  assert.equal(hex(roomSign(keys, unhex(h.signing_input))), h.signature);
  assert.equal(hex(ed25519SignRef(ref.signSeed, unhex(h.signing_input))), h.signature);
  // The id is its id key's, and the id key signs the same input (5.3).
  const idKey = peerIdKey(unhex(h.id_key_seed));
  assert.equal(hex(idKey.publicKey), hex(f.idKey));
  assert.equal(hex(idKey.id), hex(f.id));
  assert.equal(hex(peerIdOf(f.idKey)), hex(f.id));
  assert.equal(hex(peerIdRef(ed25519PublicRef(unhex(h.id_key_seed)))), hex(f.id));
  assert.equal(hex(idKey.sign(unhex(h.signing_input))), h.id_signature);
  assert.equal(hex(ed25519SignRef(unhex(h.id_key_seed), unhex(h.signing_input))), h.id_signature);
  const hello = V.server_messages.cases.find((s: Any) => s.name === "HELLO");
  assert.equal(hello.fields.signature, h.signature, "the HELLO sample carries it");
  assert.equal(hello.fields.room, r.room_id);
  assert.equal(hello.fields.owner, V.owner_tags.cases[0].owner, "and alice's owner tag");
});

Deno.test("vectors: owner tags of alice's and bob's identities in the room, by the code and the reference", () => {
  const peers = V.handshake.peers;
  assert.equal(V.owner_tags.cases.length, 2);
  for (const c of V.owner_tags.cases) {
    const key = unhex(c.identity_private), room = unhex(c.room_id);
    assert.equal(c.info, OWNER_TAG_INFO);
    assert.equal(c.room_id, V.room_key.room_id);
    assert.equal(c.identity_private, peers[c.name].static_private, "the peer's identity");
    assert.equal(hex(ownerTag(key, room)), c.owner, c.name);
    assert.equal(hex(ownerTagRef(key, room)), c.owner, `${c.name} (reference)`);
  }
  assert.notEqual(V.owner_tags.cases[0].owner, V.owner_tags.cases[1].owner);
});

Deno.test("vectors: address cookies, REACH MAC, ALT-PORT, roster digests", () => {
  for (const c of V.cookies.cases) {
    const master = unhex(c.master), id = unhex(c.id), ep: Endpoint = c.endpoint;
    assert.equal(hex(periodSecretRef(master, c.period)), c.period_secret);
    assert.equal(Math.floor(c.now_ms / 60_000), c.period);
    assert.equal(
      hex(addressCookie(unhex(c.period_secret), id, formatEndpoint(ep))),
      c.cookie,
      c.text,
    );
    assert.equal(hex(addressCookieRef(unhex(c.period_secret), id, c.text)), c.cookie);
    // The registry's own cookie: the recommended construction, end to end.
    assert.equal(
      hex(new Registry({}, (n) => new Uint8Array(n), master).cookieFor(id, ep, c.now_ms)),
      c.cookie,
    );
  }
  // The registration puzzle: the solution's hash by the code and the reference, and its zeros.
  const z = V.puzzle;
  const [zc, zi, zn, zp] = [z.cookie, z.id, z.nonce, z.pow].map(unhex) as Uint8Array[];
  assert.equal(hex(puzzleDigest(zc!, zi!, zn!, zp!)), z.digest);
  assert.equal(hex(puzzleDigestRef(zc!, zi!, zn!, zp!)), z.digest);
  assert.ok(puzzleSolved(z.difficulty, zc!, zi!, zn!, zp!));
  assert.ok(z.digest.startsWith("000"), "12 leading zero bits");
  const s = V.stun_alt_port;
  const answer = new StunResponder({ sockets: [s.primary, s.second] })
    .handle(0, 0, s.client, unhex(s.request));
  assert.equal(hex(answer!.data), s.response, "a one-address server's answer, byte for byte");
  const decoded = decodeStun(unhex(s.response));
  assert.ok(decoded.ok);
  assert.equal(altPortOf(decoded.value), s.second.port);
  // The attribute as section 17 draws it: type 0xc070, length 4, the port, two zero bytes.
  assert.equal(s.alt_port_attribute, `c0700004${s.second.port.toString(16).padStart(4, "0")}0000`);
  assert.ok(s.response.includes(s.alt_port_attribute));
  const r = V.reach_mac;
  assert.equal(hex(reachMac(unhex(r.token), unhex(r.nonce))), r.mac);
  assert.equal(hex(reachMacRef(unhex(r.token), unhex(r.nonce))), r.mac);
  for (const c of V.roster_digests.cases) {
    const ids = c.ids.map(unhex);
    assert.equal(rosterDigest(ids), c.digest);
    assert.equal(rosterDigestRef(ids), c.digest);
    assert.deepEqual(ids.map(idDigest), c.id_digests);
    assert.deepEqual(ids.map(idDigestRef), c.id_digests);
  }
});

/** The replay inputs of one peer, from the vectors. */
function peer(name: string, inner: Uint8Array): ReplayPeer {
  const p = V.handshake.peers[name];
  const mine = V.handshake.handshakes.find((h: Any) => h.initiator === name);
  const theirs = V.handshake.handshakes.find((h: Any) => h.responder === name);
  return {
    id: unhex(p.id),
    name: p.name,
    staticKey: unhex(p.static_private),
    initiatorEphemeral: unhex(mine.initiator_ephemeral_private),
    responderEphemeral: unhex(theirs.responder_ephemeral_private),
    inner,
  };
}

Deno.test("vectors: the pair's two handshakes replayed by the code: every message, key and SEALED frame", () => {
  const H = V.handshake;
  assert.equal(H.protocol, NOISE_PROTOCOL);
  const sealedBy = (name: string) => H.sealed.find((s: Any) => s.from === name);
  const alice = peer("alice", unhex(sealedBy("alice").plaintext));
  const bob = peer("bob", unhex(sealedBy("bob").plaintext));
  for (const p of [alice, bob]) {
    const v = H.peers[p.name];
    const pub = Identity.fromPrivate(p.staticKey).publicKey;
    assert.equal(hex(pub), v.static_public);
    assert.equal(hex(x25519Public(p.staticKey)), v.static_public);
    assert.equal(fingerprint(pub), v.fingerprint);
    assert.equal(fingerprintRef(pub), v.fingerprint);
  }
  const replay = replayPair(unhex(H.room_id), unhex(H.psk), alice, bob);
  assert.equal(hex(replay.learned[0]), H.peers.bob.static_public, "alice learns bob's key");
  assert.equal(hex(replay.learned[1]), H.peers.alice.static_public, "bob learns alice's key");
  H.handshakes.forEach((h: Any, which: number) => {
    const run = replay.handshakes[which]!;
    const [i, r] = which === 0 ? [alice, bob] : [bob, alice];
    assert.equal(h.initiator, i.name);
    assert.equal(run.attempt, h.attempt);
    assert.equal(hex(pairPrologue(unhex(H.room_id), i.id, r.id)), h.prologue);
    assert.equal(hex(prologueRef(unhex(H.room_id), i.id, r.id)), h.prologue);
    assert.equal(
      hex(x25519Public(unhex(h.initiator_ephemeral_private))),
      h.initiator_ephemeral_public,
    );
    assert.equal(
      hex(x25519Public(unhex(h.responder_ephemeral_private))),
      h.responder_ephemeral_public,
    );
    h.messages.forEach((m: Any, k: number) => {
      assert.equal(hex(run.messages[k]!), m.noise, `${h.initiator}'s message ${m.stage}`);
      assert.equal(m.length, run.messages[k]!.length);
      const frame: HandshakeFrame = {
        from: k === 1 ? r.id : i.id,
        to: k === 1 ? i.id : r.id,
        stage: m.stage,
        attempt: h.attempt,
        cookie: 0,
        message: run.messages[k]!,
      };
      assert.equal(hex(encodeHandshake(frame)), m.frame, `frame of message ${m.stage}`);
      const name = k === 0 ? undefined : (k === 1 ? r.name : i.name);
      assert.equal(
        hex(payloadOf(h.attempt, name === undefined ? undefined : utf8.encode(name))),
        m.payload,
      );
      assert.equal(hex(payloadRef(h.attempt, name)), m.payload);
      assert.equal(hex(readPayload(unhex(m.payload), h.attempt)!), hex(utf8.encode(name ?? "")));
    });
    // The reference implementation gives the same messages, and the keys and hash.
    const ref = xxpsk0Ref({
      prologue: unhex(h.prologue),
      psk: unhex(H.psk),
      i: { s: i.staticKey, e: unhex(h.initiator_ephemeral_private) },
      r: { s: r.staticKey, e: unhex(h.responder_ephemeral_private) },
      payloads: h.messages.map((m: Any) => unhex(m.payload)),
    });
    assert.deepEqual(ref.messages.map(hex), h.messages.map((m: Any) => m.noise));
    assert.equal(hex(ref.handshakeHash), h.handshake_hash);
    assert.equal(hex(ref.initiatorToResponder), h.initiator_to_responder);
    assert.equal(hex(ref.responderToInitiator), h.responder_to_initiator);
  });
  // SEALED: the code's frames are the vectors', under the recorded key, nonce and header.
  H.sealed.forEach((s: Any, which: number) => {
    const [from, to] = which === 0 ? [alice, bob] : [bob, alice];
    const hs = H.handshakes.find((h: Any) => h.initiator === from.name);
    assert.equal(s.key, hs.initiator_to_responder, "sealed with its sender's handshake key");
    assert.equal(hex(replay.sealed[which]!), s.frame, `${s.from}'s SEALED frame`);
    assert.equal(hex(replay.opened[which]!), s.plaintext, `${s.to} opens it`);
    const counter = BigInt(s.counter);
    assert.equal(hex(encodeSealedHeader(from.id, to.id, counter)), s.header);
    assert.equal(hex(sealedHeaderRef(from.id, to.id, counter)), s.header);
    assert.equal(hex(noiseNonce(counter)), s.nonce);
    assert.equal(
      hex(sealedRef(unhex(s.key), from.id, to.id, counter, unhex(s.plaintext))),
      s.frame,
    );
    const d = decodeSealed(unhex(s.frame));
    assert.ok(d.ok);
    assert.equal(d.value.counter, counter);
    assert.equal(hex(d.value.header), s.header);
    const plain = aeadOpen(unhex(s.key), counter, d.value.header, d.value.body);
    assert.equal(plain && hex(plain), s.plaintext);
    const inner = decodeInner(unhex(s.plaintext));
    assert.ok(inner.ok, "the plaintext is an inner frame");
  });
  assert.equal(hex(PROLOGUE), hex(utf8.encode("p2p v5 pair")));
});

Deno.test("vectors: the RELAY and RELAYED samples carry alice's first handshake frame", () => {
  const a1 = V.handshake.handshakes[0].messages[0].frame;
  for (const name of ["RELAY", "RELAYED"]) {
    const s = V.server_messages.cases.find((c: Any) => c.name === name);
    assert.equal(s.fields.payload, a1);
    assert.ok(s.hex.endsWith(a1));
  }
  const d = decodeHandshake(unhex(a1));
  assert.ok(d.ok && d.value.stage === 1 && d.value.cookie === 0);
});

Deno.test("vectors: every chat message encodes to its bytes and decodes to its fields", () => {
  for (const s of V.chat_messages.cases) {
    const m = fields<ChatMessage>(s);
    assert.equal(hex(encodeChat(m)), s.hex, `encode ${s.name}`);
    const d = decodeChat(unhex(s.hex));
    assert.ok(d.ok, `decode ${s.name}`);
    assert.deepEqual(toJson(d.value), s.fields, `decode ${s.name}`);
  }
});
