/**
 * The joining peer's pure core: registration with the server, one path machine, one
 * reliable channel and one end-to-end session per remote peer, and chat messages in and out.
 * Sans-IO: feed it `(now, from, datagram)`, typed lines and timer ticks; drain datagrams and
 * events.
 *
 * @module
 */
import { compareBytes, Identity, type PairSession, randomId } from "./crypto.ts";
import { type Candidate, type PathEvent, PathMachine, type PathOptions } from "./path.ts";
import { ReliableChannel, type ReliableOptions } from "./reliable.ts";
import {
  COOKIE_LEN,
  decodeInner,
  decodeSealed,
  decodeServerMsg,
  encodeInner,
  encodeSealedHeader,
  encodeServerMsg,
  type Endpoint,
  FLAG_RELAY_ONLY,
  idHex,
  type InnerFrame,
  InnerKind,
  isUsableCandidate,
  MAX_FRAGMENT,
  MsgType,
  peekType,
  RefuseCode,
  rosterDigest,
  sameEndpoint,
  type ServerMsg,
  type Transmit,
} from "./wire.ts";

/** Longest chat message in bytes of UTF-8; longer lines are refused with a notice. */
export const MAX_MESSAGE = 64 * 1024;

/** Options of a joining peer. */
export interface ClientOptions {
  /** The rendezvous server (literal IP). */
  server: Endpoint;
  /** Room to join. */
  room: string;
  /** Wanted name (the server may suffix it to keep names unique). */
  name: string;
  /** Never punch, never reveal addresses: everything goes through the relay. */
  relayOnly: boolean;
  /** This host's private endpoints (interface addresses with the bound port). */
  privateEndpoints: Endpoint[];
  /** Keepalive interval towards the server and on direct paths, in ms. */
  keepalive: number;
  /** Give up the first registration after this long without an answer, in ms. */
  registerTimeout: number;
  /** Timing of path machines (keepalive is taken from `keepalive`). */
  path?: Partial<PathOptions>;
  /** Tunables of reliable channels. */
  reliable?: Partial<ReliableOptions>;
  /** Fixed identity (tests); a fresh one by default. */
  identity?: Identity;
  /** Fixed peer id (tests); random by default. */
  id?: Uint8Array;
}

/** Defaults for the optional numeric options. */
export const DEFAULT_CLIENT = { keepalive: 25_000, registerTimeout: 10_000 } as const;

/** What a peer reports to its user. */
export type ClientEvent =
  | { type: "ready"; name: string; public: Endpoint }
  | {
    type: "peer";
    name: string;
    path: "direct" | "relay";
    addr: Endpoint | null;
    rtt: number | null;
  }
  | { type: "message"; from: string; text: string }
  | { type: "left"; name: string; reason: "bye" | "expired" | "gone" }
  | { type: "server-lost" }
  | { type: "server-back"; public: Endpoint }
  | { type: "notice"; message: string }
  | { type: "fatal"; message: string };

/** One row of {@link Client.peers}. */
export interface PeerInfo {
  /** Peer's name. */
  name: string;
  /** Current path, or `pending` while the first punch round runs. */
  path: "direct" | "relay" | "pending";
  /** Direct endpoint, if direct. */
  addr: Endpoint | null;
  /** Direct path RTT in ms, if direct. */
  rtt: number | null;
  /** Messages queued or in flight to this peer. */
  outstanding: number;
}

interface Remote {
  id: Uint8Array;
  key: string;
  name: string;
  pubkey: Uint8Array;
  session: PairSession;
  path: PathMachine;
  channel: ReliableChannel;
  fragments: Uint8Array[];
  fragmentBytes: number;
  discarding: boolean;
  announced: boolean;
  /** True once any authenticated frame came from this peer (so it knows us). */
  heard: boolean;
  /** When the next ANNOUNCE is due (they repeat, backing off, until we hear from the peer). */
  nextAnnounce: number;
  /** ANNOUNCEs sent since the peer was (re-)introduced. */
  announces: number;
  goneAt: number | undefined;
}

