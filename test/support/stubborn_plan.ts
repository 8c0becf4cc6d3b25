import path from "node:path";

// What test/support/stubborn_job_thread.ts does, written by the test before each run.
export type StubbornPlan =
  /** Starts a `sleep` in a process group of its own, reports it (and writes it to stubborn.pgid), then spins in JavaScript: it never hears "stop". */
  | { kind: "ignore_stop" }
  /** Blocks in a native call (a synchronous `sleep` of `seconds`), as a thread stuck in DuckDB would. */
  | { kind: "block_native"; seconds: number }
  /** Honours "stop" at once, failing with its reason; reports ok after `ms` otherwise. */
  | { kind: "honour_stop"; ms: number };

export const stubborn_plan_path = (state_dir: string) => path.join(state_dir, "stubborn.json");
export const stubborn_pgid_path = (state_dir: string) => path.join(state_dir, "stubborn.pgid");
