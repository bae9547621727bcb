/**
 * Logging setup: LogTape with one synchronous sink on stderr, so stdout stays free for chat
 * and `--json` events, and no line is lost when the process exits right after logging.
 *
 * @module
 */
import { configure, getTextFormatter, type LogLevel, type LogRecord } from "@logtape/logtape";

const encoder = new TextEncoder();

/** Configures the `p2p` logger category to write to stderr at `level` and above. */
export async function setupLogging(level: LogLevel = "info"): Promise<void> {
  const format = getTextFormatter({ timestamp: "date-time-tz" });
  await configure({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) => {
        try {
          Deno.stderr.writeSync(encoder.encode(format(record)));
        } catch {
          // stderr closed: nothing sensible left to do with a log line.
        }
      },
    },
    loggers: [
      { category: ["p2p"], lowestLevel: level, sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}
