/**
 * Where `p2p join` gets its room (`lib/roles/room_entry.ts`): a ticket from `--ticket` (with a
 * warning that `ps` shows it), `P2P_TICKET`, `--ticket-file` or the hidden prompt ("Ticket: ",
 * or "Ticket or passphrase: " when `--server` and `--room` are given); a typo is refused.
 */
import assert from "node:assert/strict";
import { readRoomEntry, type RoomEntryOptions } from "../../lib/roles/room_entry.ts";
import { encodeTicket, type Ticket } from "../../lib/roles/ticket.ts";
import { PassphraseError, type PassphraseInput } from "../../lib/io/passphrase.ts";

const TICKET: Ticket = {
  servers: ["203.0.113.7:7777"],
  room: "friends",
  passphrase: "k3xq-7hmd-p2ra-wt5n-b6fz-c4ej",
};
const TEXT = encodeTicket(TICKET);
/** The ticket with one character changed. */
const TYPO = TEXT.slice(0, 10) + (TEXT[10] === "a" ? "b" : "a") + TEXT.slice(11);

/** A terminal (or not) that types `typed` and Enter once asked. */
function stdin(terminal: boolean, typed = ""): PassphraseInput {
  const chunks = [new TextEncoder().encode(`${typed}\r`)];
  return {
    isTerminal: () => terminal,
    setRaw: () => {},
    read: (p: Uint8Array) => {
      const c = chunks.shift();
      if (!c) return Promise.resolve(null);
      p.set(c);
      return Promise.resolve(c.length);
    },
  };
}

async function enter(o: Partial<RoomEntryOptions>) {
  let shown = "";
  const entry = await readRoomEntry({
    env: {},
    haveServerAndRoom: false,
    stdin: stdin(false),
    write: (t) => shown += t,
    ...o,
  });
  return { entry, shown };
}

Deno.test("room entry: a ticket from --ticket (warned: ps shows it), P2P_TICKET or --ticket-file", async () => {
  const arg = await enter({ ticket: TEXT });
  assert.deepEqual(arg.entry, { passphrase: TICKET.passphrase, ticket: TICKET });
  assert.match(arg.shown, /can be read by other users of this machine \(ps\)/);
  const env = await enter({ env: { P2P_TICKET: TEXT.toUpperCase().replaceAll("-", " ") } });
  assert.deepEqual(env.entry.ticket, TICKET);
  assert.equal(env.shown, "", "no warning for the environment");
  const dir = await Deno.makeTempDir({ prefix: "p2p-entry-" });
  try {
    await Deno.writeTextFile(`${dir}/ticket`, `${TEXT}\n`);
    assert.deepEqual((await enter({ ticketFile: `${dir}/ticket` })).entry.ticket, TICKET);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("room entry: the hidden prompt takes a ticket; with --server and --room, a passphrase too", async () => {
  const alone = await enter({ stdin: stdin(true, TEXT) });
  assert.deepEqual(alone.entry.ticket, TICKET);
  assert.equal(alone.shown, "Ticket: \n", "nothing typed is echoed");
  const either = await enter({ haveServerAndRoom: true, stdin: stdin(true, TEXT) });
  assert.deepEqual(either.entry.ticket, TICKET);
  assert.equal(either.shown, "Ticket or passphrase: \n");
  const pass = await enter({ haveServerAndRoom: true, stdin: stdin(true, "our words") });
  assert.deepEqual(pass.entry, { passphrase: "our words", ticket: null });
});

Deno.test("room entry: a ticket with a typo is refused, from anywhere; no ticket and no terminal neither", async () => {
  for (const o of [{ ticket: TYPO }, { env: { P2P_TICKET: TYPO } }, { stdin: stdin(true, TYPO) }]) {
    const e = await enter(o).then(() => null, (e) => e);
    assert.ok(e instanceof PassphraseError && e.kind === "usage", String(e));
    assert.match(e.message, /this ticket has a typo/);
  }
  const none = await enter({}).then(() => null, (e) => e);
  assert.ok(none instanceof PassphraseError && none.kind === "usage");
  assert.match(none.message, /give a ticket \(P2P_TICKET, --ticket-file, or typed at the prompt/);
});
