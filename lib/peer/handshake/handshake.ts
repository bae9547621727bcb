/**
 * The authenticated key exchange between two peers of a room, as a pure state machine:
 * Noise_XXpsk0_25519_ChaChaPoly_SHA256 with the room's pre-shared key, both long-term identity
 * keys and fresh ephemeral keys (forward secrecy), and the two peer ids (initiator first) and
 * the room id in the prologue.
 *
 * Both sides initiate. At its introduction each peer starts its own handshake as initiator
 * and answers the other's as responder, so a pair runs two handshakes, one per direction:
 *
 * ```
 * A's handshake (A → B data)                 B's handshake (B → A data)
 *   A ─ 1: psk, e ─────────────────► B         A ◄──────────────── 1: psk, e ─ B
 *   A ◄──────────── 2: e, ee, s, es ─ B        A ─ 2: e, ee, s, es ────────────► B
 *   A ─ 3: s, se ──────────────────► B         A ◄───────────────── 3: s, se ─ B
 * ```
 *
 * A side is established (it knows and has authenticated its peer, and can send) as soon as
 * the handshake it initiated reaches message 2; it seals with that handshake's
 * initiator-to-responder key. It opens what the peer sends with the peer's handshake's
 * initiator-to-responder key, which it holds once that handshake's message 3 arrived. The
 * roles are bound into the prologue (initiator id first), so the two handshakes of a pair
 * cannot be confused with each other or reflected; `SecureLink` refuses a pair whose two
 * handshakes reveal different static keys. The confirmation that message 3 arrived is an
 * ANNOUNCE frame naming the attempt, sealed the other way.
 *
 * Because the PSK is mixed in before the first message, a peer without the room secret gets
 * nothing back, not even the responder's identity; identity keys travel encrypted, so the server
 * never sees them. Every attempt is numbered (in clear, and authenticated in the payload), so
 * stale or replayed answers are ignored; a new responder handshake (two Diffie-Hellman
 * operations) starts at most every {@link RESPOND_INTERVAL} ms per peer.
 *
 * Message 1 goes through the relay and directly to every candidate endpoint of the peer, and is
 * repeated densely at first ({@link DENSE_GAP} ms apart for {@link DENSE_SPAN} ms, directly
 * only: it is what opens the NATs on both sides), then with backoff (0.5 s doubling to 8 s, relay
 * and direct); the dense phase starts again (at most {@link MAX_DENSE} times an attempt) when the
 * peer's own message 1 arrives, which means its NAT is now open towards us. Message 2 answers each
 * copy of message 1 the way that copy came (one datagram for one), echoing the copy's cookie, so
 * a message 2 arriving directly proves the path both ways (`lib/peer/handshake/transport.ts`
 * carries them). Message 3 is repeated until the ANNOUNCE confirms it.
 *
 * @module
 */
import { x25519KeyPair } from "../../crypto/x25519.ts";
import { HandshakeState } from "../../crypto/noise.ts";
import { MAX_NAME } from "../../wire/peer_frame.ts";
import { bytesEqual } from "../../core/bytes.ts";
import { type TransportCipher, transportCipher } from "../../crypto/session.ts";

/** The Noise protocol name used between peers. */
export const NOISE_PROTOCOL = "Noise_XXpsk0_25519_ChaChaPoly_SHA256";

/** First gap between backoff repeats of an unanswered handshake message (ms); it doubles. */
export const HANDSHAKE_RETRY = 500;
/** Longest gap between repeats (ms). */
export const HANDSHAKE_RETRY_MAX = 8_000;
/** Gap between the dense direct repeats of message 1 (ms). */
export const DENSE_GAP = 20;
/** How long the dense repeats of message 1 last (ms). */
export const DENSE_SPAN = 160;
/** Most dense phases per attempt (the first, and restarts when the peer's message 1 arrives). */
export const MAX_DENSE = 3;
/** Least time between two new responder handshakes for one peer (ms): bounds the DH work. */
export const RESPOND_INTERVAL = 250;
/** Most answers (copies of message 2) to one attempt of the peer. */
export const MAX_ANSWERS = 32;
/** Least time between message 3 repeats prompted by copies of message 2 (ms). */
const REPEAT3_GAP = 100;
/** Least time between two confirmations of one attempt prompted by repeated message 3s (ms). */
const RECONFIRM_GAP = 1_000;

