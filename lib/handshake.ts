/**
 * The authenticated key exchange between two peers of a room, as a pure state machine:
 * Noise_XXpsk0_25519_ChaChaPoly_SHA256 with the room's pre-shared key, both long-term identity
 * keys and fresh ephemeral keys (forward secrecy), and the two peer ids and the room id in the
 * prologue.
 *
 * ```
 * initiator (lower id)                         responder
 *   1: psk, e            (empty payload)   ─►   a non-member cannot write this: no answer
 *   2: e, ee, s, es      (responder name)  ◄─
 *   3: s, se             (initiator name)  ─►
 * ```
 *
 * Because the PSK is mixed in before the first message, a peer without the room secret gets
 * nothing back, not even the responder's identity; identity keys travel encrypted, so the server
 * never sees them. Each message is repeated with backoff (0.5 s doubling to 8 s) until the next
 * one arrives; the initiator repeats message 3 until the responder's first transport frame
 * confirms it. Every attempt is numbered, so stale answers are ignored.
 *
 * @module
 */
import { bytesEqual, type TransportCipher } from "./crypto.ts";
import { type CipherState, HandshakeState } from "./noise.ts";
import { MAX_NAME } from "./wire.ts";

/** The Noise protocol name used between peers. */
export const NOISE_PROTOCOL = "Noise_XXpsk0_25519_ChaChaPoly_SHA256";

/** First gap between repeats of an unanswered handshake message (ms); it doubles. */
export const HANDSHAKE_RETRY = 500;
/** Longest gap between repeats (ms). */
export const HANDSHAKE_RETRY_MAX = 8_000;
/** Least time between two new responder handshakes for one peer (ms): bounds the DH work. */
const RESPOND_INTERVAL = 250;
/** Least time between a message 1 and its repeat on request (ms): a poke from a peer introduced late gets an answer at once. */
const NUDGE_INTERVAL = 50;

/** The parts of a Noise handshake this machine needs (see `lib/noise.ts`). */
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

/** A handshake message to send. */
export interface HandshakeOut {
  /** 1, 2 or 3. */
  stage: number;
  /** The attempt it belongs to. */
  attempt: number;
  /** The Noise message. */
  message: Uint8Array;
}

/** A completed handshake: the session ciphers and who the peer is. */
export interface Established {
  /** Cipher for what we send. */
  send: TransportCipher;
  /** Cipher for what we receive. */
  recv: TransportCipher;
  /** The peer's long-term public key. */
  remoteStatic: Uint8Array;
  /** The peer's name, as it told us inside the handshake. */
  name: string;
  /** The attempt that completed. */
  attempt: number;
}

type State =
  | { kind: "idle" }
  | { kind: "initiating"; attempt: number; noise: NoiseSession; msg1: Uint8Array }
  | { kind: "confirming"; attempt: number; msg3: Uint8Array }
  | { kind: "responding"; attempt: number; noise: NoiseSession; msg1: Uint8Array; msg2: Uint8Array }
  | { kind: "done"; attempt: number; role: "initiator" | "responder" };

/** What {@link PairHandshake.handle} made of a message. */
export type HandshakeResult =
  | { kind: "ignored" }
  /** A repeated message 3: our confirmation was lost, send one again. */
  | { kind: "reconfirm" }
  | { kind: "failed" }
  | { kind: "established"; session: Established };

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

/** The handshake with one remote peer. */
export class PairHandshake {
  #initiator: boolean;
  #factory: NoiseFactory;
  #prologue: Uint8Array;
  #myName: Uint8Array;
  #state: State = { kind: "idle" };
  #attempts = 0;
  #repeats = 0;
  #nextRepeat = Infinity;
  #lastRespond = -Infinity;
  /** The newest attempt answered (responder): older ones are never answered again. */
  #answered = 0;
  #lastReconfirm = -Infinity;
  #lastSent = -Infinity;
  #out: HandshakeOut[] = [];

