// The daemon's worker process, started (and restarted on a new commit) by launcher.ts. It reads
// the configuration afresh, so a restart also applies a changed MATERIA_ENV_FILE.
import { ConfigError, load_config } from "../config/load.js";
import { exit_codes } from "../lib/contract.js";
import { configure_log, log } from "../lib/log.js";
import { Supervisor } from "./supervisor.js";

let supervisor: Supervisor | undefined;
// A bug must not leave SQLMesh running on its own: kill the job's process groups, then die
// (the launcher starts a new worker; the web, the launcher's child, keeps serving).
const die = (error: unknown) => {
  log.error(error instanceof Error ? error : new Error(String(error)));
  supervisor?.kill_job_groups_now();
  process.exit(exit_codes.failure);
};
process.on("uncaughtException", die);
process.on("unhandledRejection", die);

let exit_code: number;
try {
  const config = load_config();
  configure_log({ level: config.log_level, line_bytes_max: config.log_line_bytes_max });
  supervisor = new Supervisor(config);
  exit_code = await supervisor.run();
} catch (error) {
  log.error(error instanceof ConfigError ? error.message : error as Error);
  exit_code = error instanceof ConfigError ? exit_codes.config_error : exit_codes.failure;
}
process.exit(exit_code);
