// The launcher ⇄ worker messages (launcher.ts, supervisor.ts). The web processes are the
// launcher's children, so that they outlive any worker; the worker hears about them from the
// launcher. A worker started on a newer commit talks to the same launcher, so this contract only
// grows, as lib/web_ipc.ts does.

/** Launcher → worker: the web process taking connections, one that exited, the admin page's "Run now". */
export type LauncherMessage =
  | { type: "web_listening"; pid: number; url: string }
  | { type: "web_exited"; pid: number }
  | { type: "run_now" };

/** Worker → launcher: its handlers are in place; the launcher answers with the web process serving, if any. */
export type WorkerMessage = { type: "worker_started" };
