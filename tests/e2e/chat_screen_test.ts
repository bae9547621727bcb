/**
 * The chat screen in a real terminal (tmux): what a person at a keyboard sees. A peer in a tmux
 * pane types while another peer (a `--json` process) talks to it: incoming lines appear above
 * the input without touching it, line editing works, a long paste arrives whole, our own lines
 * are shown with our name, and `/quit` gives the terminal back.
 */
import assert from "node:assert/strict";
import { startPeer, startServer, testPassphrase } from "../support/proc.ts";
import { toolTest } from "../support/tools.ts";
import { MAX_MESSAGE } from "../../lib/peer/fragment.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const WAIT = 20_000;

async function tmux(...args: string[]): Promise<string> {
  const o = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" }).output();
  if (!o.success) throw new Error(`tmux ${args[0]}: ${new TextDecoder().decode(o.stderr)}`);
  return new TextDecoder().decode(o.stdout);
}

/** The pane's visible text, without trailing blank lines. */
async function pane(session: string): Promise<string[]> {
  const text = await tmux("capture-pane", "-p", "-t", session);
  return text.split("\n").map((l) => l.trimEnd()).filter((l, i, a) => l !== "" || i < a.length - 1)
    .filter((l) => l !== "");
}

/** Polls the pane until `ok` holds (the screen is drawn asynchronously), or fails with it. */
async function until(session: string, ok: (lines: string[]) => boolean, what: string) {
  const end = Date.now() + WAIT;
  let lines: string[] = [];
  while (Date.now() < end) {
    lines = await pane(session);
    if (ok(lines)) return lines;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}; the pane shows:\n${lines.join("\n")}`);
}

Deno.test(
  toolTest("tmux", "tmux", "chat screen: typing is never clobbered, edits, pastes", async () => {
    const room = "screen";
    const server = await startServer({ host: "127.0.0.1", port: 0 });
    const session = `p2p-screen-${Deno.pid}`;
    const config = await Deno.makeTempDir({ prefix: "p2p-screen-" });
    const bob = startPeer({ server: server.addr, room, name: "bob" });
    try {
      await bob.waitFor((e) => e.event === "ready", WAIT);
      const cmd = [
        `cd ${ROOT}`,
        `P2P_PASSPHRASE='${testPassphrase(room)}' XDG_CONFIG_HOME=${config} NO_COLOR=1 ` +
        `${Deno.execPath()} run -A main.ts join --server ${server.addr} --room ${room} --name alice ` +
        `--log-file ${config}/log`,
        "echo EXIT=$?",
        "sleep 60",
      ].join("; ");
      await tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "30", cmd);
      await until(session, (l) => l.some((x) => x.includes("bob is here")), "alice sees bob");
      await until(session, (l) => l.at(-1) === "alice>", "the prompt carries alice's name");
      // Logs stay off the screen; --log-file has them.
      assert.ok(!(await pane(session)).some((l) => l.includes("p2p·")), "no log line on screen");
      assert.match(await Deno.readTextFile(`${config}/log`), /p2p·join: Bound UDP/);

      // Half a line typed, then bob talks: his line lands above, the input stays as typed.
      await tmux("send-keys", "-t", session, "-l", "I am typing a long sentence that is not fini");
      await until(session, (l) => l.at(-1)!.endsWith("not fini"), "the typed text is shown");
      await bob.send("interrupting message from bob");
      const shown = await until(
        session,
        (l) => l.some((x) => /^\d\d:\d\d \[bob\] interrupting message from bob$/.test(x)),
        "bob's line above the input, with the time",
      );
      assert.equal(shown.at(-1), "alice> I am typing a long sentence that is not fini");
      // NO_COLOR: names and status lines carry no colour or bold (-e shows attributes).
      const styled = await tmux("capture-pane", "-p", "-e", "-t", session);
      assert.ok(!styled.includes("\x1b["), `NO_COLOR is honoured: ${JSON.stringify(styled)}`);

      // Editing: Home, a word in front; End; backspace; then Enter sends what the line says.
      await tmux("send-keys", "-t", session, "Home");
      await tmux("send-keys", "-t", session, "-l", "Look: ");
      await tmux("send-keys", "-t", session, "End", "BSpace", "BSpace", "BSpace", "BSpace");
      await tmux("send-keys", "-t", session, "-l", "finished");
      await tmux("send-keys", "-t", session, "Enter");
      const m = await bob.waitFor((e) => e.event === "message" && e.from === "alice", WAIT);
      assert.equal(m.text, "Look: I am typing a long sentence that is not finished");
      await until(
        session,
        (l) =>
          l.some((x) =>
            x.endsWith("[alice] Look: I am typing a long sentence that is not finished")
          ),
        "our own line is shown with our name",
      );
      // The arrow keys edit; nothing like \x1b[D ever reaches the room.
      await tmux("send-keys", "-t", session, "-l", "helo");
      await tmux("send-keys", "-t", session, "Left");
      await tmux("send-keys", "-t", session, "-l", "l");
      await tmux("send-keys", "-t", session, "Enter");
      const e2 = await bob.waitFor((e) => e.event === "message" && e.text === "hello", WAIT);
      assert.equal(e2.from, "alice");

      const typed = async (keys: (string | [string])[]) => {
        for (const k of keys) {
          await tmux("send-keys", "-t", session, ...(typeof k === "string" ? ["-l", k] : k));
        }
        await tmux("send-keys", "-t", session, "Enter");
      };
      const got = async (text: string) => {
        const e = await bob.waitFor((e) => e.event === "message" && e.text === text, WAIT);
        assert.equal(e.from, "alice");
      };
      // A typed line that wraps (two rows of 120 columns) stays whole when a line comes.
      const wide = Array.from({ length: 30 }, (_, i) => `word${String(i).padStart(2, "0")}`)
        .join(" ") + " end";
      await tmux("send-keys", "-t", session, "-l", wide);
      await until(session, (l) => l.at(-1)!.endsWith(" end"), "the wide line is typed");
      await bob.send("while you type a wide line");
      const rows = await until(
        session,
        (l) => l.some((x) => x.endsWith("[bob] while you type a wide line")),
        "bob's line above the wrapped input",
      );
      assert.equal(rows.slice(-2).join(""), `alice> ${wide}`, "the input rows are intact");
      assert.ok(
        rows.at(-3)!.endsWith("[bob] while you type a wide line"),
        "right above the input",
      );
      // The cursor on the first row of it (Home), another line comes: still whole, and typing
      // goes where the cursor was.
      await tmux("send-keys", "-t", session, "Home");
      await bob.send("and another");
      const again = await until(
        session,
        (l) => l.some((x) => x.endsWith("[bob] and another")),
        "bob's second line above the wrapped input",
      );
      assert.equal(again.slice(-2).join(""), `alice> ${wide}`, "the input rows are intact");
      await tmux("send-keys", "-t", session, "-l", "start ");
      await tmux("send-keys", "-t", session, "Enter");
      await got(`start ${wide}`);

      // A line of wide characters that wraps: what was typed is replaced by the chat line,
      // with no row of it left behind.
      const cjk = "漢字".repeat(35);
      await tmux("send-keys", "-t", session, "-l", cjk);
      await tmux("send-keys", "-t", session, "Enter");
      await got(cjk);
      const after = await until(
        session,
        (l) => l.some((x) => x.includes("[alice] 漢字")),
        "the wide line shown as ours",
      );
      assert.ok(!after.some((x) => x.startsWith("alice> 漢字")), after.join("\n"));

      // Ctrl-W deletes a word, Ctrl-U the line, Ctrl-A/Ctrl-E go to its start and end, Alt-B
      // and Ctrl-Left a word back; Up and Down walk the history. What the room gets proves it.
      await typed(["alpha beta gamma", ["C-w"], "delta"]);
      await got("alpha beta delta");
      await typed(["junk junk", ["C-u"], "clean"]);
      await got("clean");
      await typed(["world", ["C-a"], "hello ", ["C-e"], "!"]);
      await got("hello world!");
      await typed(["one three", ["M-b"], "two "]);
      await got("one two three");
      await typed(["red blue", ["C-Left"], "green "]);
      await got("red green blue");
      await typed([["Up"], ["Up"], ["Up"], ["Down"], " again"]);
      await got("one two three again");
      const count = (t: string) =>
        bob.events.filter((e) => e.event === "message" && e.text === t).length;
      assert.deepEqual(
        ["alpha beta delta", "clean", "hello world!", "one two three", "red green blue"].map(count),
        [1, 1, 1, 1, 1],
        "each edited line was sent once, as edited",
      );

      // A paste as long as the message limit (16 times a terminal's 4,095-byte line) arrives
      // whole; one character more is refused with a notice, never cut.
      const long = "x".repeat(MAX_MESSAGE);
      const file = `${config}/paste`;
      for (const text of [long, long + "y"]) {
        await Deno.writeTextFile(file, text);
        await tmux("load-buffer", "-b", "p2p", file);
        await tmux("paste-buffer", "-b", "p2p", "-t", session);
        await tmux("send-keys", "-t", session, "Enter");
      }
      const big = await bob.waitFor((e) =>
        e.event === "message" && e.text !== "hello" &&
        e.from === "alice" && String(e.text).startsWith("x"), WAIT);
      assert.equal(String(big.text).length, long.length, "not cut below the message limit");
      await until(
        session,
        (l) =>
          l.some((x) =>
            x.endsWith(`is ${MAX_MESSAGE + 1} bytes; the limit is ${MAX_MESSAGE}. Not sent.`)
          ),
        "a line past the limit is refused with a notice",
      );

      // A multi-line paste: each line is a message, in order.
      await Deno.writeTextFile(file, "first pasted line\nsecond pasted line\n");
      await tmux("load-buffer", "-b", "p2p", file);
      await tmux("paste-buffer", "-b", "p2p", "-t", session);
      await bob.waitFor((e) => e.event === "message" && e.text === "second pasted line", WAIT);
      const texts = bob.events.filter((e) => e.event === "message").map((e) => e.text);
      assert.deepEqual(texts.slice(-2), ["first pasted line", "second pasted line"]);

      // /quit leaves and gives the terminal back; the exit code says a line was refused.
      await tmux("send-keys", "-t", session, "-l", "/quit");
      await tmux("send-keys", "-t", session, "Enter");
      await until(session, (l) => l.some((x) => x === "EXIT=1"), "alice exits 1");
      await bob.waitFor((e) => e.event === "left" && e.name === "alice", WAIT);
    } finally {
      await tmux("kill-session", "-t", session).catch(() => "");
      await bob.close();
      await server.proc.close();
      await Deno.remove(config, { recursive: true });
    }
  }),
);
