/**
 * File transfer in a running peer: what `/send`, `/accept`, `/reject`, `--auto-accept` and
 * `p2p send` do, and the disk work the client's file transfers ask for (reads of the files we
 * send, writes, saves and the final check of the files we receive, through
 * `lib/io/file_store.ts`), each answered in a driver step. Operations on one transfer run one at
 * a time, in order. The download directory is opened (and made) only when a file is accepted.
 *
 * I/O: files.
 *
 * @module
 */
import { basename, resolve } from "node:path";
import { getLogger } from "@logtape/logtape";
import type { Client } from "../peer/client.ts";
import type { ClientFileEvent } from "../peer/client_files.ts";
import type { FileOp } from "../files/file_outputs.ts";
import { FileStore, SourceFile } from "../io/file_store.ts";
import { toHex } from "../wire/codec.ts";
import type { FileOffer } from "../wire/file_frame.ts";
import { SHORT_ID } from "./file_view.ts";

const log = getLogger(["p2p", "files"]);

/** What a file session needs from its peer process. */
export interface FileSessionOptions {
  client: Client;
  /** Runs `fn` in a driver step (then the client's output is drained). */
  step: (fn: (now: number) => void) => void;
  /** The download directory (null: none could be found; accepting says so). */
  downloads: string | null;
  /** Accept every offer from the room's members. */
  autoAccept: boolean;
  /** Shows a notice to the user. */
  notice: (text: string) => void;
  /** Randomness for transfer ids. */
  random: (n: number) => Uint8Array;
}

/** Where the recipients of an outgoing file ended. */
export interface Outcome {
  done: string[];
  failed: string[];
  /** Whom it was offered to, by name. */
  names: string[];
  offer: FileOffer;
}

/** A peer process's file transfers. */
export class FileSession {
  #o: FileSessionOptions;
  #store: Promise<FileStore> | null = null;
  #sources = new Map<string, SourceFile>();
  #waiting: string[] = [];
  #chains = new Map<string, Promise<void>>();
  #outcomes = new Map<string, Outcome>();
  /** Transfers already said to go through a relay. */
  #relayed = new Set<string>();

  constructor(o: FileSessionOptions) {
    this.#o = o;
  }

