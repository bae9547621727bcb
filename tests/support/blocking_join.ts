/**
 * `p2p join` with its direct paths blocked, for tests: every datagram to or from anyone but
 * the server is dropped until the process receives SIGUSR1. Takes the same arguments and the
 * same environment as `main.ts` (starting with `join`; the room passphrase in `P2P_PASSPHRASE`,
 * the identity under `XDG_CONFIG_HOME`, both set by `tests/support/proc.ts`) and exits like it.
 *
 * ```sh
 * P2P_PASSPHRASE=pass deno run -A tests/support/blocking_join.ts \
 *   join --server 127.0.0.1:7777 --room r --json
 * ```
 *
 * @module
 */
import { getLogger } from "@logtape/logtape";
import { setupLogging } from "../../lib/io/log.ts";
import { PassphraseError } from "../../lib/io/passphrase.ts";
import { type Endpoint, sameEndpoint } from "../../lib/wire/address.ts";
import { parseCommand } from "../../main.ts";
import { join, resolveServer } from "../../lib/roles/join.ts";

/** Runs `join` from `args` with direct traffic blocked until SIGUSR1; returns the exit code. */
export async function blockingJoin(args: readonly string[]): Promise<number> {
  const cmd = parseCommand(args);
  if (cmd.kind !== "join") throw new Error(`blocking_join.ts runs "join" only, got ${args[0]}`);
  await setupLogging(cmd.logLevel);
  const log = getLogger(["p2p", "test"]);
  if (cmd.options.server === undefined) throw new Error("blocking_join.ts needs --server");
  const server = await resolveServer(cmd.options.server);
  let blocked = true;
  const unblock = () => {
    blocked = false;
    log.info("Direct paths unblocked");
  };
  const filter = (peer: Endpoint) => !blocked || sameEndpoint(peer, server);
  Deno.addSignalListener("SIGUSR1", unblock);
  try {
    return await join({ ...cmd.options, filter });
  } finally {
    Deno.removeSignalListener("SIGUSR1", unblock);
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await blockingJoin(Deno.args);
  } catch (e) {
    console.error(`blocking_join: ${e instanceof Error ? e.message : String(e)}`);
    code = e instanceof PassphraseError && e.kind === "usage" ? 2 : 1;
  }
  Deno.exit(code);
}