/** The parts of a Noise handshake this machine needs (see `lib/crypto/noise.ts`). */
export interface NoiseSession {
  /** Writes the next handshake message with `payload`. */
  writeMessage(payload: Uint8Array): Uint8Array;
  /** Reads the next handshake message; null when it does not authenticate. */
  readMessage(message: Uint8Array): Uint8Array | null;
  /** The peer's static public key, once received. */
  readonly remoteStatic: Uint8Array | undefined;
  /** The transport ciphers once complete: initiator to responder and back. */
  split(): { initiatorToResponder: TransportCipher; responderToInitiator: TransportCipher };
}

/** Makes a Noise session for one attempt. */
export type NoiseFactory = (initiator: boolean, prologue: Uint8Array) => NoiseSession;

/**
 * Where a handshake message goes: `all` through the relay and directly to every candidate,
 * `direct` only directly to every candidate, `path` through the relay and along the direct
 * path if there is one.
 */
export type HandshakeRoute = "all" | "direct" | "path";

/** A handshake message to send. */
export interface HandshakeOut {
  /** 1 or 3 (message 2 answers a message 1 directly, see {@link HandshakeResult}). */
  stage: number;
  /** The attempt it belongs to. */
  attempt: number;
  /** The Noise message. */
  message: Uint8Array;
  /** Where it goes. */
  route: HandshakeRoute;
}

/** One direction of a pair's keys, from a completed handshake. */
export interface Half {
  /** The transport cipher: for sealing (our handshake) or opening (the peer's). */
  cipher: TransportCipher;
  /** The peer's long-term public key. */
  remoteStatic: Uint8Array;
  /** The peer's name, as it told us inside the handshake. */
  name: string;
  /** The attempt that completed. */
  attempt: number;
}

/** What {@link PairHandshake.handle} made of a message. */
export type HandshakeResult =
  | { kind: "ignored" }
  | { kind: "failed" }
  /** A valid message 1 (new or repeated): send `message` (our message 2) back the way it came. */
  | { kind: "answer"; attempt: number; message: Uint8Array }
  /** Our handshake completed (message 2): we know the peer and can send. */
  | { kind: "sending"; half: Half }
  /** A copy of the message 2 that completed our current attempt (another path's answer). */
  | { kind: "again"; attempt: number }
  /** The peer's handshake completed (message 3): we can open what it sends. */
  | { kind: "receiving"; half: Half }
  /** A repeated message 3: our confirmation was lost, send one again. */
  | { kind: "reconfirm"; attempt: number };

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

type Initiating = {
  kind: "initiating";
  attempt: number;
  noise: NoiseSession;
  msg1: Uint8Array;
};
type Completed = {
  kind: "confirming" | "done";
  attempt: number;
  msg2: Uint8Array;
  msg3: Uint8Array;
};

/** The handshake this side initiates (its sending direction). */
class Initiation {
  #factory: NoiseFactory;
  #prologue: Uint8Array;
  /** Our name, as the payload carries it (shared with the other direction; see `rename`). */
  #myName: { bytes: Uint8Array };
  #state: { kind: "idle" } | Initiating | Completed = { kind: "idle" };
  #attempts = 0;
  #repeats = 0;
  #nextRepeat = Infinity;
  /** End of the current dense phase, and how many an attempt had. */
  #denseUntil = -Infinity;
  #denseRounds = 0;
  #last3 = -Infinity;
  #out: HandshakeOut[];

  constructor(
    factory: NoiseFactory,
    prologue: Uint8Array,
    myName: { bytes: Uint8Array },
    out: HandshakeOut[],
  ) {
    this.#factory = factory;
    this.#prologue = prologue;
    this.#myName = myName;
    this.#out = out;
  }

  /** The attempt under way or last completed (0: none yet). */
  get attempt(): number {
    return this.#state.kind === "idle" ? 0 : this.#state.attempt;
  }

