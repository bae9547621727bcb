/**
 * Runs the two handshakes of a pair with the code of `lib/` (two {@link SecureLink}s, each
 * with the room's PSK, a fixed static key and fixed ephemeral keys injected as its randomness),
 * in one fixed order, then seals one inner frame each way: what the protocol vectors record.
 *
 * The order (every step at time 0, so each side's first attempt is 1):
 * 1. alice starts her handshake: message A1 (alice draws her initiator ephemeral);
 * 2. bob starts his: B1 (bob draws his initiator ephemeral);
 * 3. bob answers A1 with A2 (bob draws his responder ephemeral);
 * 4. alice reads A2 (her handshake reaches message 2: she can seal) and writes A3;
 * 5. alice answers B1 with B2 (alice draws her responder ephemeral);
 * 6. bob reads A3 (he can open alice's frames);
 * 7. bob reads B2 (he can seal) and writes B3;
 * 8. alice reads B3 (she can open bob's frames);
 * 9. alice seals her inner frame (counter 1), bob his.
 *
 * @module
 */
import { Identity } from "../../lib/crypto/identity.ts";
import { noiseFactory } from "../../lib/peer/handshake/handshake.ts";
import { SecureLink } from "../../lib/peer/handshake/secure_link.ts";
import { decodeSealed } from "../../lib/wire/peer_frame.ts";

/** One peer's fixed inputs. */
export interface ReplayPeer {
  id: Uint8Array;
  name: string;
  /** X25519 static private key. */
  staticKey: Uint8Array;
  /** Ephemeral private key of the handshake it initiates. */
  initiatorEphemeral: Uint8Array;
  /** Ephemeral private key of its answer to the peer's handshake. */
  responderEphemeral: Uint8Array;
  /** The inner frame it seals once both handshakes are complete. */
  inner: Uint8Array;
}

/** What one handshake put on the wire (Noise messages; attempt and stage). */
export interface ReplayHandshake {
  attempt: number;
  /** Messages 1, 2 and 3. */
  messages: Uint8Array[];
}

/** The outcome of {@link replayPair}. */
export interface Replay {
  /** alice's handshake (alice initiates), then bob's. */
  handshakes: [ReplayHandshake, ReplayHandshake];
  /** alice's SEALED frame to bob, then bob's to alice. */
  sealed: [Uint8Array, Uint8Array];
  /** What each side opened of the other's SEALED frame. */
  opened: [Uint8Array, Uint8Array];
  /** The static public keys each side learned of the other (alice's view, bob's view). */
  learned: [Uint8Array, Uint8Array];
}

function queue(keys: Uint8Array[]): (n: number) => Uint8Array {
  const q = [...keys];
  return (n) => {
    const k = q.shift();
    if (!k || k.length !== n) throw new Error(`replay: unexpected draw of ${n} random bytes`);
    return k.slice();
  };
}

function link(me: ReplayPeer, peer: ReplayPeer, roomId: Uint8Array, psk: Uint8Array) {
  return new SecureLink({
    now: 0,
    myId: me.id,
    theirId: peer.id,
    roomId,
    myName: me.name,
    noise: noiseFactory({
      staticKey: me.staticKey,
      psk,
      random: queue([me.initiatorEphemeral, me.responderEphemeral]),
    }),
  });
}

/** Runs the steps of the module documentation; throws when any step does not go as described. */
export function replayPair(
  roomId: Uint8Array,
  psk: Uint8Array,
  alice: ReplayPeer,
  bob: ReplayPeer,
): Replay {
  const a = link(alice, bob, roomId, psk), b = link(bob, alice, roomId, psk);
  const expect = <T extends { kind: string }>(r: T, kind: string): T => {
    if (r.kind !== kind) throw new Error(`replay: expected ${kind}, got ${r.kind}`);
    return r;
  };
  const polled = (l: SecureLink, stage: number) => {
    const h = l.poll();
    if (!h || h.stage !== stage) throw new Error(`replay: expected message ${stage} to send`);
    return h;
  };
  a.rekey(0);
  const a1 = polled(a, 1);
  b.rekey(0);
  const b1 = polled(b, 1);
  const a2 = expect(b.handle(0, 1, a1.attempt, a1.message), "answer") as { message: Uint8Array };
  const sending = expect(a.handle(0, 2, a1.attempt, a2.message), "sending") as {
    half: { remoteStatic: Uint8Array };
  };
  const a3 = polled(a, 3);
  const b2 = expect(a.handle(0, 1, b1.attempt, b1.message), "answer") as { message: Uint8Array };
  expect(b.handle(0, 3, a3.attempt, a3.message), "receiving");
  const bSending = expect(b.handle(0, 2, b1.attempt, b2.message), "sending") as {
    half: { remoteStatic: Uint8Array };
  };
  const b3 = polled(b, 3);
  expect(a.handle(0, 3, b3.attempt, b3.message), "receiving");
  const sa = a.seal(alice.inner), sb = b.seal(bob.inner);
  if (!sa || !sb) throw new Error("replay: a side could not seal after both handshakes");
  const open = (l: SecureLink, frame: Uint8Array) => {
    const d = decodeSealed(frame);
    if (!d.ok) throw new Error(`replay: a SEALED frame does not decode (${d.reason})`);
    const r = l.open(d.value);
    if (!(r instanceof Uint8Array)) throw new Error(`replay: a SEALED frame did not open (${r})`);
    return r;
  };
  return {
    handshakes: [
      { attempt: a1.attempt, messages: [a1.message, a2.message, a3.message] },
      { attempt: b1.attempt, messages: [b1.message, b2.message, b3.message] },
    ],
    sealed: [sa, sb],
    opened: [open(b, sa), open(a, sb)],
    learned: [sending.half.remoteStatic, bSending.half.remoteStatic],
  };
}

/** The X25519 public key of a private one, through the code's identity type. */
export function publicOf(staticKey: Uint8Array): Uint8Array {
  return Identity.fromPrivate(staticKey).publicKey;
}
