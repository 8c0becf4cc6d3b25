import net from "node:net";
import path from "node:path";
import { z } from "zod";

// Every setting materia reads, in one place. Names are the environment variables; units are
// the last word. Defaults keep a development checkout self-contained under ./data/ and offline
// (the PSD file shipped in the repo); production overrides paths and PSD_SOURCE_URL.

const seconds = (default_s: number, max_s: number) =>
  z.coerce.number("must be a whole number of seconds").int("must be a whole number of seconds").min(1, "must be at least 1 second")
    .max(max_s, `must be at most ${max_s} seconds`).default(default_s);
const milliseconds = (default_ms: number, max_ms: number) =>
  z.coerce.number("must be a whole number of milliseconds").int("must be a whole number of milliseconds").min(1, "must be at least 1 ms")
    .max(max_ms, `must be at most ${max_ms} ms`).default(default_ms);
const bytes = (default_bytes: number) =>
  z.coerce.number("must be a whole number of bytes").int("must be a whole number of bytes").min(1024, "must be at least 1024 bytes")
    .default(default_bytes);
const whole_number = (default_value: number, min: number, max: number) =>
  z.coerce.number("must be a whole number").int("must be a whole number").min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`).default(default_value);
const on_off = (default_value: "on" | "off") =>
  z.enum(["on", "off"], "must be on or off").default(default_value).transform((v) => v === "on");
const path_setting = (default_path: string) =>
  z.string().min(1, "must not be empty").default(default_path);

export function config_schema(repo_root: string) {
  const data = (name: string) => path.join(repo_root, "data", name);
  return z.object({
    LANDING_DIR: path_setting(data("landing")),
    DUCKDB_PATH: path_setting(data("lakehouse.duckdb")).refine((p) => p.endsWith(".duckdb"), "must name a .duckdb file"),
    SERVING_DUCKDB_PATH: path_setting(data("serving.duckdb")).refine((p) => p.endsWith(".duckdb"), "must name a .duckdb file"),
    MATERIA_STATE_DIR: path_setting(data("state")),
    PSD_SOURCE_URL: z.string().default("file://" + path.join(repo_root, "jobs/extract/seed/psd_coffee_csv.zip"))
      .refine((u) => URL.canParse(u) && ["http:", "https:", "file:"].includes(new URL(u).protocol),
        "must be an http://, https:// or file:// URL"),
    SQLMESH_BIN: path_setting(path.join(repo_root, ".venv/bin/sqlmesh")),

    EXTRACT_TIMEOUT_S: seconds(300, 3600),
    EXTRACT_SIZE_BYTES_MAX: bytes(200 * 1024 * 1024),
    EXTRACT_REDIRECTS_MAX: z.coerce.number().int("must be a whole number").min(0, "must be at least 0")
      .max(20, "must be at most 20").default(5),
    EXTRACT_CSV_SIZE_BYTES_MAX: bytes(2 * 1024 * 1024 * 1024),
    TRANSFORM_TIMEOUT_S: seconds(1800, 6 * 3600),
    SQLMESH_LOG_FILES_MAX: z.coerce.number().int("must be a whole number").min(1, "must be at least 1")
      .max(10_000, "must be at most 10000").default(50),
    EXPORT_TIMEOUT_S: seconds(300, 3600),
    // Publish (jobs/publish): the rclone remote:path follower web nodes read (empty: off), the
    // bound on one publish, and how many serving files the remote keeps (the current one included;
    // at least 2: a follower may still be downloading the previous one).
    SERVING_PUBLISH_REMOTE: z.string().default("").refine((r) => r === r.trim() && !r.startsWith("-"),
      "must be empty or an rclone remote:path (no surrounding spaces, not starting with -)"),
    SERVING_PUBLISH_TIMEOUT_S: seconds(300, 3600),
    SERVING_PUBLISH_KEEP: whole_number(5, 2, 1000),
    SUBPROCESS_KILL_GRACE_MS: milliseconds(5000, 60_000),
    SUBPROCESS_OUTPUT_TAIL_BYTES_MAX: bytes(64 * 1024),

    LOG_LEVEL: z.enum(["error", "warn", "info", "debug"]).default("info"),
    LOG_LINE_BYTES_MAX: bytes(16 * 1024),

    // daemon (daemon/)
    PIPELINE_INTERVAL_S: seconds(3600, 7 * 24 * 3600),
    PIPELINE_BACKOFF_S: seconds(600, 24 * 3600),
    STOP_TIMEOUT_S: seconds(30, 600),
    MATERIA_GIT_REF: z.string().default(""),
    RUN_HISTORY_ENTRIES_MAX: z.coerce.number().int("must be a whole number").min(10, "must be at least 10")
      .max(100_000, "must be at most 100000").default(500),
    GIT_TIMEOUT_S: seconds(120, 3600),
    INSTALL_TIMEOUT_S: seconds(900, 3600),
    RESTART_DELAY_MS_MAX: milliseconds(30_000, 600_000),
    RESTART_RESET_S: seconds(60, 3600),
    NOTIFY_TIMEOUT_MS: milliseconds(5000, 60_000),
    // The dead-man's switch (lib/freshness.ts). Unset: 3 × PIPELINE_INTERVAL_S + PIPELINE_BACKOFF_S (see load.ts).
    STALE_AFTER_S: z.coerce.number("must be a whole number of seconds").int("must be a whole number of seconds").min(1, "must be at least 1 second")
      .max(30 * 24 * 3600, `must be at most ${30 * 24 * 3600} seconds`).optional(),
    // healthchecks.io's convention: <url>/start, <url> on success, <url>/fail with the reason. Empty: off.
    HEALTHCHECK_PING_URL: z.string().default("")
      .refine((u) => u === "" || (URL.canParse(u) && ["http:", "https:"].includes(new URL(u).protocol)),
        "must be empty or an http:// or https:// URL"),
    HEALTHCHECK_TIMEOUT_MS: milliseconds(10_000, 60_000),

    // web (web/)
    // An address, not a name: the daemon binds it before anything could look a name up, and
    // systemd's ListenStream= (materia-web.socket) takes no host names either.
    WEB_HOST: z.string().refine((host) => net.isIP(host) !== 0, "must be an IP address such as 127.0.0.1 or ::1")
      .default("127.0.0.1"),
    WEB_PORT: z.coerce.number().int("must be a whole number").min(0, "must be a port number")
      .max(65535, "must be a port number").default(5000),
    ADMIN_PASSWORD: z.string().default("")
      .refine((p) => p === "" || p.length >= admin_password_chars_min,
        `must be empty (admin pages off) or at least ${admin_password_chars_min} characters`),
    // Failed admin logins per client address within the window before it gets 429 until the window ends.
    WEB_ADMIN_LOGIN_FAILURES_MAX: whole_number(10, 1, 1000),
    WEB_ADMIN_LOGIN_WINDOW_S: seconds(900, 24 * 3600),
    // Client addresses whose failures are remembered; past it, new ones share one counter.
    WEB_ADMIN_LOGIN_CLIENTS_MAX: whole_number(10_000, 1, 1_000_000),
    // Which proxies may tell the client's address and scheme (X-Forwarded-For/-Proto): off, a
    // number of hops, or addresses/subnets (comma-separated; loopback, linklocal, uniquelocal).
    WEB_TRUST_PROXY: z.string().default("")
      .refine((v) => v === "" || /^\d{1,2}$/.test(v) || v.split(",").every((item) => is_proxy_address(item.trim())),
        "must be empty, a number of hops, or comma-separated addresses or subnets (e.g. loopback, 10.0.0.0/8)")
      .transform((v): false | number | string[] => v === "" ? false : /^\d+$/.test(v) ? Number(v) : v.split(",").map((item) => item.trim())),
    // HSTS goes only on answers to requests that came over TLS through a trusted proxy; 0 sends none.
    WEB_HSTS_MAX_AGE_S: whole_number(365 * 24 * 3600, 0, 2 * 365 * 24 * 3600),
    WEB_HSTS_INCLUDE_SUBDOMAINS: on_off("off"),
    WEB_HEADERS_TIMEOUT_MS: milliseconds(10_000, 600_000),
    WEB_REQUEST_TIMEOUT_MS: milliseconds(30_000, 600_000),
    WEB_KEEP_ALIVE_TIMEOUT_MS: milliseconds(5_000, 600_000),
    WEB_SOCKET_IDLE_TIMEOUT_MS: milliseconds(60_000, 3_600_000),
    WEB_CONNECTIONS_MAX: whole_number(1000, 1, 100_000),
    WEB_BODY_BYTES_MAX: bytes(16 * 1024),
    WEB_URL_BYTES_MAX: bytes(4 * 1024),
    WEB_SHUTDOWN_GRACE_MS: milliseconds(5000, 60_000),
    // A new web process (hand-over, re-fork) that does not listen by then is killed; the old one keeps serving.
    WEB_READY_TIMEOUT_MS: milliseconds(30_000, 600_000),
    // DuckDB runs on libuv's threadpool, shared with fs: keep queries below its size (see main.ts).
    WEB_QUERY_CONCURRENCY_MAX: z.coerce.number().int("must be a whole number").min(1, "must be at least 1")
      .max(64, "must be at most 64").default(3),
    WEB_QUERY_QUEUE_MAX: z.coerce.number().int("must be a whole number").min(1, "must be at least 1")
      .max(10_000, "must be at most 10000").default(200),
    WEB_QUERY_TIMEOUT_MS: milliseconds(10_000, 300_000),
    // Rendered pages of the served release, kept in memory (least recently used go first). 8 MiB
    // holds the pages most readers open (overview, rankings, ~40 countries, in HTML and JSON) and
    // keeps daemon + web under 150 MB PSS; a full cache costs the web about its size in RSS.
    WEB_CACHE_BYTES_MAX: bytes(8 * 1024 * 1024),
    // How long a CDN in front may serve a page without asking (s-maxage), then while it revalidates.
    WEB_CDN_MAX_AGE_S: z.coerce.number().int("must be a whole number of seconds").min(0, "must be at least 0 seconds")
      .max(24 * 3600, `must be at most ${24 * 3600} seconds`).default(60),
    WEB_CDN_STALE_WHILE_REVALIDATE_S: z.coerce.number().int("must be a whole number of seconds")
      .min(0, "must be at least 0 seconds").max(7 * 24 * 3600, `must be at most ${7 * 24 * 3600} seconds`).default(600),
    // The access log (web/access_log.ts): a summary line per interval; lines of their own for
    // server errors, cut-off responses and requests slower than the bound, at most so many per interval.
    WEB_ACCESS_LOG_INTERVAL_S: seconds(60, 24 * 3600),
    WEB_ACCESS_LOG_SLOW_MS: milliseconds(1000, 600_000),
    WEB_ACCESS_LOG_LINES_MAX: whole_number(60, 0, 100_000),
    // "off" only for benchmarking the cost of the per-request stat: a swapped file is then never seen.
    WEB_SWAP_CHECK: on_off("on"),

    // A follower web node (web/follow.ts, `materia web --follow REMOTE`): the rclone remote:path
    // a daemon publishes to (empty: not a follower), how often it polls the manifest, the bounds
    // on one look at the manifest and on one download, and the largest serving file it accepts.
    FOLLOW_REMOTE: z.string().default("").refine((r) => r === r.trim() && !r.startsWith("-"),
      "must be empty or an rclone remote:path (no surrounding spaces, not starting with -)"),
    FOLLOW_POLL_INTERVAL_S: seconds(30, 3600),
    FOLLOW_MANIFEST_TIMEOUT_S: seconds(30, 600),
    FOLLOW_DOWNLOAD_TIMEOUT_S: seconds(300, 3600),
    FOLLOW_SIZE_BYTES_MAX: bytes(1024 * 1024 * 1024),
  }).superRefine((settings, context) => {
    // Node refuses a headers bound past the request bound; a socket idle bound below the query bound would cut slow queries.
    const longer = (name: keyof typeof settings, other: keyof typeof settings) => {
      const [value, bound] = [settings[name], settings[other]];
      if (typeof value === "number" && typeof bound === "number" && value > bound) {
        context.addIssue({ code: "custom", path: [name], message: `must not be longer than ${other}=${settings[other]}` });
      }
    };
    longer("WEB_HEADERS_TIMEOUT_MS", "WEB_REQUEST_TIMEOUT_MS");
    longer("WEB_QUERY_TIMEOUT_MS", "WEB_SOCKET_IDLE_TIMEOUT_MS");
  });
}

const admin_password_chars_min = 12;

function is_proxy_address(item: string): boolean {
  if (["loopback", "linklocal", "uniquelocal"].includes(item)) return true;
  const [address, prefix, ...rest] = item.split("/");
  const family = net.isIP(address ?? "");
  if (family === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

export type Config = {
  [K in keyof z.output<ReturnType<typeof config_schema>> as Lowercase<K & string>]:
    z.output<ReturnType<typeof config_schema>>[K];
} & {
  /** Always set after load_config: its default depends on two other settings. */
  stale_after_s: number;
};
