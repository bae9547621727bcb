/**
 * The remote peers a joining peer knows, present and departed, and what it keeps of those it
 * forgot. Departed peers are kept for a while (a peer that comes back resumes its message
 * streams), then forgotten: at most {@link MAX_DEPARTED} of them, none longer than
 * {@link DEPARTED_KEEP}. A forgotten peer's `id:epoch` is remembered (at most
 * {@link MAX_RETIRED}), so it is never keyed again under that epoch: session keys are bound to
 * the pair's introduction epoch, which changes whenever either side registers anew, so a
 * forgotten peer's return never reuses a nonce.
 *
 * A present remote may be _unlisted_: the server's roster left it out (a restarted server that
 * does not know it yet, or one that expired it while we still talk to it); it stays present, out of
 * the roster digest, until a deadline the caller sets (see `lib/peer/membership.ts`).
 *
 * Every remote's next deadline is kept in a heap, so a timer costs O(log peers), and the roster
 * digest (XOR of the listed present peers' id digests) in O(1). Pure bookkeeping: no I/O, no
 * output.
 *
 * @module
 */
import { compareBytes } from "../core/bytes.ts";
import { DeadlineQueue } from "../core/deadlines.ts";
import type { RemotePeer } from "./remote.ts";
import type { PeerInfo } from "./remote_context.ts";
import type { PeerDirectory, PeerRelays } from "./supernodes.ts";
import { idDigest } from "../wire/server_msg.ts";
import { idHex } from "../wire/header.ts";

/** How long a departed peer's state is kept for its return, in ms. */
export const DEPARTED_KEEP = 10 * 60_000;
/** Most departed peers whose state is kept. */
export const MAX_DEPARTED = 64;
/** Most forgotten (peer, epoch) pairs remembered so they are never keyed again. */
export const MAX_RETIRED = 1024;

/** The remote peers of one client, by id (hex). */
export class PeerTable implements PeerDirectory {
  #remotes = new Map<string, RemotePeer>();
  /** Departed remotes, longest gone first. */
  #departed = new Map<string, RemotePeer>();
  /** Present remotes the server does not list, with when to look at them again, oldest first. */
  #unlisted = new Map<string, { r: RemotePeer; due: number }>();
  /** The earliest deadline among the unlisted (Infinity: none), kept on every change. */
  #unlistedNext = Infinity;
  /** `id:epoch` of forgotten remotes, oldest first. */
  #retired = new Set<string>();
  #deadlines = new DeadlineQueue<RemotePeer>();
  /** The remote the last sealed frame came from (see {@link sealedFrom}). */
  #last: RemotePeer | undefined;
  /** XOR of the id digests of present remotes. */
  #digest = 0;
  /** Message parts that were never delivered to peers forgotten since. */
  #forgottenUndelivered = 0;

  /** The remote with hex id `key`, present or departed. */
  get(key: string): RemotePeer | undefined {
    return this.#remotes.get(key);
  }

  /** Every remote kept, present and departed, in the order they were first introduced. */
  values(): IterableIterator<RemotePeer> {
    return this.#remotes.values();
  }

  /**
   * The remote with id `from` (present, unlisted or departed), for a sealed frame: frames come in
   * runs from one peer, so the last one found is checked first.
   */
  sealedFrom(from: Uint8Array): RemotePeer | undefined {
    const last = this.#last;
    const r = last && compareBytes(last.id, from) === 0 ? last : this.#remotes.get(idHex(from));
    if (r) this.#last = r;
    return r;
  }

  /** The roster digest of the present peers the server lists (sent in PINGs). */
  get digest(): number {
    return this.#digest >>> 0;
  }

  /** How many remotes are present. */
  get presentCount(): number {
    return this.#remotes.size - this.#departed.size;
  }

  /** How many departed peers' state is kept (bounded by {@link MAX_DEPARTED}). */
  get departedKept(): number {
    return this.#departed.size;
  }

