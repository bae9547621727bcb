/**
 * A pair of transport sessions made the way peers make them: a complete
 * Noise_XXpsk0 handshake (`lib/peer/handshake/handshake.ts`) between two fresh identities.
 *
 * @module
 */
import { Identity, PairSession } from "../../lib/crypto/crypto.ts";
import { noiseFactory } from "../../lib/peer/handshake/handshake.ts";

/** `ab` is the initiator's session with the responder, `ba` the responder's with it. */
export function handshakeSessions(): { ab: PairSession; ba: PairSession } {
  const psk = new Uint8Array(32).fill(7), prologue = new Uint8Array(0), empty = new Uint8Array(0);
  const i = noiseFactory({ staticKey: Identity.generate().privateKey, psk })(true, prologue);
  const r = noiseFactory({ staticKey: Identity.generate().privateKey, psk })(false, prologue);
  const ok = r.readMessage(i.writeMessage(empty)) && i.readMessage(r.writeMessage(empty)) &&
    r.readMessage(i.writeMessage(empty));
  if (!ok) throw new Error("test handshake failed");
  const ki = i.split(), kr = r.split();
  return {
    ab: new PairSession(ki.initiatorToResponder, ki.responderToInitiator),
    ba: new PairSession(kr.responderToInitiator, kr.initiatorToResponder),
  };
}
