import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Config } from "../config/schema.js";
import { log } from "../lib/log.js";
import { compiled_path } from "../lib/paths.js";
import { Alarm } from "./alarm.js";
import { restart_exit_code } from "./exit_codes.js";
import { next_restart_delay_ms, restart_delay_first_ms } from "./restart_delay.js";

// The launcher must be gone within STOP_TIMEOUT_S, its worker a little before.
const kill_margin_ms = 300;

/**
 * `materia daemon`: a thin process that keeps the same PID for the daemon's whole life (the
 * MAINPID systemd watches, the PID an operator signals) and runs the loop in a worker process
 * (supervisor_main.ts). Node cannot exec() itself, so "restart on the new commit" is the worker
 * exiting with `restart_exit_code` and this launcher starting a fresh one from the new dist/.
 * Signals are passed on; a worker that dies otherwise is restarted after a growing delay.
 * This file is kept small because it is the one part that a self-update does not reload.
 */
export async function run_launcher(config: Config): Promise<number> {
  const alarm = new Alarm();
  let worker: ChildProcess | undefined;
  let stopping = false;
  let delay_ms: number | undefined;

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    worker?.kill(signal);
    alarm.ring();
    setTimeout(() => {
      log.error(`daemon: worker still running after STOP_TIMEOUT_S=${config.stop_timeout_s} s; killing it`);
      worker?.kill("SIGKILL");
    }, Math.max(config.stop_timeout_s * 1000 - kill_margin_ms, 100)).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => {
    if (worker) worker.kill("SIGHUP");
    else alarm.ring(); // waiting to restart a dead worker: restart it now
  });

  while (!stopping) {
    const started_ms = Date.now();
    // fork: the IPC channel closes when this process dies, however it dies, and the worker then stops.
    worker = fork(compiled_path("daemon/supervisor_main.ts"), [], { stdio: "inherit" });
    const [code, signal] = (await once(worker, "exit")) as [number | null, NodeJS.Signals | null];
    const pid = worker.pid;
    worker = undefined;
    // A worker still loading its modules has no handlers yet and dies of the signal itself.
    if (stopping) return code === 0 || signal === "SIGTERM" || signal === "SIGINT" ? 0 : 1;
    if (code === restart_exit_code || signal === "SIGHUP") {
      log.info(`daemon: worker ${pid} exited to restart; starting a new one`);
      delay_ms = undefined;
      continue;
    }
    if (code === 2) return 2; // a configuration error: restarting will not mend it
    delay_ms = next_restart_delay_ms(delay_ms, Date.now() - started_ms, {
      first_ms: restart_delay_first_ms, max_ms: config.restart_delay_ms_max, reset_after_ms: config.restart_reset_s * 1000,
    });
    log.error(`daemon: worker ${pid} died (${signal ?? `code ${code}`}); starting a new one in ${delay_ms} ms`);
    await alarm.sleep(delay_ms);
  }
  return 0;
}
