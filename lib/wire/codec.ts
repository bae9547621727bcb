/**
 * The byte-level primitives of the wire codecs: a growable big-endian {@link Writer} (which
 * refuses values out of range with a RangeError: a caller's mistake), a bounds-checked
 * {@link Reader} (which throws {@link ShortRead}, which decoders turn into a drop), the
 * {@link Decoded} result type, and small byte and text helpers. Pure.
 *
 * @module
 */
import { type Endpoint, formatIPv6, parseIPv4, parseIPv6 } from "./address.ts";

/** Result of decoding: the value, or a short reason that callers count as a drop. */
export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** True for a C0 or C1 control character or DEL, given its code point. */
export function isControlChar(c: number): boolean {
  return c < 0x20 || (c >= 0x7f && c <= 0x9f);
}

/** True when `s` has C0 or C1 control characters or DEL (not allowed in names). */
export function hasControlChars(s: string): boolean {
  for (const ch of s) if (isControlChar(ch.codePointAt(0)!)) return true;
  return false;
}

/** Lowercase hex of `bytes` (peer ids, transaction ids, file-name nonces). */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * The scratch buffer Writers fill (encoding is synchronous): each encoding then allocates
 * only its result. A Writer made while another holds it (never, today: no encoder nests) gets
 * a buffer of its own. A Writer gives it back when it finishes or refuses a value; encoders
 * check their own limits before they make one, so no other throw can keep it.
 */
let scratch: Uint8Array = new Uint8Array(2048);
let scratchView: DataView = new DataView(scratch.buffer);
let scratchOwner: Writer | null = null;

/** Growable big-endian writer. */
export class Writer {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;
  /** Where {@link finish} puts the bytes (a fresh array of their own when unset). */
  alloc: ((n: number) => Uint8Array) | undefined;

  constructor() {
    if (scratchOwner === null) {
      scratchOwner = this;
      this.#buf = scratch;
      this.#view = scratchView;
    } else {
      this.#buf = new Uint8Array(256);
      this.#view = new DataView(this.#buf.buffer);
    }
  }

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
    if (scratchOwner === this) (scratch = next, scratchView = this.#view);
  }
  u8(v: number): this {
    this.#check(v, 0xff, "u8");
    this.#ensure(1);
    this.#view.setUint8(this.#len++, v);
    return this;
  }
  u16(v: number): this {
    this.#check(v, 0xffff, "u16");
    this.#ensure(2);
    this.#view.setUint16(this.#len, v);
    this.#len += 2;
    return this;
  }
  u32(v: number): this {
    this.#check(v, 0xffff_ffff, "u32");
    this.#ensure(4);
    this.#view.setUint32(this.#len, v);
    this.#len += 4;
    return this;
  }
  u64(v: bigint): this {
    this.#ensure(8);
    this.#view.setBigUint64(this.#len, v);
    this.#len += 8;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }
  fixed(b: Uint8Array, len: number): this {
    if (b.length !== len) this.#refuse(`Expected ${len} bytes, got ${b.length}`);
    return this.bytes(b);
  }
  str8(s: string): this {
    const b = encoder.encode(s);
    if (b.length > 255) this.#refuse("String is longer than 255 bytes of UTF-8");
    return this.u8(b.length).bytes(b);
  }
  endpoint(ep: Endpoint): this {
    const v4 = parseIPv4(ep.hostname);
    if (v4) return this.u8(4).bytes(v4).u16(ep.port);
    const v6 = parseIPv6(ep.hostname);
    if (v6) return this.u8(6).bytes(v6).u16(ep.port);
    return this.#refuse(`Endpoint address is not a literal IP: ${ep.hostname}`);
  }
  endpoints(list: readonly Endpoint[]): this {
    if (list.length > 255) this.#refuse("Too many endpoints");
    this.u8(list.length);
    for (const ep of list) this.endpoint(ep);
    return this;
  }
  finish(): Uint8Array {
    if (scratchOwner === this) scratchOwner = null;
    if (!this.alloc) return this.#buf.slice(0, this.#len);
    const out = this.alloc(this.#len);
    out.set(this.#buf.subarray(0, this.#len));
    return out;
  }
  #check(v: number, max: number, what: string): void {
    if (!Number.isInteger(v) || v < 0 || v > max) this.#refuse(`${what} out of range: ${v}`);
  }
  /** Gives the scratch buffer back and throws RangeError (a value the caller built wrong). */
  #refuse(message: string): never {
    if (scratchOwner === this) scratchOwner = null;
    throw new RangeError(message);
  }
}

/** A read past the end (or an invalid value): the decoder turns it into a drop. */
export class ShortRead extends Error {}

/** Bounds-checked big-endian reader; throws ShortRead, which decoders turn into a drop. */
export class Reader {
  #b: Uint8Array;
  #v: DataView;
  #o: number;
  constructor(b: Uint8Array, offset: number) {
    this.#b = b;
    this.#v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    this.#o = offset;
  }
  get remaining(): number {
    return this.#b.length - this.#o;
  }
  #need(n: number): void {
    if (this.#o + n > this.#b.length) throw new ShortRead("Datagram is truncated");
  }
  u8(): number {
    this.#need(1);
    return this.#v.getUint8(this.#o++);
  }
  u16(): number {
    this.#need(2);
    const v = this.#v.getUint16(this.#o);
    this.#o += 2;
    return v;
  }
  u32(): number {
    this.#need(4);
    const v = this.#v.getUint32(this.#o);
    this.#o += 4;
    return v;
  }
  u64(): bigint {
    this.#need(8);
    const v = this.#v.getBigUint64(this.#o);
    this.#o += 8;
    return v;
  }
  /** Copies `n` bytes out, so callers may keep them after the receive buffer is reused. */
  bytes(n: number): Uint8Array {
    this.#need(n);
    const out = this.#b.slice(this.#o, this.#o + n);
    this.#o += n;
    return out;
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  /** The next `n` bytes as a view of the input (no copy). */
  view(n: number): Uint8Array {
    this.#need(n);
    const out = this.#b.subarray(this.#o, this.#o + n);
    this.#o += n;
    return out;
  }
  str8(): string {
    const n = this.u8();
    this.#need(n);
    try {
      return decoder.decode(this.#b.subarray(this.#o, this.#o + n));
    } catch {
      throw new ShortRead("String is not valid UTF-8");
    } finally {
      this.#o += n;
    }
  }
  endpoint(): Endpoint {
    const family = this.u8();
    // Views, not copies: the address becomes a string at once (a copy is an allocation outside
    // the heap per address, which a server decoding thousands of records feels).
    if (family === 4) {
      const a = this.view(4);
      return { hostname: `${a[0]}.${a[1]}.${a[2]}.${a[3]}`, port: this.u16() };
    }
    if (family === 6) {
      const a = this.view(16);
      return { hostname: formatIPv6(a), port: this.u16() };
    }
    throw new ShortRead(`Unknown address family ${family}`);
  }
  endpoints(): Endpoint[] {
    const n = this.u8();
    const out: Endpoint[] = [];
    for (let i = 0; i < n; i++) out.push(this.endpoint());
    return out;
  }
  end(): void {
    if (this.remaining !== 0) throw new ShortRead("Datagram has trailing bytes");
  }
}

/** Throws when `v` is not a whole number from 0 to `max` (a value the caller built wrong). */
export function checkUint(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${what} out of range: ${v}`);
}