type Phase = "registering" | "registered";

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const SERVER_LOST_AFTER = 10_000;
/** First gap between ANNOUNCEs to a peer we have not heard from yet (ms); it doubles. */
const ANNOUNCE_INTERVAL = 500;

/** The peer's pure core. */
export class Client {
  #o: ClientOptions;
  #id: Uint8Array;
  #identity: Identity;
  #phase: Phase = "registering";
  #everRegistered = false;
  #startedAt: number | undefined;
  #helloTries = 0;
  #nextHello = 0;
  #name: string;
  #public: Endpoint | undefined;
  #nextPing = 0;
  #pingAwaitingSince: number | undefined;
  #serverLost = false;
  #lastSync = -Infinity;
  #remotes = new Map<string, Remote>();
  #out: Transmit[] = [];
  #events: ClientEvent[] = [];
  #closed = false;
  #synced = false;
  #cookie: Uint8Array = new Uint8Array(COOKIE_LEN);
  /** Dropped datagrams by reason. */
  readonly drops: Record<string, number> = {};

  /** Makes a client; call {@link start} to begin registering. */
  constructor(options: ClientOptions) {
    this.#o = options;
    this.#id = options.id ?? randomId(8);
    this.#identity = options.identity ?? Identity.generate();
    this.#name = options.name;
  }

  /** This peer's id. */
  get id(): Uint8Array {
    return this.#id;
  }

  /** The name the server assigned (the wanted one until registered). */
  get name(): string {
    return this.#name;
  }

  /**
   * True once the server's roster has arrived after registering: the peers present then are
   * known, so a message sent now reaches all of them.
   */
  get synced(): boolean {
    return this.#synced;
  }

  /** True once the server has acknowledged us. */
  get registered(): boolean {
    return this.#phase === "registered";
  }

