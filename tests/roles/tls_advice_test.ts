/**
 * `lib/roles/tls_advice.ts`: what a peer is told when a TLS server's certificate does not work,
 * once per distinct piece of advice, and what `p2p serve` says of a CA certificate given as its
 * server certificate (certificates made with `openssl`; without it, only the words are tested).
 *
 * @module
 */
import assert from "node:assert/strict";
import { serverCertificateProblem, TlsAdvice, tlsDialAdvice } from "../../lib/roles/tls_advice.ts";
import { toolTest } from "../support/tools.ts";
import { makeSelfSignedCert, makeTestCert } from "../support/tls_cert.ts";

const AT = "TLS to example.org:443: ";

Deno.test("tls advice: each certificate failure gets what to do; other failures get nothing", () => {
  const ca = tlsDialAdvice(`${AT}invalid peer certificate: CaUsedAsEndEntity`, true)!;
  assert.match(ca, /^The TLS server at example\.org:443 sent a certificate/);
  assert.match(ca, /CA certificate .*basicConstraints=critical,CA:FALSE/);
  assert.match(
    tlsDialAdvice(`${AT}invalid peer certificate: UnknownIssuer`, false)!,
    /no CA this machine trusts signed it: give --tls-ca/,
  );
  assert.match(
    tlsDialAdvice(`${AT}invalid peer certificate: UnknownIssuer`, true)!,
    /the CA given with --tls-ca did not sign it/,
  );
  assert.match(
    tlsDialAdvice(`${AT}invalid peer certificate: NotValidForName`, false)!,
    /not made out for the name.*\(tls:\/\/NAME:PORT\)/,
  );
  assert.match(tlsDialAdvice(`${AT}invalid peer certificate: Expired`, false)!, /expired/);
  const other = tlsDialAdvice(`${AT}invalid peer certificate: ${"x".repeat(1000)}`, false)!;
  assert.ok(other.length < 400, "a long error is cut short");
  for (
    const e of [
      `${AT}Connection refused (os error 111)`,
      "TCP to example.org:443: Connection refused (os error 111)",
      "something else about a certificate",
    ]
  ) assert.equal(tlsDialAdvice(e, false), null, e);
});

Deno.test("tls advice: said once per distinct advice, a few at most", () => {
  const a = new TlsAdvice(false);
  const e = `${AT}invalid peer certificate: UnknownIssuer`;
  assert.ok(a.heard(e));
  assert.equal(a.heard(e), null, "the dialer retries every second: told once");
  assert.equal(a.heard(`${AT}Connection refused (os error 111)`), null);
  let told = 1;
  for (let i = 0; i < 20; i++) {
    if (a.heard(`TLS to h${i}:443: invalid peer certificate: UnknownIssuer`)) told++;
  }
  assert.equal(told, 4);
});

Deno.test(
  toolTest(
    "openssl",
    "openssl",
    "tls advice: a CA certificate as the server's is named",
    async () => {
      const ca = await makeSelfSignedCert([], { ca: true });
      const leaf = await makeSelfSignedCert([], { ca: false });
      const signed = await makeTestCert();
      try {
        assert.match(serverCertificateProblem(ca.cert)!, /--tls-cert is a CA certificate/);
        assert.equal(serverCertificateProblem(leaf.cert), null);
        assert.equal(serverCertificateProblem(signed.cert), null);
        assert.equal(serverCertificateProblem("not a certificate"), null);
      } finally {
        for (const c of [ca, leaf, signed]) await Deno.remove(c.dir, { recursive: true });
      }
    },
  ),
);
