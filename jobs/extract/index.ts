import type { Job } from "../job.js";
import { run_extract } from "./extract.js";

export const extract_job: Job = {
  name: "extract",
  async run(config, context) {
    const result = await run_extract(config, context.stop);
    switch (result.outcome) {
      case "up_to_date": return { summary: `up to date (ETag ${result.etag})` };
      case "already_landed": return { summary: `release ${result.etag} already landed at ${result.path}` };
      case "landed": return { summary: `landed release ${result.etag} at ${result.path} (${result.csv_bytes} CSV bytes)` };
    }
  },
};
