/**
 * Parsing of IP address literals: IPv4 in the dotted form, IPv6 (no zone) with `::` and a
 * trailing dotted IPv4 part, each into its bytes or null. The wire's addresses
 * (`lib/wire/address.ts`) and the limits' source keys (`lib/core/limits.ts`) read them. Pure.
 *
 * @module
 */

/** Parses a literal IPv4 address into 4 bytes, or returns null. */
export function parseIPv4(s: string): Uint8Array | null {
  // Four groups of 1 to 3 ASCII digits, each at most 255, joined by dots (a character loop:
  // every PONG and WELCOME the server sends carries an address).
  if (s.length < 7 || s.length > 15) return null;
  const out = new Uint8Array(4);
  let part = 0, digits = 0, n = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c >= 0x30 && c <= 0x39) {
      if (++digits > 3) return null;
      n = n * 10 + (c - 0x30);
    } else if (c === 0x2e) {
      if (digits === 0 || n > 255 || part > 3) return null;
      out[part++] = n;
      digits = n = 0;
    } else return null;
  }
  return part === 4 ? out : null;
}

/** Parses a literal IPv6 address (no zone) into 16 bytes, or returns null. */
export function parseIPv6(s: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length < 2) return null;
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const toGroups = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIPv4(piece);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return null;
        out.push(parseInt(piece, 16));
      }
    }
    return out;
  };
  const head = toGroups(halves[0]!);
  const tail = halves.length === 2 ? toGroups(halves[1]!) : [];
  if (!head || !tail) return null;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [
    ...head,
    ...new Array<number>(halves.length === 2 ? missing : 0).fill(0),
    ...tail,
  ];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  });
  return bytes;
}
