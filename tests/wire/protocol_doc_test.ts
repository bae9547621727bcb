/**
 * `docs/protocol.md` against the code where the document states numbers the code defines: its
 * table of wire constants, the message type and inner kind tables, the REFUSED codes and LEFT
 * reasons, the
 * message sizes it gives, and the vector keys its appendix lists. A constant changed on one side
 * only fails here.
 *
 * @module
 */
import * as chatMessage from "../../lib/wire/chat_message.ts";
import assert from "node:assert/strict";
import * as header from "../../lib/wire/header.ts";
import * as serverMsg from "../../lib/wire/server_msg.ts";
import * as peerFrame from "../../lib/wire/peer_frame.ts";
import { MAX_MESSAGE } from "../../lib/peer/fragment.ts";
import { REPLAY_WINDOW } from "../../lib/crypto/session.ts";
import { DEFAULT_RELIABLE } from "../../lib/peer/reliable.ts";
import { VECTORS_PATH } from "./vector_json.ts";

const doc = Deno.readTextFileSync(new URL("../../docs/protocol.md", import.meta.url));
const vectors = JSON.parse(
  Deno.readTextFileSync(new URL(`../../${VECTORS_PATH}`, import.meta.url)),
);

/** The rows of the Markdown table that follows `heading` (a line that starts the table's block). */
function table(after: string): string[][] {
  const at = doc.indexOf(after);
  assert.ok(at >= 0, `protocol.md has "${after}"`);
  const lines = doc.slice(at).split("\n");
  const start = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith("|")) break;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.every((c) => /^-+$/.test(c))) continue;
    rows.push(cells);
  }
  return rows.slice(1); // Without the header row.
}

/** A number as the document writes it: `1200 bytes`, `65 536 bytes`, `0xffff`. */
function num(text: string): number {
  const t = text.replace(/ bytes$/, "").replace(/ /g, "");
  return t.startsWith("0x") ? parseInt(t, 16) : Number(t);
}

const code: Record<string, number> = {
  ...Object.fromEntries(
    Object.entries({ ...header, ...serverMsg, ...peerFrame, ...chatMessage }).filter(([, v]) =>
      typeof v === "number"
    ),
  ) as Record<string, number>,
  MAX_MESSAGE,
};

Deno.test("protocol.md: every named wire constant has the code's value", () => {
  let checked = 0;
  for (const [name, value] of table("Wire constants (MUST):")) {
    const m = /^`([A-Z_0-9]+)`$/.exec(name!);
    if (!m) continue;
    assert.ok(m[1]! in code, `${m[1]} is a constant of lib/wire (or MAX_MESSAGE)`);
    assert.equal(num(value!), code[m[1]!], m[1]);
    checked++;
  }
  assert.ok(checked >= 25, `checked ${checked} constants`);
  const rows = Object.fromEntries(table("Wire constants (MUST):").map((r) => [r[0], r[1]]));
  assert.equal(num(rows["replay window"]!), Number(REPLAY_WINDOW));
  assert.equal(num(rows["receive window"]!), DEFAULT_RELIABLE.window);
});