  /** True when peer `key` was forgotten under introduction epoch `epoch` (hex). */
  isRetired(key: string, epoch: string): boolean {
    return this.#retired.has(`${key}:${epoch}`);
  }

  /** A remote introduced for the first time (present). */
  add(r: RemotePeer): void {
    this.#remotes.set(r.key, r);
    this.#digest ^= idDigest(r.id);
  }

  /** A departed remote introduced again (present again). */
  returned(r: RemotePeer): void {
    this.#departed.delete(r.key);
    this.#digest ^= idDigest(r.id);
  }

  /**
   * Marks present remote `r` unlisted (out of the digest) until `due`; an unlisted one gets the
   * new deadline. False when `r` is not present.
   */
  unlist(r: RemotePeer, due: number): boolean {
    if (!r.present) return false;
    if (!this.#unlisted.delete(r.key)) this.#digest ^= idDigest(r.id);
    this.#unlisted.set(r.key, { r, due });
    this.#unlistedChanged();
    return true;
  }

  /** Lists `r` again (the server introduced or listed it); false when it was not unlisted. */
  relist(r: RemotePeer): boolean {
    if (!this.#unlisted.delete(r.key)) return false;
    this.#digest ^= idDigest(r.id);
    this.#unlistedChanged();
    return true;
  }

  /** Every unlisted deadline before `due` moves to `due` (we were not listening: see callers). */
  postponeUnlisted(due: number): void {
    for (const u of this.#unlisted.values()) u.due = Math.max(u.due, due);
    this.#unlistedChanged();
  }

  /** Keeps the earliest unlisted deadline (unlisting is rare: a scan per change is cheap). */
  #unlistedChanged(): void {
    let t = Infinity;
    for (const u of this.#unlisted.values()) t = Math.min(t, u.due);
    this.#unlistedNext = t;
  }

  /** True while `r` is present but not listed by the server. */
  isUnlisted(r: RemotePeer): boolean {
    return this.#unlisted.has(r.key);
  }

  /** The unlisted remotes whose deadline is due at `now` (they stay unlisted). */
  unlistedDue(now: number): RemotePeer[] {
    const due: RemotePeer[] = [];
    if (this.#unlistedNext > now) return due;
    for (const u of this.#unlisted.values()) if (u.due <= now) due.push(u.r);
    return due;
  }

  /** Marks `r` departed at `now`; false when it already was. */
  depart(now: number, r: RemotePeer): boolean {
    if (!r.depart(now)) return false;
    if (!this.#unlisted.delete(r.key)) this.#digest ^= idDigest(r.id);
    else this.#unlistedChanged();
    this.#deadlines.set(r, undefined);
    this.#departed.set(r.key, r);
    return true;
  }

  /**
   * Forgets `r` at once and says nothing about what it still had queued (a newer instance of
   * the same identity replaced it); its `id:epoch` is retired as for any forgotten remote.
   */
  drop(r: RemotePeer): void {
    if (r.present && !this.#unlisted.delete(r.key)) this.#digest ^= idDigest(r.id);
    else if (r.present) this.#unlistedChanged();
    this.#departed.delete(r.key);
    this.#deadlines.set(r, undefined);
    this.#remotes.delete(r.key);
    if (this.#last === r) this.#last = undefined;
    this.#retire(r);
  }

  #retire(r: RemotePeer): void {
    this.#retired.add(`${r.key}:${idHex(r.epoch)}`);
    if (this.#retired.size > MAX_RETIRED) {
      this.#retired.delete(this.#retired.values().next().value!);
    }
  }

  /** Forgets departed remotes beyond the count or age limits; returns those forgotten. */
  forget(now: number): RemotePeer[] {
    const gone: RemotePeer[] = [];
    for (const r of this.#departed.values()) {
      if (this.#departed.size <= MAX_DEPARTED && r.goneAt! + DEPARTED_KEEP > now) break;
      this.#departed.delete(r.key);
      this.#remotes.delete(r.key);
      if (this.#last === r) this.#last = undefined;
      this.#retire(r);
      this.#forgottenUndelivered += r.outstanding;
      gone.push(r);
    }
    return gone;
  }

  /** Re-files `r`'s deadline after anything touched it. */
  track(r: RemotePeer): void {
    this.#deadlines.set(r, r.nextTimeout());
  }

  /** The remotes whose deadline is due at `now` (taken off the heap; {@link track} them). */
  popDue(now: number): RemotePeer[] {
    return this.#deadlines.popDue(now);
  }

  /** The earliest deadline: a remote's, an unlisted one's, or the oldest departure's end. */
  nextTimeout(): number | undefined {
    let t = this.#deadlines.peek() ?? Infinity;
    const oldest = this.#departed.values().next().value;
    if (oldest?.goneAt !== undefined) t = Math.min(t, oldest.goneAt + DEPARTED_KEEP);
    t = Math.min(t, this.#unlistedNext);
    return t === Infinity ? undefined : t;
  }

  /** The fingerprint of another present, established peer called `name`, if there is one. */
  nameHolder(name: string, except: { readonly key: string }): string | undefined {
    for (const r of this.#remotes.values()) {
      if (r.key !== except.key && r.present && r.established && r.name === name) {
        return r.fingerprint;
      }
    }
    return undefined;
  }

  /** Messages queued or in flight to present peers. */
  get outstanding(): number {
    let n = 0;
    for (const r of this.#remotes.values()) if (r.present) n += r.outstanding;
    return n;
  }

  /** Messages queued or in flight to departed peers still kept (given up if we leave now). */
  get departedOutstanding(): number {
    let n = 0;
    for (const r of this.#departed.values()) n += r.outstanding;
    return n;
  }

  /** Messages queued or in flight to present peers that answer (see {@link RemotePeer.answering}). */
  awaiting(now: number): number {
    let n = 0;
    for (const r of this.#remotes.values()) if (r.present && r.answering(now)) n += r.outstanding;
    return n;
  }

  /** The longest backlog among the peers taking messages (see {@link RemotePeer.backlog}). */
  backlog(now: number): number {
    let n = 0;
    for (const r of this.#remotes.values()) n = Math.max(n, r.backlog(now));
    return n;
  }

  /** Message parts never delivered to peers forgotten since (nothing is given up before). */
  get undelivered(): number {
    return this.#forgottenUndelivered;
  }

  /** The reliable channels' counters summed over the peers kept. */
  channelStats(): Record<string, number> {
    const sum: Record<string, number> = {};
    for (const r of this.#remotes.values()) {
      for (const [k, v] of Object.entries(r.channelStats)) sum[k] = (sum[k] ?? 0) + v;
    }
    return sum;
  }

  /** Birthday search counters summed over the peers kept. */
  birthdayStats(): { searches: number; hits: number; probes: number } {
    const sum = { searches: 0, hits: 0, probes: 0 };
    for (const r of this.#remotes.values()) {
      sum.searches += r.birthday.searches;
      sum.hits += r.birthday.hits;
      sum.probes += r.birthday.probes;
    }
    return sum;
  }

  /** The listing rows of the present, established peers. */
  infos(): PeerInfo[] {
    const out: PeerInfo[] = [];
    for (const r of this.#remotes.values()) {
      const info = r.present ? r.info() : undefined;
      if (info) out.push(info);
    }
    return out;
  }

  /** The name of peer `key`, if we know it. */
  nameOf(key: string): string | undefined {
    return this.#remotes.get(key)?.name;
  }

  /** What peer `key` told us about its relays, if it did. */
  relaysOf(key: string): PeerRelays | null | undefined {
    return this.#remotes.get(key)?.peerRelays;
  }

  /** Our direct path RTT to peer `key` in ms; null: no direct path (or not measured). */
  directRttOf(key: string): number | null {
    const r = this.#remotes.get(key);
    const info = r?.present ? r.info() : undefined;
    return info?.addr ? info.rtt : null;
  }
}
