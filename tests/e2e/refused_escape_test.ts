/**
 * A server's words never reach the terminal raw: a (hostile) server answers a peer's HELLO with
 * a REFUSED whose message tries every class of terminal escape (CSI clearing the screen, OSC
 * setting the title or, through OSC 52, the clipboard, a C1 CSI, bidi overrides, invisible
 * characters, a fake second line). The peer exits 1 with one line that shows them as escapes.
 */
import assert from "node:assert/strict";
import { runP2p } from "../support/proc.ts";
import { decodeServerMsg, encodeServerMsg, RefuseCode } from "../../lib/wire/server_msg.ts";
import { MsgType } from "../../lib/wire/header.ts";

const EVIL = "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x9b31m\u202egnp.exe\u200b\n* fake line";

Deno.test("a REFUSED full of escapes is printed escaped, on one line", async () => {
  const sock = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const port = (sock.addr as Deno.NetAddr).port;
  // The fake server: answer every HELLO with the hostile REFUSED (echoing its nonce).
  const serving = (async () => {
    try {
      for await (const [data, from] of sock) {
        const d = decodeServerMsg(data);
        if (!d.ok || d.value.type !== MsgType.Hello) continue;
        const reply = encodeServerMsg({
          type: MsgType.Refused,
          echo: d.value.nonce,
          code: RefuseCode.Invalid,
          message: EVIL,
        });
        await sock.send(reply, from);
      }
    } catch {
      // closed
    }
  })();
  try {
    const r = await runP2p(
      ["join", "--server", `127.0.0.1:${port}`, "--room", "r", "--name", "n", "--timeout", "5"],
      { env: { P2P_PASSPHRASE: "escape test pass" } },
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /The server refused to register us/);
    for (const raw of ["\x1b", "\x07", "\x9b", "\u202e", "\u200b"]) {
      assert.ok(!r.stderr.includes(raw), `no raw U+${raw.codePointAt(0)!.toString(16)}`);
      assert.ok(!r.stdout.includes(raw));
    }
    assert.match(r.stderr, /\\x1b\[2J/);
    const lines = r.stderr.trimEnd().split("\n").filter((l) => l.includes("refused"));
    assert.equal(lines.length, 1);
    assert.ok(!r.stderr.includes("\n* fake line"), "the message cannot fake a line");
  } finally {
    sock.close();
    await serving;
  }
});
