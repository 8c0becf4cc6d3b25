import fs from "node:fs";
import path from "node:path";

/**
 * A SQLMESH_BIN that hangs: it starts a child, ignores SIGTERM (so only SIGKILL ends the group)
 * and waits forever. It writes its own pid and its child's to `pid_dir` so a test can check
 * that neither survives.
 */
export function write_hung_sqlmesh(dir: string): { bin: string; leader_pid_file: string; child_pid_file: string } {
  const bin = path.join(dir, "hung-sqlmesh");
  const leader_pid_file = path.join(dir, "leader.pid");
  const child_pid_file = path.join(dir, "child.pid");
  fs.writeFileSync(bin, `#!/bin/sh
trap '' TERM
sleep 600 &
echo $! > "${child_pid_file}"
echo $$ > "${leader_pid_file}"
echo "fake sqlmesh: hanging"
wait
`, { mode: 0o755 });
  return { bin, leader_pid_file, child_pid_file };
}
