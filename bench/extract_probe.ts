import { load_config } from "../config/load.js";
import { run_extract } from "../jobs/extract/extract.js";
import { with_job_deadline } from "../jobs/job.js";
import { configure_log } from "../lib/log.js";

// Runs one extract in this process and prints what it cost, as JSON on stdout: the extract bench
// starts it as a separate process so its memory is the extract's alone.
const config = load_config();
configure_log({ level: "warn", line_bytes_max: config.log_line_bytes_max });
const idle_rss_bytes = process.resourceUsage().maxRSS * 1024;
const started = process.hrtime.bigint();
const result = await with_job_deadline(config, "extract", undefined, (stop) => run_extract(config, stop));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const peak_rss_bytes = process.resourceUsage().maxRSS * 1024;
console.log(JSON.stringify({ outcome: result.outcome, seconds, idle_rss_bytes, peak_rss_bytes }));
