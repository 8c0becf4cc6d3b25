// How every web process is started: by the daemon, by the tests and by the benchmarks (and by
// `npm run web`, whose script in package.json repeats these two settings). Both bound memory that
// otherwise grows with the number of distinct pages rendered and never goes back: measured on the
// shipped data after rendering 360 country pages (none kept in the page cache), the web's RSS grew
// by ~57 MB with Node's defaults and by ~9 MB with these, with no throughput lost that this box
// could measure.

/**
 * V8's young generation grows to 16 MB per semi-space while pages are rendered, and keeps its
 * pages afterwards; rendering allocates mostly short-lived strings, which 1 MB collects as well.
 */
export const web_exec_argv: readonly string[] = ["--max-semi-space-size=1"];

/** glibc gives each libuv thread that runs DuckDB queries a malloc arena of its own, each keeping its high-water mark. */
export const web_env: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };
