/**
 * Checks that a file p2p keeps for the user (identity key, known peers, their lock) is the
 * user's own: a regular file, not a symbolic link someone planted, owned by the user running
 * p2p. Another user's file could hold a key they know or fingerprints they chose. Windows has
 * no owners or modes in `Deno.FileInfo`; there the checks are skipped.
 *
 * I/O: reads file metadata.
 *
 * @module
 */

/** Why `info` (from `Deno.lstat`) is not the user's own regular file, or null when it is. */
export function notOwnFile(info: Deno.FileInfo): string | null {
  if (info.isSymlink) return "is a symbolic link (refused: it could point anywhere)";
  if (!info.isFile) return "is not a regular file";
  const me = currentUid();
  if (me !== null && info.uid !== null && info.uid !== me) {
    return `belongs to another user (uid ${info.uid}, not ${me})`;
  }
  return null;
}

/** The user's id, or null where there is none (Windows) or it may not be read. */
function currentUid(): number | null {
  try {
    return Deno.uid();
  } catch {
    return null;
  }
}
