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
import { type Decoded, Reader, ShortRead, toHex, Writer } from "./codec.ts";

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
  const w = new Writer().u8(m.kind);
  if (m.kind === ChatKind.Nick) return w.bytes(encoder.encode(m.name)).finish();
  w.fixed(m.id, CHAT_ID_LEN);
  if (m.kind === ChatKind.History) w.u32(Math.min(Math.max(0, Math.floor(m.age)), 0xffffffff));
  return w.bytes(encoder.encode(m.text)).finish();
}

/** Decodes one chat message; never throws. */
export function decodeChat(b: Uint8Array): Decoded<ChatMessage> {
  try {
    const r = new Reader(b, 0);
    const kind = r.u8();
    switch (kind) {
      case ChatKind.Line:
      case ChatKind.Private: {
        const id = r.bytes(CHAT_ID_LEN);
        return { ok: true, value: { kind, id, text: lenient.decode(r.rest()) } };
      }
      case ChatKind.History: {
        const id = r.bytes(CHAT_ID_LEN);
        const age = r.u32();
        return { ok: true, value: { kind, id, age, text: lenient.decode(r.rest()) } };
      }
      case ChatKind.Nick: {
        const raw = r.rest();
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
  } catch (e) {
    if (e instanceof ShortRead) return { ok: false, reason: "chat-short" };
    throw e;
  }
}

/** The key a line id is remembered under (hex). */
export function chatIdKey(id: Uint8Array): string {
  return toHex(id);
}
