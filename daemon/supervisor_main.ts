// The daemon's worker process, started (and restarted on a new commit) by launcher.ts. It reads
// the configuration afresh, so a restart also applies a changed MATERIA_ENV_FILE.
import { ConfigError, load_config } from "../config/load.js";
import { configure_log, log } from "../lib/log.js";
import { Supervisor } from "./supervisor.js";

let exit_code: number;
try {
  const config = load_config();
  configure_log({ level: config.log_level, line_bytes_max: config.log_line_bytes_max });
  exit_code = await new Supervisor(config).run();
} catch (error) {
  log.error(error instanceof ConfigError ? error.message : error as Error);
  exit_code = error instanceof ConfigError ? 2 : 1;
}
process.exit(exit_code);
