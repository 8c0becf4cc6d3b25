import type { Express } from "express";
import { running_commit } from "../../lib/version.js";
import type { Catalog } from "../catalog.js";
import { HttpError } from "../errors.js";
import type { ServingReader } from "../serving.js";

/** 200 with the serving file in use (inode, mtime, release) and the commit; 503 with the reason otherwise. */
export function mount_health(app: Express, reader: ServingReader<Catalog>): void {
  app.get("/healthz", async (_req, res) => {
    try {
      const body = await reader.with_snapshot(async (snapshot) => {
        const [row] = await snapshot.query("SELECT release_id FROM export_info");
        return {
          status: "ok",
          commit: running_commit(),
          serving: { ...snapshot.file, release_id: String(row?.release_id), exported_at: snapshot.meta.exported_at },
        };
      });
      res.set("Cache-Control", "no-store").json(body);
    } catch (error) {
      const message = error instanceof HttpError ? error.message
        : `the serving file does not answer: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`;
      res.status(503).set("Cache-Control", "no-store").json({ status: "unavailable", commit: running_commit(), error: message });
    }
  });
}
