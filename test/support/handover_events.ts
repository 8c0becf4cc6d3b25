import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import type { DaemonStatus } from "../../lib/contract.js";
import { read_daemon_status } from "../../lib/run_history.js";
import { pid_alive } from "../../lib/pipeline_lock.js";
import { DaemonProcess, healthz, kill_tagged, wait_until } from "./daemon_process.js";
import { clone_linked_checkout, make_origin, type GitOrigin } from "./git_origin.js";
import { make_sandbox, type Sandbox } from "./sandbox.js";
import { press_run_now } from "./web_client.js";

// The events that replace a process of the daemon under load, each resolving once the daemon has
// recovered from it, for test/handover.test.ts and bench/handover.ts alike.

const admin_password = "handover-admin-password-long";

/** A newer commit of a code file on the origin, as a deploy pushes it; its hash. */
const push_code_change = (origin: GitOrigin, message: string) =>
  origin.push_commit(message, (work) => fs.appendFileSync(path.join(work, "lib/contract.ts"), `// ${message}\n`));

/** A daemon on a checkout of a temporary git origin, its first cycle published: what a production box runs. */
export class DeployedDaemon {
  private constructor(
    readonly dir: string,
    readonly sandbox: Sandbox,
    readonly origin: GitOrigin,
    readonly daemon: DaemonProcess,
    readonly web_url: string,
    /** In the environment of every process of the daemon (processes_tagged). */
    readonly tag: string,
  ) {}

  static async start(dir: string, settings: Record<string, string> = {}): Promise<DeployedDaemon> {
    const sandbox = make_sandbox({
      WEB_PORT: "0", MATERIA_GIT_REF: "origin/main", PIPELINE_INTERVAL_S: "3600", STOP_TIMEOUT_S: "20",
      WEB_SHUTDOWN_GRACE_MS: "5000", GIT_TIMEOUT_S: "60", ADMIN_PASSWORD: admin_password, ...settings,
    });
    const tag = crypto.randomUUID();
    let daemon: DaemonProcess | undefined;
    try {
      const origin = await make_origin(dir);
      const checkout = path.join(dir, "checkout");
      await clone_linked_checkout(origin.origin, checkout);
      daemon = new DaemonProcess(sandbox.env, tag, path.join(checkout, "dist/cli/materia.js"));
      const status = () => read_daemon_status(sandbox.config.materia_state_dir);
      const web_url = await wait_until("the first cycle to publish", 180_000, () => (status()?.state === "idle" && status()?.web_url) || undefined);
      return new DeployedDaemon(dir, sandbox, origin, daemon, web_url, tag);
    } catch (error) {
      await daemon?.kill();
      kill_tagged(tag);
      sandbox.cleanup();
      throw error;
    }
  }

  status(): DaemonStatus {
    const status = read_daemon_status(this.sandbox.config.materia_state_dir);
    if (!status) throw new Error("the daemon wrote no status");
    return status;
  }

  /** kill -9 of the worker; resolves once a new worker knows the web process, which is the same one. */
  async kill_worker(): Promise<void> {
    const { worker_pid, web_pid } = this.status();
    if (!worker_pid || !web_pid) throw new Error("no worker or web process to kill");
    process.kill(worker_pid, "SIGKILL");
    await wait_until("a new worker that knows the web process", 30_000,
      () => this.status().worker_pid !== worker_pid && this.status().web_pid === web_pid);
  }

  /** kill -9 of the web process; resolves once another one serves. */
  async kill_web(): Promise<void> {
    const { web_pid } = this.status();
    if (!web_pid) throw new Error("no web process to kill");
    process.kill(web_pid, "SIGKILL");
    await wait_until("a new web process", 30_000, () => this.status().web_pid !== null && this.status().web_pid !== web_pid);
  }

  /** A newer commit on the origin, then kill -HUP; resolves once it is served and the old web process is gone. Its hash. */
  async hup_with_new_commit(): Promise<string> {
    const newer = await push_code_change(this.origin, `deployed by HUP ${crypto.randomUUID()}`);
    await this.handed_over_to(newer, () => process.kill(this.daemon.pid, "SIGHUP"));
    return newer;
  }

  /** A newer commit on the origin, found by a cycle ("Run now" on the admin page); resolves as `hup_with_new_commit`. */
  async cycle_with_new_commit(): Promise<string> {
    // A worker started on a new commit runs a cycle at once; "Run now" is ignored until it is done.
    await wait_until("the daemon idle", 180_000, () => this.status().state === "idle");
    const newer = await push_code_change(this.origin, `found by a cycle ${crypto.randomUUID()}`);
    await this.handed_over_to(newer, async () => {
      const status = await press_run_now(this.web_url, admin_password);
      if (status !== 303) throw new Error(`Run now answered ${status}`);
    });
    return newer;
  }

  private async handed_over_to(commit: string, act: () => unknown): Promise<void> {
    const { web_pid } = this.status();
    if (!web_pid) throw new Error("no web process to hand over from");
    await act();
    await wait_until(`commit ${commit} served and the old web process gone`, 180_000,
      async () => (await healthz(this.web_url))?.commit === commit && !pid_alive(web_pid));
  }

  /** SIGTERM; the exit. Nothing of the daemon may be left after. */
  async stop(): Promise<{ code: number | null }> {
    return this.daemon.terminate(30_000);
  }

  async cleanup(): Promise<void> {
    await this.daemon.kill();
    kill_tagged(this.tag);
    this.sandbox.cleanup();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
