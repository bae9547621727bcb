/** The identity file: where it lives, its format, creation, and what is refused. */
import assert from "node:assert/strict";
import { Identity } from "../../lib/crypto/identity.ts";
import {
  formatIdentity,
  IdentityError,
  identityPath,
  loadOrCreateIdentity,
  parseIdentity,
} from "../../lib/io/identity_store.ts";

const POSIX = Deno.build.os !== "windows";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "p2p-identity-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function rejectsWith(p: Promise<unknown>, ...mentions: (string | RegExp)[]) {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof IdentityError, `IdentityError, got ${err}`);
  for (const m of mentions) {
    if (typeof m === "string") assert.ok(err.message.includes(m), `"${err.message}" has "${m}"`);
    else assert.match(err.message, m);
  }
}

Deno.test("identity path: --identity, then XDG_CONFIG_HOME, then HOME", () => {
  assert.equal(identityPath({ HOME: "/home/a" }), "/home/a/.config/p2p/identity");
  assert.equal(
    identityPath({ HOME: "/home/a", XDG_CONFIG_HOME: "/cfg" }),
    "/cfg/p2p/identity",
  );
  // The XDG spec: a relative XDG_CONFIG_HOME is ignored; so is an empty one.
  assert.equal(identityPath({ HOME: "/h", XDG_CONFIG_HOME: "rel" }), "/h/.config/p2p/identity");
  assert.equal(identityPath({ HOME: "/h", XDG_CONFIG_HOME: "" }), "/h/.config/p2p/identity");
  assert.equal(identityPath({ HOME: "/h" }, "./my.key"), "./my.key");
  assert.throws(
    () => identityPath({}),
    (e) => e instanceof IdentityError && /HOME/.test(e.message),
  );
  assert.equal(identityPath({}, "/x"), "/x");
});

Deno.test("identity format: one line with the version and the base64 key", () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const text = formatIdentity(key);
  assert.equal(text, "p2p-identity-v1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
  assert.deepEqual(parseIdentity(text), key);
  assert.deepEqual(parseIdentity(text.trimEnd()), key);
  assert.deepEqual(parseIdentity(text.trimEnd() + "\r\n"), key);
  for (
    const bad of [
      "",
      "p2p-identity-v2 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
      "p2p-identity-v1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n", // 31 bytes
      "p2p-identity-v1  AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
      text + "more\n",
    ]
  ) assert.equal(parseIdentity(bad), null, JSON.stringify(bad));
  assert.throws(() => formatIdentity(new Uint8Array(31)));
});

Deno.test("identity: created once (dir 0700, file 0600), then loaded unchanged", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/cfg/p2p/identity`;
    const first = await loadOrCreateIdentity(path);
    assert.equal(first.created, true);
    assert.equal(first.privateKey.length, 32);
    if (POSIX) {
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
      assert.equal((await Deno.stat(`${dir}/cfg/p2p`)).mode! & 0o777, 0o700);
    }
    assert.deepEqual(parseIdentity(await Deno.readTextFile(path)), first.privateKey);
    const again = await loadOrCreateIdentity(path);
    assert.equal(again.created, false);
    assert.deepEqual(again.privateKey, first.privateKey);
    // No temporary files are left behind.
    const names = [];
    for await (const e of Deno.readDir(`${dir}/cfg/p2p`)) names.push(e.name);
    assert.deepEqual(names, ["identity"]);
    // It makes a working X25519 identity.
    const id = Identity.fromPrivate(first.privateKey);
    assert.equal(id.publicKey.length, 32);
    assert.deepEqual(Identity.fromPrivate(again.privateKey).publicKey, id.publicKey);
  });
});

Deno.test("identity: injected randomness; concurrent creation agrees on one key", async () => {
  await withTempDir(async (dir) => {
    let n = 0;
    const random = (len: number) => new Uint8Array(len).fill(++n);
    const path = `${dir}/identity`;
    const all = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateIdentity(path, random)));
    const keys = new Set(all.map((r) => r.privateKey.join(",")));
    assert.equal(keys.size, 1, "every caller sees the same key");
    assert.equal(all.filter((r) => r.created).length, 1);
  });
});

Deno.test({
  name: "identity: a file others may read is refused, saying chmod 600",
  ignore: !POSIX,
  async fn() {
    await withTempDir(async (dir) => {
      const path = `${dir}/identity`;
      await loadOrCreateIdentity(path);
      for (const mode of [0o644, 0o640, 0o604, 0o660]) {
        await Deno.chmod(path, mode);
        await rejectsWith(loadOrCreateIdentity(path), path, "chmod 600", mode.toString(8));
      }
      await Deno.chmod(path, 0o400);
      assert.equal((await loadOrCreateIdentity(path)).created, false);
    });
  },
});

Deno.test("identity: a malformed file is refused and kept", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/identity`;
    await Deno.writeTextFile(path, "-----BEGIN PRIVATE KEY-----\n", { mode: 0o600 });
    await rejectsWith(loadOrCreateIdentity(path), path, "malformed", "p2p-identity-v1");
    assert.equal(await Deno.readTextFile(path), "-----BEGIN PRIVATE KEY-----\n");
    await Deno.remove(path);
    await Deno.mkdir(path);
    await rejectsWith(loadOrCreateIdentity(path), "not a regular file");
  });
});

Deno.test({
  name: "identity: a directory that cannot be created is a clear error",
  ignore: !POSIX || Deno.uid() === 0,
  async fn() {
    await withTempDir(async (dir) => {
      await Deno.chmod(dir, 0o500);
      try {
        await rejectsWith(loadOrCreateIdentity(`${dir}/sub/identity`), `${dir}/sub`);
      } finally {
        await Deno.chmod(dir, 0o700);
      }
    });
  },
});

Deno.test("identity: a symlink or another user's identity file is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "p2p-id-own-" });
  try {
    const path = `${dir}/identity`;
    await loadOrCreateIdentity(path);
    await Deno.rename(path, `${dir}/theirs`);
    await Deno.symlink(`${dir}/theirs`, path);
    await assert.rejects(loadOrCreateIdentity(path), IdentityError, "symbolic link");
    await Deno.remove(path);
    await Deno.rename(`${dir}/theirs`, path);
    if (Deno.uid() === 0) {
      await Deno.chown(path, 65534, 65534);
      await assert.rejects(loadOrCreateIdentity(path), IdentityError, "another user");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
