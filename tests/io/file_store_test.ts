import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import {
  chunkShiftFor,
  defaultDownloadDir,
  FileStore,
  hashFile,
  SourceFile,
} from "../../lib/io/file_store.ts";
import { encodeResume, IncomingFile } from "../../lib/files/incoming.ts";
import type { FileOffer } from "../../lib/wire/file_frame.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "p2p-files-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function sourceOf(dir: string, name: string, bytes: Uint8Array): Promise<SourceFile> {
  const path = join(dir, name);
  await Deno.writeFile(path, bytes);
  return await SourceFile.open(path);
}

function bytesOf(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7 + (i >> 9)) & 0xff;
  return out;
}

async function receive(store: FileStore, src: SourceFile, id: string): Promise<string> {
  const offer: FileOffer = { id: new Uint8Array(8), ...src.offer };
  await store.begin(id, offer, false);
  const layout = new IncomingFile(offer).layout;
  // Chunks out of order, as they verify.
  for (let c = layout.chunks - 1; c >= 0; c--) {
    const data = await src.read(layout.start(c), layout.length(c));
    await store.write(id, layout.start(c), data!);
  }
  const done = await store.finish(id, offer);
  assert.ok(done.ok, JSON.stringify(done));
  return done.path;
}

Deno.test("the download directory: XDG_DOWNLOAD_DIR, user-dirs.dirs, ~/Downloads", async () => {
  await withDir(async (home) => {
    const env = (vars: Record<string, string>) => (k: string) => vars[k];
    assert.equal(defaultDownloadDir(env({ HOME: home })), join(home, "Downloads"));
    assert.equal(defaultDownloadDir(env({ HOME: home, XDG_DOWNLOAD_DIR: "/x" })), "/x");
    await Deno.mkdir(join(home, ".config"));
    await Deno.writeTextFile(
      join(home, ".config", "user-dirs.dirs"),
      '# comment\nXDG_DOWNLOAD_DIR="$HOME/Téléchargements"\n',
    );
    assert.equal(defaultDownloadDir(env({ HOME: home })), join(home, "Téléchargements"));
    assert.equal(defaultDownloadDir(env({})), null);
  });
});

Deno.test("a received file lands under its safe name, verified; nothing partial is left", async () => {
  await withDir(async (dir) => {
    const src = await sourceOf(dir, "src.bin", bytesOf(700_000));
    assert.equal(src.offer.size, 700_000);
    assert.deepEqual(
      src.offer.sha256,
      new Uint8Array(createHash("sha256").update(bytesOf(700_000)).digest()),
    );
    const down = join(dir, "down");
    const store = await FileStore.open(down);
    const path = await receive(store, src, "01");
    assert.equal(path, join(await Deno.realPath(down), "src.bin"));
    assert.deepEqual(await Deno.readFile(path), bytesOf(700_000));
    const names = [...Deno.readDirSync(down)].map((e) => e.name);
    assert.deepEqual(names, ["src.bin"]);
    src.close();
  });
});

Deno.test("never overwrite: a taken name, or a planted symbolic link, gets a numbered name", async () => {
  await withDir(async (dir) => {
    const down = join(dir, "down");
    await Deno.mkdir(down);
    const outside = join(dir, "outside.txt");
    await Deno.writeTextFile(outside, "precious");
    await Deno.writeTextFile(join(down, "a.txt"), "mine");
    await Deno.symlink(outside, join(down, "a (1).txt"));
    const src = await sourceOf(dir, "a.txt", bytesOf(1000));
    const store = await FileStore.open(down);
    const path = await receive(store, src, "02");
    assert.equal(path, join(await Deno.realPath(down), "a (2).txt"));
    assert.equal(await Deno.readTextFile(join(down, "a.txt")), "mine");
    assert.equal(await Deno.readTextFile(outside), "precious");
    src.close();
  });
});

Deno.test("a hostile name stays inside the directory", async () => {
  await withDir(async (dir) => {
    const down = join(dir, "down");
    const src = await sourceOf(dir, "x", bytesOf(10));
    const store = await FileStore.open(down);
    const offer = { id: new Uint8Array(8), ...src.offer, name: "../../.ssh/authorized_keys" };
    await store.begin("03", offer, false);
    await store.write("03", 0, bytesOf(10));
    const done = await store.finish("03", offer);
    assert.ok(done.ok);
    assert.equal(done.path, join(await Deno.realPath(down), "ssh", "authorized_keys"));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["down", "x"]);
    src.close();
  });
});

Deno.test("a file of a directory lands in that tree; a link or file in the way is refused", async () => {
  await withDir(async (dir) => {
    const down = join(dir, "down");
    const src = await sourceOf(dir, "x", bytesOf(300));
    const store = await FileStore.open(down);
    const put = async (id: string, name: string) => {
      const offer = { id: new Uint8Array(8), ...src.offer, name };
      await store.begin(id, offer, false);
      await store.write(id, 0, bytesOf(300));
      return await store.finish(id, offer);
    };
    const real = await Deno.realPath(down);
    const first = await put("05", "album/sub/b.jpg");
    assert.ok(first.ok);
    assert.equal(first.path, join(real, "album", "sub", "b.jpg"));
    // The same tree again: the directories are shared, the file is numbered.
    const second = await put("06", "album/sub/b.jpg");
    assert.ok(second.ok);
    assert.equal(second.path, join(real, "album", "sub", "b (1).jpg"));
    // A planted link where a directory goes is never followed; nor is a file replaced.
    const outside = join(dir, "outside");
    await Deno.mkdir(outside);
    await Deno.symlink(outside, join(down, "linked"));
    await Deno.writeTextFile(join(down, "plain"), "mine");
    const linked = await put("07", "linked/c.jpg");
    assert.ok(!linked.ok && /linked .*not a directory/.test(linked.reason), JSON.stringify(linked));
    const plain = await put("08", "plain/d.jpg");
    assert.ok(!plain.ok && /plain .*not a directory/.test(plain.reason), JSON.stringify(plain));
    assert.deepEqual([...Deno.readDirSync(outside)], []);
    assert.equal(await Deno.readTextFile(join(down, "plain")), "mine");
    // A complete copy in the tree is found before anything is fetched; through a link, never.
    const offer = { id: new Uint8Array(8), ...src.offer, name: "album/sub/b.jpg" };
    assert.deepEqual(await store.prepare(offer), { kind: "complete", path: first.path });
    await Deno.copyFile(first.path, join(outside, "c.jpg"));
    const viaLink = { ...offer, name: "linked/c.jpg" };
    assert.equal((await store.prepare(viaLink)).kind, "resume");
    src.close();
  });
});

