/**
 * Runs the port mapper's HTTP requests (UPnP) with `fetch`: a 2-second limit, redirects
 * refused, and at most {@link HTTP_MAX_BODY} bytes of answer read. Never throws: a failure is
 * an `{ error }` result for {@link PortMapper.handleHttp}.
 *
 * @module
 */

import type { HttpResult, PortMapHttp } from "../nat/portmap/mapper.ts";
import { HTTP_MAX_BODY } from "../nat/portmap/upnp.ts";

/** How long one request may take, ms. */
export const HTTP_TIMEOUT = 2000;

/** Makes one request; see the module documentation. */
export async function runHttp(req: PortMapHttp, timeout = HTTP_TIMEOUT): Promise<HttpResult> {
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers: req.headers,
      ...(req.body !== undefined ? { body: req.body } : {}),
      redirect: "manual",
      signal: AbortSignal.timeout(timeout),
    });
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      return { error: `redirect refused (HTTP ${res.status})` };
    }
    const body = await readBounded(res, HTTP_MAX_BODY);
    return body === null ? { error: "answer too long" } : { status: res.status, body };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

/** The body as text, or null when it is longer than `max` bytes (reading stops there). */
async function readBounded(res: Response, max: number): Promise<string | null> {
  if (!res.body) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > max) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  const all = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return new TextDecoder().decode(all);
}
