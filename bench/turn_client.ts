/**
 * The little of TURN (RFC 8656) the relay load benchmark needs to drive coturn as a comparison:
 * an unauthenticated Allocate, a ChannelBind towards a peer, and ChannelData framing. IPv4 only.
 *
 * @module
 */

const MAGIC = 0x2112a442;
const ALLOCATE = 0x0003;
const CHANNEL_BIND = 0x0009;
const SUCCESS = 0x0100;
const ATTR_CHANNEL_NUMBER = 0x000c;
const ATTR_XOR_PEER_ADDRESS = 0x0012;
const ATTR_XOR_RELAYED_ADDRESS = 0x0016;
const ATTR_REQUESTED_TRANSPORT = 0x0019;
const ATTR_LIFETIME = 0x000d;

/** The first channel number a client may bind. */
export const FIRST_CHANNEL = 0x4000;

function stunRequest(type: number, attrs: [number, Uint8Array][]): Uint8Array {
  const body = attrs.reduce((n, [, v]) => n + 4 + Math.ceil(v.length / 4) * 4, 0);
  const out = new Uint8Array(20 + body);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, type);
  dv.setUint16(2, body);
  dv.setUint32(4, MAGIC);
  crypto.getRandomValues(out.subarray(8, 20));
  let o = 20;
  for (const [t, v] of attrs) {
    dv.setUint16(o, t);
    dv.setUint16(o + 2, v.length);
    out.set(v, o + 4);
    o += 4 + Math.ceil(v.length / 4) * 4;
  }
  return out;
}

function xorAddress(ep: Deno.NetAddr): Uint8Array {
  const v = new Uint8Array(8);
  const dv = new DataView(v.buffer);
  dv.setUint8(1, 1);
  dv.setUint16(2, ep.port ^ (MAGIC >>> 16));
  const [a, b, c, d] = ep.hostname.split(".").map(Number) as [number, number, number, number];
  dv.setUint32(4, (((a << 24) | (b << 16) | (c << 8) | d) ^ MAGIC) >>> 0);
  return v;
}

function readXorAddress(v: Uint8Array): Deno.NetAddr {
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const port = dv.getUint16(2) ^ (MAGIC >>> 16);
  const x = (dv.getUint32(4) ^ MAGIC) >>> 0;
  return {
    transport: "udp",
    hostname: `${x >>> 24}.${(x >>> 16) & 255}.${(x >>> 8) & 255}.${x & 255}`,
    port,
  };
}

/** Sends `req` until a response with its transaction id arrives; returns its attributes. */
async function transact(
  conn: Deno.DatagramConn,
  server: Deno.NetAddr,
  req: Uint8Array,
): Promise<Map<number, Uint8Array>> {
  const buf = new Uint8Array(2048);
  const again = setInterval(() => conn.send(req, server).catch(() => {}), 300);
  try {
    await conn.send(req, server);
    for (;;) {
      const [d] = await conn.receive(buf);
      if (d.length < 20 || !d.subarray(8, 20).every((x, i) => x === req[8 + i])) continue;
      const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
      const type = dv.getUint16(0);
      if ((type & 0x0110) !== SUCCESS) {
        throw new Error(`TURN request 0x${type.toString(16)} failed`);
      }
      const attrs = new Map<number, Uint8Array>();
      for (let o = 20; o + 4 <= d.length;) {
        const t = dv.getUint16(o), n = dv.getUint16(o + 2);
        attrs.set(t, d.slice(o + 4, o + 4 + n));
        o += 4 + Math.ceil(n / 4) * 4;
      }
      return attrs;
    }
  } finally {
    clearInterval(again);
  }
}

/**
 * Allocates a relayed address on `server` for `conn` and binds {@link FIRST_CHANNEL} to `peer`;
 * returns the relayed address (where the peer sees the data come from).
 */
export async function allocateChannel(
  conn: Deno.DatagramConn,
  server: Deno.NetAddr,
  peer: Deno.NetAddr,
): Promise<Deno.NetAddr> {
  const alloc = await transact(
    conn,
    server,
    stunRequest(ALLOCATE, [
      [ATTR_REQUESTED_TRANSPORT, new Uint8Array([17, 0, 0, 0])],
      [ATTR_LIFETIME, new Uint8Array([0, 0, 0x0e, 0x10])],
    ]),
  );
  const relayed = alloc.get(ATTR_XOR_RELAYED_ADDRESS);
  if (!relayed) throw new Error("Allocate answer without XOR-RELAYED-ADDRESS");
  await transact(
    conn,
    server,
    stunRequest(CHANNEL_BIND, [
      [ATTR_CHANNEL_NUMBER, new Uint8Array([FIRST_CHANNEL >> 8, FIRST_CHANNEL & 255, 0, 0])],
      [ATTR_XOR_PEER_ADDRESS, xorAddress(peer)],
    ]),
  );
  return readXorAddress(relayed);
}

/** A ChannelData message carrying `payload` on `channel`. */
export function channelData(channel: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint16(0, channel);
  new DataView(out.buffer).setUint16(2, payload.length);
  out.set(payload, 4);
  return out;
}
