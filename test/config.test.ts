import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { describe, test } from "node:test";
import { ConfigError, load_config } from "../config/load.js";
import { make_sandbox, run_cli } from "./support/sandbox.js";

describe("config", () => {
  test("defaults keep everything under ./data and read the shipped PSD file, offline", () => {
    const config = load_config({});
    assert.match(config.landing_dir, /\/data\/landing$/);
    assert.match(config.serving_duckdb_path, /\/data\/serving\.duckdb$/);
    assert.match(config.psd_source_url, /^file:\/\/.+\/jobs\/extract\/seed\/psd_coffee_csv\.zip$/);
    assert.equal(config.extract_timeout_s, 300);
    assert.equal(config.healthcheck_ping_url, "", "no ping unless configured");
  });

  test("STALE_AFTER_S defaults to three intervals plus a backoff, and an explicit value wins", () => {
    assert.equal(load_config({}).stale_after_s, 3 * 3600 + 600);
    assert.equal(load_config({ PIPELINE_INTERVAL_S: "60", PIPELINE_BACKOFF_S: "5" }).stale_after_s, 185);
    assert.equal(load_config({ PIPELINE_INTERVAL_S: "60", STALE_AFTER_S: "7200" }).stale_after_s, 7200);
  });

  test("a malformed setting stops the CLI at start with one line naming it, exit 2", async (t) => {
    const sandbox = make_sandbox();
    t.after(() => sandbox.cleanup());
    const cases: [Record<string, string>, RegExp][] = [
      [{ EXTRACT_TIMEOUT_S: "soon" }, /^materia: config: EXTRACT_TIMEOUT_S must be a whole number of seconds \(got "soon"\)$/],
      [{ TRANSFORM_TIMEOUT_S: "0" }, /^materia: config: TRANSFORM_TIMEOUT_S must be at least 1 second \(got "0"\)$/],
      [{ PSD_SOURCE_URL: "ftp://usda.example/psd.zip" }, /^materia: config: PSD_SOURCE_URL must be an http:\/\/, https:\/\/ or file:\/\/ URL/],
      [{ DUCKDB_PATH: "/tmp/lakehouse.db" }, /^materia: config: DUCKDB_PATH must name a \.duckdb file/],
      [{ LOG_LEVEL: "loud" }, /^materia: config: LOG_LEVEL /],
      [{ WEB_HOST: "localhost" }, /^materia: config: WEB_HOST must be an IP address such as 127\.0\.0\.1 or ::1 \(got "localhost"\)$/],
      [{ STALE_AFTER_S: "3h" }, /^materia: config: STALE_AFTER_S must be a whole number of seconds \(got "3h"\)$/],
      [{ HEALTHCHECK_PING_URL: "hc-ping.com/abc" }, /^materia: config: HEALTHCHECK_PING_URL must be empty or an http:\/\/ or https:\/\/ URL \(got "hc-ping\.com\/abc"\)$/],
      [{ HEALTHCHECK_TIMEOUT_MS: "0" }, /^materia: config: HEALTHCHECK_TIMEOUT_MS must be at least 1 ms \(got "0"\)$/],
      [{ MATERIA_ENV_FILE: "/nonexistent/materia.env" }, /^materia: config: MATERIA_ENV_FILE: no such file \/nonexistent\/materia\.env$/],
      [{ ADMIN_PASSWORD: "hunter2hunt" },
        /^materia: config: ADMIN_PASSWORD must be empty \(admin pages off\) or at least 12 characters \(got 11 characters\)$/],
      [{ WEB_HEADERS_TIMEOUT_MS: "40000" }, /^materia: config: WEB_HEADERS_TIMEOUT_MS must not be longer than WEB_REQUEST_TIMEOUT_MS=30000 \(got "40000"\)$/],
      [{ WEB_QUERY_TIMEOUT_MS: "90000" }, /^materia: config: WEB_QUERY_TIMEOUT_MS must not be longer than WEB_SOCKET_IDLE_TIMEOUT_MS=60000 \(got "90000"\)$/],
      [{ WEB_TRUST_PROXY: "everyone" }, /^materia: config: WEB_TRUST_PROXY must be empty, a number of hops, or comma-separated addresses/],
      [{ WEB_TRUST_PROXY: "10.0.0.0/33" }, /^materia: config: WEB_TRUST_PROXY must be empty/],
      [{ WEB_CONNECTIONS_MAX: "0" }, /^materia: config: WEB_CONNECTIONS_MAX must be at least 1 \(got "0"\)$/],
      [{ SERVING_PUBLISH_REMOTE: "--config=/tmp/x" }, /^materia: config: SERVING_PUBLISH_REMOTE must be empty or an rclone remote:path \(no surrounding spaces, not starting with -\) \(got "--config=\/tmp\/x"\)$/],
      [{ SERVING_PUBLISH_KEEP: "1" }, /^materia: config: SERVING_PUBLISH_KEEP must be at least 2 \(got "1"\)$/],
      [{ FOLLOW_REMOTE: " r2:serving" }, /^materia: config: FOLLOW_REMOTE must be empty or an rclone remote:path/],
      [{ FOLLOW_POLL_INTERVAL_S: "0" }, /^materia: config: FOLLOW_POLL_INTERVAL_S must be at least 1 second \(got "0"\)$/],
    ];
    for (const [settings, expected] of cases) {
      const result = await run_cli(["pipeline", "run", "extract"], { ...sandbox.env, ...settings });
      assert.equal(result.code, 2, JSON.stringify(settings));
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr.trim(), expected);
      if (settings.ADMIN_PASSWORD) assert.ok(!result.stderr.includes(settings.ADMIN_PASSWORD), "a password is never echoed");
      assert.equal(fs.existsSync(sandbox.config.landing_dir), false, "nothing ran");
    }
  });

  test("proxies to trust: off by default, a number of hops, or addresses and subnets", () => {
    assert.equal(load_config({}).web_trust_proxy, false);
    assert.equal(load_config({ WEB_TRUST_PROXY: "1" }).web_trust_proxy, 1);
    assert.deepEqual(load_config({ WEB_TRUST_PROXY: "loopback, 10.0.0.0/8,::1" }).web_trust_proxy, ["loopback", "10.0.0.0/8", "::1"]);
    assert.equal(load_config({ ADMIN_PASSWORD: "a".repeat(12) }).admin_password, "a".repeat(12), "12 characters are enough");
  });

  test("an env file is read, and the environment wins over it", () => {
    const sandbox = make_sandbox();
    try {
      const env_file = path.join(sandbox.dir, "materia.env");
      fs.writeFileSync(env_file, "# production\nEXTRACT_TIMEOUT_S=120\nEXPORT_TIMEOUT_S=90\n");
      const config = load_config({ MATERIA_ENV_FILE: env_file, EXPORT_TIMEOUT_S: "45" });
      assert.equal(config.extract_timeout_s, 120);
      assert.equal(config.export_timeout_s, 45);
      fs.writeFileSync(env_file, "EXTRACT_TIMEOUT_S=-3\n");
      assert.throws(() => load_config({ MATERIA_ENV_FILE: env_file }), ConfigError);
    } finally {
      sandbox.cleanup();
    }
  });
});
