/**
 * The files of file transfer on disk: the download directory (default: the XDG download
 * directory; `--downloads DIR`), partial downloads under a hidden name with their resume state
 * beside them, the verified file renamed into place under its safe name (numbered, never
 * overwriting), and the files we send, hashed once and read chunk by chunk.
 *
 * Nothing is written outside the download directory: names come from `safeRelativePath` (safe
 * components, no dots in front, none above the directory), directories of a directory sent are
 * made level by level and must be real directories (a planted link is never followed), files
 * are created with `createNew` (which fails on anything already there, a symbolic link
 * included, so a planted link is never followed), an
 * existing partial file is opened only when `lstat` says it is a regular file of ours and the
 * opened file is the one that was checked (same device and inode). Reads and hashing use
 * buffers of at most one chunk (4 MiB), so a 10 GB file never sits in memory.
 *
 * I/O: files.
 *
 * @module
 */
import { join } from "node:path";
import { Sha256 } from "../crypto/sha256.ts";
import { leafHash, MerkleTree } from "../files/merkle.ts";
import { decodeResume } from "../files/incoming.ts";
import { InOrderHash } from "../files/in_order_hash.ts";
import { numberedName, safeRelativePath } from "../files/safe_name.ts";
import { toHex } from "../wire/codec.ts";
import { type FileOffer, MAX_CHUNKS, MIN_CHUNK_SHIFT } from "../wire/file_frame.ts";
import { notOwnFile } from "./own_file.ts";

/** Chunk size of the files we offer, as a power of two (256 KiB), unless the file is huge. */
export const DEFAULT_CHUNK_SHIFT = 18;
/** Downloads in place whose chunks are still passed on (group transfers); the oldest go first. */
const MAX_FINISHED = 64;
/** Most numbered alternatives tried for a taken name. */
const MAX_NUMBERED = 1000;
/** Buffer size of hashing and of reading a file back. */
const HASH_BUFFER = 1 << 20;

/**
 * The XDG download directory: `$XDG_DOWNLOAD_DIR`, else `XDG_DOWNLOAD_DIR` in
 * `$XDG_CONFIG_HOME/user-dirs.dirs` (`~/.config`), else `~/Downloads`; null without a home.
 */
export function defaultDownloadDir(env: (name: string) => string | undefined): string | null {
  const home = env("HOME") ?? env("USERPROFILE");
  const direct = env("XDG_DOWNLOAD_DIR");
  if (direct) return direct;
  if (!home) return null;
  const config = env("XDG_CONFIG_HOME") || join(home, ".config");
  try {
    const text = Deno.readTextFileSync(join(config, "user-dirs.dirs"));
    const m = text.match(/^XDG_DOWNLOAD_DIR="([^"\n]*)"/m);
    if (m && m[1]) {
      const v = m[1].replace(/^\$HOME(?=\/|$)/, home);
      if (v.startsWith("/")) return v;
    }
  } catch {
    // No user-dirs file: the usual default.
  }
  return join(home, "Downloads");
}

/** The chunk size for a file of `size` bytes: 256 KiB, larger only to stay within 2^22 chunks. */
export function chunkShiftFor(size: number): number {
  let shift = Math.max(MIN_CHUNK_SHIFT, DEFAULT_CHUNK_SHIFT);
  while (Math.ceil(size / 2 ** shift) > MAX_CHUNKS / 4 && shift < 22) shift++;
  return shift;
}

/** A file we offer: its offer (less the id), its tree, and reads of its chunks. */
export class SourceFile {
  readonly path: string;
  readonly offer: Omit<FileOffer, "id">;
  readonly tree: MerkleTree;
  #file: Deno.FsFile;
  /** The buffer reads fill (grown to a chunk's size). */
  #buf = new Uint8Array(0);
  #reading = false;

  private constructor(
    path: string,
    offer: Omit<FileOffer, "id">,
    tree: MerkleTree,
    f: Deno.FsFile,
  ) {
    this.path = path;
    this.offer = offer;
    this.tree = tree;
    this.#file = f;
  }

  /**
   * Opens and hashes `path` (a regular file): the whole file's SHA-256 and every chunk's. It is
   * offered as `name` (default: the last part of the path).
   */
  static async open(path: string, name?: string): Promise<SourceFile> {
    const f = await Deno.open(path, { read: true });
    try {
      const info = await f.stat();
      if (!info.isFile) throw new Error(`${path} is not a regular file`);
      const size = info.size, chunkShift = chunkShiftFor(size), chunk = 2 ** chunkShift;
      const whole = new Sha256(), leaves: Uint8Array[] = [];
      const buf = new Uint8Array(chunk);
      for (let pos = 0; pos < size || leaves.length === 0; pos += chunk) {
        const want = Math.min(chunk, size - pos);
        const n = await readAt(f, pos, buf.subarray(0, want));
        if (n !== want) throw new Error(`${path} changed while it was being read`);
        whole.update(buf.subarray(0, n));
        leaves.push(leafHash(buf.subarray(0, n)));
        if (size === 0) break;
      }
      const tree = new MerkleTree(leaves);
      const offered = name || path.split(/[/\\]/).pop() || "file";
      return new SourceFile(
        path,
        { name: offered, size, chunkShift, sha256: whole.digest(), root: tree.root },
        tree,
        f,
      );
    } catch (e) {
      f.close();
      throw e;
    }
  }

