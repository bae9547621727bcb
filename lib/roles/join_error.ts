/**
 * The failures of `p2p join` a user can fix ({@link JoinError}), and the look-ups that end in
 * one: a server's address and the `--tls-ca` certificate.
 *
 * I/O: name resolution, files.
 *
 * @module
 */
import type { Endpoint } from "../wire/address.ts";
import { ResolveError, resolveHostPort } from "../io/resolve.ts";

/** A failure the user can fix; main.ts prints the message and exits 1. */
export class JoinError extends Error {
  /** Makes an error with a user-facing message. */
  constructor(message: string) {
    super(message);
    this.name = "JoinError";
  }
}

/** Resolves `spec` (`HOST:PORT`) to an IPv4 or IPv6 endpoint; a {@link JoinError} says why not. */
export async function resolveServer(spec: string, what = "Server"): Promise<Endpoint> {
  try {
    return await resolveHostPort(spec, what);
  } catch (e) {
    throw e instanceof ResolveError ? new JoinError(e.message) : e;
  }
}

/** The CA certificate of `--tls-ca`, or a {@link JoinError} saying what is wrong with it. */
export async function readCa(file: string): Promise<string> {
  try {
    const pem = await Deno.readTextFile(file);
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error("no PEM certificate in it");
    return pem;
  } catch (e) {
    throw new JoinError(
      `Cannot use --tls-ca ${file}: ${(e as Error).message}; give a CA certificate in PEM`,
    );
  }
}
