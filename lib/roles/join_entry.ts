/**
 * What a `p2p join` peer is before it has a socket: the passphrase (read, or made up for
 * `--new-room` and announced with its ticket), the room keys derived from it, the user's
 * identity and the peers met before in this room.
 *
 * I/O: stdin, stdout, environment, files.
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { Identity } from "../crypto/identity.ts";
import { fingerprint } from "../crypto/fingerprint.ts";
import { base32 } from "../crypto/base32.ts";
import {
  canonicalRoom,
  deriveRoomKeysAsync,
  newRoomSecret,
  type RoomKeys,
} from "../crypto/room_key.ts";
import { identityPath, loadOrCreateIdentity } from "../io/identity_store.ts";
import { KnownPeers, knownPeersPath } from "../io/known_peers.ts";
import { PASSPHRASE_ENV, PassphraseError } from "../io/passphrase.ts";
import { systemRandom } from "../io/random.ts";
import { readRoomEntry, TICKET_ENV } from "./room_entry.ts";
import { encodeTicket, type Ticket } from "./ticket.ts";
import { parseServerSpec } from "./transports.ts";
import { JoinError } from "./join_error.ts";

const log = getLogger(["p2p", "join"]);

/** The options of `p2p join` that choose the room and the identity. */
export interface EntryOptions {
  /** `--server`: the server; from the ticket when not given. */
  server?: string | undefined;
  /** More `--server`s to fail over to. */
  moreServers?: string[];
  /** `--room`; from the ticket when not given. */
  room?: string | undefined;
  /** `--ticket`. */
  ticket?: string | undefined;
  /** `--ticket-file`. */
  ticketFile?: string | undefined;
  /** `--passphrase-file`. */
  passphraseFile?: string | undefined;
  /** `--new-room`: make up a passphrase and announce the room. */
  newRoom?: boolean;
  /** `--qr`: with `newRoom`, also print the ticket as a QR code. */
  qr?: boolean;
  /** `--json`: the new room is announced as one `room` event. */
  json: boolean;
  /** `--identity`: the identity file. */
  identityFile?: string | undefined;
}

/** What a peer is before it has a socket: room keys, identity, the peers it has met. */
export interface Credentials {
  /** Keys of the room, from its name and passphrase. */
  room: RoomKeys;
  /** The server to register with, and those to fail over to (the command line's or the ticket's). */
  servers: string[];
  /** The user's long-term identity. */
  identity: Identity;
  /** Fingerprints remembered for this room. */
  known: KnownPeers;
}

/**
 * Gets the passphrase (or makes one up for `--new-room`, printing it), loads or creates the
 * identity, calls `entered` (the chat screen may open: nothing else is asked of the terminal),
 * derives the room keys off the main thread and loads the known peers. Returns null when Ctrl-C
 * ended the passphrase prompt.
 */
export async function credentials(
  o: EntryOptions,
  entered: () => void = () => {},
): Promise<Credentials | null> {
  const entry = await roomEntry(o);
  if (!entry) return null;
  const { roomName, passphrase, servers } = entry;
  const path = identityPath({
    XDG_CONFIG_HOME: Deno.env.get("XDG_CONFIG_HOME"),
    HOME: Deno.env.get("HOME"),
    APPDATA: Deno.env.get("APPDATA"),
  }, o.identityFile);
  const { privateKey, created } = await loadOrCreateIdentity(path);
  const identity = Identity.fromPrivate(privateKey);
  privateKey.fill(0);
  const fp = fingerprint(identity.publicKey);
  if (created) log.info("Made a new identity in {path}", { path });
  log.debug("Identity {path}, fingerprint {fp}", { path, fp });
  entered();
  const t0 = performance.now();
  const room = await deriveRoomKeysAsync(roomName, passphrase);
  log.debug("Derived the room keys in {ms} ms", { ms: Math.round(performance.now() - t0) });
  // The fingerprint is shown with the ready event (human and --json).
  const known = await KnownPeers.load(knownPeersPath(path), room.id);
  return { room, servers, identity, known };
}