  /**
   * Reads `length` bytes at `position`; null when the file is shorter now (it changed). The
   * bytes are valid until the next read (one buffer serves them all: the transfer core copies
   * what it keeps), so a long transfer allocates nothing per chunk here.
   */
  async read(position: number, length: number): Promise<Uint8Array | null> {
    // A read while another is under way gets a buffer of its own.
    const mine = !this.#reading;
    if (mine && this.#buf.length < length) this.#buf = new Uint8Array(length);
    const buf = mine ? this.#buf.subarray(0, length) : new Uint8Array(length);
    if (mine) this.#reading = true;
    try {
      const n = await readAt(this.#file, position, buf);
      return n === length ? buf : null;
    } finally {
      if (mine) this.#reading = false;
    }
  }

  /** Closes the file. */
  close(): void {
    try {
      this.#file.close();
    } catch {
      // Already closed.
    }
  }
}

/** Fills `buf` from `position`; the bytes read (short at the end), or null when none could be. */
/** Chunks read back for the running hash in one write, at most. */
const READ_BACKS_PER_WRITE = 8;

/** Feeds `h` up to `most` ranges it asks back, read from `f`. */
async function readBack(f: Deno.FsFile, h: InOrderHash, most: number): Promise<void> {
  let n = 0;
  for (let r = h.pollReadBack(); r && n < most; r = h.pollReadBack(), n++) {
    const buf = new Uint8Array(r.length);
    h.readBack(r.position, await readAt(f, r.position, buf) === r.length ? buf : null);
  }
}

async function readAt(f: Deno.FsFile, position: number, buf: Uint8Array): Promise<number | null> {
  await f.seek(position, Deno.SeekMode.Start);
  let n = 0;
  while (n < buf.length) {
    const got = await f.read(buf.subarray(n));
    if (got === null) break;
    n += got;
  }
  return n === buf.length ? n : (n === 0 && buf.length > 0 ? null : n);
}

/** What {@link FileStore.prepare} found for an offer. */
export type Prepared =
  | { kind: "complete"; path: string }
  | { kind: "resume"; bitmap: Uint8Array | undefined };

interface Partial {
  file: Deno.FsFile;
  hex: string;
  /** The whole file's SHA-256 as it is written (a fresh download; a resumed one is read back). */
  hash?: InOrderHash;
  /** The safe relative path: directories, then the file's name. */
  parts: string[];
}

/** The download directory. */
export class FileStore {
  /** The directory, resolved (its own symbolic links followed once, at the start). */
  readonly dir: string;
  #partials = new Map<string, Partial>();
  /**
   * Downloads put in place, still read to pass their chunks on to the other receivers of a
   * group transfer: where, and which file (device and inode) it was when it was put there.
   */
  #finished = new Map<string, { path: string; dev: number; ino: number | null }>();

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Opens (creating it if needed) the download directory `dir`. */
  static async open(dir: string): Promise<FileStore> {
    await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
    const real = await Deno.realPath(dir);
    const info = await Deno.stat(real);
    if (!info.isDirectory) throw new Error(`${dir} is not a directory`);
    return new FileStore(real);
  }

  #hidden(hex: string, ext: "part" | "state"): string {
    return join(this.dir, `.p2p-${hex}.${ext}`);
  }

  /**
   * Before accepting an offer: whether the file is here already, complete (a file of the offered
   * name or a numbered one, of the same size and SHA-256), else the saved resume bitmap, if any.
   */
  async prepare(offer: FileOffer): Promise<Prepared> {
    const parts = safeRelativePath(offer.name), name = parts.pop()!;
    const dir = await this.#existingDir(parts);
    for (let n = 0; dir !== undefined && n < 20; n++) {
      const path = join(dir, numberedName(name, n));
      let info: Deno.FileInfo;
      try {
        info = await Deno.lstat(path);
      } catch {
        break;
      }
      if (!info.isFile || info.size !== offer.size) continue;
      if (toHex(await hashFile(path)) === toHex(offer.sha256)) return { kind: "complete", path };
    }
    const hex = toHex(offer.sha256);
    try {
      const info = await Deno.lstat(this.#hidden(hex, "state"));
      if (notOwnFile(info) || info.size > 1 << 20) return { kind: "resume", bitmap: undefined };
      const state = decodeResume(await Deno.readFile(this.#hidden(hex, "state")));
      if (state && sameContent(state.offer, offer)) return { kind: "resume", bitmap: state.bitmap };
    } catch {
      // No saved state.
    }
    return { kind: "resume", bitmap: undefined };
  }

  /** Opens (or reopens, to resume) the partial file of transfer `id` for `offer`. */
  async begin(id: string, offer: FileOffer, resuming: boolean): Promise<void> {
    if (this.#partials.has(id)) return;
    const hex = toHex(offer.sha256);
    for (const p of this.#partials.values()) {
      if (p.hex === hex) throw new Error("This file is already being downloaded");
    }
    const path = this.#hidden(hex, "part");
    let file: Deno.FsFile;
    if (resuming) {
      const before = await Deno.lstat(path).catch(() => null);
      if (before && !notOwnFile(before)) {
        file = await Deno.open(path, { read: true, write: true });
        const after = await file.stat();
        if (after.dev !== before.dev || after.ino !== before.ino) {
          file.close();
          throw new Error(`${path} was replaced while it was being opened`);
        }
      } else {
        if (before) throw new Error(`${path} ${notOwnFile(before)}; remove it to download again`);
        file = await Deno.open(path, { write: true, read: true, createNew: true, mode: 0o600 });
      }
    } else {
      await this.#remove(path);
      await this.#remove(this.#hidden(hex, "state"));
      file = await Deno.open(path, { write: true, read: true, createNew: true, mode: 0o600 });
    }
    const fresh = (await file.stat()).size === 0;
    this.#partials.set(id, {
      file,
      hex,
      parts: safeRelativePath(offer.name),
      ...(fresh ? { hash: new InOrderHash() } : {}),
    });
  }

  /**
   * The directory `dirs` below the download directory, if each level is there as a real
   * directory (no symbolic link anywhere); undefined otherwise.
   */
  async #existingDir(dirs: string[]): Promise<string | undefined> {
    let at = this.dir;
    for (const d of dirs) {
      at = join(at, d);
      const info = await Deno.lstat(at).catch(() => null);
      if (!info?.isDirectory || info.isSymlink) return undefined;
    }
    return at;
  }

  /**
   * Makes the directories `dirs` below the download directory, level by level: a level that is
   * there must be a real directory (a symbolic link or a file in the way is an error, never
   * followed), and the result must resolve to itself. Returns it, or what is in the way.
   */
  async #makeDirs(
    dirs: string[],
  ): Promise<{ ok: true; dir: string } | { ok: false; reason: string }> {
    let at = this.dir;
    for (const [i, d] of dirs.entries()) {
      at = join(at, d);
      try {
        await Deno.mkdir(at, { mode: 0o755 });
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
      }
      const info = await Deno.lstat(at);
      if (!info.isDirectory || info.isSymlink) {
        const rel = dirs.slice(0, i + 1).join("/");
        return { ok: false, reason: `${rel} in the download directory is not a directory` };
      }
    }
    if (await Deno.realPath(at) !== at) {
      return { ok: false, reason: `${dirs.join("/")} moved while it was being made` };
    }
    return { ok: true, dir: at };
  }

  async #remove(path: string): Promise<void> {
    try {
      await Deno.remove(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
  }

  /** Writes a verified chunk of transfer `id` at `position` of its partial file. */
  async write(id: string, position: number, data: Uint8Array): Promise<void> {
    const p = this.#partials.get(id);
    if (!p) throw new Error("No partial file for this transfer");
    await p.file.seek(position, Deno.SeekMode.Start);
    let n = 0;
    while (n < data.length) n += await p.file.write(data.subarray(n));
    const h = p.hash;
    if (!h) return;
    h.written(position, data);
    // Chunks written ahead that now continue the hashed bytes, read back and hashed in order: a
    // few per write (the transfer waits for it), the rest by later writes or at the end.
    await readBack(p.file, h, READ_BACKS_PER_WRITE);
  }

  /**
   * Reads verified bytes back from transfer `id`'s partial file (to pass them on to the other
   * receivers of a group transfer); null when there is no such file or it is shorter.
   */
  async read(id: string, position: number, length: number): Promise<Uint8Array | null> {
    const p = this.#partials.get(id);
    if (!p) return await this.#readFinished(id, position, length);
    const buf = new Uint8Array(length);
    const n = await readAt(p.file, position, buf);
    return n === length ? buf : null;
  }

  /**
   * Reads from download `id` once it is in place (another receiver asked late for a chunk),
   * only while the file there is the one put in place (same device and inode: a link or another
   * file put there since is never read).
   */
  async #readFinished(id: string, position: number, length: number): Promise<Uint8Array | null> {
    const done = this.#finished.get(id);
    if (!done) return null;
    let f: Deno.FsFile | undefined;
    try {
      f = await Deno.open(done.path, { read: true });
      const info = await f.stat();
      if (info.dev !== done.dev || info.ino !== done.ino) return null;
      const buf = new Uint8Array(length);
      return (await readAt(f, position, buf)) === length ? buf : null;
    } catch {
      return null;
    } finally {
      f?.close();
    }
  }

  /** Saves transfer `id`'s resume state (written aside, then renamed over the old one). */
  async save(id: string, state: Uint8Array): Promise<void> {
    const p = this.#partials.get(id);
    if (!p) return;
    const path = this.#hidden(p.hex, "state"), tmp = `${path}.new`;
    await this.#remove(tmp);
    const f = await Deno.open(tmp, { write: true, createNew: true, mode: 0o600 });
    try {
      let n = 0;
      while (n < state.length) n += await f.write(state.subarray(n));
    } finally {
      f.close();
    }
    await Deno.rename(tmp, path);
  }

  /**
   * Every chunk of `id` is written: checks the whole file's SHA-256 and renames it into place
   * under its safe name (numbered if taken). The partial file and its state are gone after.
   */
  async finish(
    id: string,
    offer: FileOffer,
  ): Promise<{ ok: true; path: string } | { ok: false; reason: string }> {
    const p = this.#partials.get(id);
    if (!p) return { ok: false, reason: "no partial file" };
    this.#partials.delete(id);
    const part = this.#hidden(p.hex, "part");
    try {
      await p.file.truncate(offer.size);
      await p.file.sync();
      // What is still ahead of the running hash, read back now.
      if (p.hash) await readBack(p.file, p.hash, Infinity);
    } finally {
      p.file.close();
    }
    // The hash taken as the chunks were written, or (a resumed download, or one the hash could
    // not follow) the whole file read back.
    const sum = p.hash?.digest(offer.size) ?? await hashFile(part);
    if (toHex(sum) !== toHex(offer.sha256)) {
      await this.#remove(part);
      await this.#remove(this.#hidden(p.hex, "state"));
      return { ok: false, reason: "sha256 mismatch" };
    }
    const dirs = p.parts.slice(0, -1), name = p.parts[p.parts.length - 1]!;
    const made = await this.#makeDirs(dirs);
    if (!made.ok) return made;
    for (let n = 0; n < MAX_NUMBERED; n++) {
      const path = join(made.dir, numberedName(name, n));
      try {
        // Claim the name (fails on anything there, a symbolic link included), then replace
        // our own placeholder with the file.
        (await Deno.open(path, { write: true, createNew: true, mode: 0o644 })).close();
      } catch (e) {
        if (e instanceof Deno.errors.AlreadyExists) continue;
        throw e;
      }
      await Deno.rename(part, path);
      await this.#remove(this.#hidden(p.hex, "state"));
      const info = await Deno.lstat(path);
      if (this.#finished.size >= MAX_FINISHED) {
        this.#finished.delete(this.#finished.keys().next().value!);
      }
      this.#finished.set(id, { path, dev: info.dev, ino: info.ino });
      return { ok: true, path };
    }
    return { ok: false, reason: `too many files named like ${p.parts.join("/")}` };
  }

  /** Gives up transfer `id`: its partial file and state are removed. */
  async discard(id: string, offer: FileOffer): Promise<void> {
    const p = this.#partials.get(id);
    this.#partials.delete(id);
    p?.file.close();
    const hex = toHex(offer.sha256);
    await this.#remove(this.#hidden(hex, "part"));
    await this.#remove(this.#hidden(hex, "state"));
  }

  /** Closes partial files (their state stays for a resume). */
  close(): void {
    for (const p of this.#partials.values()) p.file.close();
    this.#partials.clear();
  }
}

function sameContent(a: FileOffer, b: FileOffer): boolean {
  return a.size === b.size && a.chunkShift === b.chunkShift &&
    toHex(a.sha256) === toHex(b.sha256) && toHex(a.root) === toHex(b.root);
}

/** SHA-256 of the file at `path`, read in 1 MiB pieces. */
export async function hashFile(path: string): Promise<Uint8Array> {
  const f = await Deno.open(path, { read: true });
  try {
    const h = new Sha256(), buf = new Uint8Array(HASH_BUFFER);
    for (;;) {
      const n = await f.read(buf);
      if (n === null) break;
      h.update(buf.subarray(0, n));
    }
    return h.digest();
  } finally {
    f.close();
  }
}
