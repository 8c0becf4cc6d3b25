import autocannon from "autocannon";

// The load generator of the web benchmarks: autocannon in the bench process, the same number of
// connections for every server it is pointed at.

export const CONNECTIONS = 8;

export interface Load {
  requests_per_s: number;
  latency_ms_p50: number;
  latency_ms_p99: number;
  failed: number;
}

export async function load(url: string, options: { duration_s: number; headers?: Record<string, string> }): Promise<Load> {
  const result = await autocannon({ url, connections: CONNECTIONS, duration: options.duration_s, headers: options.headers });
  return {
    requests_per_s: result.requests.total / result.duration,
    latency_ms_p50: result.latency.p50,
    latency_ms_p99: result.latency.p99,
    failed: result.errors + result.timeouts + result.non2xx,
  };
}
