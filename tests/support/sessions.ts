/**
 * A pair of transport sessions made the way peers make them: a complete
 * Noise_XXpsk0 handshake (`lib/peer/handshake/handshake.ts`) between two fresh identities.
 *
 * @module
 */
import { Identity } from "../../lib/crypto/identity.ts";
import { PairSession } from "../../lib/crypto/session.ts";
import { systemRandom } from "../../lib/io/random.ts";
import { noiseFactory } from "../../lib/peer/handshake/handshake.ts";

/**
 * `ab` is the initiator's session with the responder, `ba` the responder's with it. Keys come
 * from `random` (system randomness unless a test passes a seeded source).
 */
export function handshakeSessions(
  random: (n: number) => Uint8Array = systemRandom,
): { ab: PairSession; ba: PairSession } {
  const psk = new Uint8Array(32).fill(7), prologue = new Uint8Array(0), empty = new Uint8Array(0);
  const party = (initiator: boolean) =>
    noiseFactory({ staticKey: Identity.generate(random).privateKey, psk, random })(
      initiator,
      prologue,
    );
  const i = party(true), r = party(false);
  const ok = r.readMessage(i.writeMessage(empty)) && i.readMessage(r.writeMessage(empty)) &&
    r.readMessage(i.writeMessage(empty));
  if (!ok) throw new Error("test handshake failed");
  const ki = i.split(), kr = r.split();
  return {
    ab: new PairSession(ki.initiatorToResponder, ki.responderToInitiator),
    ba: new PairSession(kr.responderToInitiator, kr.initiatorToResponder),
  };
}
