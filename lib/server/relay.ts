/**
 * The registry's relay (`docs/protocol.md` 6.7): a RELAY from a registered member, at its
 * address and with its token, to another member of its room is forwarded as a RELAYED, within
 * the sender's relay budgets (all it relays, and per destination). RELAY is most of a server's
 * traffic, so it is handled without decoding it into a message: ids are read in place, the token
 * compared in place, and the RELAYED is written straight into slab bytes with one copy of the
 * payload (`tests/server/relay_fast_test.ts` holds it to the codec). Pure.
 *
 * @module
 */
import { TokenBucket } from "../core/limits.ts";
import type { Endpoint } from "../wire/address.ts";
import { MAGIC0, MAGIC1, MAX_DATAGRAM, MsgType, PROTOCOL_VERSION } from "../wire/header.ts";
import {
  MAX_RELAY_PAYLOAD,
  RefuseCode,
  RELAY_HEADER_LEN,
  RELAYED_HEADER_LEN,
  TOKEN_LEN,
} from "../wire/server_msg.ts";
import { type Member, nameOf, type RelayState, tokenOf } from "./member.ts";
import type { Members } from "./members.ts";
import type { RegistryOptions } from "./options.ts";
import type { Outbox } from "./outbox.ts";

/** Least time between two REFUSED Limit notices to one member, in ms. */
const NOTICE_INTERVAL = 5_000;

/** Forwards RELAYs between members. */
export class Relay {
  #o: RegistryOptions;
  #members: Members;
  #out: Outbox;
  /** A view of the last receive buffer seen, for reading ids out of RELAYs without copies. */
  #view: DataView = new DataView(new ArrayBuffer(0));

  /** The server-wide relay budget (made on first use). */
  #total: TokenBucket | undefined;

  /**
   * Where a RELAY to a member of another cluster server goes, after this server's checks and
   * budgets (set by the cluster part; such RELAYs are dropped without one).
   */
  remote: ((src: Member, dst: Member, payload: Uint8Array) => void) | undefined;

  /** A relay among `members`, under the budgets of `o`, sending to `out`. */
  constructor(o: RegistryOptions, members: Members, out: Outbox) {
    this.#o = o;
    this.#members = members;
    this.#out = out;
  }

  /**
   * Forwards a RELAY (`data`, whose header says RELAY) as a RELAYED, or drops it with a reason
   * (`relay-unknown-sender`, `relay-bad-token`, `relay-unknown-target`, `relay-limit`,
   * `relay-oversize`, `malformed`).
   */
  handle(now: number, from: Endpoint, data: Uint8Array): void {
    const len = data.length;
    if (len < RELAY_HEADER_LEN) return this.#out.drop("malformed");
    const oversize = len > MAX_DATAGRAM;
    if (oversize) this.#out.drop("relay-oversize");
    if (this.#view.buffer !== data.buffer) this.#view = new DataView(data.buffer);
    const v = this.#view, at = data.byteOffset;
    const src = this.#members.get(v.getBigUint64(at + 4));
    if (
      !src || src.addr.port !== from.port || src.addr.hostname !== from.hostname ||
      src.addr.stream !== from.stream
    ) {
      return oversize ? undefined : this.#out.drop("relay-unknown-sender");
    }
    // The token (bytes 12..20), without an early exit.
    if (((v.getInt32(at + 12) ^ src.tok0) | (v.getInt32(at + 16) ^ src.tok1)) !== 0) {
      return oversize ? undefined : this.#out.drop("relay-bad-token");
    }
    if (oversize) return this.#tooLarge(now, src);
    this.#members.touch(src, now);
    const dst = this.#members.get(v.getBigUint64(at + 20));
    if (!dst || dst.room !== src.room || dst === src) {
      return this.#out.drop("relay-unknown-target");
    }
    const rs = relayState(src, now, this.#o);
    if (!rs.to.has(dst)) this.#firstTo(now, src, rs, dst);
    const bytes = len - RELAY_HEADER_LEN;
    if (!this.#withinBudget(now, src, rs, dst, bytes)) return;
    this.#forward(data, src, dst, bytes);
  }

  /**
   * A payload from `src`, a member of another cluster server, for our member `dst`, that its
   * server checked and charged: within `dst`'s receive budget, a RELAYED.
   */
  deliver(now: number, src: Member, dst: Member, payload: Uint8Array): void {
    const inbound = relayState(dst, now, this.#o).inbound ??= new TokenBucket(
      this.#o.receiveRate,
      2 * this.#o.receiveRate,
      now,
    );
    if (payload.length > MAX_RELAY_PAYLOAD) return this.#out.drop("relay-oversize");
    if (!inbound.take(now, payload.length)) return this.#out.drop("relay-receiver-limit");
    const data = new Uint8Array(RELAY_HEADER_LEN + payload.length);
    data.set([MAGIC0, MAGIC1, PROTOCOL_VERSION, MsgType.Relay]);
    data.set(payload, RELAY_HEADER_LEN);
    this.#forward(data, src, dst, payload.length);
  }

  /** Writes and queues the RELAYED of `data` from `src` to `dst` (`bytes` of payload). */
  #forward(data: Uint8Array, src: Member, dst: Member, bytes: number): void {
    if (dst.home) {
      if (!this.remote) return this.#out.drop("relay-unknown-target");
      return this.remote(src, dst, data.subarray(RELAY_HEADER_LEN));
    }
    const out = this.#out;
    out.stats.relayedPackets++;
    out.stats.relayedBytes += bytes;
    // RELAYED: the same header but the type, the recipient's token, the sender's id, the payload.
    const d = out.carve(RELAYED_HEADER_LEN + bytes);
    d[0] = data[0]!;
    d[1] = data[1]!;
    d[2] = data[2]!;
    d[3] = MsgType.Relayed;
    const ov = out.slabView, o = d.byteOffset;
    ov.setInt32(o + 4, dst.tok0);
    ov.setInt32(o + 8, dst.tok1);
    ov.setBigUint64(o + 4 + TOKEN_LEN, src.num);
    d.set(data.subarray(RELAY_HEADER_LEN), RELAYED_HEADER_LEN);
    out.push({ to: dst.addr, data: d });
  }

  /** The first RELAY from `src` to `dst`: remembered on both sides, and logged once. */
  #firstTo(now: number, src: Member, rs: RelayState, dst: Member): void {
    rs.to.add(dst);
    relayState(dst, now, this.#o).by.add(src);
    this.#out.event({
      type: "relaying",
      room: src.room.short,
      from: nameOf(src),
      to: nameOf(dst),
    });
  }

