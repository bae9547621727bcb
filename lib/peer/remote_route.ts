/**
 * How frames reach one remote peer and what its user is told of that: the path machine (made
 * once the handshake completes, on the direct path it proved if any), the birthday search, the
 * relay that reaches the peer (the server, or a supernode unless that one let frames stall),
 * probes while the peer is silent, the DATA the reliable channel has due, and the path news
 * ({@link PathReport}). {@link RemotePeer} (`lib/peer/remote.ts`) owns one per peer and sends every
 * sealed frame through {@link RemoteRoute.send}. Pure.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import { type InnerFrame, InnerKind, RTT_UNKNOWN } from "../wire/peer_frame.ts";
import { RelayWatch } from "./relay_watch.ts";
import type { BirthdayStats } from "./path/birthday.ts";
import { PairSearch } from "./path/pair_search.ts";
import { PathMachine } from "./path/path.ts";
import type { Proof } from "./handshake/transport.ts";
import type { ControlFrames } from "./control_frames.ts";
import { PathReport, type Shown } from "./remote_path_report.ts";
import { ShownPath } from "./shown_path.ts";
import { ProbeGate, STALLED_AFTER } from "./remote_probe_gate.ts";
import type { RemoteChannel } from "./remote_channel.ts";
import type { RemoteOutbox } from "./remote_outbox.ts";
import type { Introduction, PeerInfo, RemoteContext, RemoteOutput } from "./remote_context.ts";

const GOODBYE: InnerFrame = { kind: InnerKind.Goodbye };

/** What a {@link RemoteRoute} reads of the rest of its remote. */
export interface RouteParts {
  /** The client as remotes see it. */
  readonly ctx: RemoteContext;
  /** The peer's map key (id hex). */
  readonly key: string;
  /** Who the peer is, as its `peer` events name it. */
  readonly who: Shown;
  /** Where sealed frames go out. */
  readonly tx: RemoteOutbox;
  /** The reliable channel with the peer (its DATA due, its ACK owed). */
  readonly channel: RemoteChannel;
  /** The control frames (what the peer said of its NAT; a new path repeats candidates). */
  readonly control: ControlFrames;
  /** The peer's current introduction. */
  readonly intro: () => Introduction;
  /** True when we lead the pair's path choice (the handshake decides). */
  readonly leader: () => boolean;
}

/**
 * The route to one peer.
 *
 * Driving it: {@link RemotePeer} calls {@link start} once its handshake completes, {@link drive}
 * after every step, and drains {@link pollEvent} after each call that may report (`drive`,
 * {@link announce}, {@link heardRelayed}).
 */
export class RemoteRoute {
  #p: RouteParts;
  #path: PathMachine | null = null;
  #search: PairSearch;
  /** What the user was shown of the peer, and whether a path change is news. */
  #shown = new ShownPath();
  /** What the user is told of its path, on top of {@link ShownPath}. */
  #news = new PathReport(this.#shown);
  /** The supernode (its key) that let frames to this peer stall: not used for it any more. */
  #stalledOn: string | null = null;
  /** Probes to it while it does not answer: one every `QUIET_PROBE_GAP` at most. */
  #probes = new ProbeGate();
  /** What this pair sees of the supernode relaying it (see `lib/peer/relay_watch.ts`). */
  #watch = new RelayWatch();
  /** `relay-worse` news for the client (see {@link #worse}). */
  #relayNews: RemoteOutput[] = [];
  /** The DATA frame that gave up what the peer had not acknowledged when we left, if any. */
  #gap: InnerFrame | undefined;

