/**
 * A real `p2p serve` on both families of loopback (`--host 0.0.0.0`, IPv6 on `::` by default,
 * one port): STUN answers over IPv6 carry an IPv6 XOR-MAPPED-ADDRESS (family 2) and IPv4 ones
 * the plain IPv4 source (not `::ffff:`), the registry answers a HELLO over IPv6, and two
 * `p2p join --server [::1]:PORT` peers register over IPv6 and chat directly. With RFC 5780
 * behaviour discovery on IPv4 (`--alt-host`), IPv6 answers name no (IPv4) alternate address.
 *
 * Skipped with the reason when this host cannot bind `::1`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  Attr,
  bindingRequest,
  CHANGE_PORT,
  decodeStun,
  findAttribute,
  mappedAddress,
} from "../../lib/nat/stun.ts";
import { MsgType } from "../../lib/wire/header.ts";
import { decodeServerMsg, encodeServerMsg } from "../../lib/wire/server_msg.ts";
import { signedHello, testPeerId } from "../support/hello.ts";
import { prepareProduct, startPeer, startServer } from "../support/proc.ts";

function canBindLoopback6(): boolean {
  try {
    Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" }).close();
    return true;
  } catch {
    return false;
  }
}
const skip = canBindLoopback6() ? "" : " (SKIPPED: this host cannot bind ::1)";

async function ask(
  sock: Deno.DatagramConn,
  data: Uint8Array,
  to: { hostname: string; port: number },
): Promise<{ reply: Uint8Array; from: Deno.NetAddr }> {
  await sock.send(data, { transport: "udp", ...to });
  const timer = setTimeout(() => sock.close(), 5000);
  try {
    const [reply, from] = await sock.receive();
    return { reply, from: from as Deno.NetAddr };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test({
  name: `ipv6 serve: one port for both families; STUN, HELLO and join over [::1]${skip}`,
  ignore: skip !== "",
  sanitizeResources: false,
  async fn(t) {
    await prepareProduct();
    const server = await startServer({ host: "0.0.0.0", port: 0 });
    try {
      const ev = server.proc.eventsOf("listening")[0]!;
      const port = Number(server.addr.split(":")[1]);
      assert.equal(ev.addr6, `[::]:${port}`);

      await t.step("STUN over IPv6: XOR-MAPPED-ADDRESS of family 2", async () => {
        const sock = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
        const me = (sock.addr as Deno.NetAddr).port;
        const tid = new Uint8Array(12).fill(6);
        const { reply, from } = await ask(sock, bindingRequest(tid), { hostname: "::1", port });
        sock.close();
        assert.deepEqual([from.hostname, from.port], ["::1", port]);
        const m = decodeStun(reply);
        assert.ok(m.ok);
        assert.equal(findAttribute(m.value, Attr.XorMappedAddress)?.value[1], 2, "family IPv6");
        assert.deepEqual(mappedAddress(m.value), { hostname: "::1", port: me });
      });

      await t.step("STUN over IPv4 on the same port: the plain IPv4 source", async () => {
        const sock = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
        const me = (sock.addr as Deno.NetAddr).port;
        const tid = new Uint8Array(12).fill(4);
        const { reply, from } = await ask(sock, bindingRequest(tid), {
          hostname: "127.0.0.1",
          port,
        });
        sock.close();
        assert.deepEqual([from.hostname, from.port], ["127.0.0.1", port]);
        const m = decodeStun(reply);
        assert.ok(m.ok);
        assert.equal(findAttribute(m.value, Attr.XorMappedAddress)?.value[1], 1, "family IPv4");
        assert.deepEqual(mappedAddress(m.value), { hostname: "127.0.0.1", port: me });
      });

      await t.step("a HELLO over IPv6 gets the registry's COOKIE", async () => {
        const sock = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
        const hello = encodeServerMsg(
          signedHello("v6", { id: testPeerId("v6"), nameTag: new Uint8Array(8) }),
        );
        const { reply } = await ask(sock, hello, { hostname: "::1", port });
        sock.close();
        const m = decodeServerMsg(reply);
        assert.ok(m.ok && m.value.type === MsgType.Cookie);
      });

      await t.step("two peers join with --server [::1]:PORT and chat directly", async () => {
        const spec = `[::1]:${port}`;
        const a = startPeer({ server: spec, room: "v6", name: "ann" });
        const b = startPeer({ server: spec, room: "v6", name: "ben" });
        try {
          const ready = await a.waitFor((e) => e.event === "ready", 15_000, "ready");
          assert.match(String(ready.public), /^\[::1\]:\d+$/, a.describe());
          await a.waitFor((e) => e.event === "peer" && e.path === "direct", 15_000, "direct");
          await b.waitFor((e) => e.event === "peer" && e.path === "direct", 15_000, "direct");
          const lines = Array.from({ length: 5 }, (_, i) => `over v6 ${i + 1}`);
          for (const l of lines) await a.send(l);
          await b.waitFor((e) => e.event === "message" && e.text === lines.at(-1), 15_000);
          assert.deepEqual(b.eventsOf("message").map((e) => e.text), lines);
        } finally {
          await Promise.all([a.close(), b.close()]);
        }
      });
    } finally {
      await server.proc.close();
    }
  },
});

Deno.test({
  name:
    `ipv6 serve: with --alt-host discovery on IPv4, IPv6 answers name no IPv4 alternates${skip}`,
  ignore: skip !== "" || Deno.build.os !== "linux",
  sanitizeResources: false,
  async fn() {
    await prepareProduct();
    const probe = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
    const altPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const server = await startServer({
      host: "127.0.0.1",
      port: 0,
      extraArgs: ["--host6", "::1", "--alt-port", String(altPort), "--alt-host", "127.0.0.2"],
    });
    try {
      const ev = server.proc.eventsOf("listening")[0]!;
      const port4 = Number(server.addr.split(":")[1]);
      const m6 = /^\[::1\]:(\d+)$/.exec(String(ev.addr6));
      assert.ok(m6, JSON.stringify(ev));
      const port6 = Number(m6[1]);
      const tid = new Uint8Array(12).fill(7);
      const s4 = Deno.listenDatagram({ hostname: "127.0.0.1", port: 0, transport: "udp" });
      const r4 = decodeStun(
        (await ask(s4, bindingRequest(tid), { hostname: "127.0.0.1", port: port4 })).reply,
      );
      s4.close();
      assert.ok(r4.ok && findAttribute(r4.value, Attr.OtherAddress), "IPv4 offers discovery");
      const s6 = Deno.listenDatagram({ hostname: "::1", port: 0, transport: "udp" });
      const me = (s6.addr as Deno.NetAddr).port;
      const r6 = decodeStun(
        (await ask(s6, bindingRequest(tid), { hostname: "::1", port: port6 })).reply,
      );
      assert.ok(r6.ok);
      assert.deepEqual(mappedAddress(r6.value), { hostname: "::1", port: me });
      assert.equal(findAttribute(r6.value, Attr.OtherAddress), undefined);
      assert.equal(findAttribute(r6.value, Attr.ResponseOrigin), undefined);
      // A CHANGE-REQUEST over IPv6 cannot be honoured (no IPv6 alternate): an error, not silence.
      const ch = decodeStun(
        (await ask(s6, bindingRequest(tid, { change: CHANGE_PORT }), {
          hostname: "::1",
          port: port6,
        })).reply,
      );
      s6.close();
      assert.ok(ch.ok && ch.value.cls !== 0, "an answer that is no request");
      assert.equal(findAttribute(ch.value, Attr.XorMappedAddress), undefined, "no success");
    } finally {
      await server.proc.close();
    }
  },
});

Deno.test("ipv6 join: offers global addresses first, then ULAs; never loopback, link-local, multicast or mapped; at most 3", async () => {
  const { ipv6Addresses } = await import("../../lib/roles/peer_socket.ts");
  const nic = (address: string, family: "IPv4" | "IPv6" = "IPv6") => ({
    family,
    name: "eth0",
    address,
    netmask: "",
    scopeid: null,
    cidr: "",
    mac: "",
  });
  const list = [
    nic("192.0.2.2", "IPv4"),
    nic("::1"),
    nic("fe80::1%eth0"),
    nic("fd00::5"),
    nic("2001:DB8::5"),
    nic("2001:db8::5"),
    nic("ff02::1"),
    nic("::ffff:192.0.2.9"),
  ];
  assert.deepEqual(ipv6Addresses(() => list), ["2001:db8::5", "fd00::5"]);
  const many = ["2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8::4", "fd00::1"].map((a) =>
    nic(a)
  );
  assert.deepEqual(ipv6Addresses(() => many), ["2001:db8::1", "2001:db8::2", "2001:db8::3"]);
  assert.deepEqual(
    ipv6Addresses(() => {
      throw new Error("no permission");
    }),
    [],
  );
});
