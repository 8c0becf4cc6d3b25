import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Config } from "../config/schema.js";
import { log } from "../lib/log.js";
import { compiled_path } from "../lib/paths.js";
import { running_commit } from "../lib/version.js";
import { Alarm } from "./alarm.js";
import { restart_exit_code } from "./exit_codes.js";
import { open_listen_socket, type ListenSocket } from "./listen_socket.js";
import { next_restart_delay_ms, restart_delay_first_ms } from "./restart_delay.js";
import { read_daemon_status, stopped_status, write_daemon_status } from "./run_history.js";
import { WebChild } from "./web_child.js";
import type { LauncherMessage, WorkerMessage } from "./worker_ipc.js";

// The launcher must be gone within STOP_TIMEOUT_S, its children a little before.
const kill_margin_ms = 300;

/**
 * The worker runs each job in a new thread, and glibc gives threads malloc arenas of their own
 * (up to 8 per core), each keeping its high-water mark: two bound that, as for the web
 * (lib/web_launch.ts). Jobs run one at a time, so they never contend for an arena.
 */
const worker_env: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };

/**
 * `materia daemon`: a thin process that keeps the same PID for the daemon's whole life (the
 * MAINPID systemd watches, the PID an operator signals). It holds the dashboard's listening socket
 * and forks the web processes (web_child.ts), so that neither goes down with a worker; it runs the
 * loop in a worker process (supervisor_main.ts). Node cannot exec() itself, so "restart on the new
 * commit" is the worker exiting with `restart_exit_code`, this launcher starting a fresh one from
 * the new dist/ and handing the web over to a new web process. Signals are passed on; a worker
 * that dies otherwise is restarted after a growing delay, and the web keeps serving meanwhile.
 * This file is kept small because it is the one part that a self-update does not reload.
 */
export async function run_launcher(config: Config): Promise<number> {
  let socket: ListenSocket;
  try {
    socket = open_listen_socket(config);
  } catch (error) {
    log.error(`daemon: ${(error as Error).message}`);
    return 1;
  }
  log.info(`daemon: the dashboard's socket is ${socket.description}`);
  // As sd_listen_fds(unset_environment=1) does: LISTEN_PID names this process, never a child of it.
  for (const name of ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]) delete process.env[name];

  const alarm = new Alarm();
  let worker: ChildProcess | undefined;
  let stopping = false;
  let delay_ms: number | undefined;
  const budget_ms = Math.max(config.stop_timeout_s * 1000 - kill_margin_ms, 100);
  // A message to a worker that is exiting is lost, harmlessly: the next one asks for the web afresh.
  const tell_worker = (message: LauncherMessage) => {
    if (worker?.connected) worker.send(message, () => undefined);
  };
  const web = new WebChild(config, socket.fd, {
    on_serving: (pid, url) => tell_worker({ type: "web_listening", pid, url }),
    on_exit: (pid) => tell_worker({ type: "web_exited", pid }),
    on_run_now: () => tell_worker({ type: "run_now" }),
  });

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    worker?.kill(signal);
    void web.stop(budget_ms);
    alarm.ring();
    setTimeout(() => {
      log.error(`daemon: worker still running after STOP_TIMEOUT_S=${config.stop_timeout_s} s; killing it`);
      worker?.kill("SIGKILL");
    }, budget_ms).unref();
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGHUP", () => {
    if (worker) worker.kill("SIGHUP");
    else alarm.ring(); // waiting to restart a dead worker: restart it now
  });

  web.start();
  let exit_code = 0;
  while (!stopping) {
    const started_ms = Date.now();
    // fork: the IPC channel closes when this process dies, however it dies, and the worker then stops.
    worker = fork(compiled_path("daemon/supervisor_main.ts"), [], { stdio: "inherit", env: { ...process.env, ...worker_env } });
    worker.on("message", (message: WorkerMessage) => {
      const serving = web.serving();
      if (message?.type === "worker_started" && serving) tell_worker({ type: "web_listening", ...serving });
    });
    const [code, signal] = (await once(worker, "exit")) as [number | null, NodeJS.Signals | null];
    const pid = worker.pid;
    worker = undefined;
    // A worker still loading its modules has no handlers yet and dies of the signal itself.
    if (stopping) {
      exit_code = code === 0 || signal === "SIGTERM" || signal === "SIGINT" ? 0 : 1;
      break;
    }
    if (code === restart_exit_code || signal === "SIGHUP") {
      log.info(`daemon: worker ${pid} exited to restart; starting a new one, and a new web process on the same code`);
      delay_ms = undefined;
      web.replace();
      continue;
    }
    if (code === 2) {
      exit_code = 2; // a configuration error: restarting will not mend it
      break;
    }
    delay_ms = next_restart_delay_ms(delay_ms, Date.now() - started_ms, {
      first_ms: restart_delay_first_ms, max_ms: config.restart_delay_ms_max, reset_after_ms: config.restart_reset_s * 1000,
    });
    log.error(`daemon: worker ${pid} died (${signal ?? `code ${code}`}); starting a new one in ${delay_ms} ms; the web keeps serving`);
    await alarm.sleep(delay_ms);
  }
  await web.stop(budget_ms);
  record_stop(config.materia_state_dir, exit_code);
  return exit_code;
}

/** daemon.json says "stopped", with the time and exit code, once nothing of the daemon runs. */
function record_stop(state_dir: string, exit_code: number): void {
  try {
    write_daemon_status(state_dir, stopped_status(read_daemon_status(state_dir), process.pid, running_commit, exit_code, new Date()));
  } catch (error) {
    log.error(`daemon: cannot record the stop in the daemon status: ${(error as Error).message}`);
  }
}
