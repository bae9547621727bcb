import assert from "node:assert/strict";
import { bar, fileJson, fileLine, sizeText } from "../../lib/roles/file_view.ts";
import { HumanView, JsonView, parseInput, printable } from "../../lib/roles/view.ts";
import type { ClientFileEvent } from "../../lib/peer/client_files.ts";

const base = {
  type: "file" as const,
  id: "0123456789abcdef",
  name: "report.pdf",
  size: 3_000_000,
  bytes: 0,
  sha256: "ab".repeat(32),
};

Deno.test("file events as --json: exactly the fields of the issue, per state", () => {
  const offered: ClientFileEvent = { ...base, state: "offered", from: "ann" };
  assert.deepEqual(fileJson(offered), {
    event: "file",
    state: "offered",
    id: base.id,
    name: "report.pdf",
    size: 3_000_000,
    bytes: 0,
    from: "ann",
    sha256: base.sha256,
  });
  const progress: ClientFileEvent = {
    ...base,
    state: "progress",
    bytes: 1_000_000,
    to: "ben",
    rate: 500_000,
    route: "direct",
  };
  assert.deepEqual(fileJson(progress), {
    event: "file",
    state: "progress",
    id: base.id,
    name: "report.pdf",
    size: 3_000_000,
    bytes: 1_000_000,
    to: "ben",
    rate: 500_000,
    route: "direct",
  });
  const done: ClientFileEvent = {
    ...base,
    state: "done",
    bytes: 3_000_000,
    from: "ann",
    path: "/home/x/Downloads/report.pdf",
  };
  assert.deepEqual(fileJson(done), {
    event: "file",
    state: "done",
    id: base.id,
    name: "report.pdf",
    size: 3_000_000,
    bytes: 3_000_000,
    from: "ann",
    path: "/home/x/Downloads/report.pdf",
    sha256: base.sha256,
  });
  const failed: ClientFileEvent = { ...base, state: "failed", to: "ben", reason: "rejected" };
  assert.equal(fileJson(failed).reason, "rejected");
  // One JSON line, parsed back to the same strings.
  const line = new JsonView().event(done);
  assert.equal(line.length, 1);
  assert.equal(JSON.parse(line[0]!).path, "/home/x/Downloads/report.pdf");
});

Deno.test("file lines for people: the offer with fingerprint and commands, a bar, escapes", () => {
  const offered: ClientFileEvent = { ...base, state: "offered", from: "ann" };
  assert.equal(
    fileLine(offered, "abcd-efgh-ijkl-mnop", printable),
    "* ann (abcd-efgh-ijkl-mnop) offers report.pdf (3.0 MB): /accept 012345 or /reject 012345",
  );
  const progress: ClientFileEvent = {
    ...base,
    state: "progress",
    bytes: 1_500_000,
    from: "ann",
    rate: 500_000,
    route: "relay",
  };
  assert.equal(
    fileLine(progress, undefined, printable),
    "* report.pdf from ann [##########..........] 50 % 1.5 MB of 3.0 MB, 500 kB/s, 0:03 left, relay",
  );
  // A hostile name and peer name reach the terminal escaped, on one line.
  const hostile: ClientFileEvent = {
    ...base,
    state: "offered",
    name: "x\x1b]0;pwned\x07\u202egpj.exe\nfake line",
    from: "m\x1b[31mallory",
  };
  const shown = fileLine(hostile, undefined, printable);
  const raw = [...shown].filter((c) => c.charCodeAt(0) < 0x20 || c === "\x7f" || c === "\u202e");
  assert.deepEqual(raw, [], JSON.stringify(shown));
  const view = new HumanView();
  view.event({
    type: "peer",
    name: "ann",
    fingerprint: "abcd-efgh-ijkl-mnop",
    path: "direct",
    addr: null,
    rtt: 1,
  });
  assert.match(view.event(offered)[0]!, /\(abcd-efgh-ijkl-mnop\)/);
  assert.equal(bar(0, 0, 4), "[####]");
  assert.equal(sizeText(999), "999 B");
  assert.equal(sizeText(12_345_678_901), "12.3 GB");
});

Deno.test("/send, /accept and /reject are commands; //send is a line", () => {
  assert.deepEqual(parseInput("/send ~/a b.txt"), { kind: "send-file", args: "~/a b.txt" });
  assert.deepEqual(parseInput("/send ben ./x"), { kind: "send-file", args: "ben ./x" });
  assert.deepEqual(parseInput("/accept"), { kind: "accept", id: "" });
  assert.deepEqual(parseInput("/accept 01ab"), { kind: "accept", id: "01ab" });
  assert.deepEqual(parseInput("/reject 01ab"), { kind: "reject", id: "01ab" });
  assert.deepEqual(parseInput("//send x"), { kind: "send", text: "/send x" });
  assert.deepEqual(parseInput("/send"), { kind: "unknown", command: "/send" });
});
