import type { Express } from "express";
import { log } from "../../lib/log.js";
import { running_commit } from "../../lib/version.js";
import type { FreshnessVerdict } from "../../lib/freshness.js";
import type { Catalog } from "../catalog.js";
import { HttpError } from "../errors.js";
import type { FollowView } from "../follow.js";
import type { FreshnessMonitor } from "../freshness.js";
import type { RefusedFile, ServingReader } from "../serving.js";

/**
 * 200 with the serving file in use (inode, mtime, release), the commit and the data's freshness
 * (ages of the last successful cycle and of the last publish); 503 `stale` with the reason once no
 * cycle has succeeded for STALE_AFTER_S, 503 `unavailable` without a serving file. A newer file that
 * was refused is named under `refused`. Anyone may read this: it shows no path and no DuckDB error
 * text (the admin page does).
 */
export function mount_health(app: Express, reader: ServingReader<Catalog>, freshness: FreshnessMonitor,
  follow_view?: () => FollowView): void {
  // A follower node also says how far behind the publishing daemon's manifest it is.
  const follow = () => (follow_view ? { follow: follow_view() } : {});
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
          ...follow(),
        };
      });
      // Judged after the snapshot: taking it is what notices a newer file and its publish time.
      const verdict = freshness.verdict();
      if (verdict.stale_reason === null) res.set("Cache-Control", "no-store").json({ ...body, freshness: freshness_view(verdict) });
      else {
        res.status(503).set("Cache-Control", "no-store")
          .json({ ...body, status: "stale", reason: verdict.stale_reason, freshness: freshness_view(verdict) });
      }
    } catch (error) {
      if (!(error instanceof HttpError)) log.error(`web: /healthz: the serving file does not answer: ${String(error)}`);
      const message = error instanceof HttpError ? error.message : "the serving file does not answer; the server log has the details";
      res.status(503).set("Cache-Control", "no-store").json({ status: "unavailable", commit: running_commit(), error: message,
        freshness: freshness_view(freshness.verdict()), ...public_view(reader.refused_file()), ...follow() });
    }
  });
}

function freshness_view(verdict: FreshnessVerdict) {
  const { last_success_at, last_success_age_s, last_publish_at, last_publish_age_s, stale_after_s } = verdict;
  return { last_success_at, last_success_age_s, last_publish_at, last_publish_age_s, stale_after_s };
}

function public_view(file: RefusedFile | undefined): { refused?: Omit<RefusedFile, "detail"> } {
  if (!file) return {};
  const { detail: _detail, ...shown } = file;
  return { refused: shown };
}
