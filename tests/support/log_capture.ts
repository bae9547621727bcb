/**
 * Capture of LogTape records for tests: every `p2p` record logged while a function runs.
 *
 * @module
 */
import { configure, type LogRecord, reset } from "@logtape/logtape";

/** Records `f` logs under `p2p` (debug and up), with LogTape reset afterwards. */
export async function captureRecords(f: () => void): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  await configure({
    reset: true,
    sinks: { test: (r: LogRecord) => out.push(r) },
    loggers: [
      { category: ["p2p"], lowestLevel: "debug", sinks: ["test"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: [] },
    ],
  });
  try {
    f();
  } finally {
    await reset();
  }
  return out;
}
