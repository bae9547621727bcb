/**
 * The chat message envelope (protocol version 7): what one reassembled message on a pair's
 * reliable channel carries. Its first byte says what it is:
 *
 * | kind | name     | body                                                     |
 * |------|----------|----------------------------------------------------------|
 * | 1    | LINE     | id (8) ‖ text                                            |
 * | 2    | PRIVATE  | id (8) ‖ text (to this peer only; never repeated)        |
 * | 3    | HISTORY  | id (8) ‖ age u32 (seconds since it was sent) ‖ text       |
 * | 4    | NICK     | the sender's new name (UTF-8, 1..64 bytes)               |
 *
 * `id` is the sender's run id (4 bytes, drawn once per run) followed by its line counter (u32):
 * a receiver shows each (sender, id) once, so a line that arrives both live and as history is
 * shown once. Text is UTF-8 of at most `MAX_MESSAGE` bytes (invalid sequences are replaced when
 * shown). {@link decodeChat} never throws. Pure.
 *
 * @module
 */
import type { Decoded } from "./codec.ts";

/** Envelope kinds. */
export const ChatKind = {
  Line: 1,
  Private: 2,
  History: 3,
  Nick: 4,
} as const;

/** Bytes of a line id. */
export const CHAT_ID_LEN = 8;
/** The most bytes an envelope adds to the text it carries. */
export const CHAT_OVERHEAD = 1 + CHAT_ID_LEN + 4;
/** The longest name a NICK may carry, in bytes. */
export const MAX_NICK_BYTES = 64;

/** A decoded chat message. */
export type ChatMessage =
  | { kind: typeof ChatKind.Line; id: Uint8Array; text: string }
  | { kind: typeof ChatKind.Private; id: Uint8Array; text: string }
  | { kind: typeof ChatKind.History; id: Uint8Array; age: number; text: string }
  | { kind: typeof ChatKind.Nick; name: string };

const encoder = new TextEncoder();
const lenient = new TextDecoder();
const strict = new TextDecoder("utf-8", { fatal: true });

/** The bytes of `m`. */
export function encodeChat(m: ChatMessage): Uint8Array {
  // By hand rather than with a Writer: this runs once per chat line.
  if (m.kind === ChatKind.Nick) {
    const name = encoder.encode(m.name);
    const out = new Uint8Array(1 + name.length);
    out[0] = m.kind;
    out.set(name, 1);
    return out;
  }
  if (m.id.length !== CHAT_ID_LEN) throw new RangeError(`A line id has ${CHAT_ID_LEN} bytes`);
  const head = m.kind === ChatKind.History ? 1 + CHAT_ID_LEN + 4 : 1 + CHAT_ID_LEN;
  const out = new Uint8Array(head + 3 * m.text.length);
  out[0] = m.kind;
  out.set(m.id, 1);
  if (m.kind === ChatKind.History) {
    const age = Math.min(Math.max(0, Math.floor(m.age)), 0xffffffff);
    new DataView(out.buffer).setUint32(1 + CHAT_ID_LEN, age, false);
  }
  const { written } = encoder.encodeInto(m.text, out.subarray(head));
  return out.subarray(0, head + written);
}

/**
 * The bytes of a LINE or PRIVATE message whose id is `run` (4 bytes) and counter `seq`, without
 * making the id first (the same bytes as {@link encodeChat}; this runs once per line typed).
 */
export function encodeLine(
  kind: typeof ChatKind.Line | typeof ChatKind.Private,
  run: Uint8Array,
  seq: number,
  text: string,
): Uint8Array {
  const head = 1 + CHAT_ID_LEN;
  const out = new Uint8Array(head + 3 * text.length);
  out[0] = kind;
  out[1] = run[0]!;
  out[2] = run[1]!;
  out[3] = run[2]!;
  out[4] = run[3]!;
  out[5] = seq >>> 24;
  out[6] = (seq >>> 16) & 0xff;
  out[7] = (seq >>> 8) & 0xff;
  out[8] = seq & 0xff;
  const { written } = encoder.encodeInto(text, out.subarray(head));
  return out.subarray(0, head + written);
}

/** Decodes one chat message; never throws. */
export function decodeChat(b: Uint8Array): Decoded<ChatMessage> {
  if (b.length === 0) return { ok: false, reason: "chat-short" };
  const kind = b[0]!;
  switch (kind) {
    case ChatKind.Line:
    case ChatKind.Private: {
      if (b.length < 1 + CHAT_ID_LEN) return { ok: false, reason: "chat-short" };
      const id = b.subarray(1, 1 + CHAT_ID_LEN);
      return { ok: true, value: { kind, id, text: lenient.decode(b.subarray(1 + CHAT_ID_LEN)) } };
    }
    case ChatKind.History: {
      const head = 1 + CHAT_ID_LEN + 4;
      if (b.length < head) return { ok: false, reason: "chat-short" };
      const id = b.slice(1, 1 + CHAT_ID_LEN);
      const age = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(1 + CHAT_ID_LEN);
      return { ok: true, value: { kind, id, age, text: lenient.decode(b.subarray(head)) } };
    }
    case ChatKind.Nick: {
      const raw = b.subarray(1);
      if (raw.length === 0 || raw.length > MAX_NICK_BYTES) {
        return { ok: false, reason: "chat-bad-nick" };
      }
      try {
        return { ok: true, value: { kind, name: strict.decode(raw) } };
      } catch {
        return { ok: false, reason: "chat-bad-nick" };
      }
    }
    default:
      return { ok: false, reason: "chat-unknown-kind" };
  }
}
