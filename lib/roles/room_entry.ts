/**
 * How `p2p join` learns which room to enter: a ticket (`lib/roles/ticket.ts`: servers, room and
 * secret in one string) or a passphrase for the room that `--server` and `--room` name.
 *
 * In this order: `--ticket TICKET` (an argument: other users of the machine can read it in
 * `ps`, so a warning says so), `P2P_TICKET`, `--ticket-file FILE`; then, when `--server` and
 * `--room` are given, `P2P_PASSPHRASE`, `--passphrase-file`, or a hidden prompt that takes
 * either ("Ticket or passphrase: "); without them, a hidden prompt for the ticket. A ticket
 * with a typo is refused with exit code 2 ("this ticket has a typo"): never a silent,
 * empty room.
 *
 * I/O: environment, files, the terminal.
 *
 * @module
 */
import {
  firstLine,
  PASSPHRASE_ENV,
  PassphraseError,
  type PassphraseInput,
  readPassphrase,
  readPassphraseFile,
} from "../io/passphrase.ts";
import { decodeTicket, looksLikeTicket, type Ticket, TicketError } from "./ticket.ts";

/** The environment variable that carries a ticket. */
export const TICKET_ENV = "P2P_TICKET";

/** Options of {@link readRoomEntry}. */
export interface RoomEntryOptions {
  /** The environment (`P2P_TICKET`, `P2P_PASSPHRASE`). */
  env: { readonly [name: string]: string | undefined };
  /** `--ticket`, if given. */
  ticket?: string | undefined;
  /** `--ticket-file`, if given. */
  ticketFile?: string | undefined;
  /** `--passphrase-file`, if given. */
  passphraseFile?: string | undefined;
  /** Whether `--server` and `--room` were both given (a passphrase alone is then enough). */
  haveServerAndRoom: boolean;
  /** Standard input, for the prompt. */
  stdin: PassphraseInput;
  /** Writes prompt text and warnings (default: to stderr). */
  write?: (text: string) => void;
}

/** The room's secret, and the ticket it came in if it came in one. */
export interface RoomEntry {
  /** The passphrase. */
  passphrase: string;
  /** The ticket, when one was given. */
  ticket: Ticket | null;
}

/** Reads the room entry (see the module documentation). Throws {@link PassphraseError}. */
export async function readRoomEntry(o: RoomEntryOptions): Promise<RoomEntry> {
  const write = o.write ?? ((t: string) => console.error(t.trimEnd()));
  if (o.ticket !== undefined) {
    write(
      "p2p: warning: a ticket given as an argument can be read by other users of this machine " +
        `(ps); prefer ${TICKET_ENV}, --ticket-file, or pasting it at the prompt\n`,
    );
    return entry(o.ticket);
  }
  const fromEnv = o.env[TICKET_ENV];
  if (fromEnv !== undefined && fromEnv.trim() !== "") return entry(fromEnv);
  if (o.ticketFile !== undefined) {
    return entry(firstLine(await readPassphraseFile(o.ticketFile, "ticket")));
  }
  if (!o.haveServerAndRoom) {
    if (!o.stdin.isTerminal()) {
      throw new PassphraseError(
        "usage",
        `no room to join: give a ticket (${TICKET_ENV}, --ticket-file, or typed at the prompt ` +
          "in a terminal), or --server and --room with the room's passphrase",
      );
    }
    const typed = await readPassphrase({
      env: {},
      stdin: o.stdin,
      write,
      prompt: "Ticket: ",
    });
    return entry(typed);
  }
  const typed = await readPassphrase({
    env: { [PASSPHRASE_ENV]: o.env[PASSPHRASE_ENV] },
    file: o.passphraseFile,
    stdin: o.stdin,
    write,
    prompt: "Ticket or passphrase: ",
  });
  // Typed at the prompt: a ticket is welcome there too (P2P_PASSPHRASE and files are taken as
  // they are).
  if (o.env[PASSPHRASE_ENV] === undefined && o.passphraseFile === undefined) {
    if (looksLikeTicket(typed)) return entry(typed);
  }
  return { passphrase: typed, ticket: null };
}

function entry(text: string): RoomEntry {
  try {
    const ticket = decodeTicket(text);
    return { passphrase: ticket.passphrase, ticket };
  } catch (e) {
    if (e instanceof TicketError) throw new PassphraseError("usage", e.message);
    throw e;
  }
}
