/**
 * A child process for `tests/io/log_test.ts`: sets up logging as `p2p` does, from
 * `LEVEL FORMAT [COLOR]` arguments (COLOR `on`/`off`; absent: the default), then logs one line
 * at each of debug, info and warning, with a property.
 *
 * @module
 */
import { getLogger, type LogLevel } from "@logtape/logtape";
import { type LogFormat, setupLogging } from "../../lib/io/log.ts";

const [level, format, color] = Deno.args;
if (format === "legacy") {
  await setupLogging(level as LogLevel);
} else {
  await setupLogging({
    level: level as LogLevel,
    format: format as LogFormat,
    ...(color ? { color: color === "on" } : {}),
  });
}
const log = getLogger(["p2p", "child"]);
log.debug("Debug {n}", { n: 1 });
log.info("Info {n}", { n: 2 });
log.warning("Warning {n}", { n: 3 });
