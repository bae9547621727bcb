/**
 * Draining a {@link Registry} in tests: every datagram it wants sent, every event it reports.
 *
 * @module
 */
import type { Registry, RegistryEvent } from "../../lib/server/registry.ts";
import type { Transmit } from "../../lib/wire/transmit.ts";

/** Takes every datagram the registry wants sent, as it encoded them. */
export function drainTransmits(r: Registry): Transmit[] {
  const out: Transmit[] = [];
  for (let t = r.pollTransmit(); t; t = r.pollTransmit()) out.push(t);
  return out;
}

/** Takes every event the registry reported. */
export function drainEvents(r: Registry): RegistryEvent[] {
  const out: RegistryEvent[] = [];
  for (let e = r.pollEvent(); e; e = r.pollEvent()) out.push(e);
  return out;
}