Deno.test("a download in place is still read for other receivers; never once replaced", async () => {
  await withDir(async (dir) => {
    const down = join(dir, "down");
    const src = await sourceOf(dir, "x", bytesOf(3000));
    const store = await FileStore.open(down);
    const offer = { id: new Uint8Array(8), ...src.offer, name: "shared.bin" };
    await store.begin("09", offer, false);
    await store.write("09", 0, bytesOf(3000));
    const done = await store.finish("09", offer);
    assert.ok(done.ok);
    // Another receiver asks late: the chunk comes from the file in place.
    assert.deepEqual(await store.read("09", 1000, 500), bytesOf(3000).subarray(1000, 1500));
    assert.equal(await store.read("09", 2900, 500), null, "past its end");
    assert.equal(await store.read("10", 0, 10), null, "an unknown download");
    // Replaced by a link to a secret: nothing of the secret is read.
    const secret = join(dir, "secret");
    await Deno.writeFile(secret, bytesOf(3000, 9));
    await Deno.remove(done.path);
    await Deno.symlink(secret, done.path);
    assert.equal(await store.read("09", 0, 100), null);
    src.close();
  });
});

Deno.test("a partial file planted as a symbolic link is refused, its target untouched", async () => {
  await withDir(async (dir) => {
    const down = join(dir, "down");
    const src = await sourceOf(dir, "f", bytesOf(5000));
    const store = await FileStore.open(down);
    const offer = { id: new Uint8Array(8), ...src.offer };
    const hex = [...src.offer.sha256].map((b) => b.toString(16).padStart(2, "0")).join("");
    const outside = join(dir, "victim");
    await Deno.writeTextFile(outside, "precious");
    await Deno.symlink(outside, join(down, `.p2p-${hex}.part`));
    await assert.rejects(() => store.begin("04", offer, true), /symbolic link/);
    // Starting afresh removes the link itself, never writes through it.
    await store.begin("04", offer, false);
    await store.write("04", 0, bytesOf(5000));
    assert.equal(await Deno.readTextFile(outside), "precious");
    src.close();
  });
});

Deno.test("a file whose SHA-256 does not match is not put in place and leaves nothing", async () => {
  await withDir(async (dir) => {
    const down = join(dir, "down");
    const src = await sourceOf(dir, "f.bin", bytesOf(3000));
    const store = await FileStore.open(down);
    const offer = { id: new Uint8Array(8), ...src.offer };
    await store.begin("05", offer, false);
    await store.write("05", 0, bytesOf(3000, 2));
    assert.deepEqual(await store.finish("05", offer), { ok: false, reason: "sha256 mismatch" });
    assert.deepEqual([...Deno.readDirSync(down)], []);
    src.close();
  });
});

Deno.test("resume state survives a restart; a complete copy is found and not fetched again", async () => {
  await withDir(async (dir) => {
    const down = join(dir, "down");
    const src = await sourceOf(dir, "big.bin", bytesOf(600_000));
    const offer = { id: new Uint8Array(8), ...src.offer };
    const store = await FileStore.open(down);
    assert.deepEqual(await store.prepare(offer), { kind: "resume", bitmap: undefined });
    await store.begin("06", offer, false);
    const f = new IncomingFile(offer);
    await store.write("06", 0, (await src.read(0, 262_144))!);
    const bitmap = f.bitmap();
    bitmap[0] = 1;
    await store.save("06", encodeResume(offer, bitmap));
    store.close();
    const again = await FileStore.open(down);
    assert.deepEqual(await again.prepare(offer), { kind: "resume", bitmap });
    await again.begin("07", offer, true);
    await again.write("07", 262_144, (await src.read(262_144, 337_856))!);
    const done = await again.finish("07", offer);
    assert.ok(done.ok);
    assert.deepEqual(await hashFile(done.path), src.offer.sha256);
    assert.deepEqual(await again.prepare(offer), { kind: "complete", path: done.path });
    assert.deepEqual([...Deno.readDirSync(down)].map((e) => e.name), ["big.bin"]);
    src.close();
  });
});

Deno.test("a source file that shrank reads as changed; chunk sizes stay within 2^22 chunks", async () => {
  await withDir(async (dir) => {
    const src = await sourceOf(dir, "s", bytesOf(300_000));
    await Deno.truncate(join(dir, "s"), 1000);
    assert.equal(await src.read(262_144, 37_856), null);
    src.close();
    const empty = await sourceOf(dir, "e", new Uint8Array(0));
    assert.equal(empty.offer.size, 0);
    empty.close();
  });
  assert.equal(chunkShiftFor(10 * 2 ** 30), 18);
  assert.equal(chunkShiftFor(2 ** 40), 20);
});
