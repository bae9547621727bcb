/**
 * How `tests/vectors/protocol_vectors.json` writes message fields: byte arrays as lowercase hex
 * strings, every other value as it is (numbers, booleans, null, endpoints as
 * `{ hostname, port }`), bigints as decimal strings. Reading back, every string is hex except an
 * endpoint's `hostname`, a REFUSED's `message` and a FILE_OFFER's `name` (text). Shared by the generator and the test.
 *
 * @module
 */
import { hex, unhex } from "./reference.ts";

/** Where the vectors live, relative to the repository root. */
export const VECTORS_PATH = "tests/vectors/protocol_vectors.json";

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The JSON form of a decoded message (bytes as hex, `undefined` fields left out). */
export function toJson(v: unknown): Json {
  if (v instanceof Uint8Array) return hex(v);
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === "object") {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJson(x);
    return out;
  }
  return v as Json;
}

/** REFUSED's type code: its `message` is text, not bytes. */
const REFUSED = 0x03;
/** FILE_OFFER's inner kind: its `name` is text, not bytes. */
const FILE_OFFER = 14;

/** The message a JSON form stands for (the inverse of {@link toJson} for message fields). */
export function fromJson(j: Json, key = "", parent: { [k: string]: Json } | null = null): unknown {
  if (typeof j === "string") {
    if (key === "hostname" || (key === "message" && parent?.type === REFUSED)) return j;
    // Chat messages' text and names are strings; so is a FILE_OFFER's name.
    if (key === "text" && parent !== null && "id" in parent) return j;
    if (key === "name" && parent?.kind === FILE_OFFER) return j;
    if (key === "name" && parent !== null && "kind" in parent) return j;
    if (key === "counter") return BigInt(j);
    return unhex(j);
  }
  if (Array.isArray(j)) return j.map((x) => fromJson(x, key, parent));
  if (j !== null && typeof j === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(j)) out[k] = fromJson(x, k, j);
    return out;
  }
  return j;
}
