import assert from "node:assert/strict";

// Rendered responses of the serving file being served, kept in memory. The serving file is
// immutable until the next swap, so an entry never goes stale within its version; a swap empties
// the cache at once (reset), and entries still being computed on the old version are dropped.

export interface Sized {
  size_bytes: number;
}

export interface ResponseCacheStats {
  version: string | undefined;
  entries: number;
  size_bytes: number;
  size_bytes_max: number;
  hits: number;
  misses: number;
}

/** LRU by bytes, one version at a time, and one computation per missing key however many requests ask. */
export class ResponseCache<V extends Sized> {
  /** Map order is recency: the first entry is the least recently used. */
  private readonly entries = new Map<string, V>();
  /** Keys being computed now: later requests for the same key wait for this one (single flight). */
  private readonly computing = new Map<string, Promise<V>>();
  private version: string | undefined;
  private size_bytes = 0;
  private hits = 0;
  private misses = 0;

  constructor(private readonly size_bytes_max: number) {
    assert.ok(size_bytes_max > 0, "a cache needs room for something");
  }

  /** A new serving file is served: forget everything from the previous one. */
  reset(version: string): void {
    if (version === this.version) return;
    this.version = version;
    this.entries.clear();
    this.size_bytes = 0;
  }

  /** The entry for `key`, marked as just used; undefined when not cached. */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.hits++;
    return entry;
  }

  /**
   * The cached entry, or the one computation of it already running, or a new computation. Its
   * result is kept only while `version` is still the one served and it fits the bound; a failed
   * computation is not kept: the next request tries again.
   */
  get_or_compute(version: string, key: string, compute: () => Promise<V>): Promise<V> {
    const cached = this.get(key);
    if (cached !== undefined) return Promise.resolve(cached);
    const running = this.computing.get(key);
    if (running !== undefined) return running;
    this.misses++;
    const computation = compute().then((entry) => {
      this.put(version, key, entry);
      return entry;
    }).finally(() => this.computing.delete(key));
    this.computing.set(key, computation);
    return computation;
  }

  stats(): ResponseCacheStats {
    return { version: this.version, entries: this.entries.size, size_bytes: this.size_bytes,
      size_bytes_max: this.size_bytes_max, hits: this.hits, misses: this.misses };
  }

  private put(version: string, key: string, entry: V): void {
    if (version !== this.version || entry.size_bytes > this.size_bytes_max) return;
    const previous = this.entries.get(key);
    if (previous !== undefined) this.size_bytes -= previous.size_bytes;
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.size_bytes += entry.size_bytes;
    for (const [oldest_key, oldest] of this.entries) {
      if (this.size_bytes <= this.size_bytes_max) break;
      this.entries.delete(oldest_key);
      this.size_bytes -= oldest.size_bytes;
    }
    assert.ok(this.size_bytes >= 0 && this.size_bytes <= this.size_bytes_max, "the cache keeps to its bound");
  }
}
