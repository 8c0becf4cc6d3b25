import { execFileSync } from "node:child_process";
import { repo_root } from "./paths.js";

let cached: string | undefined;

/** The commit this process runs (short hash, "+dirty" when the checkout has local changes), or "unknown" outside git. */
export function running_commit(): string {
  if (cached !== undefined) return cached;
  const git = (args: string[]) =>
    execFileSync("git", args, { cwd: repo_root, timeout: 5_000, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    const commit = git(["rev-parse", "--short=12", "HEAD"]);
    cached = git(["status", "--porcelain", "--untracked-files=no"]) === "" ? commit : `${commit}+dirty`;
  } catch {
    cached = "unknown";
  }
  return cached;
}