  /** A verified sender's RELAY was larger than {@link MAX_DATAGRAM}: tell it, at most every 5 s. */
  #tooLarge(now: number, src: Member): void {
    const rs = relayState(src, now, this.#o);
    if (now - rs.lastSizeNotice < NOTICE_INTERVAL) return;
    rs.lastSizeNotice = now;
    this.#tellLimited(
      src,
      "relay-size",
      `Relay payload too large (at most ${MAX_RELAY_PAYLOAD} bytes)`,
    );
  }

  /** Logs that verified sender `src` hit a limit and tells it why (REFUSED Limit, its token). */
  #tellLimited(src: Member, what: "relay" | "relay-size", message: string): void {
    this.#out.event({ type: "limited", room: src.room.short, name: nameOf(src), what });
    this.#out.send(src.addr, {
      type: MsgType.Refused,
      echo: tokenOf(src),
      code: RefuseCode.Limit,
      message,
    });
  }

  /**
   * Charges a relayed payload to the sender's budgets, the receiver's and the server's; over
   * one it is dropped, visibly (`relay-limit` tells the sender; `relay-receiver-limit` and
   * `relay-server-limit` are counted, the sender being within its own budgets).
   */
  #withinBudget(now: number, src: Member, rs: RelayState, dst: Member, bytes: number): boolean {
    const o = this.#o;
    const inbound = relayState(dst, now, o).inbound ??= new TokenBucket(
      o.receiveRate,
      2 * o.receiveRate,
      now,
    );
    if (!inbound.take(now, bytes)) {
      this.#out.drop("relay-receiver-limit");
      return false;
    }
    this.#total ??= new TokenBucket(o.totalRelayRate, o.totalRelayRate, now);
    if (!this.#total.take(now, bytes)) {
      this.#out.drop("relay-server-limit");
      return false;
    }
    let pair = rs.pairs.get(dst);
    if (!pair) {
      pair = new TokenBucket(this.#o.pairRate, this.#o.relayBurst, now);
      rs.pairs.set(dst, pair);
    }
    if (pair.take(now, bytes) && rs.budget.take(now, bytes)) return true;
    this.#out.drop("relay-limit");
    // Tell the sender (it proved its address and token), at most every 5 s.
    if (now - rs.lastLimitNotice >= NOTICE_INTERVAL) {
      rs.lastLimitNotice = now;
      const kib = Math.round(this.#o.relayRate / 1024);
      this.#tellLimited(src, "relay", `Relay limit reached (${kib} KiB/s)`);
    }
    return false;
  }
}

/** The relay state of `p`, made on first use. */
function relayState(p: Member, now: number, o: RegistryOptions): RelayState {
  return p.relay ??= {
    to: new Set(),
    by: new Set(),
    budget: new TokenBucket(o.relayRate, o.relayBurst, now),
    pairs: new Map(),
    lastLimitNotice: -Infinity,
    lastSizeNotice: -Infinity,
  };
}
