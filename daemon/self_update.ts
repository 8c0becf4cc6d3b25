import type { Config } from "../config/schema.js";
import { child_env } from "../lib/child_env.js";
import { log } from "../lib/log.js";
import { repo_root } from "../lib/paths.js";
import { run_subprocess } from "../lib/subprocess.js";

export type UpdateResult =
  | { outcome: "disabled"; reason: string }
  | { outcome: "unchanged"; commit: string }
  | { outcome: "updated"; from: string; to: string }
  /** `unbuildable`: the commit that was switched to and failed to build (the checkout is back on the old one). */
  | { outcome: "failed"; reason: string; unbuildable?: string };

class UpdateError extends Error {}

// Lock files whose change means `npm ci`; requirements.txt is infra/setup.sh's to reinstall.
const npm_lock_file = "package-lock.json";

/**
 * Moves the checkout to MATERIA_GIT_REF: `git fetch`, then `git switch --discard-changes
 * --detach <ref>`. When HEAD moved, rebuilds: `npm ci` if package-lock.json changed (its
 * prepare script runs infra/setup.sh), else `sh infra/setup.sh` (reinstalls the Python venv
 * only if requirements.txt changed; always compiles). A failed rebuild switches back and
 * rebuilds the old commit, so that dist/ matches the code the daemon runs. Every command is
 * bounded (GIT_TIMEOUT_S, INSTALL_TIMEOUT_S). A ref still at `skip_commit` (one that failed to
 * build before) is not tried again. Never throws.
 */
export async function self_update(config: Config, options: { cancel: AbortSignal; skip_commit?: string }): Promise<UpdateResult> {
  const { cancel } = options;
  if (config.materia_git_ref === "") return { outcome: "disabled", reason: "MATERIA_GIT_REF is empty" };
  const git_timeout_ms = config.git_timeout_s * 1000;
  const git = (...args: string[]) => command(config, "git", args, git_timeout_ms, cancel);
  try {
    try {
      await git("rev-parse", "--is-inside-work-tree");
    } catch {
      return { outcome: "disabled", reason: `${repo_root} is not a git checkout` };
    }
    const from = await git("rev-parse", "HEAD");
    await git("fetch", "--all", "--prune", "--quiet");
    const target = await git("rev-parse", "--verify", "--end-of-options", `${config.materia_git_ref}^{commit}`);
    if (target === options.skip_commit) {
      return { outcome: "failed", reason: `${config.materia_git_ref} is still at ${short(target)}, which failed to build; waiting for a newer commit (SIGHUP tries it again)` };
    }
    await git("switch", "--discard-changes", "--detach", config.materia_git_ref);
    const to = await git("rev-parse", "HEAD");
    if (to === from) return { outcome: "unchanged", commit: short(to) };
    log.info(`update: switched from ${short(from)} to ${short(to)}; rebuilding`);
    try {
      await rebuild(config, from, to, cancel);
    } catch (error) {
      // Not cancellable: dist/ must match the checkout again before the daemon goes on or exits.
      log.error(`update: ${(error as Error).message}; switching back to ${short(from)}`);
      const not_cancelled = new AbortController().signal;
      await command(config, "git", ["switch", "--discard-changes", "--detach", from], git_timeout_ms, not_cancelled);
      await rebuild(config, to, from, not_cancelled);
      return { outcome: "failed", reason: (error as Error).message, unbuildable: to };
    }
    return { outcome: "updated", from: short(from), to: short(to) };
  } catch (error) {
    return { outcome: "failed", reason: (error as Error).message };
  }
}

async function rebuild(config: Config, from: string, to: string, cancel: AbortSignal): Promise<void> {
  const diff = await command(config, "git", ["diff", "--name-only", from, to], config.git_timeout_s * 1000, cancel);
  const changed = diff.split("\n");
  const install_timeout_ms = config.install_timeout_s * 1000;
  if (changed.includes(npm_lock_file)) {
    log.info(`update: ${npm_lock_file} changed; running npm ci`);
    // --include=dev: the build (infra/setup.sh, run by npm's prepare) needs TypeScript, a
    // devDependency, and the unit sets NODE_ENV=production, which would leave it out.
    await command(config, "npm", ["ci", "--include=dev", "--no-audit", "--no-fund"], install_timeout_ms, cancel);
  } else {
    await command(config, "sh", ["infra/setup.sh"], install_timeout_ms, cancel);
  }
}

/** Runs one bounded command in the checkout; its trimmed output, or an UpdateError naming it. */
async function command(config: Config, bin: string, args: string[], timeout_ms: number, cancel: AbortSignal): Promise<string> {
  const name = `${bin} ${args.join(" ")}`;
  if (cancel.aborted) throw new UpdateError(`${name}: cancelled`);
  const result = await run_subprocess(bin, args, {
    cwd: repo_root,
    env: child_env({ GIT_TERMINAL_PROMPT: "0" }),
    timeout_ms,
    kill_grace_ms: config.subprocess_kill_grace_ms,
    output_tail_bytes_max: config.subprocess_output_tail_bytes_max,
    line_bytes_max: config.log_line_bytes_max,
    on_line: (line) => log.debug(`update: ${bin}: ${line}`),
    cancel,
  }).catch((error: Error) => {
    throw new UpdateError(`${name}: ${error.message}`);
  });
  if (result.timed_out) throw new UpdateError(`${name} timed out after ${timeout_ms / 1000} s`);
  if (cancel.aborted) throw new UpdateError(`${name}: cancelled`);
  if (result.exit_code !== 0) {
    // git says what went wrong in its first "fatal:" line, npm in its first "npm error" line (its
    // last one only points at its log file); what follows is advice.
    const lines = result.output_tail.trim().split("\n");
    const reason = lines.find((line) => /^(fatal|error):|^npm (error|ERR!) (?!A complete log)/.test(line)) ?? lines.at(-1) ?? "";
    throw new UpdateError(`${name} failed (${result.signal ?? `exit ${result.exit_code}`}): ${reason}`);
  }
  return result.output_tail.trim();
}

const short = (commit: string) => commit.slice(0, 12);