  /** Messages queued or in flight to present peers; zero means all were acknowledged. */
  get outstanding(): number {
    let n = 0;
    for (const r of this.#remotes.values()) if (r.goneAt === undefined) n += r.channel.outstanding;
    return n;
  }

  /** The peers present in the room. */
  peers(): PeerInfo[] {
    return [...this.#remotes.values()].filter((r) => r.goneAt === undefined).map((r) => ({
      name: r.name,
      path: r.announced ? (r.path.route() ? "direct" : "relay") : "pending",
      addr: r.path.route(),
      rtt: r.path.rtt,
      outstanding: r.channel.outstanding,
    }));
  }

  /** Takes the next datagram to send, if any. */
  pollTransmit(): Transmit | undefined {
    return this.#out.shift();
  }

  /** Takes the next event for the user, if any. */
  pollEvent(): ClientEvent | undefined {
    return this.#events.shift();
  }

  #drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  #toServer(m: ServerMsg): void {
    this.#out.push({ to: this.#o.server, data: encodeServerMsg(m) });
  }

  /** Starts registering. */
  start(now: number): void {
    this.#startedAt = now;
    this.#sendHello(now);
  }

  #sendHello(now: number): void {
    this.#toServer({
      type: MsgType.Hello,
      id: this.#id,
      cookie: this.#cookie,
      pubkey: this.#identity.publicKey,
      flags: this.#o.relayOnly ? FLAG_RELAY_ONLY : 0,
      room: this.#o.room,
      name: this.#name,
      privateEndpoints: this.#o.relayOnly ? [] : this.#o.privateEndpoints,
    });
    this.#helloTries++;
    this.#nextHello = now + Math.min(250 * 2 ** (this.#helloTries - 1), 2_000);
  }

  /** Sends a chat line to every peer present. Returns how many peers it was queued for. */
  send(now: number, text: string): number {
    const bytes = textEncoder.encode(text);
    if (bytes.length > MAX_MESSAGE) {
      this.#events.push({
        type: "notice",
        message: `Message is ${bytes.length} bytes; the limit is ${MAX_MESSAGE}. Not sent.`,
      });
      return 0;
    }
    const parts = fragment(bytes);
    let n = 0;
    for (const r of this.#remotes.values()) {
      if (r.goneAt !== undefined) continue;
      parts.forEach((p, i) => r.channel.push(p, i < parts.length - 1));
      n++;
    }
    this.#pump(now);
    return n;
  }

  /** Says goodbye to the server (the caller flushes and exits afterwards). */
  leave(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#phase === "registered") this.#toServer({ type: MsgType.Bye, id: this.#id });
  }

  /** Earliest time {@link handleTimeout} has work. */
  nextTimeout(): number | undefined {
    if (this.#closed) return undefined;
    const ts: number[] = [this.#phase === "registering" ? this.#nextHello : this.#nextPing];
    if (!this.#everRegistered && this.#startedAt !== undefined) {
      ts.push(this.#startedAt + this.#o.registerTimeout);
    }
    for (const r of this.#remotes.values()) {
      if (r.goneAt !== undefined) continue;
      const a = r.path.nextTimeout(), b = r.channel.nextTimeout();
      if (a !== undefined) ts.push(a);
      if (b !== undefined) ts.push(b);
      if (!r.heard) ts.push(r.nextAnnounce);
    }
    return Math.min(...ts);
  }

  /** Advances timers. */
  handleTimeout(now: number): void {
    if (this.#closed) return;
    if (this.#phase === "registering") {
      if (
        !this.#everRegistered && this.#startedAt !== undefined &&
        now - this.#startedAt >= this.#o.registerTimeout
      ) {
        this.#closed = true;
        const s = this.#o.server;
        this.#events.push({
          type: "fatal",
          message: `No answer from the server at ${s.hostname}:${s.port} after ${
            Math.round(this.#o.registerTimeout / 1000)
          } s; check the address and that "p2p serve" runs there`,
        });
        return;
      }
      if (now >= this.#nextHello) this.#sendHello(now);
    } else if (now >= this.#nextPing) {
      this.#ping(now);
    }
    for (const r of this.#remotes.values()) {
      // A departed peer's session and channel are kept for the life of the process: if the
      // same peer (id and key) comes back, sequence numbers and nonce counters must go on
      // where they stopped, or messages would be lost and nonces reused. The cost is small
      // and bounded by the peers ever met; no new message is queued for a departed peer, and
      // what was in flight is resent if it returns.
      if (r.goneAt !== undefined) continue;
      r.path.handleTimeout(now);
      this.#drivePath(now, r);
      this.#maybeAnnounce(now, r);
    }
    this.#pump(now);
  }

  #ping(now: number): void {
    if (this.#pingAwaitingSince === undefined) this.#pingAwaitingSince = now;
    const waited = now - this.#pingAwaitingSince;
    if (waited >= SERVER_LOST_AFTER && !this.#serverLost) {
      this.#serverLost = true;
      this.#events.push({ type: "server-lost" });
    }
    this.#sendPing();
    // While awaiting a PONG, retry sooner (1 s, 2 s, 4 s …) up to the keepalive interval.
    this.#nextPing = now +
      (waited === 0
        ? Math.min(1_000, this.#o.keepalive)
        : Math.min(Math.max(waited, 1_000), this.#o.keepalive));
  }

  /** A PING with our cookie and the digest of the peers we know (the server resyncs us). */
  #sendPing(): void {
    this.#toServer({
      type: MsgType.Ping,
      id: this.#id,
      cookie: this.#cookie,
      digest: this.#digest(),
    });
  }

  #digest(): number {
    const ids: Uint8Array[] = [];
    for (const r of this.#remotes.values()) if (r.goneAt === undefined) ids.push(r.id);
    return rosterDigest(ids);
  }

  /** Handles one datagram received from `from`. Never throws on bad input. */
  handleDatagram(now: number, from: Endpoint, data: Uint8Array): void {
    if (this.#closed) return;
    const t = peekType(data);
    if (!t.ok) return this.#drop(t.reason);
    if (t.value === MsgType.Sealed) {
      if (this.#o.relayOnly) return this.#drop("direct-while-relay-only");
      this.#peerFrame(now, data, from);
    } else if (sameEndpoint(from, this.#o.server)) {
      this.#serverMsg(now, data);
    } else {
      return this.#drop("unexpected-source");
    }
    this.#pump(now);
  }

  #serverMsg(now: number, data: Uint8Array): void {
    const d = decodeServerMsg(data);
    if (!d.ok) return this.#drop(d.reason);
    const m = d.value;
    switch (m.type) {
      case MsgType.Welcome: {
        if (compareBytes(m.id, this.#id) !== 0) return this.#drop("welcome-other-id");
        this.#serverAlive(now);
        if (this.#phase === "registered") return;
        this.#phase = "registered";
        this.#nextPing = now + this.#o.keepalive;
        this.#public = m.observed;
        if (!this.#everRegistered) {
          this.#everRegistered = true;
          if (m.name !== this.#name) {
            this.#events.push({
              type: "notice",
              message: `The name "${this.#name}" is taken in this room; you are "${m.name}"`,
            });
          }
          this.#name = m.name;
          this.#events.push({ type: "ready", name: m.name, public: m.observed });
        } else {
          this.#name = m.name;
          this.#events.push({ type: "server-back", public: m.observed });
        }
        return;
      }
      case MsgType.Refused:
        if (m.code === RefuseCode.Unknown) {
          // The server forgot us (restart or expiry): register again with the same id.
          if (this.#phase === "registered") {
            this.#phase = "registering";
            this.#helloTries = 0;
            this.#sendHello(now);
          }
          return;
        }
        if (!this.#everRegistered) {
          this.#closed = true;
          this.#events.push({
            type: "fatal",
            message: `The server refused to register us: ${m.message}`,
          });
        } else {
          this.#events.push({
            type: "notice",
            message: `The server refused a request: ${m.message}`,
          });
        }
        return;
      case MsgType.Pong:
        this.#serverAlive(now);
        return;
      case MsgType.Cookie:
        // The server wants proof that we receive at our address: repeat the request with it.
        this.#cookie = m.cookie;
        if (this.#phase === "registering") this.#sendHello(now);
        else this.#sendPing();
        return;
      case MsgType.Intro:
        return this.#intro(now, m);
      case MsgType.Left: {
        const r = this.#remotes.get(idHex(m.id));
        if (r) this.#gone(now, r, m.reason === 2 ? "expired" : "bye");
        return;
      }
      case MsgType.Roster: {
        if (this.#phase === "registered") this.#synced = true;
        const present = new Set(m.ids.map(idHex));
        for (const r of this.#remotes.values()) {
          if (r.goneAt === undefined && !present.has(r.key)) this.#gone(now, r, "gone");
        }
        return;
      }
      case MsgType.Relayed:
        return this.#peerFrame(now, m.payload, null, m.from);
      default:
        return this.#drop("unexpected-type");
    }
  }

  #serverAlive(now: number): void {
    if (this.#phase === "registered" && this.#pingAwaitingSince !== undefined) {
      this.#nextPing = now + this.#o.keepalive;
    }
    this.#pingAwaitingSince = undefined;
    if (this.#serverLost && this.#phase === "registered") {
      this.#serverLost = false;
      this.#events.push({ type: "server-back", public: this.#public! });
    }
  }

  #intro(now: number, m: Extract<ServerMsg, { type: 0x04 }>): void {
    if (compareBytes(m.id, this.#id) === 0) return this.#drop("intro-self");
    const key = idHex(m.id);
    // Defence in depth against a hostile server or peer: probe only unicast endpoints.
    const candidates: Candidate[] = [
      ...m.privateEndpoints.filter((e) => isUsableCandidate(e))
        .map((addr) => ({ addr, kind: "private" as const })),
      ...(m.publicEndpoint && isUsableCandidate(m.publicEndpoint, true)
        ? [{ addr: m.publicEndpoint, kind: "public" as const }]
        : []),
    ];
    const known = this.#remotes.get(key);
    if (known && compareBytes(known.pubkey, m.pubkey) !== 0) return this.#drop("intro-key-changed");
    if (known && known.name !== m.name) {
      // Names are unique per room at any moment; a returning peer may carry a new suffix.
      this.#events.push({ type: "notice", message: `"${known.name}" is now called "${m.name}"` });
      known.name = m.name;
    }
    if (known && known.goneAt === undefined) {
      known.path.updateCandidates(now, candidates);
      this.#drivePath(now, known);
      return;
    }
    const relayOnly = this.#o.relayOnly || (m.flags & FLAG_RELAY_ONLY) !== 0;
    const path = new PathMachine(now, candidates, {
      relayOnly,
      initiator: compareBytes(this.#id, m.id) < 0,
      options: { keepalive: this.#o.keepalive, ...this.#o.path },
    });
    if (known) {
      // Back after leaving (e.g. the server expired it briefly): keep the reliable channel so
      // sequence numbers continue and nothing is delivered twice.
      known.goneAt = undefined;
      known.path = path;
      known.announced = false;
      known.heard = false;
      known.nextAnnounce = now;
      known.announces = 0;
      this.#maybeAnnounce(now, known);
      this.#drivePath(now, known);
      return;
    }
    const session = this.#identity.sessionWith(m.pubkey);
    if (!session) return this.#drop("intro-bad-key");
    const r: Remote = {
      id: m.id,
      key,
      name: m.name,
      pubkey: m.pubkey,
      session,
      path,
      channel: new ReliableChannel(this.#o.reliable),
      fragments: [],
      fragmentBytes: 0,
      discarding: false,
      announced: false,
      heard: false,
      nextAnnounce: now,
      announces: 0,
      goneAt: undefined,
    };
    this.#remotes.set(key, r);
    this.#maybeAnnounce(now, r);
    this.#drivePath(now, r);
  }

  /**
   * If our introduction to `r` was lost, it can neither answer our probes nor read our
   * frames. Until we hear from it, a relayed ANNOUNCE (at 0, 0.5, 1.5, 3.5 s …, gaps capped
   * at 8 s) makes it ask the server to resync.
   */
  #maybeAnnounce(now: number, r: Remote): void {
    if (r.heard || now < r.nextAnnounce) return;
    this.#sendFrame(now, r, { kind: InnerKind.Announce }, null);
    r.nextAnnounce = now + Math.min(ANNOUNCE_INTERVAL * 2 ** r.announces++, 8_000);
  }

  #gone(now: number, r: Remote, reason: "bye" | "expired" | "gone"): void {
    if (r.goneAt !== undefined) return;
    r.goneAt = now;
    this.#events.push({ type: "left", name: r.name, reason });
  }

  /** Executes a path machine's actions and turns its events into user events. */
  #drivePath(now: number, r: Remote): void {
    for (let a = r.path.pollAction(); a; a = r.path.pollAction()) {
      if (a.type === "probe") {
        this.#sendFrame(now, r, { kind: InnerKind.Probe, txid: a.txid }, a.to);
      } else {
        this.#toServer({ type: MsgType.Repunch, id: this.#id, target: r.id });
      }
    }
    let changed: PathEvent | undefined;
    for (let e = r.path.pollEvent(); e; e = r.path.pollEvent()) changed = e;
    if (!changed) return;
    r.announced = true;
    if (changed.rtt !== null) r.channel.seedRtt(changed.rtt);
    // Resend whatever is in flight over the new path right away.
    r.channel.expedite(now);
    this.#events.push({
      type: "peer",
      name: r.name,
      path: changed.path,
      addr: changed.addr,
      rtt: changed.rtt,
    });
  }

  /** Seals `f` for `r` and sends it to `to`, or along the path (direct or relay). */
  #sendFrame(now: number, r: Remote, f: InnerFrame, to?: Endpoint | null): void {
    const counter = r.session.nextCounter();
    const header = encodeSealedHeader(this.#id, r.id, counter);
    const body = r.session.seal(counter, header, encodeInner(f));
    const frame = new Uint8Array(header.length + body.length);
    frame.set(header);
    frame.set(body, header.length);
    const dest = to === undefined ? r.path.route() : to;
    if (dest && !this.#o.relayOnly) {
      if (to === undefined) r.path.onSentDirect(now);
      this.#out.push({ to: dest, data: frame });
    } else {
      this.#toServer({ type: MsgType.Relay, from: this.#id, to: r.id, payload: frame });
    }
  }

  #peerFrame(now: number, data: Uint8Array, via: Endpoint | null, relayedFrom?: Uint8Array): void {
    const d = decodeSealed(data);
    if (!d.ok) return this.#drop(d.reason);
    const s = d.value;
    if (compareBytes(s.to, this.#id) !== 0) return this.#drop("not-for-us");
    if (relayedFrom && compareBytes(relayedFrom, s.from) !== 0) return this.#drop("relay-mismatch");
    const r = this.#remotes.get(idHex(s.from));
    if (!r || r.goneAt !== undefined) {
      this.#drop("unknown-peer");
      // Our view of the room may be stale (a lost INTRO): ask the server to resync.
      if (this.#phase === "registered" && now - this.#lastSync >= 1_000) {
        this.#lastSync = now;
        this.#sendPing();
      }
      return;
    }
    const plain = r.session.open(s.counter, s.header, s.body);
    if (!plain) return this.#drop("auth-failed");
    r.heard = true;
    const inner = decodeInner(plain);
    if (!inner.ok) return this.#drop(inner.reason);
    const f = inner.value;
    if (via) r.path.onDirectTraffic(now, via);
    switch (f.kind) {
      case InnerKind.Probe:
        if (!via) return this.#drop("probe-via-relay");
        r.path.onProbe(now, via);
        this.#sendFrame(now, r, { kind: InnerKind.ProbeAck, txid: f.txid, observed: via }, via);
        break;
      case InnerKind.ProbeAck:
        if (!via) return this.#drop("probe-via-relay");
        r.path.onProbeAck(now, via, f.txid);
        break;
      case InnerKind.Data: {
        const { deliver, ack } = r.channel.onData(f.seq, f.more, f.text);
        // Answer the way the data came, so acks flow even while paths disagree.
        this.#sendFrame(now, r, { kind: InnerKind.Ack, ...ack }, via);
        for (const part of deliver) this.#reassemble(r, part.more, part.text);
        break;
      }
      case InnerKind.Ack:
        r.channel.onAck(now, f);
        break;
      case InnerKind.Announce:
        break; // We know the sender (or we would have resynced above): nothing to do.
    }
    this.#drivePath(now, r);
  }

  #reassemble(r: Remote, more: boolean, text: Uint8Array): void {
    if (r.fragmentBytes + text.length > MAX_MESSAGE) {
      // Longer than any honest sender sends: drop the whole message, keep the stream going.
      this.#drop("message-too-long");
      r.discarding = more;
      r.fragments = [];
      r.fragmentBytes = 0;
      return;
    }
    if (r.discarding) {
      r.discarding = more;
      return;
    }
    r.fragments.push(text);
    r.fragmentBytes += text.length;
    if (more) return;
    const all = new Uint8Array(r.fragmentBytes);
    let o = 0;
    for (const p of r.fragments) {
      all.set(p, o);
      o += p.length;
    }
    r.fragments = [];
    r.fragmentBytes = 0;
    this.#events.push({ type: "message", from: r.name, text: textDecoder.decode(all) });
  }

  /** Sends what the reliable channels have ready and flags struggling direct paths. */
  #pump(now: number): void {
    for (const r of this.#remotes.values()) {
      if (r.goneAt !== undefined) continue;
      for (const d of r.channel.pollData(now)) {
        this.#sendFrame(now, r, { kind: InnerKind.Data, seq: d.seq, more: d.more, text: d.text });
        if (d.retransmit && r.path.route()) r.path.suspect(now);
      }
      this.#drivePath(now, r);
    }
  }
}

/** Splits UTF-8 bytes into fragments of at most MAX_FRAGMENT bytes on code-point boundaries. */
export function fragment(bytes: Uint8Array): Uint8Array[] {
  if (bytes.length <= MAX_FRAGMENT) return [bytes];
  const out: Uint8Array[] = [];
  let start = 0;
  while (start < bytes.length) {
    let end = Math.min(start + MAX_FRAGMENT, bytes.length);
    // Back off continuation bytes (10xxxxxx) so no code point is split.
    while (end < bytes.length && end > start && (bytes[end]! & 0xc0) === 0x80) end--;
    if (end === start) end = Math.min(start + MAX_FRAGMENT, bytes.length); // Not UTF-8.

    out.push(bytes.subarray(start, end));
    start = end;
  }
  return out;
}
