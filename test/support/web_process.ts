import { fork, spawn, type ChildProcess } from "node:child_process";
import { compiled_path } from "../../lib/paths.js";
import { cli_path } from "./sandbox.js";
import { web_env, web_exec_argv } from "../../lib/web_launch.js";

export const web_main_path = compiled_path("web/main.ts");

export interface WebProcess {
  url: string;
  child: ChildProcess;
  /** Messages the web process sent to its parent (forked mode only). */
  messages: unknown[];
  /** Everything it printed so far. */
  output(): string;
  /** SIGTERM, then the exit code (SIGKILL and a thrown error past `timeout_ms`). */
  stop(timeout_ms?: number): Promise<number | null>;
}

/**
 * Starts `node dist/web/main.js` with WEB_PORT=0. "forked" runs it as the daemon does (IPC
 * channel, waits for its web_listening message); "standalone" as `npm run web` does (reads the
 * URL from its log line).
 */
export async function start_web(env: NodeJS.ProcessEnv, mode: "forked" | "standalone" | { cli_args: string[] } = "forked",
  timeout_ms = 20_000): Promise<WebProcess> {
  const child_env = { ...env, ...web_env, WEB_PORT: "0", WEB_HOST: "127.0.0.1" };
  // { cli_args }: through the CLI as an operator starts it (`materia web --follow …`), standalone otherwise.
  const script = typeof mode === "object" ? [cli_path, ...mode.cli_args] : [web_main_path];
  const child = mode === "forked"
    ? fork(web_main_path, [], { env: child_env, execArgv: [...web_exec_argv], stdio: ["ignore", "pipe", "pipe", "ipc"] })
    : spawn(process.execPath, [...web_exec_argv, ...script], { env: child_env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const messages: unknown[] = [];
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.on("message", (message) => messages.push(message));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error(`web did not listen within ${timeout_ms} ms:\n${output}`)), timeout_ms);
    const check = () => {
      const listening = messages.find((m): m is { type: string; url: string } => (m as { type?: string }).type === "web_listening");
      const logged = /web: listening on (http:\/\/\S+)/.exec(output)?.[1];
      const found = mode === "forked" ? listening?.url : logged;
      if (found) finish(undefined, found);
    };
    let settled = false;
    const finish = (error?: Error, found?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.stdout!.off("data", check);
      child.off("message", check);
      if (error) {
        child.kill("SIGKILL");
        reject(error);
      } else resolve(found!);
    };
    child.stdout!.on("data", check);
    child.on("message", check);
    void exited.then((code) => finish(new Error(`web exited with ${code} before listening:\n${output}`)));
  });

  return {
    url,
    child,
    messages,
    output: () => output,
    async stop(stop_timeout_ms = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const timed_out = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), stop_timeout_ms)));
      const result = await Promise.race([exited, timed_out]);
      clearTimeout(timer);
      if (result === "timeout") {
        child.kill("SIGKILL");
        await exited;
        throw new Error(`web did not exit within ${stop_timeout_ms} ms of SIGTERM`);
      }
      return result;
    },
  };
}
