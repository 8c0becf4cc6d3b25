import { fileURLToPath } from "node:url";
import path from "node:path";

// Compiled files live in dist/<room>/…, sources in <room>/…: both are two levels below the root.
const here = path.dirname(fileURLToPath(import.meta.url));
const candidate = path.resolve(here, "..");
export const repo_root = path.basename(candidate) === "dist" ? path.resolve(candidate, "..") : candidate;

/** Compiled JavaScript for a source path such as "jobs/extract/worker.ts". */
export function compiled_path(source_relative: string): string {
  return path.join(repo_root, "dist", source_relative.replace(/\.ts$/, ".js"));
}
