/**
 * The environment for a child process: systemd's per-service variables removed, so that a
 * child never talks to the service manager (or the watchdog) in the daemon's name.
 */
export function child_env(extra: Record<string, string> = {}, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) {
    if (name === "NOTIFY_SOCKET" || name.startsWith("WATCHDOG_") || name.startsWith("LISTEN_")) continue;
    clean[name] = value;
  }
  return { ...clean, ...extra };
}