  /** `initiator`: this side starts (the lower peer id). */
  constructor(o: {
    initiator: boolean;
    factory: NoiseFactory;
    prologue: Uint8Array;
    myName: string;
  }) {
    this.#initiator = o.initiator;
    this.#factory = o.factory;
    this.#prologue = o.prologue;
    this.#myName = utf8.encode(o.myName);
  }

  /** True when this side starts handshakes. */
  get initiator(): boolean {
    return this.#initiator;
  }

  /** True while a handshake is under way (messages still to come). */
  get busy(): boolean {
    return this.#state.kind === "initiating" || this.#state.kind === "responding";
  }

  /** Takes the next message to send, if any. */
  poll(): HandshakeOut | undefined {
    return this.#out.shift();
  }

  /** Starts a new attempt (initiator only; a responder waits for message 1). */
  start(now: number): void {
    if (!this.#initiator) return;
    // Attempt numbers grow with time, not just per object: if this side forgot the peer and
    // starts over, its new attempts are still newer than any the peer has answered.
    const attempt = this.#attempts = Math.max(this.#attempts + 1, Math.floor(now / 100) + 1);
    const noise = this.#factory(true, this.#prologue);
    const msg1 = noise.writeMessage(payloadOf(attempt));
    this.#state = { kind: "initiating", attempt, noise, msg1 };
    this.#send(now, 1, attempt, msg1, true);
  }

  /**
   * The responder asked for a handshake (it was introduced to us, maybe before our message 1
   * could reach it): start one, or repeat message 1 now if one is under way and it was not just
   * sent. Returns false when there was nothing to do.
   */
  nudge(now: number): boolean {
    const s = this.#state;
    if (!this.#initiator) return false;
    if (s.kind !== "initiating") {
      this.start(now);
      return true;
    }
    if (now - this.#lastSent < NUDGE_INTERVAL) return false;
    this.#send(now, 1, s.attempt, s.msg1, false);
    return true;
  }

  /** The responder's first transport frame arrived: message 3 got through, stop repeating it. */
  confirm(): void {
    const s = this.#state;
    if (s.kind === "confirming") {
      this.#state = { kind: "done", attempt: s.attempt, role: "initiator" };
      this.#nextRepeat = Infinity;
    }
  }

  /** When {@link handleTimeout} has a repeat to send. */
  nextTimeout(): number | undefined {
    return this.#nextRepeat === Infinity ? undefined : this.#nextRepeat;
  }

  /** Repeats the last unanswered message. */
  handleTimeout(now: number): void {
    if (now < this.#nextRepeat) return;
    const s = this.#state;
    if (s.kind === "initiating") this.#send(now, 1, s.attempt, s.msg1, false);
    else if (s.kind === "confirming") this.#send(now, 3, s.attempt, s.msg3, false);
    else this.#nextRepeat = Infinity;
  }

  /** Handles a handshake message from the peer. */
  handle(now: number, stage: number, attempt: number, message: Uint8Array): HandshakeResult {
    if (stage === 1 && !this.#initiator) return this.#onFirst(now, attempt, message);
    if (stage === 2 && this.#initiator) return this.#onSecond(now, attempt, message);
    if (stage === 3 && !this.#initiator) return this.#onThird(now, attempt, message);
    return { kind: "ignored" };
  }

  #onFirst(now: number, attempt: number, msg1: Uint8Array): HandshakeResult {
    const s = this.#state;
    if (s.kind === "responding" && s.attempt === attempt && bytesEqual(s.msg1, msg1)) {
      this.#send(now, 2, attempt, s.msg2, false); // Our message 2 was lost: repeat it.
      return { kind: "ignored" };
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
    const msg2 = noise.writeMessage(payloadOf(attempt, this.#myName));
    this.#state = { kind: "responding", attempt, noise, msg1, msg2 };
    this.#send(now, 2, attempt, msg2, false);
    this.#nextRepeat = Infinity; // The initiator repeats message 1; we answer each.
    return { kind: "ignored" };
  }

  #onSecond(now: number, attempt: number, msg2: Uint8Array): HandshakeResult {
    const s = this.#state;
    if ((s.kind === "confirming" || s.kind === "done") && s.attempt === attempt) {
      if (s.kind === "confirming") this.#send(now, 3, attempt, s.msg3, false);
      return { kind: "ignored" };
    }
    if (s.kind !== "initiating" || s.attempt !== attempt) return { kind: "ignored" };
    const payload = s.noise.readMessage(msg2);
    const name = payload && decodeName(readPayload(payload, attempt));
    const rs = s.noise.remoteStatic;
    if (name === null || !rs) return { kind: "failed" };
    const msg3 = s.noise.writeMessage(payloadOf(attempt, this.#myName));
    const k = s.noise.split();
    this.#state = { kind: "confirming", attempt, msg3 };
    this.#repeats = 0;
    this.#send(now, 3, attempt, msg3, true);
    return {
      kind: "established",
      session: {
        send: k.initiatorToResponder,
        recv: k.responderToInitiator,
        remoteStatic: rs,
        name,
        attempt,
      },
    };
  }

  #onThird(now: number, attempt: number, msg3: Uint8Array): HandshakeResult {
    const s = this.#state;
    if (s.kind === "done" && s.attempt === attempt) {
      // Our confirmation was lost (or this is a replay): confirm again, at most once a second.
      if (now - this.#lastReconfirm < 1_000) return { kind: "ignored" };
      this.#lastReconfirm = now;
      return { kind: "reconfirm" };
    }
    if (s.kind !== "responding" || s.attempt !== attempt) return { kind: "ignored" };
    const payload = s.noise.readMessage(msg3);
    const name = payload && decodeName(readPayload(payload, attempt));
    const rs = s.noise.remoteStatic;
    if (name === null || !rs) return { kind: "failed" };
    const k = s.noise.split();
    this.#state = { kind: "done", attempt, role: "responder" };
    return {
      kind: "established",
      session: {
        send: k.responderToInitiator,
        recv: k.initiatorToResponder,
        remoteStatic: rs,
        name,
        attempt,
      },
    };
  }

  #send(now: number, stage: number, attempt: number, message: Uint8Array, fresh: boolean): void {
    this.#out.push({ stage, attempt, message });
    this.#lastSent = now;
    if (stage === 2) return;
    if (fresh) this.#repeats = 0;
    this.#nextRepeat = now + Math.min(HANDSHAKE_RETRY * 2 ** this.#repeats++, HANDSHAKE_RETRY_MAX);
  }
}

/** A handshake payload: the attempt number (u32, big-endian), then the sender's name if any. */
function payloadOf(attempt: number, name?: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + (name?.length ?? 0));
  new DataView(out.buffer).setUint32(0, attempt);
  if (name) out.set(name, 4);
  return out;
}

/** The name part of a payload whose attempt number must be `attempt`; null if it is not. */
function readPayload(payload: Uint8Array, attempt: number): Uint8Array | null {
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
 * identity's private key) and the room's `psk`. `random` draws ephemeral keys (injectable for
 * reproducible simulations).
 */
export function noiseFactory(o: {
  staticKey: Uint8Array;
  psk: Uint8Array;
  random?: (n: number) => Uint8Array;
}): NoiseFactory {
  return (initiator, prologue) => {
    const hs = new HandshakeState({
      protocolName: NOISE_PROTOCOL,
      initiator,
      prologue,
      s: o.staticKey,
      psks: [o.psk],
      ...(o.random ? { random: o.random } : {}),
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
          initiatorToResponder: explicitNonce(toResponder),
          responderToInitiator: explicitNonce(toInitiator),
        };
      },
    };
  };
}

/**
 * A Noise transport CipherState used with explicit nonces: datagrams arrive out of order, so
 * each SEALED frame carries its counter and the receiver sets it before decrypting (the replay
 * window lives in `PairSession`), as WireGuard does.
 */
function explicitNonce(cs: CipherState): TransportCipher {
  return {
    seal(counter, aad, plaintext) {
      cs.setNonce(counter);
      return cs.encryptWithAd(aad, plaintext);
    },
    open(counter, aad, sealed) {
      cs.setNonce(counter);
      return cs.decryptWithAd(aad, sealed);
    },
  };
}