  /** A file event from the client (after the view showed it). */
  onEvent(e: ClientFileEvent): void {
    if (e.state === "progress" && e.route === "relay" && !this.#relayed.has(e.id)) {
      // Said once a transfer: a relay (the server's, or a supernode's) caps its rate.
      this.#relayed.add(e.id);
      if (this.#relayed.size > 256) this.#relayed.delete(this.#relayed.values().next().value!);
      const peer = e.from ?? e.to ?? "the peer";
      this.#o.notice(
        e.relay
          ? `${e.name}: ${peer} is reached through ${e.relay}'s relay (a supernode), whose rate ` +
            "limit (its --supernode-pair-rate, 32 KiB/s unless set) this transfer keeps to"
          : `${e.name}: ${peer} is reached through the server's relay, whose rate limit ` +
            "(--relay-rate, --pair-rate) this transfer keeps to",
      );
    }
    if (e.state === "offered" && e.from !== undefined) {
      this.#waiting.push(e.id);
      if (this.#waiting.length > 64) this.#waiting.shift();
      if (this.#o.autoAccept) void this.accept(e.id);
      return;
    }
    if (e.to !== undefined && (e.state === "done" || e.state === "failed")) {
      const r = this.#o.client.files.recipients([e.to])[0];
      const s = r && this.#o.client.files.core.senderOf(r.key);
      if (s) {
        log.debug(
          "File {id} to {to}: {state}; packets {packets}, lost {lost}, cwnd {cwnd}, srtt {srtt} ms",
          {
            id: e.id,
            to: e.to,
            state: e.state,
            packets: s.stats.packets,
            lost: s.stats.lost,
            cwnd: Math.round(s.cc.cwnd),
            srtt: s.srtt?.toFixed(2),
            events: s.cc.events,
          },
        );
      }
      const o = this.#outcomes.get(e.id);
      if (o) (e.state === "done" ? o.done : o.failed).push(e.to);
      // Every recipient answered for good: the file is closed (its outcome kept for p2p send).
      if (o && o.done.length + o.failed.length >= o.names.length) {
        this.#sources.get(e.id)?.close();
        this.#sources.delete(e.id);
      }
    }
    if (e.from !== undefined && (e.state === "done" || e.state === "failed")) {
      this.#waiting = this.#waiting.filter((id) => id !== e.id);
    }
  }

  /**
   * A peer is shown (`peer` event): if it is a new instance of a recipient of a file still
   * being sent (it restarted, or came back), the file is offered to it again, so the transfer
   * continues by itself from what it verified (its saved state) without a new `/send`.
   */
  onPeer(name: string): void {
    for (const [id, o] of this.#outcomes) {
      if (!o.names.includes(name) || o.done.includes(name)) continue;
      const src = this.#sources.get(id), out = this.#o.client.files.core.outgoing(id);
      const r = this.#o.client.files.recipients([name])[0];
      if (!src || !out || !r || out.recipients.has(r.key)) continue;
      // In a step of its own, after the one that showed the peer.
      queueMicrotask(() =>
        this.#o.step((now) =>
          this.#o.client.fileStep(now, (f) => f.offer(now, o.offer, src.tree, [r]))
        )
      );
    }
  }

  /** After every driver step: the disk work the client asked for is started. */
  onStep(): void {
    for (let op = this.#o.client.files.pollOp(); op; op = this.#o.client.files.pollOp()) {
      this.#queue(op);
    }
  }

  /**
   * `/send [NAME] PATH`: NAME when the first word names a peer here and a path follows. A
   * directory is sent as its regular files (at most {@link MAX_DIRECTORY_FILES}), each named by
   * the directory's name and its path inside it (`album/sub/b.jpg`), which the receivers make
   * into a safe path of their download directory.
   */
  async sendCommand(args: string): Promise<void> {
    const [first, ...rest] = args.split(" ");
    const named = rest.length > 0 &&
      this.#o.client.files.recipients([first!]).length > 0;
    const path = named ? rest.join(" ") : args, to = named ? [first!] : undefined;
    try {
      await this.sendPath(path, to);
    } catch (e) {
      this.#o.notice(`Cannot send ${path}: ${(e as Error).message}`);
    }
  }

  /**
   * Offers the file or directory at `path` (see {@link sendCommand}) to the peers named `to`
   * (all present without names); returns each file's id and recipients. Throws when nothing can
   * be sent.
   */
  async sendPath(
    path: string,
    to?: readonly string[],
  ): Promise<{ id: string; to: string[] }[]> {
    if (!(await Deno.stat(path)).isDirectory) return [await this.send(path, to)];
    const files = await filesIn(path, MAX_DIRECTORY_FILES);
    if (files.length === 0) throw new Error("the directory has no files");
    const top = basename(resolve(path)), sent = [];
    for (const [file, name] of files) sent.push(await this.send(file, to, `${top}/${name}`));
    return sent;
  }

  /**
   * Offers the file at `path` to the peers named `to` (all present without names); returns its
   * id and the recipients' names. Throws when the file cannot be read or nobody is there.
   */
  async send(
    path: string,
    to?: readonly string[],
    name?: string,
  ): Promise<{ id: string; to: string[] }> {
    const src = await SourceFile.open(path, name);
    const files = this.#o.client.files;
    const recipients = files.recipients(to);
    if (recipients.length === 0) {
      src.close();
      throw new Error(to ? `nobody called ${to.join(", ")} is here` : "nobody else is in the room");
    }
    const offerId = this.#o.random(8), id = toHex(offerId);
    this.#sources.set(id, src);
    const names = recipients.map((r) => r.name);
    this.#outcomes.set(id, { done: [], failed: [], names, offer: { id: offerId, ...src.offer } });
    this.#o.step((now) =>
      this.#o.client.fileStep(now, (f) => {
        f.offer(now, { id: offerId, ...src.offer }, src.tree, recipients);
      })
    );
    this.#o.notice(`Offering ${src.offer.name} to ${names.join(", ")}`);
    return { id, to: names };
  }

  /** Shows a notice. */
  notice(text: string): void {
    this.#o.notice(text);
  }

  /** Where the recipients of outgoing `id` ended so far. */
  outcome(id: string): Outcome | undefined {
    return this.#outcomes.get(id);
  }

  #find(prefix: string): string | undefined {
    if (prefix === "") return this.#waiting.length === 1 ? this.#waiting[0] : undefined;
    const hits = this.#waiting.filter((id) => id.startsWith(prefix.toLowerCase()));
    return hits.length === 1 ? hits[0] : undefined;
  }

  #unknown(prefix: string): void {
    this.#o.notice(
      this.#waiting.length === 0
        ? "No file offer is waiting"
        : `Which offer? Name one of ${this.#waiting.map((i) => i.slice(0, SHORT_ID)).join(", ")}${
          prefix ? ` (${prefix} is none of them)` : ""
        }`,
    );
  }

  /** `/accept [ID]`: fetches the file (or finds it here already, or resumes it). */
  async accept(prefix: string): Promise<void> {
    const id = this.#find(prefix);
    if (!id) return this.#unknown(prefix);
    this.#waiting = this.#waiting.filter((x) => x !== id);
    const offer = this.#o.client.files.core.incoming(id)?.offer;
    if (!offer) return;
    try {
      if (this.#o.downloads === null) {
        throw new Error("no download directory (no $HOME): use --downloads DIR");
      }
      if (!this.#store) {
        const opening = FileStore.open(this.#o.downloads);
        this.#store = opening;
        opening.catch(() => {
          if (this.#store === opening) this.#store = null;
        });
      }
      const store = await this.#store;
      const found = await store.prepare({ ...offer });
      if (found.kind === "complete") {
        this.#o.step((now) =>
          this.#o.client.fileStep(now, (f) => f.core.alreadyHave(id, found.path))
        );
        return;
      }
      await store.begin(id, offer, found.bitmap !== undefined);
      this.#o.step((now) =>
        this.#o.client.fileStep(now, (f) => f.core.accept(id, now, found.bitmap))
      );
    } catch (e) {
      this.#o.notice(`Cannot receive ${offer.name}: ${(e as Error).message}`);
      this.#o.step((now) => this.#o.client.fileStep(now, (f) => f.core.cancel(id)));
    }
  }

  /** `/reject [ID]`. */
  reject(prefix: string): void {
    const id = this.#find(prefix);
    if (!id) return this.#unknown(prefix);
    this.#waiting = this.#waiting.filter((x) => x !== id);
    this.#o.step((now) => this.#o.client.fileStep(now, (f) => f.core.reject(id)));
  }

  #queue(op: FileOp): void {
    const prev = this.#chains.get(op.id) ?? Promise.resolve();
    const next = prev.then(() => this.#run(op)).catch((e) => {
      this.#o.notice(`File transfer ${op.id.slice(0, SHORT_ID)}: ${(e as Error).message}`);
    });
    this.#chains.set(op.id, next);
    void next.finally(() => {
      if (this.#chains.get(op.id) === next) this.#chains.delete(op.id);
    });
  }

  async #run(op: FileOp): Promise<void> {
    const { client, step } = this.#o;
    switch (op.op) {
      case "read": {
        // A file we send, or (a group transfer) the download we pass on.
        const src = this.#sources.get(op.id);
        const store = src ? null : await this.#store?.catch(() => null);
        const data = src
          ? await src.read(op.position, op.length).catch(() => null)
          : store
          ? await store.read(op.id, op.position, op.length).catch(() => null)
          : null;
        step((now) => client.fileStep(now, (f) => f.core.handleRead(op.id, op.chunk, data)));
        return;
      }
      case "write": {
        const store = await this.#store!;
        const ok = await store.write(op.id, op.position, op.data).then(() => true, () => false);
        step((now) => client.fileStep(now, (f) => f.core.handleWritten(op.id, op.chunk, ok, now)));
        return;
      }
      case "save":
        await (await this.#store!).save(op.id, op.state);
        return;
      case "finish": {
        const store = await this.#store!;
        const result = await store.finish(op.id, op.offer).catch((e) => ({
          ok: false as const,
          reason: (e as Error).message,
        }));
        step((now) => client.fileStep(now, (f) => f.core.handleFinished(op.id, result)));
        return;
      }
      case "discard":
        await (await this.#store!).discard(op.id, op.offer);
        return;
    }
  }

  /** Waits for the disk work under way, then closes files (partial ones keep their state). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.#chains.values()]);
    for (const s of this.#sources.values()) s.close();
    if (this.#store) (await this.#store.catch(() => null))?.close();
  }
}

/** How long `p2p send` waits for its recipients to be in the room (or back), in ms. */
export const SEND_WAIT = 30_000;

/**
 * `p2p send`: waits (at most `what.wait`, default {@link SEND_WAIT}) for the recipients, offers
 * the file (a directory: each of its files), and waits until each recipient has it or gave up, or is gone from the room for that
 * long (a recipient that comes back meanwhile continues where it was); 0 when all have it, else
 * 1 (who does not is said).
 */
export async function sendAndWait(
  files: FileSession,
  what: { path: string; to: string[] | undefined; wait?: number },
  client: Client,
  until: (cond: () => boolean, ms: number) => Promise<void>,
): Promise<number> {
  const wait = what.wait ?? SEND_WAIT;
  const here = () => {
    const r = client.files.recipients(what.to);
    return what.to ? r.length === what.to.length : r.length > 0;
  };
  await until(here, wait);
  if (!here()) {
    const missing = what.to
      ? what.to.filter((n) => client.files.recipients([n]).length === 0).join(", ")
      : "anyone";
    throw new Error(`Nobody to send to: ${missing} did not come within ${wait / 1000} s`);
  }
  const sent = await files.sendPath(what.path, what.to);
  const goneSince = new Map<string, number>();
  const settled = () => sent.every(({ id, to }) => settledOne(id, to));
  const settledOne = (id: string, to: string[]) => {
    const o = files.outcome(id)!;
    if (o.done.length + o.failed.length >= to.length) return true;
    const now = performance.now();
    let allGone = true;
    for (const n of to) {
      if (o.done.includes(n) || o.failed.includes(n)) continue;
      if (client.files.recipients([n]).length > 0) {
        goneSince.delete(n);
        allGone = false;
      } else if (now - (goneSince.get(n) ?? (goneSince.set(n, now), now)) < wait) allGone = false;
    }
    return allGone;
  };
  while (!settled()) await until(settled, 1000);
  const lacking = new Set<string>();
  for (const { id, to } of sent) {
    const o = files.outcome(id)!;
    for (const n of to) if (!o.done.includes(n)) lacking.add(n);
  }
  if (lacking.size === 0) return 0;
  files.notice(`Not received by ${[...lacking].join(", ")}`);
  return 1;
}

/** Most files one `/send DIRECTORY` offers. */
export const MAX_DIRECTORY_FILES = 1000;

/** The regular files under `dir` (symbolic links not followed): path and name inside `dir`. */
async function filesIn(dir: string, max: number): Promise<[string, string][]> {
  const out: [string, string][] = [];
  const walk = async (at: string, prefix: string): Promise<void> => {
    const entries = [];
    for await (const e of Deno.readDir(at)) entries.push(e);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (out.length >= max) return;
      const path = `${at}/${e.name}`, name = prefix ? `${prefix}/${e.name}` : e.name;
      if (e.isFile) out.push([path, name]);
      else if (e.isDirectory) await walk(path, name);
    }
  };
  await walk(dir, "");
  return out;
}
