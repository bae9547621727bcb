/**
 * The `p2p` command line: parses arguments, picks the role and maps errors to exit codes
 * (0 success, 1 runtime failure, 2 bad arguments).
 *
 * @module
 */
import denoJson from "./deno.json" with { type: "json" };
import { setupLogging } from "./lib/io/log.ts";
import { printable } from "./lib/roles/view.ts";
import { PassphraseError } from "./lib/io/passphrase.ts";
import {
  type Command,
  formatUsageError,
  parseDoctor,
  parseJoin,
  parseSend,
  parseServe,
  UsageError,
} from "./lib/roles/cli.ts";

export { formatUsageError, UsageError } from "./lib/roles/cli.ts";
export type { Command, LogLevel } from "./lib/roles/cli.ts";

/** The program's version, from deno.json (the wire protocol has its own `PROTOCOL_VERSION`). */
export const PROGRAM_VERSION: string = denoJson.version;

const MAIN_HELP =
  `p2p ${PROGRAM_VERSION}: connect machines behind NATs directly over UDP; group chat.

Usage:
  p2p serve [options]     run the rendezvous and relay server (on a public box)
  p2p join --server HOST:PORT --room NAME [options]
                          join a room and chat with its other peers
  p2p send PATH [--to NAME] [options]
                          join a room, send a file to its peers (or NAME), exit when they have it
  p2p doctor --server HOST:PORT [options]
                          say what your NAT does and why peers may be relayed

Options:
  -h, --help              show help (also "p2p serve --help", "p2p join --help",
                          "p2p doctor --help")
  -V, --version           show the version
`;

/**
 * Parses the command line (without the program name) into what to run. Only reads the host
 * name, for the default `--name`, through `hostName`; files named by options (passphrase,
 * identity) are only recorded, never read here. Throws {@link UsageError} for bad arguments.
 */
export function parseCommand(
  argv: readonly string[],
  hostName: () => string = defaultName,
): Command {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === "-h" || cmd === "--help" || cmd === "help") {
    return { kind: "help", text: MAIN_HELP, code: cmd === undefined ? 2 : 0 };
  }
  const beforeDashes = rest.indexOf("--") < 0 ? rest : rest.slice(0, rest.indexOf("--"));
  if (
    cmd === "-V" || cmd === "--version" || cmd === "version" ||
    (["serve", "join", "send", "doctor"].includes(cmd) &&
      (beforeDashes.includes("--version") || beforeDashes.includes("-V")))
  ) {
    return { kind: "version", text: `p2p ${PROGRAM_VERSION}` };
  }
  if (cmd === "serve") return parseServe(rest);
  if (cmd === "join") return parseJoin(rest, hostName);
  if (cmd === "send") return parseSend(rest, hostName);
  if (cmd === "doctor") return parseDoctor(rest);
  throw new UsageError(`Unknown command "${cmd}"; use "serve", "join", "send" or "doctor"`, "");
}

function defaultName(): string {
  try {
    const h = Deno.hostname().split(".")[0] ?? "";
    return h.length > 0 && h.length <= 64 ? h : "peer";
  } catch {
    return "peer";
  }
}

/** Runs the command line `argv` and returns the exit code; throws {@link UsageError}. */
async function run(argv: readonly string[]): Promise<number> {
  const cmd = parseCommand(argv);
  switch (cmd.kind) {
    case "help":
      console.log(cmd.text);
      return cmd.code;
    case "version":
      console.log(cmd.text);
      return 0;
    case "serve": {
      await setupLogging({ level: cmd.logLevel, format: cmd.logFormat, file: cmd.logFile });
      const { serve } = await import("./server.ts");
      await serve(cmd.options);
      return 0;
    }
    case "join": {
      await setupLogging({ level: cmd.logLevel, format: cmd.logFormat, file: cmd.logFile });
      const { join } = await import("./peer.ts");
      return await join(cmd.options);
    }
    case "doctor": {
      await setupLogging({ level: cmd.logLevel, format: cmd.logFormat, file: cmd.logFile });
      const { doctor } = await import("./lib/roles/doctor.ts");
      return await doctor(cmd.options);
    }
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await run(Deno.args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(formatUsageError(e));
      code = 2;
    } else if (e instanceof PassphraseError && e.kind === "usage") {
      console.error(formatUsageError(new UsageError(e.message, "join")));
      code = 2;
    } else {
      // JoinError and anything else: one line, no stack trace. The message may quote what a
      // server sent (a REFUSED reason): escaped like every string from the network.
      console.error(`p2p: ${printable(e instanceof Error ? e.message : String(e))}`);
      code = 1;
    }
  }
  Deno.exit(code);
}
