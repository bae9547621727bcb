/**
 * How file-transfer events look: for people, one line each (the offer with the sender's
 * fingerprint and the commands to answer it, a progress bar with rate, time left and path, where
 * a received file was put), and for `--json` the `file` event's object. Every string from the
 * network is escaped. Pure.
 *
 * @module
 */
import { displayName } from "../core/names.ts";
import type { ClientFileEvent } from "../peer/client_files.ts";

/** How many hex digits of a transfer id are shown (and enough to `/accept` it). */
export const SHORT_ID = 6;

/** `1.5 MB`, `950 kB`, `12 B`. */
export function sizeText(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e4 ? 1 : 0)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)} MB`;
  return `${(n / 1e9).toFixed(n < 1e10 ? 2 : 1)} GB`;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const t = Math.round(s);
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = t % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, "0"), ss = String(sec).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** A bar of `width` cells for `done` of `total`. */
export function bar(done: number, total: number, width = 20): string {
  const f = total === 0 ? 1 : Math.min(1, done / total);
  const n = Math.round(f * width);
  return `[${"#".repeat(n)}${".".repeat(width - n)}]`;
}

/**
 * The line for a file event, for people; `fingerprint` is the sender's (for an offer), and
 * `escape` escapes a file name (the view's `printable`).
 */
export function fileLine(
  e: ClientFileEvent,
  fingerprint: string | undefined,
  escape: (s: string) => string,
): string {
  const name = escape(e.name), short = e.id.slice(0, SHORT_ID);
  const peer = displayName(e.from ?? e.to ?? "");
  const dir = e.from !== undefined ? `from ${peer}` : `to ${peer}`;
  switch (e.state) {
    case "offered":
      return `* ${peer}${fingerprint ? ` (${escape(fingerprint)})` : ""} offers ${name} (${
        sizeText(e.size)
      }): /accept ${short} or /reject ${short}`;
    case "progress": {
      const pct = e.size === 0 ? 100 : Math.floor(100 * e.bytes / e.size);
      const rate = e.rate ?? 0;
      const left = rate > 0 ? duration((e.size - e.bytes) / rate) : "?";
      return `* ${name} ${dir} ${bar(e.bytes, e.size)} ${pct} % ${sizeText(e.bytes)} of ${
        sizeText(e.size)
      }, ${sizeText(rate)}/s, ${left} left, ${e.route ?? "relay"}`;
    }
    case "done":
      return e.path !== undefined
        ? `* ${name} ${dir} is saved as ${escape(e.path)} (${sizeText(e.size)}, sha256 ${
          e.sha256.slice(0, 16)
        }…)`
        : `* ${name} ${dir}: ${peer} has it (${sizeText(e.size)})`;
    case "failed":
      return `* ${name} ${dir} failed: ${escape(e.reason ?? "unknown")}`;
  }
}

/** The `--json` object of a file event (the `file` event of the README). */
export function fileJson(e: ClientFileEvent): Record<string, unknown> {
  const o: Record<string, unknown> = {
    event: "file",
    state: e.state,
    id: e.id,
    name: e.name,
    size: e.size,
    bytes: e.bytes,
  };
  if (e.from !== undefined) o.from = e.from;
  if (e.to !== undefined) o.to = e.to;
  if (e.state === "done") {
    if (e.path !== undefined) o.path = e.path;
    o.sha256 = e.sha256;
  }
  if (e.state === "offered") o.sha256 = e.sha256;
  if (e.state === "progress") (o.rate = e.rate ?? 0, o.route = e.route ?? "relay");
  if (e.state === "failed") o.reason = e.reason ?? "unknown";
  return o;
}
