import type { Express } from "express";
import { log } from "../../lib/log.js";
import { running_commit } from "../../lib/version.js";
import type { Catalog } from "../catalog.js";
import { HttpError } from "../errors.js";
import type { RefusedFile, ServingReader } from "../serving.js";

/**
 * 200 with the serving file in use (inode, mtime, release) and the commit; 503 with the reason
 * otherwise. A newer file that was refused is named under `refused`. Anyone may read this: it
 * shows no path and no DuckDB error text (the admin page does).
 */
export function mount_health(app: Express, reader: ServingReader<Catalog>): void {
  app.get("/healthz", async (_req, res) => {
    try {
      const body = await reader.with_snapshot(async (snapshot) => {
        const [row] = await snapshot.query("SELECT release_id FROM export_info");
        const { path: _path, ...file } = snapshot.file;
        return {
          status: "ok",
          commit: running_commit(),
          serving: { ...file, release_id: String(row?.release_id), exported_at: snapshot.meta.exported_at },
          // Read after the snapshot: taking it is what notices (and opens or refuses) a new file.
          ...public_view(reader.refused_file()),
        };
      });
      res.set("Cache-Control", "no-store").json(body);
    } catch (error) {
      if (!(error instanceof HttpError)) log.error(`web: /healthz: the serving file does not answer: ${String(error)}`);
      const message = error instanceof HttpError ? error.message : "the serving file does not answer; the server log has the details";
      res.status(503).set("Cache-Control", "no-store").json({ status: "unavailable", commit: running_commit(), error: message,
        ...public_view(reader.refused_file()) });
    }
  });
}

function public_view(file: RefusedFile | undefined): { refused?: Omit<RefusedFile, "detail"> } {
  if (!file) return {};
  const { detail: _detail, ...shown } = file;
  return { refused: shown };
}
