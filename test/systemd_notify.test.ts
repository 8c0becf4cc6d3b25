import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import test from "node:test";
import { SystemdNotifier } from "../daemon/systemd_notify.js";

// A systemd-notify on PATH that records its arguments, one message a line, then answers after
// `delay_s` (a slow systemd).
function fake_systemd_notify(t: test.TestContext, delay_s: number): { env: NodeJS.ProcessEnv; sent: () => string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "materia-notify-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const record = path.join(dir, "sent");
  fs.writeFileSync(path.join(dir, "systemd-notify"), `#!/bin/sh\necho "$*" >> "${record}"\nsleep ${delay_s}\n`, { mode: 0o755 });
  const env = { ...process.env, PATH: `${dir}:${process.env.PATH}`, NOTIFY_SOCKET: path.join(dir, "notify.sock") };
  return { env, sent: () => (fs.existsSync(record) ? fs.readFileSync(record, "utf8").trim().split("\n") : []) };
}

test("messages go out one at a time, in order", async (t) => {
  const systemd = fake_systemd_notify(t, 0);
  const notifier = new SystemdNotifier({ timeout_ms: 5_000, queue_max: 16 }, systemd.env);
  void notifier.status("extract running");
  void notifier.status("transform running");
  await notifier.ready("idle");
  assert.deepEqual(systemd.sent(), ["STATUS=extract running", "STATUS=transform running", "READY=1 STATUS=idle"]);
});

test("while systemd does not answer, at most NOTIFY_QUEUE_MAX messages wait; later ones are dropped", async (t) => {
  const systemd = fake_systemd_notify(t, 0.3);
  const notifier = new SystemdNotifier({ timeout_ms: 5_000, queue_max: 2 }, systemd.env);
  const sends = ["a", "b", "c", "d"].map((text) => notifier.status(text));
  await Promise.all(sends);
  assert.deepEqual(systemd.sent(), ["STATUS=a", "STATUS=b"]);
  await notifier.status("e");
  assert.deepEqual(systemd.sent(), ["STATUS=a", "STATUS=b", "STATUS=e"], "once the queue drains, messages go out again");
});
