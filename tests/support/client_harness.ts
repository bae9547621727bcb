/**
 * A registered {@link Client} against a scripted server, in virtual time: what the hostile-network
 * tests and the handshake flood benchmark feed datagrams to.
 *
 * @module
 */
import { Client, type ClientOptions } from "../../lib/peer/client.ts";
import { Identity } from "../../lib/crypto/identity.ts";
import type { Endpoint } from "../../lib/wire/address.ts";
import { MsgType } from "../../lib/wire/header.ts";
import {
  decodeServerMsg,
  encodeServerMsg,
  EPOCH_LEN,
  type MsgOf,
  type ServerMsg,
  TOKEN_LEN,
} from "../../lib/wire/server_msg.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";
import { simRoom } from "./sim.ts";
import { seededRandom } from "./prng.ts";

/** The scripted server's endpoint. */
export const HARNESS_SERVER: Endpoint = { hostname: "198.51.100.1", port: 7777 };

/** A registered client and the means to talk to it as its server. */
export interface ClientHarness {
  /** The client under test. */
  c: Client;
  /** Seeded randomness (the client's own draws come from it too). */
  bytes(n: number): Uint8Array;
  /** The registration token. */
  token: Uint8Array;
  /** Feeds a server message (INTRO, LEFT and ROSTER get the next sequence number). */
  fromServer(now: number, m: ServerMsg | Record<string, unknown>): void;
  /**
   * Introduces a peer at `publicEndpoint` (a fresh id unless given) claiming the private
   * endpoints `privates`; returns its id.
   */
  intro(now: number, publicEndpoint: Endpoint, id?: Uint8Array, privates?: Endpoint[]): Uint8Array;
  /** Fires the client's timers up to `until`; returns what it sent on the way. */
  runUntil(now: number, until: number): Transmit[];
  /** Takes everything the client wants sent. */
  drain(): Transmit[];
}

/** A client with id and identity from `seed`, registered at time 0. */
export function clientHarness(seed = 1, extra: Partial<ClientOptions> = {}): ClientHarness {
  const bytes = seededRandom(seed);
  const options: ClientOptions = {
    server: HARNESS_SERVER,
    room: simRoom(),
    name: "me",
    relayOnly: false,
    privateEndpoints: [],
    keepalive: 25_000,
    registerTimeout: 10_000,
    idSeed: bytes(32),
    identity: Identity.fromPrivate(bytes(32)),
    random: bytes,
    ...extra,
  };
  const c = new Client(options);
  const id = c.id;
  const token = bytes(TOKEN_LEN);
  let seq = 0;
  const drain = () => {
    const out: Transmit[] = [];
    for (let t = c.pollTransmit(); t; t = c.pollTransmit()) out.push(t);
    return out;
  };
  const fromServer = (now: number, m: ServerMsg | Record<string, unknown>) => {
    const full = ("seq" in m ? m : { ...m, seq: ++seq }) as ServerMsg;
    c.handleDatagram(now, HARNESS_SERVER, encodeServerMsg(full));
  };
  c.start(0);
  const hello = drain().map((t) => decodeServerMsg(t.data)).find((d) =>
    d.ok && d.value.type === MsgType.Hello
  );
  if (!hello?.ok || hello.value.type !== MsgType.Hello) throw new Error("no HELLO was sent");
  const welcome: MsgOf<typeof MsgType.Welcome> = {
    type: MsgType.Welcome,
    id,
    nonce: hello.value.nonce,
    token,
    boot: new Uint8Array(8),
    observed: HARNESS_SERVER,
  };
  fromServer(0, welcome);
  drain();
  return {
    c,
    bytes,
    token,
    fromServer,
    drain,
    intro(now, publicEndpoint, pid = bytes(8), privates = []) {
      fromServer(now, {
        type: MsgType.Intro,
        token,
        id: pid,
        epoch: bytes(EPOCH_LEN),
        flags: 0,
        publicEndpoint,
        privateEndpoints: privates,
      });
      return pid;
    },
    runUntil(now, until) {
      const out: Transmit[] = [];
      for (let t = c.nextTimeout(); t !== undefined && t <= until; t = c.nextTimeout()) {
        c.handleTimeout(Math.max(now, t));
        out.push(...drain());
      }
      return out;
    },
  };
}
