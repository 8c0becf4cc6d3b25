#!/usr/bin/env node
import { Command, InvalidArgumentError } from "commander";
import { ConfigError, load_config } from "../config/load.js";
import type { Config } from "../config/schema.js";
import { configure_log, stderr_is_journal } from "../lib/log.js";
import { is_job_name, pipeline_jobs, job_named } from "../jobs/registry.js";

function configured(): Config {
  const config = load_config();
  configure_log({ level: config.log_level, line_bytes_max: config.log_line_bytes_max });
  return config;
}

function pipeline_target(name: string): string {
  if (name !== "all" && !is_job_name(name)) {
    throw new InvalidArgumentError(`expected one of ${[...pipeline_jobs.map((job) => job.name), "all"].join(", ")}`);
  }
  return name;
}

/** `status --runs`: up to the one bound of the run history, RUN_HISTORY_ENTRIES_MAX. */
function runs_to_list(value: string): number {
  const entries_max = configured().run_history_entries_max;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > entries_max) {
    throw new InvalidArgumentError(`expected a whole number from 1 to RUN_HISTORY_ENTRIES_MAX=${entries_max}`);
  }
  return n;
}

const program = new Command("materia")
  .description("materia keeps the BeanFlows coffee dashboard fresh: extract → SQLMesh → serving")
  .showHelpAfterError();

const pipeline = program.command("pipeline").description("the pipeline's jobs, run by hand");
pipeline.command("list").description("list the jobs in the order a cycle runs them").action(() => {
  for (const job of pipeline_jobs) console.log(`${job.name.padEnd(16)}${job.description}`);
});
pipeline.command("run")
  .description("run one job, or all of them in order, now (never while another pipeline run holds the lock)")
  .argument("<job>", "extract, transform, export_serving, publish or all", pipeline_target)
  .option("--force", "transform: run even when up to date; export_serving: publish even when nothing is new or the publish gate refuses")
  .action(async (target: string, options: { force?: boolean }) => {
    const config = configured();
    const jobs = target === "all" ? pipeline_jobs : [job_named(target)!];
    // Ctrl-C or TERM cancels the running job, which kills its subprocess group (SQLMesh runs
    // detached, so the terminal's SIGINT does not reach it) before the lock is released.
    const cancel = new AbortController();
    const on_signal = (signal: NodeJS.Signals) => cancel.abort(new Error(`${signal} received`));
    process.once("SIGINT", on_signal).once("SIGTERM", on_signal);
    const { run_jobs_in_process } = await import("../jobs/run_pipeline.js");
    await run_jobs_in_process(config, jobs, { force: options.force === true, cancel: cancel.signal });
  });

program.command("daemon")
  .description("run the supervisor: a pipeline cycle every PIPELINE_INTERVAL_S, the web child, systemd notify; HUP updates and restarts")
  .action(async () => {
    // Loaded on demand, as every command's code is: the launcher process stays small.
    const { run_launcher } = await import("../daemon/launcher.js");
    process.exitCode = await run_launcher(configured());
  });

program.command("web")
  .description("run the web app alone, reading SERVING_DUCKDB_PATH; with --follow, fetch each serving file a daemon publishes to REMOTE")
  .option("--follow <remote>", "the rclone remote:path a daemon publishes to (SERVING_PUBLISH_REMOTE there; sets FOLLOW_REMOTE)")
  .action(async (options: { follow?: string }) => {
    // The web reads its settings from the environment, as when the daemon forks it.
    if (options.follow === "") throw new ConfigError("config: --follow needs an rclone remote:path (FOLLOW_REMOTE is empty)");
    if (options.follow !== undefined) process.env.FOLLOW_REMOTE = options.follow;
    await import("../web/main.js");
  });

program.command("status")
  .description("what the daemon is doing, and its newest pipeline runs")
  .option("--runs <n>", "how many runs to list (1..RUN_HISTORY_ENTRIES_MAX, as many as the history keeps)", runs_to_list, 10)
  .action(async (options: { runs: number }) => {
    const { status_report } = await import("../daemon/status_report.js");
    console.log(status_report(configured(), options.runs));
  });

try {
  await program.parseAsync();
} catch (error) {
  // One line on stderr: what failed and why; the log above has the detail. Under systemd at err,
  // so that `journalctl -p err` and `systemctl status` show why the daemon did not start.
  console.error(`${stderr_is_journal() ? "<3>" : ""}materia: ${(error as Error).message.split("\n")[0]}`);
  process.exit(error instanceof ConfigError ? 2 : 1);
}