Deno.test("protocol.md: message types, inner kinds, REFUSED codes and LEFT reasons are the code's", () => {
  const types = table("| type | name      | direction");
  const names: Record<string, string> = {
    HELLO: "Hello",
    WELCOME: "Welcome",
    REFUSED: "Refused",
    INTRO: "Intro",
    LEFT: "Left",
    PING: "Ping",
    PONG: "Pong",
    ROSTER: "Roster",
    BYE: "Bye",
    RELAY: "Relay",
    RELAYED: "Relayed",
    REPUNCH: "Repunch",
    COOKIE: "Cookie",
    REACH: "Reach",
    REACHED: "Reached",
    CHECK: "Check",
    SEALED: "Sealed",
    HANDSHAKE: "Handshake",
  };
  assert.equal(types.length, Object.keys(header.MsgType).length);
  for (const [type, name] of types) {
    const key = names[name!] as keyof typeof header.MsgType;
    assert.equal(num(type!), header.MsgType[key], name);
  }
  const kinds = table("| kind | name         | sent ");
  const kindNames: Record<string, number> = {
    PROBE: peerFrame.InnerKind.Probe,
    PROBE_ACK: peerFrame.InnerKind.ProbeAck,
    DATA: peerFrame.InnerKind.Data,
    ACK: peerFrame.InnerKind.Ack,
    ANNOUNCE: peerFrame.InnerKind.Announce,
    CANDIDATES: peerFrame.InnerKind.Candidates,
    NAT: peerFrame.InnerKind.Nat,
    BIRTHDAY: peerFrame.InnerKind.Birthday,
    DATA_BATCH: peerFrame.DATA_BATCH_KIND,
    RELAYS: peerFrame.InnerKind.Relays,
    SERVER_HINT: peerFrame.InnerKind.ServerHint,
    GOODBYE: peerFrame.InnerKind.Goodbye,
    GOODBYE_ACK: peerFrame.InnerKind.GoodbyeAck,
    FILE_OFFER: peerFrame.InnerKind.FileOffer,
    FILE_REPLY: peerFrame.InnerKind.FileReply,
    FILE_REQUEST: peerFrame.InnerKind.FileRequest,
    FILE_DATA: peerFrame.InnerKind.FileData,
    FILE_ACK: peerFrame.InnerKind.FileAck,
    FILE_SWARM: peerFrame.InnerKind.FileSwarm,
  };
  assert.equal(kinds.length, Object.keys(kindNames).length);
  for (const [kind, name] of kinds) assert.equal(num(kind!), kindNames[name!], name);
  const codes = table("| code | name      | meaning");
  assert.deepEqual(
    codes.map(([c, n]) => [num(c!), n]),
    Object.entries(serverMsg.RefuseCode).map(([n, c]) => [c, n]),
  );
  const reasons = table("| reason | name     | meaning");
  assert.deepEqual(
    reasons.map(([c, n]) => [num(c!), n]),
    Object.entries(serverMsg.LeftReason).map(([n, c]) => [c, n]),
  );
});

Deno.test("protocol.md: the stated fixed message sizes are what the codec writes", () => {
  const id = new Uint8Array(8), token = new Uint8Array(8);
  const sized: [string, Uint8Array][] = [
    [
      "COOKIE",
      serverMsg.encodeServerMsg({
        type: header.MsgType.Cookie,
        echo: token,
        cookie: token,
        difficulty: 0,
      }),
    ],
    [
      "LEFT",
      serverMsg.encodeServerMsg({ type: header.MsgType.Left, token, seq: 1, id, reason: 1 }),
    ],
    [
      "PING",
      serverMsg.encodeServerMsg({ type: header.MsgType.Ping, id, token, cookie: token, digest: 0 }),
    ],
    ["BYE", serverMsg.encodeServerMsg({ type: header.MsgType.Bye, id, token })],
    [
      "REPUNCH",
      serverMsg.encodeServerMsg({ type: header.MsgType.Repunch, id, token, target: id }),
    ],
    [
      "REACH",
      serverMsg.encodeServerMsg({
        type: header.MsgType.Reach,
        nonce: token,
        mac: new Uint8Array(16),
      }),
    ],
    [
      "REACHED",
      serverMsg.encodeServerMsg({ type: header.MsgType.Reached, id, token, nonce: token }),
    ],
  ];
  for (const [name, bytes] of sized) {
    const heading = new RegExp(`### 5\\.\\d+ ${name} \\(0x[0-9a-f]{2}\\)`);
    const at = doc.search(heading);
    assert.ok(at >= 0, `a section for ${name}`);
    const block = doc.slice(at, doc.indexOf("\n### ", at + 5));
    const stated = /\+\s+(\d+) bytes\n/.exec(block);
    assert.ok(stated, `the ${name} diagram states its size`);
    assert.equal(Number(stated[1]), bytes.length, name);
  }
});

Deno.test("protocol.md: appendix A lists every vector group the file has", () => {
  const appendix = doc.slice(doc.indexOf("## Appendix A. Test vectors"));
  const listed = new Set<string>();
  for (const m of appendix.matchAll(/^\| `([a-z_.]+)`/gm)) listed.add(m[1]!.split(".")[0]!);
  const groups = Object.keys(vectors).filter((k) => typeof vectors[k] === "object");
  for (const g of groups) assert.ok(listed.has(g), `appendix A lists ${g}`);
  for (const l of listed) assert.ok(groups.includes(l), `the file has ${l}`);
});
