/**
 * A private CA (self-signed) and a server certificate it signed for `localhost`, 127.0.0.1 and any
 * other addresses asked for ({@link makeTestCert}), or one self-signed server certificate
 * ({@link makeSelfSignedCert}), made with the `openssl` command line in a temporary directory:
 * what TLS tests give `p2p serve --tls-cert/--tls-key` and `p2p join --tls-ca`.
 *
 * @module
 */

/** PEM files of a test certificate. */
export interface TestCert {
  /** The directory holding them (remove it when done). */
  dir: string;
  /** The CA certificate (what a peer's `--tls-ca` names). */
  caFile: string;
  /** The server's certificate and key. */
  certFile: string;
  keyFile: string;
  /** The PEM text of each. */
  ca: string;
  cert: string;
  key: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "null", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** True when the `openssl` command runs here. */
export async function haveOpenssl(): Promise<boolean> {
  try {
    return (await new Deno.Command("openssl", { args: ["version"], stdout: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/**
 * Makes a CA and a server certificate for localhost, 127.0.0.1 and the addresses in `ips` (EC
 * P-256, valid 2 days).
 */
export async function makeTestCert(ips: readonly string[] = []): Promise<TestCert> {
  const dir = await Deno.makeTempDir({ prefix: "p2p-tls-" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=p2p test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  ], dir);
  await openssl(
    ["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    dir,
  );
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    `subjectAltName=${
      ["DNS:localhost", "IP:127.0.0.1", ...ips.map((ip) => `IP:${ip}`)].join(",")
    }\n` +
      "basicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ], dir);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    certFile: `${dir}/server.pem`,
    keyFile: `${dir}/server.key`,
    ca: await read("ca.pem"),
    cert: await read("server.pem"),
    key: await read("server.key"),
  };
}

/**
 * Makes one self-signed server certificate for localhost, 127.0.0.1 and `ips` (EC P-256, valid 2
 * days), as an operator would with `openssl req -x509`: with `ca` its basic constraints say
 * CA:TRUE (openssl's default), otherwise CA:FALSE (what TLS accepts as a server's). `caFile` is
 * the certificate itself.
 */
export async function makeSelfSignedCert(
  ips: readonly string[] = [],
  { ca = false }: { ca?: boolean } = {},
): Promise<TestCert> {
  const dir = await Deno.makeTempDir({ prefix: "p2p-tls-" });
  const san = ["DNS:localhost", "IP:127.0.0.1", ...ips.map((ip) => `IP:${ip}`)].join(",");
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.pem",
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    `subjectAltName=${san}`,
    "-addext",
    `basicConstraints=critical,CA:${ca ? "TRUE" : "FALSE"}`,
  ], dir);
  const cert = await Deno.readTextFile(`${dir}/server.pem`);
  return {
    dir,
    caFile: `${dir}/server.pem`,
    certFile: `${dir}/server.pem`,
    keyFile: `${dir}/server.key`,
    ca: cert,
    cert,
    key: await Deno.readTextFile(`${dir}/server.key`),
  };
}
