/**
 * The identities a user has met, per room, like SSH's `known_hosts`: the first time a name
 * shows up in a room its fingerprint is remembered, and later the client can tell a peer that
 * comes back under that name with another key.
 *
 * The file is `known_peers.json` next to the identity file (see {@link knownPeersPath}):
 *
 * ```json
 * {"version":1,"rooms":{"<hex of the 16-byte room id>":{"alice":"abcd-efgh-ijkl-mnop"}}}
 * ```
 *
 * Rooms are keyed by their opaque id, so the file names no room. Every write re-reads the file
 * and goes to a temporary file (mode 0600) renamed over the old one, under an exclusive lock
 * on `known_peers.json.lock`, so concurrent peers (in any room) do not lose each other's
 * entries and a crash never leaves half a file.
 *
 * @module
 */
import { notOwnFile } from "./own_file.ts";
import { toHex } from "../wire/codec.ts";
import { randomBytes } from "node:crypto";
import { dirname, join } from "node:path";

/** Name of the file, in the identity file's directory. */
export const KNOWN_PEERS_FILE = "known_peers.json";

/** The known-peers file that goes with the identity file `identityFile`. */
export function knownPeersPath(identityFile: string): string {
  return join(dirname(identityFile), KNOWN_PEERS_FILE);
}

/** The known-peers file cannot be read, parsed or written; the message says which and where. */
export class KnownPeersError extends Error {
  /** Makes an error with a user-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "KnownPeersError";
  }
}

type Rooms = Map<string, Map<string, string>>;

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Reads every room of the file; an absent file is empty. */
async function readRooms(path: string): Promise<Rooms> {
  let text: string;
  try {
    const notOwn = notOwnFile(await Deno.lstat(path));
    if (notOwn) {
      throw new KnownPeersError(`Known peers file ${path} ${notOwn}; move it away`);
    }
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return new Map();
    if (e instanceof KnownPeersError) throw e;
    throw new KnownPeersError(`Cannot read known peers file ${path}: ${describe(e)}`);
  }
  const bad = (why: string) =>
    new KnownPeersError(
      `Known peers file ${path} is malformed (${why}); fix it or move it away ` +
        `(the fingerprints it remembers are then forgotten)`,
    );
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw bad(describe(e));
  }
  if (!isObject(doc) || doc.version !== 1 || !isObject(doc.rooms)) {
    throw bad('expected {"version":1,"rooms":{...}}');
  }
  const rooms: Rooms = new Map();
  for (const [id, names] of Object.entries(doc.rooms)) {
    if (!isObject(names)) throw bad(`room ${id} is not an object`);
    const m = new Map<string, string>();
    for (const [name, fp] of Object.entries(names)) {
      if (typeof fp !== "string") {
        throw bad(`the fingerprint of ${JSON.stringify(name)} is no string`);
      }
      m.set(name, fp);
    }
    rooms.set(id, m);
  }
  return rooms;
}

function serialize(rooms: Rooms): string {
  const out = Object.fromEntries(
    [...rooms].map(([id, names]) => [id, Object.fromEntries(names)]),
  );
  return JSON.stringify({ version: 1, rooms: out }, null, 1) + "\n";
}

/** The known fingerprints of one room, by name, backed by the known-peers file. */
export class KnownPeers {
  #path: string;
  #room: string;
  #entries: Map<string, string>;
  /** Writes run one after the other. */
  #queue: Promise<void> = Promise.resolve();

  private constructor(path: string, room: string, entries: Map<string, string>) {
    this.#path = path;
    this.#room = room;
    this.#entries = entries;
  }

  /**
   * Loads the entries of the room whose id is `roomId` from the file at `path` (none if the
   * file does not exist). Throws {@link KnownPeersError} for an unreadable or malformed file.
   */
  static async load(path: string, roomId: Uint8Array): Promise<KnownPeers> {
    const room = toHex(roomId);
    const rooms = await readRooms(path);
    return new KnownPeers(path, room, rooms.get(room) ?? new Map());
  }

  /** The file behind this list. */
  get path(): string {
    return this.#path;
  }

  /** The remembered fingerprint of `name` in this room. */
  get(name: string): string | undefined {
    return this.#entries.get(name);
  }

  /** Every remembered name → fingerprint of this room; a live view that follows `remember`. */
  entries(): ReadonlyMap<string, string> {
    return this.#entries;
  }

  /**
   * Remembers that `name` has fingerprint `fp` in this room (replacing what was remembered)
   * and saves the file: re-read, changed, written to a temporary file and renamed over it.
   * Nothing is written when `fp` is already remembered. Calls are applied in order; the
   * promise rejects with {@link KnownPeersError} when the file cannot be written.
   */
  remember(name: string, fp: string): Promise<void> {
    if (this.#entries.get(name) === fp) return this.#queue;
    this.#entries.set(name, fp);
    const write = this.#queue.then(() => this.#save(name, fp));
    this.#queue = write.catch(() => {});
    return write;
  }

  async #save(name: string, fp: string): Promise<void> {
    const dir = dirname(this.#path);
    let lock: Deno.FsFile;
    try {
      await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
      lock = await openLock(`${this.#path}.lock`);
    } catch (e) {
      if (e instanceof KnownPeersError) throw e;
      throw new KnownPeersError(`Cannot write known peers file ${this.#path}: ${describe(e)}`);
    }
    // Other processes (and other rooms' KnownPeers) read, change and replace the same file:
    // the lock makes each read-change-rename a unit.
    try {
      await lock.lock(true);
      const rooms = await readRooms(this.#path);
      const mine = rooms.get(this.#room) ?? new Map<string, string>();
      if (mine.get(name) === fp) return;
      mine.set(name, fp);
      rooms.set(this.#room, mine);
      const temp = `${this.#path}.${toHex(new Uint8Array(randomBytes(6)))}.tmp`;
      try {
        await Deno.writeTextFile(temp, serialize(rooms), { createNew: true, mode: 0o600 });
        await Deno.rename(temp, this.#path);
      } catch (e) {
        await Deno.remove(temp).catch(() => {});
        throw new KnownPeersError(`Cannot write known peers file ${this.#path}: ${describe(e)}`);
      }
    } finally {
      lock.close(); // Also releases the lock.
    }
  }
}

/**
 * Opens the lock file, refusing a symbolic link or another user's file there (it would make us
 * create or lock a file of someone else's choosing); the file opened must be the one checked.
 */
async function openLock(path: string): Promise<Deno.FsFile> {
  let before: Deno.FileInfo | null = null;
  try {
    before = await Deno.lstat(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const refuse = (why: string) =>
    new KnownPeersError(`Lock file ${path} ${why}; remove it (p2p makes a new one)`);
  const notOwn = before && notOwnFile(before);
  if (notOwn) throw refuse(notOwn);
  const f = await Deno.open(path, { create: true, write: true, mode: 0o600 });
  const after = await f.stat();
  if ((before && after.ino !== before.ino) || !after.isFile) {
    f.close();
    throw refuse("changed while it was opened");
  }
  return f;
}
