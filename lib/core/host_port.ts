/**
 * `HOST:PORT` as users type it (a name, an IPv4 address, or an IPv6 address in brackets):
 * split without looking anything up. Pure; the DNS lookup is `lib/io/resolve.ts`.
 *
 * @module
 */

/** Splits `HOST:PORT` (IPv6 as `[addr]:port`); returns null when malformed. */
export function splitHostPort(s: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s);
  if (!m) return null;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  return { host: m[1]!, port };
}
