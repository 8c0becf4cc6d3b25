// Request latencies of one access-log interval in fixed memory, however many requests come:
// logarithmic buckets, each 5 % wider than the one before, so a quantile is read to within 5 %.

const latency_ms_min = 0.01;
const latency_ms_max = 10 * 60 * 1000;
const bucket_growth = 1.05;
const buckets_count = Math.ceil(Math.log(latency_ms_max / latency_ms_min) / Math.log(bucket_growth)) + 1;

export class LatencyHistogram {
  private readonly counts = new Uint32Array(buckets_count);
  count = 0;
  max_ms = 0;

  record(latency_ms: number): void {
    const index = latency_ms <= latency_ms_min ? 0
      : Math.min(buckets_count - 1, Math.floor(Math.log(latency_ms / latency_ms_min) / Math.log(bucket_growth)) + 1);
    this.counts[index]!++;
    this.count++;
    this.max_ms = Math.max(this.max_ms, latency_ms);
  }

  /** The `q` quantile (0..1): the upper end of the bucket that holds it, never above the largest latency seen. */
  quantile_ms(q: number): number {
    if (this.count === 0) throw new Error("no latency recorded");
    const rank = Math.max(1, Math.ceil(q * this.count));
    let seen = 0;
    for (let index = 0; index < buckets_count; index++) {
      seen += this.counts[index]!;
      if (seen >= rank) return Math.min(this.max_ms, latency_ms_min * bucket_growth ** index);
    }
    return this.max_ms;
  }
}