  /** The route of the remote made of `parts`; no path until {@link start}. */
  constructor(parts: RouteParts) {
    this.#p = parts;
    const { ctx, control, intro } = parts;
    this.#search = new PairSearch(ctx.shared.birthday, ctx.shared.random, {
      relayOnly: () => ctx.settings.relayOnly || intro().relayOnly,
      ourNat: () => ctx.view.nat(),
      peerNat: () => control.peerNat,
      peerPublic: () => intro().candidates.find((c) => c.kind === "public")?.addr ?? null,
    });
  }

  /** The next path news, if any. */
  pollEvent(): RemoteOutput | undefined {
    return this.#relayNews.shift() ?? this.#news.pollEvent();
  }

  /** The path machine, once the handshake completed (null while departed or refused). */
  get path(): PathMachine | null {
    return this.#path;
  }

  /** The birthday search with this peer. */
  get search(): PairSearch {
    return this.#search;
  }

  /** Birthday search counters with this peer. */
  get birthday(): Readonly<BirthdayStats> {
    return this.#search.stats;
  }

  /** True while a direct path is selected. */
  get routed(): boolean {
    return (this.#path?.route() ?? null) !== null;
  }

  /** True when a supernode's relay (not one that stalled) reaches the peer. */
  get bySupernode(): boolean {
    return this.#p.ctx.view.supernodeFor(this.#p.key, this.#stalledOn) !== null;
  }

  /** A direct path to it has worked (since it was last introduced). */
  get wasDirect(): boolean {
    return this.#news.wasDirect;
  }

  /** True once a `peer` event showed it since it was last introduced (and until it left). */
  get shown(): boolean {
    return this.#shown.shown;
  }

  /** It will not be shown as leaving. */
  hide(): void {
    this.#shown.hide();
  }

  /** It authenticated something: a path held back may be shown (see {@link ShownPath.heard}). */
  heard(): void {
    this.#shown.heard();
  }

  /** Back after leaving: a fresh path once the link is up. */
  returned(): void {
    this.#shown.returned();
  }

  /** New candidates from a repeated introduction. */
  updateCandidates(now: number, intro: Introduction): void {
    this.#path?.updateCandidates(now, intro.candidates);
  }

  /** It left: no path, no search, nothing shown until it is back. */
  depart(): void {
    this.#path = null;
    this.#shown.hide();
    this.#search.close();
  }

  /** Refused for good: no path, and the search's sockets go back. */
  close(): void {
    this.#path = null;
    this.#search.close();
  }

  /**
   * The handshake completed: the path starts, on the direct path it `proven` if it did, told of
   * where the handshake `seen` the peer (read only when the path is new).
   */
  start(
    now: number,
    proven: Proof | null,
    seen: () => { addr: Endpoint; via: number } | null,
  ): void {
    if (this.#path) {
      if (proven) this.#path.onHandshakeDirect(now, proven.addr, proven.via, proven.rtt);
      return;
    }
    const { ctx, control } = this.#p;
    control.pathStarted(ctx.view.extraCandidates().length > 0);
    this.#path = new PathMachine(now, this.#p.intro().candidates, {
      relayOnly: ctx.settings.relayOnly || this.#p.intro().relayOnly,
      initiator: this.#p.leader(),
      options: ctx.settings.path,
      budget: ctx.shared.probeBudget,
      ...(proven ? { proven } : {}),
    });
    const at = seen();
    if (at) this.#path.onPeerSeen(now, at.addr, at.via);
  }

  /** Earliest time the path, the channel or the search has work (none before the path). */
  nextTimeout(): number | undefined {
    if (!this.#path) return undefined;
    const t = Math.min(
      this.#path.nextTimeout() ?? Infinity,
      this.#p.channel.nextTimeout() ?? Infinity,
      this.#search.nextTimeout(this.#path) ?? Infinity,
    );
    return t === Infinity ? undefined : t;
  }

  /** Seals `f` and sends it to `to` from socket `via`, or along the path when `to` is absent. */
  send(now: number, f: InnerFrame, to?: Endpoint | null, via = 0): void {
    this.#p.tx.frame(now, f, this.#path, this.#stalledOn, to, via);
  }

  /** Queues an already sealed datagram through the relay that reaches the peer now. */
  relay(data: Uint8Array): void {
    this.#p.tx.relay(data, this.#stalledOn);
  }

  /**
   * Says goodbye along the path; on the relay, a copy also goes to the direct endpoint that
   * worked last (a peer that was stopped reads it from its socket when it runs again). What the
   * peer has not acknowledged is given up, and the DATA frame that says so goes first, each time,
   * so the peer is told how much it missed (see `ReliableChannel.giveUp`).
   */
  goodbye(now: number): void {
    const gave = this.#p.channel.giveUp();
    if (gave) this.#gap = { kind: InnerKind.Data, ...gave };
    // What arrived from it, with every GOODBYE: an ACK lost on the way would otherwise leave it
    // believing that lines we received never reached us.
    const ack = this.#p.channel.currentAckOut()?.frame;
    const frames: InnerFrame[] = [
      ...(ack ? [ack] : []),
      ...(this.#gap ? [this.#gap] : []),
      GOODBYE,
    ];
    const last = this.#news.lastDirect;
    const copy = last && !this.#path?.route() && !this.#p.ctx.settings.relayOnly;
    for (const f of frames) {
      this.send(now, f);
      if (copy) this.send(now, f, last.addr, last.via);
    }
  }

  /**
   * Sends what the path is due: the channel's DATA and ACK, the birthday search's frames, the
   * path machine's probes and repunches; then reports what the path machine decided. Call with
   * the path started.
   */
  drive(now: number): void {
    const path = this.#path!;
    const channel = this.#p.channel;
    this.#sendData(now, path);
    const ack = channel.pollAckOut(now);
    if (ack) this.send(now, ack.frame, ack.to, ack.via);
    // The birthday search: its agreement frames go relayed, its probes through the path.
    for (const b of this.#search.drive(now, path)) {
      this.send(now, { kind: InnerKind.Birthday, ...b }, null);
    }
    for (let a = path.pollAction(); a; a = path.pollAction()) {
      if (a.type !== "probe") {
        this.#p.tx.repunch();
        continue;
      }
      // Queued before the search let that socket go: sending would open it again.
      if (a.via && !this.#search.holds(a.via)) continue;
      if (!this.#probes.mayProbe(now, path.route() !== null, channel.stalledFor(now))) continue;
      this.send(now, { kind: InnerKind.Probe, txid: a.txid }, a.to, a.via);
    }
    this.#report(now, path);
  }

  /** Data was delivered from `from` (null: relayed): a peer not yet shown is shown now. */
  announce(from: Endpoint | null): void {
    if (this.#shown.announced) return;
    this.#news.announce(
      from ? "direct" : "relay",
      from,
      null,
      true,
      this.#relayName(),
      this.#p.who,
    );
  }

  /** A frame came from the peer through the relay: a relayed path held back is shown now. */
  heardRelayed(): void {
    this.#news.heardRelayed(this.#path?.route() != null, this.#relayName(), this.#p.who);
  }

  /** The `/peers` row. */
  info(): PeerInfo {
    const route = this.#path?.route() ?? null;
    // Relayed: the round trip of messages through the relay, as the channel measures it.
    const srtt = this.#p.channel.srtt;
    const rtt = route ? this.#path?.rtt ?? null : srtt === undefined ? null : Math.round(srtt);
    const relay = route ? null : this.#relayName();
    return this.#news.row(this.#p.who, route, rtt, relay, this.#p.channel.outstanding);
  }

  /** The oldest payload in flight was acknowledged `delay` ms after it was first sent. */
  acked(delay: number): void {
    this.#watch.acked(delay);
  }

  /** Sends the DATA due; a timed-out resend makes the path (or the relay) suspect. */
  #sendData(now: number, path: PathMachine): void {
    const channel = this.#p.channel;
    const view = this.#p.ctx.view;
    this.#watch.through(path.route() ? null : view.supernodeFor(this.#p.key, this.#stalledOn));
    for (const d of channel.pollData(now)) {
      this.send(now, { kind: InnerKind.Data, ...d });
      this.#watch.sent(d.reason === "timeout");
      // Only a timed-out resend says something about the path; a path change's resends don't.
      if (d.reason !== "timeout") continue;
      if (path.route()) path.suspect(now);
      else if (this.#news.relayedBy !== null && channel.stalledFor(now) >= STALLED_AFTER) {
        // Relayed by a supernode and nothing acknowledged for a while: the server relays.
        const sup = this.#p.ctx.view.supernodeFor(this.#p.key, this.#stalledOn);
        if (sup !== null) this.#worse(sup);
      }
    }
    // Relayed by a supernode that holds back or loses what it relays: the server relays.
    const watched = this.#watch.key;
    if (watched !== null && this.#watch.worse(this.#serverSum())) this.#worse(watched);
  }

  /**
   * Supernode `sup` relays this pair worse than the server would: the server relays it, and the
   * client leaves `sup` (`relay-worse`: every pair it relays would fare the same).
   */
  #worse(sup: string): void {
    this.#stalledOn = sup;
    this.#relayNews.push({ type: "relay-worse", supernode: sup });
  }

  /** Both sides' RTTs to the server, summed, when both are known (see `relay_watch.ts`). */
  #serverSum(): number | null {
    const mine = this.#p.ctx.view.relays()?.serverRtt;
    const theirs = this.#p.control.peerRelays?.serverRtt;
    if (mine === undefined || theirs === undefined) return null;
    if (mine === RTT_UNKNOWN || theirs === RTT_UNKNOWN) return null;
    return mine + theirs;
  }

  /**
   * Reports what the path machine decided (or, on the same relayed path, another relay), and
   * resends what is in flight the new way at once (see {@link PathReport.report}).
   */
  #report(now: number, path: PathMachine): void {
    let changed;
    for (let e = path.pollEvent(); e; e = path.pollEvent()) changed = e;
    if (changed?.path === "direct") {
      this.#news.directWorked(changed.addr!, path.routeVia());
      this.#search.onDirect(now, path.routeVia());
    }
    if (changed && changed.rtt !== null) this.#p.channel.seedRtt(changed.rtt);
    if (this.#news.report(changed, path.route() != null, this.#relayName(), this.#p.who)) {
      this.#p.channel.expedite(now);
      for (const d of this.#p.channel.pollData(now)) this.send(now, { kind: InnerKind.Data, ...d });
    }
  }

  /** The name of the supernode relaying to this peer now, or null for the server. */
  get relayName(): string | null {
    return this.#relayName();
  }

  #relayName(): string | null {
    const view = this.#p.ctx.view;
    const sup = view.supernodeFor(this.#p.key, this.#stalledOn);
    return sup === null ? null : view.supernodeName(sup);
  }
}
