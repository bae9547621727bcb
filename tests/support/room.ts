/**
 * One room on loopback for end-to-end tests: a real `p2p serve` and `p2p join` processes,
 * always cleaned up, whatever the test does. See {@link withRoom}. Every peer has its own
 * temporary configuration directory (identity, known peers) and the room's passphrase.
 *
 * @module
 */
import {
  P2pProcess,
  type PeerOptions,
  prepareProduct,
  type RunningServer,
  startPeer,
  startServer,
  testPassphrase,
} from "./proc.ts";

/** Loopback: servers and peers bind here. */
export const LO = "127.0.0.1";

/** The checkout's root directory (its `deno.json` applies to every spawned process). */
const ROOT = new URL("../../", import.meta.url);

/** Entry point of a `join` whose direct paths stay blocked until SIGUSR1. */
export const BLOCKING_JOIN_URL: URL = new URL("./blocking_join.ts", import.meta.url);

/** A peer to start: its name, or its name with options. */
export type PeerSpec = string | {
  /** Peer name (also the process label). */
  name: string;
  /** `--relay-only`. */
  relayOnly?: boolean;
  /** Human mode: no `--json` (its stdout lines land in {@link P2pProcess.nonJsonLines}). */
  human?: boolean;
  /** Run `tests/support/blocking_join.ts`: direct paths are blocked until SIGUSR1. */
  blockDirect?: boolean;
  /** Extra CLI arguments. */
  extraArgs?: readonly string[];
  /** This peer's passphrase, instead of the room's (a stranger, or a wrong guess). */
  passphrase?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
};

/** Options of {@link withRoom}. */
export interface RoomOptions<P extends readonly PeerSpec[] = readonly PeerSpec[]> {
  /** Room name. */
  room: string;
  /** Peers started right away, in this order (more with {@link Room.join}). */
  peers?: P;
  /** Use this `IP:PORT` as the server instead of starting one (e.g. where nobody listens). */
  server?: string;
  /** The room passphrase every peer gets (default {@link testPassphrase} of the room). */
  passphrase?: string;
}

/** One process per spec: a tuple when the specs are one. */
export type Processes<P extends readonly PeerSpec[]> = { -readonly [K in keyof P]: P2pProcess };

/** What a {@link withRoom} test gets. */
export interface Room<P extends readonly PeerSpec[] = readonly PeerSpec[]> {
  /** The server, unless {@link RoomOptions.server} named one. */
  server: RunningServer | undefined;
  /** Server address the peers use. */
  addr: string;
  /** The room passphrase the peers use. */
  passphrase: string;
  /** The peers of {@link RoomOptions.peers}, in order. */
  peers: Processes<P>;
  /** Starts another peer in the room (also cleaned up at the end). */
  join(spec: PeerSpec): P2pProcess;
}

/**
 * Starts a server on loopback (unless `options.server` is given) and the listed peers, runs
 * `fn`, then closes every process it started, also when `fn` throws.
 */
export async function withRoom<const P extends readonly PeerSpec[] = []>(
  options: RoomOptions<P>,
  fn: (room: Room<P>) => Promise<void>,
): Promise<void> {
  await prepareProduct();
  const server = options.server === undefined
    ? await startServer({ host: LO, port: 0 })
    : undefined;
  const addr = options.server ?? server!.addr;
  const passphrase = options.passphrase ?? testPassphrase(options.room);
  const started: P2pProcess[] = [];
  const join = (spec: PeerSpec) => {
    const p = startRoomPeer(addr, options.room, passphrase, spec);
    started.push(p);
    return p;
  };
  try {
    const peers = (options.peers ?? []).map(join) as Processes<P>;
    await fn({ server, addr, passphrase, peers, join });
  } finally {
    await Promise.all(started.map((p) => p.close()));
    await server?.proc.close();
  }
}

function startRoomPeer(
  server: string,
  room: string,
  passphrase: string,
  spec: PeerSpec,
): P2pProcess {
  const s: Exclude<PeerSpec, string> = typeof spec === "string" ? { name: spec } : spec;
  if (s.human) {
    const args = ["join", "--server", server, "--room", room, "--name", s.name, "--bind", LO];
    const env = { P2P_PASSPHRASE: s.passphrase ?? passphrase, ...s.env };
    return P2pProcess.p2p([...args, ...(s.extraArgs ?? [])], { label: s.name, env });
  }
  const opts: PeerOptions = { server, room, name: s.name, bind: LO };
  opts.passphrase = s.passphrase ?? passphrase;
  if (s.env) opts.env = s.env;
  if (s.relayOnly) opts.relayOnly = true;
  if (s.extraArgs) opts.extraArgs = s.extraArgs;
  if (s.blockDirect) {
    opts.main = BLOCKING_JOIN_URL;
    opts.cwd = ROOT;
  }
  return startPeer(opts);
}