/** The room, its passphrase and the servers: made up (`--new-room`) or read; null on Ctrl-C. */
async function roomEntry(
  o: EntryOptions,
): Promise<{ roomName: string; passphrase: string; servers: string[] } | null> {
  let passphrase: string;
  let roomName = o.room;
  let servers = o.server === undefined ? [] : [o.server, ...(o.moreServers ?? [])];
  if (o.newRoom) {
    passphrase = newRoomSecret(systemRandom);
    roomName ??= `room-${base32(systemRandom(4)).slice(0, 6)}`;
    await announceRoom(o, { servers: ticketServers(servers), room: roomName, passphrase });
  } else {
    try {
      const got = await readRoomEntry({
        env: {
          [PASSPHRASE_ENV]: Deno.env.get(PASSPHRASE_ENV),
          [TICKET_ENV]: Deno.env.get(TICKET_ENV),
        },
        ticket: o.ticket,
        ticketFile: o.ticketFile,
        passphraseFile: o.passphraseFile,
        haveServerAndRoom: o.server !== undefined && o.room !== undefined,
        stdin: Deno.stdin,
      });
      passphrase = got.passphrase;
      if (got.ticket) {
        // --server still wins; the room is the ticket's.
        if (servers.length === 0) servers = got.ticket.servers;
        if (roomName !== undefined && canonicalRoom(roomName) !== canonicalRoom(got.ticket.room)) {
          throw new JoinError(
            `--room ${roomName} is not the ticket's room (${got.ticket.room}); drop --room`,
          );
        }
        roomName = got.ticket.room;
      }
    } catch (e) {
      if (e instanceof PassphraseError && e.kind === "interrupted") return null;
      throw e;
    }
  }
  if (roomName === undefined || servers.length === 0) {
    throw new PassphraseError("usage", "a passphrase needs --server and --room; or use a ticket");
  }
  return { roomName, passphrase, servers };
}

/**
 * The servers a ticket names: `HOST:PORT` (UDP, and TCP on the same port when UDP gets no
 * answer), so `tcp://HOST:PORT` becomes `HOST:PORT`; a `tls://` server cannot be named (its UDP
 * port is unknown, and a ticket carries no CA).
 */
function ticketServers(specs: string[]): string[] {
  return specs.map((spec) => {
    const { scheme, hostPort } = parseServerSpec(spec);
    if (scheme === "tls") {
      throw new JoinError(
        `A ticket cannot name ${spec}: give --new-room the server's UDP address (HOST:PORT) too, ` +
          "or share --server and --room with the passphrase instead",
      );
    }
    return hostPort;
  });
}

/**
 * Prints a new room's ticket, the command to run on another machine (the ticket is then pasted
 * at its prompt: nothing secret in shell history or `ps`), and with `--qr` the ticket as a QR
 * code; `--json` prints one `room` event with all of it.
 */
async function announceRoom(o: EntryOptions, t: Ticket): Promise<void> {
  const ticket = encodeTicket(t);
  const run = joinCommand();
  if (o.json) {
    console.log(
      JSON.stringify({ event: "room", room: t.room, passphrase: t.passphrase, ticket, join: run }),
    );
    return;
  }
  console.log(`* New room "${t.room}". Its ticket (keep it secret, share it with the room):`);
  console.log(`  ${ticket}`);
  console.log(`* On another machine run: ${run}`);
  console.log("  and paste the ticket at its prompt (or put it in P2P_TICKET)");
  if (!o.qr) return;
  // Loaded only for --qr: the QR library is a CommonJS package (8 ms of every start-up).
  const { qrLines } = await import("./qr.ts");
  for (const line of qrLines(ticket)) console.log(line);
}

/**
 * The command that starts `p2p join` the way this process was started: the binary by its own
 * name, the single-file build by its file name, or Deno's task from a checkout
 * (`npx -y deno@VERSION task join`).
 */
function joinCommand(): string {
  const exe = Deno.execPath();
  const base = exe.slice(exe.lastIndexOf("/") + 1);
  if (base === "deno" || base === "deno.exe") {
    // The single-file build (`deno task bundle`) runs as README says, from any directory.
    const main = Deno.mainModule;
    if (main.endsWith(".js")) {
      return `deno run ${BUNDLE_FLAGS} ${main.slice(main.lastIndexOf("/") + 1)} join`;
    }
    return `npx -y deno@${Deno.version.deno} task join`;
  }
  return `${base} join`;
}

/** How README runs the single-file build: every permission, and Deno's UDP. */
export const BUNDLE_FLAGS = "--allow-all --unstable-net";
