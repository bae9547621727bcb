/**
 * What to do about a TLS certificate that does not work, in words: {@link tlsDialAdvice} for a
 * peer whose TLS connection to a server failed on the server's certificate (otherwise all it would
 * see is "no answer from the server"), and {@link serverCertificateProblem} for `p2p serve
 * --tls-cert` given a certificate every TLS client refuses (a self-signed one made by `openssl req
 * -x509` without `basicConstraints=critical,CA:FALSE` is a CA certificate, which TLS does not
 * accept as a server's, even with `--tls-ca` naming it).
 *
 * Pure but for parsing the certificate with `node:crypto`.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";

/** How to make a self-signed certificate that works (`HOST` stands for the server's name). */
export const SELF_SIGNED_HOWTO = "openssl req -x509 -newkey ec -pkeyopt " +
  "ec_paramgen_curve:prime256v1 -nodes -keyout key.pem -out cert.pem -days 365 -subj /CN=HOST " +
  "-addext subjectAltName=DNS:HOST -addext basicConstraints=critical,CA:FALSE";

/** Longest part of a TLS error quoted in advice, in characters. */
const QUOTE_MAX = 200;

/**
 * The advice for a failed stream connection whose error (as `StreamDialer` reports it: `TLS to
 * HOST:PORT: why`) is about the server's certificate, or null for anything else (a refused or
 * timed-out connection, plain TCP: nothing new to say). `caGiven`: whether the peer was given
 * `--tls-ca`.
 */
export function tlsDialAdvice(dialError: string, caGiven: boolean): string | null {
  const m = /^TLS to (.+?): (.*)$/s.exec(dialError);
  if (!m || !/certificate/i.test(m[2]!)) return null;
  const server = m[1]!, message = m[2]!.slice(0, QUOTE_MAX);
  const why = /CaUsedAsEndEntity/.test(message)
    ? "it is a CA certificate (basicConstraints CA:TRUE, what openssl req -x509 makes unless " +
      "told otherwise), which TLS refuses as a server's. Its operator makes one with " +
      "-addext basicConstraints=critical,CA:FALSE, or signs a server certificate with this one " +
      "(then give --tls-ca this one)"
    : /UnknownIssuer/.test(message)
    ? caGiven
      ? "the CA given with --tls-ca did not sign it: give --tls-ca the certificate that did " +
        "(for a self-signed server certificate, that certificate itself)"
      : "no CA this machine trusts signed it: give --tls-ca the CA certificate that did (for a " +
        "self-signed server certificate, that certificate itself)"
    : /NotValidForName/.test(message)
    ? "it is not made out for the name or address it was reached by: name the server as its " +
      "certificate does (tls://NAME:PORT)"
    : /Expired|NotValidYet/.test(message)
    ? "it is expired or not valid yet (or this machine's clock is wrong)"
    : `it was refused (${message})`;
  return `The TLS server at ${server} sent a certificate this peer cannot trust: ${why}`;
}

/** Most distinct pieces of advice {@link TlsAdvice} gives in a run. */
const ADVICE_MAX = 4;

/** {@link tlsDialAdvice} once per distinct piece of advice (a dialer retries every second). */
export class TlsAdvice {
  #caGiven: boolean;
  #given = new Set<string>();

  /** Advice for a peer given `--tls-ca` (`caGiven`) or not. */
  constructor(caGiven: boolean) {
    this.#caGiven = caGiven;
  }

  /** The advice for `dialError` when it is new, otherwise null. */
  heard(dialError: string): string | null {
    const advice = tlsDialAdvice(dialError, this.#caGiven);
    if (!advice || this.#given.has(advice) || this.#given.size >= ADVICE_MAX) return null;
    this.#given.add(advice);
    return advice;
  }
}

/**
 * What is wrong with `pem`, the certificate of `p2p serve --tls-cert`, for TLS clients, or null.
 * A certificate that does not parse gives null: the TLS listener says so when it starts.
 */
export function serverCertificateProblem(pem: string): string | null {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    return null;
  }
  if (!cert.ca) return null;
  return "The certificate of --tls-cert is a CA certificate (basicConstraints CA:TRUE, what " +
    "openssl req -x509 makes unless told otherwise): TLS clients, p2p join among them, refuse it " +
    "as a server's even when told to trust it. Make a self-signed one with " +
    `${SELF_SIGNED_HOWTO} and give peers --tls-ca cert.pem, or sign a server certificate with ` +
    "this one";
}