  start(now: number): void {
    // Attempt numbers grow with time, not just per object: if this side forgot the peer and
    // starts over, its new attempts are still newer than any the peer has answered.
    const attempt = this.#attempts = Math.max(this.#attempts + 1, Math.floor(now / 100) + 1);
    const noise = this.#factory(true, this.#prologue);
    const msg1 = noise.writeMessage(payloadOf(attempt));
    this.#state = { kind: "initiating", attempt, noise, msg1 };
    this.#denseRounds = 0;
    this.#repeats = 0;
    this.#out.push({ stage: 1, attempt, message: msg1, route: "all" });
    this.#dense(now);
  }

  /** The peer's message 1 arrived: its NAT is open towards us now; repeat densely again. */
  trigger(now: number): void {
    const s = this.#state;
    if (s.kind !== "initiating" || now < this.#denseUntil) return;
    if (this.#denseRounds >= MAX_DENSE) return;
    this.#out.push({ stage: 1, attempt: s.attempt, message: s.msg1, route: "direct" });
    this.#dense(now);
  }

  #dense(now: number): void {
    this.#denseRounds++;
    this.#denseUntil = now + DENSE_SPAN;
    this.#nextRepeat = now + DENSE_GAP;
  }

  nextTimeout(): number {
    return this.#nextRepeat;
  }

  handleTimeout(now: number): void {
    if (now < this.#nextRepeat) return;
    const s = this.#state;
    if (s.kind === "initiating") {
      if (now < this.#denseUntil) {
        this.#out.push({ stage: 1, attempt: s.attempt, message: s.msg1, route: "direct" });
        const next = now + DENSE_GAP;
        // After the dense phase, the backoff counts from the phase's start.
        this.#nextRepeat = next < this.#denseUntil
          ? next
          : this.#denseUntil - DENSE_SPAN + this.#backoff();
        return;
      }
      this.#out.push({ stage: 1, attempt: s.attempt, message: s.msg1, route: "all" });
    } else if (s.kind === "confirming") {
      this.#send3(now, s);
    } else {
      this.#nextRepeat = Infinity;
      return;
    }
    this.#nextRepeat = now + this.#backoff();
  }

  /** The next backoff gap: 0.5 s doubling to 8 s. */
  #backoff(): number {
    return Math.min(HANDSHAKE_RETRY * 2 ** this.#repeats++, HANDSHAKE_RETRY_MAX);
  }

  #send3(now: number, s: Completed): void {
    this.#last3 = now;
    this.#out.push({ stage: 3, attempt: s.attempt, message: s.msg3, route: "path" });
  }

  onSecond(now: number, attempt: number, msg2: Uint8Array): HandshakeResult {
    const s = this.#state;
    if ((s.kind === "confirming" || s.kind === "done") && s.attempt === attempt) {
      if (!bytesEqual(s.msg2, msg2)) return { kind: "ignored" };
      if (s.kind === "confirming" && now - this.#last3 >= REPEAT3_GAP) this.#send3(now, s);
      return { kind: "again", attempt };
    }
    if (s.kind !== "initiating" || s.attempt !== attempt) return { kind: "ignored" };
    const payload = s.noise.readMessage(msg2);
    const name = payload && decodeName(readPayload(payload, attempt));
    const rs = s.noise.remoteStatic;
    if (name === null || !rs) return { kind: "failed" };
    const msg3 = s.noise.writeMessage(payloadOf(attempt, this.#myName.bytes));
    const k = s.noise.split();
    const done: Completed = { kind: "confirming", attempt, msg2, msg3 };
    this.#state = done;
    this.#repeats = 0;
    this.#send3(now, done);
    this.#nextRepeat = now + this.#backoff();
    return {
      kind: "sending",
      half: { cipher: k.initiatorToResponder, remoteStatic: rs, name, attempt },
    };
  }

  /** The peer confirmed `attempt` (it has message 3): stop repeating it. */
  confirm(attempt: number): boolean {
    const s = this.#state;
    if (s.kind !== "confirming" || s.attempt !== attempt) return false;
    this.#state = { ...s, kind: "done" };
    this.#nextRepeat = Infinity;
    return true;
  }
}

type Responding = {
  kind: "responding";
  attempt: number;
  noise: NoiseSession;
  msg1: Uint8Array;
  msg2: Uint8Array;
  answers: number;
};

/** The handshake the peer initiates (our receiving direction). */
class Response {
  #factory: NoiseFactory;
  #prologue: Uint8Array;
  /** Our name, as the payload carries it (shared with the other direction; see `rename`). */
  #myName: { bytes: Uint8Array };
  #state: { kind: "idle" } | Responding | { kind: "done"; attempt: number; msg3: Uint8Array } = {
    kind: "idle",
  };
  #lastRespond = -Infinity;
  /** The newest attempt answered: older ones are never answered again. */
  #answered = 0;
  #lastReconfirm = -Infinity;

  constructor(factory: NoiseFactory, prologue: Uint8Array, myName: { bytes: Uint8Array }) {
    this.#factory = factory;
    this.#prologue = prologue;
    this.#myName = myName;
  }

  onFirst(now: number, attempt: number, msg1: Uint8Array): HandshakeResult {
    const s = this.#state;
    if (s.kind === "responding" && s.attempt === attempt && bytesEqual(s.msg1, msg1)) {
      // Another copy (another path, or our answer was lost): answer it too, a bounded number
      // of times (a replay of message 1 must not make us a reflector).
      if (s.answers >= MAX_ANSWERS) return { kind: "ignored" };
      s.answers++;
      return { kind: "answer", attempt, message: s.msg2 };
    }
    // Attempts only grow: an old attempt's message 1 (a replay, or a late duplicate) is ignored.
    if (attempt <= this.#answered) return { kind: "ignored" };
    if (now - this.#lastRespond < RESPOND_INTERVAL) return { kind: "ignored" };
    const noise = this.#factory(false, this.#prologue);
    // The attempt number travels in clear in the frame header, and authenticated inside the
    // payload: a forged one (to pin us to a huge attempt) does not match.
    const p1 = noise.readMessage(msg1);
    if (!p1) return { kind: "failed" };
    if (readPayload(p1, attempt)?.length !== 0) return { kind: "failed" };
    this.#lastRespond = now;
    this.#answered = attempt;
    const msg2 = noise.writeMessage(payloadOf(attempt, this.#myName.bytes));
    this.#state = { kind: "responding", attempt, noise, msg1, msg2, answers: 1 };
    return { kind: "answer", attempt, message: msg2 };
  }

  onThird(now: number, attempt: number, msg3: Uint8Array): HandshakeResult {
    const s = this.#state;
    if (s.kind === "done" && s.attempt === attempt) {
      // Our confirmation was lost (or this is a replay): confirm again, at most once a second.
      // Only a copy of the message 3 that completed it counts (the attempt is in clear: anyone
      // could forge the rest).
      if (!bytesEqual(s.msg3, msg3)) return { kind: "ignored" };
      if (now - this.#lastReconfirm < RECONFIRM_GAP) return { kind: "ignored" };
      this.#lastReconfirm = now;
      return { kind: "reconfirm", attempt };
    }
    if (s.kind !== "responding" || s.attempt !== attempt) return { kind: "ignored" };
    const payload = s.noise.readMessage(msg3);
    const name = payload && decodeName(readPayload(payload, attempt));
    const rs = s.noise.remoteStatic;
    if (name === null || !rs) return { kind: "failed" };
    const k = s.noise.split();
    this.#state = { kind: "done", attempt, msg3 };
    this.#lastReconfirm = now;
    return {
      kind: "receiving",
      half: { cipher: k.initiatorToResponder, remoteStatic: rs, name, attempt },
    };
  }
}

/** Both handshakes with one remote peer: the one we initiate and the one we answer. */
export class PairHandshake {
  #mine: Initiation;
  #theirs: Response;
  #out: HandshakeOut[] = [];
  #name: { bytes: Uint8Array };

  /**
   * `mine` and `theirs` are the prologues of our handshake and of the peer's (each names its
   * initiator first; see `pairPrologue` in `lib/peer/handshake/secure_link.ts`).
   */
  constructor(o: {
    factory: NoiseFactory;
    mine: Uint8Array;
    theirs: Uint8Array;
    myName: string;
  }) {
    this.#name = { bytes: utf8.encode(o.myName) };
    this.#mine = new Initiation(o.factory, o.mine, this.#name, this.#out);
    this.#theirs = new Response(o.factory, o.theirs, this.#name);
  }

  /** Our name changed (`/nick`): the messages built from now on carry `name`. */
  rename(name: string): void {
    this.#name.bytes = utf8.encode(name);
  }

  /** Takes the next message to send, if any. */
  poll(): HandshakeOut | undefined {
    return this.#out.shift();
  }

  /** Starts a new attempt of our handshake (at an introduction, and at each new epoch). */
  start(now: number): void {
    this.#mine.start(now);
  }

  /** The attempt of our handshake under way or last completed. */
  get attempt(): number {
    return this.#mine.attempt;
  }

  /** The peer confirmed that our attempt `attempt` completed on its side; true if news. */
  confirm(attempt: number): boolean {
    return this.#mine.confirm(attempt);
  }

  /** When {@link handleTimeout} has a repeat to send. */
  nextTimeout(): number | undefined {
    const t = this.#mine.nextTimeout();
    return t === Infinity ? undefined : t;
  }

  /** Repeats the last unanswered message. */
  handleTimeout(now: number): void {
    this.#mine.handleTimeout(now);
  }

  /**
   * Handles a handshake message from the peer: messages 1 and 3 belong to its handshake,
   * message 2 to ours.
   */
  handle(now: number, stage: number, attempt: number, message: Uint8Array): HandshakeResult {
    if (stage === 1) {
      const r = this.#theirs.onFirst(now, attempt, message);
      if (r.kind === "answer") this.#mine.trigger(now);
      return r;
    }
    if (stage === 2) return this.#mine.onSecond(now, attempt, message);
    if (stage === 3) return this.#theirs.onThird(now, attempt, message);
    return { kind: "ignored" };
  }
}

/**
 * A handshake payload: the attempt number (u32, big-endian), then the sender's name if any
 * (messages 2 and 3; message 1 carries the attempt alone).
 */
export function payloadOf(attempt: number, name?: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + (name?.length ?? 0));
  new DataView(out.buffer).setUint32(0, attempt);
  if (name) out.set(name, 4);
  return out;
}

/** The name part of a payload whose attempt number must be `attempt`; null if it is not. */
export function readPayload(payload: Uint8Array, attempt: number): Uint8Array | null {
  if (payload.length < 4) return null;
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return view.getUint32(0) === attempt ? payload.subarray(4) : null;
}

/** A peer name from a handshake payload: 1 to MAX_NAME bytes of UTF-8, else null. */
function decodeName(payload: Uint8Array | null): string | null {
  if (payload === null || payload.length === 0 || payload.length > MAX_NAME) return null;
  try {
    return utf8Decoder.decode(payload);
  } catch {
    return null;
  }
}

/**
 * The {@link NoiseFactory} of a room member: {@link NOISE_PROTOCOL} with `staticKey` (the
 * identity's private key) and the room's `psk`. `random` draws ephemeral keys (the roles pass
 * `systemRandom` of `lib/io/random.ts`, simulations seeded sources).
 */
export function noiseFactory(o: {
  staticKey: Uint8Array;
  psk: Uint8Array;
  random: (n: number) => Uint8Array;
}): NoiseFactory {
  // Imported once: a handshake (and a forged message 1 read with it) then costs no scalar
  // multiplication until a message authenticates.
  const s = x25519KeyPair(o.staticKey);
  return (initiator, prologue) => {
    const hs = new HandshakeState({
      protocolName: NOISE_PROTOCOL,
      initiator,
      prologue,
      s,
      psks: [o.psk],
      random: o.random,
    });
    return {
      writeMessage: (payload) => hs.writeMessage(payload),
      readMessage: (message) => hs.readMessage(message),
      get remoteStatic() {
        return hs.remoteStatic ?? undefined;
      },
      split() {
        const [toResponder, toInitiator] = hs.split();
        return {
          initiatorToResponder: transportCipher(toResponder),
          responderToInitiator: transportCipher(toInitiator),
        };
      },
    };
  };
}
