import fs from "node:fs";
import { DuckDBInstance, type DuckDBConnection } from "@duckdb/node-api";
import { log } from "../lib/log.js";
import { ServingFileRefused } from "../lib/serving_schema.js";
import { HttpError, no_data } from "./errors.js";

// Read access to SERVING_DUCKDB_PATH, a file that export_serving replaces with rename() while we
// serve. A stat before each request notices a new inode; the new file is attached READ_ONLY to the
// process's one DuckDB instance and smoke-tested, new requests go to it, and the old one is
// detached once the requests that started on it have finished. No request fails because of a swap.

export type Row = Record<string, unknown>;
export type Params = Record<string, string | number>;
export type Query = (sql: string, params?: Params) => Promise<Row[]>;

export interface ServingFile {
  path: string;
  dev: number;
  ino: number;
  mtime: string;
  opened_at: string;
}

/** The newest file version, which the reader would not serve: anyone may see `reason`; `detail` is for the log and the admin page. */
export interface RefusedFile {
  dev: number;
  ino: number;
  mtime: string;
  size_bytes: number;
  refused_at: string;
  /** Why, in words safe for anonymous clients: no path, no DuckDB error text. */
  reason: string;
  /** The first line of the error itself, which may name paths. */
  detail: string;
}

/** What one request sees: a single file version for all its queries, so a page never mixes releases. */
export interface Snapshot<M> {
  file: ServingFile;
  meta: M;
  query: Query;
}

export interface ServingReaderOptions<M> {
  path: string;
  query_concurrency_max: number;
  query_queue_max: number;
  query_timeout_ms: number;
  swap_check: boolean;
  /** Runs on every newly opened file before it takes requests: the smoke test (a few queries, not counted against the caps); throws when unusable. */
  load_meta: (query: Query) => Promise<M>;
  /** One line about a loaded file for the log, e.g. its release. */
  describe_meta: (meta: M) => string;
}

interface Version<M> {
  /** The name the file is attached under; every query of the version runs after USE of it. */
  alias: string;
  file: ServingFile;
  meta: M;
  in_flight: number;
  retired: boolean;
  closed: boolean;
  running: Set<DuckDBConnection>;
}

export class ServingReader<M> {
  /**
   * One in-memory instance for the life of the process, created at the first open. Attaching a
   * file takes ~2 ms where creating an instance took ~11 ms (more on a busy box), and requests
   * wait for it after every swap.
   */
  private instance: Promise<DuckDBInstance> | undefined;
  /** Detaches under way, which close() waits for before closing the instance. */
  private readonly detaching = new Set<Promise<void>>();
  private current: Version<M> | undefined;
  /** Every version not yet closed: the current one and replaced ones with requests still on them. */
  private readonly open_versions = new Set<Version<M>>();
  /** Opens may overlap when swaps come fast: a slower open of an older file must not win. */
  private opens_started = 0;
  private installed_open = 0;
  private opening: { identity: string; done: Promise<void> } | undefined;
  /** The file version that last failed to open (identity incl. mtime and size): logged once, not retried. */
  private failed: { identity: string; file: RefusedFile } | undefined;
  private queries_running = 0;
  private readonly waiting: (() => void)[] = [];
  private closing = false;
  private readonly serve_listeners: ((file: ServingFile, meta: M) => void)[] = [];

  constructor(private readonly options: ServingReaderOptions<M>) {}

  /** Calls `listener` whenever a newly opened file starts taking requests (and now, if one already does). */
  on_serve(listener: (file: ServingFile, meta: M) => void): void {
    this.serve_listeners.push(listener);
    if (this.current) listener(this.current.file, this.current.meta);
  }

  /**
   * The file being served and what was loaded from it, after the same swap check a request makes;
   * undefined while a newer file is being opened (or none is served). For answers that need no
   * query, such as a cached response: no snapshot, nothing counted, no DuckDB.
   */
  current_version(): { file: ServingFile; meta: M } | undefined {
    if (this.closing) return undefined;
    if ((this.options.swap_check || this.current === undefined) && this.check_for_new_file() !== undefined) return undefined;
    return this.current;
  }

  /** The file being served; undefined when nothing is. */
  serving_file(): ServingFile | undefined {
    return this.current?.file;
  }

  /** The newest file version when it was refused (the previous one, if any, still serves). */
  refused_file(): RefusedFile | undefined {
    return this.failed?.file;
  }

  /** What was loaded from the file being served, for page furniture (no stat, no query). */
  serving_meta(): M | undefined {
    return this.current?.meta;
  }

  async with_snapshot<T>(work: (snapshot: Snapshot<M>) => Promise<T>): Promise<T> {
    const version = await this.acquire();
    try {
      return await work({ file: version.file, meta: version.meta, query: (sql, params) => this.query(version, sql, params) });
    } finally {
      version.in_flight--;
      this.close_if_done(version);
    }
  }

  /** Interrupts running queries, waits up to `grace_ms` for them, then detaches every file and closes the instance. */
  async close(grace_ms: number): Promise<void> {
    this.closing = true;
    const versions = [...this.open_versions];
    for (const version of versions) {
      version.retired = true;
      for (const connection of version.running) connection.interrupt();
    }
    const deadline = Date.now() + grace_ms;
    while (versions.some((v) => v.in_flight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // Never disconnect a connection with a running query (it hangs the process): leave those to exit.
    const stuck = versions.filter((version) => version.running.size > 0);
    for (const version of versions) if (version.running.size === 0) this.close_if_done(version, true);
    await Promise.all(this.detaching);
    if (stuck.length === 0 && this.instance) (await this.instance).closeSync();
  }

  // The version is chosen and counted in one synchronous step, so it cannot be closed in between.
  private async acquire(): Promise<Version<M>> {
    if (this.closing) throw new HttpError(503, "the web server is shutting down");
    const pending = this.options.swap_check || this.current === undefined ? this.check_for_new_file() : undefined;
    if (pending) await pending;
    const version = this.current;
    if (version === undefined) {
      throw no_data(this.failed ? `no data yet: the serving file was refused (${this.failed.file.reason})`
        : "no data yet: the pipeline has not published a serving file");
    }
    version.in_flight++;
    return version;
  }

  /** statSync, not fs.stat: an async stat queues behind DuckDB on libuv's threadpool. */
  private check_for_new_file(): Promise<void> | undefined {
    let stat: fs.Stats;
    try {
      stat = fs.statSync(this.options.path);
    } catch {
      return undefined; // gone for now: keep serving what is open (its data stays readable)
    }
    const current = this.current?.file;
    if (current && current.dev === stat.dev && current.ino === stat.ino) return undefined;
    const identity = `${stat.dev}:${stat.ino}:${stat.mtimeMs}:${stat.size}`;
    if (this.failed?.identity === identity) return undefined;
    if (this.opening?.identity === identity) return this.opening.done;
    const done = this.open(stat, identity).finally(() => {
      if (this.opening?.identity === identity) this.opening = undefined;
    });
    this.opening = { identity, done };
    return done;
  }

  private async open(stat: fs.Stats, identity: string): Promise<void> {
    const open_number = ++this.opens_started;
    let attached: Version<M> | undefined;
    try {
      const instance = await this.duckdb();
      const fd = fs.openSync(this.options.path, "r");
      try {
        const opened = fs.fstatSync(fd);
        const version: Version<M> = { alias: `serving_${open_number}`, file: { path: this.options.path, dev: opened.dev,
          ino: opened.ino, mtime: opened.mtime.toISOString(), opened_at: new Date().toISOString() }, meta: undefined as M,
        in_flight: 0, retired: false, closed: false, running: new Set() };
        // Through /proc/self/fd: the kernel opens exactly the inode this fd holds, whatever has been
        // renamed over the path since, and each version has a path of its own (DuckDB attaches a
        // path once). Never ATTACH OR REPLACE the path itself: that kept serving the OLD file.
        await this.statement(instance, `ATTACH '/proc/self/fd/${fd}' AS ${version.alias} (READ_ONLY)`);
        attached = version;
      } finally {
        fs.closeSync(fd); // DuckDB holds a descriptor of its own
      }
      const version = attached;
      // The smoke test's queries take no request slot: requests wait for it rather than for a
      // slot, and it may run its queries at once.
      version.meta = await this.options.load_meta((sql, params) => this.query(version, sql, params, false));
      if (this.closing || open_number < this.installed_open) {
        this.detach(version);
        return;
      }
      this.installed_open = open_number;
      this.open_versions.add(version);
      const previous = this.current;
      this.current = version;
      this.failed = undefined;
      log.info(`web: serving ${this.options.describe_meta(version.meta)} from ${version.file.path} (inode ${version.file.ino})`);
      for (const listener of this.serve_listeners) listener(version.file, version.meta);
      if (previous) {
        previous.retired = true;
        this.close_if_done(previous);
      }
    } catch (error) {
      if (attached && attached !== this.current) this.detach(attached);
      const detail = error instanceof Error ? error.message.split("\n")[0]! : String(error);
      // DuckDB's own messages name absolute paths and engine details: only ours reach clients.
      const reason = error instanceof ServingFileRefused ? error.message
        : "it is not a DuckDB file the web can open; the server log has the details";
      // A slower open of an older version that fails says nothing about the file being served now.
      if (open_number > this.installed_open) {
        this.failed = { identity, file: { dev: stat.dev, ino: stat.ino, mtime: stat.mtime.toISOString(), size_bytes: stat.size,
          refused_at: new Date().toISOString(), reason, detail } };
      }
      log.error(`web: cannot open the serving file ${this.options.path} (inode ${stat.ino}): ${detail}` +
        (this.current ? "; still serving the previous file" : ""));
    }
  }

  /**
   * The process's DuckDB instance. One thread: the web's queries read a few thousand rows, and
   * concurrency comes from parallel requests (capped by WEB_QUERY_CONCURRENCY_MAX), not from
   * parallelism inside a query.
   */
  private duckdb(): Promise<DuckDBInstance> {
    this.instance ??= DuckDBInstance.create(":memory:", { threads: "1" }).catch((error: unknown) => {
      this.instance = undefined; // the next open tries again
      throw error;
    });
    return this.instance;
  }

  /** A statement of the reader's own (ATTACH, DETACH), outside the request queries' slots. */
  private async statement(instance: DuckDBInstance, sql: string): Promise<void> {
    const connection = await instance.connect();
    try {
      await connection.run(sql);
    } finally {
      connection.closeSync();
    }
  }

  private close_if_done(version: Version<M>, force = false): void {
    if (version.closed || !version.retired || (version.in_flight > 0 && !force)) return;
    version.closed = true;
    this.open_versions.delete(version);
    this.detach(version);
  }

  /** Detaches in the background (DuckDB then closes the file, and frees its disk space if it was replaced). */
  private detach(version: Version<M>): void {
    const detached: Promise<void> = this.statement_logged(`DETACH ${version.alias}`, `detach the serving file of inode ${version.file.ino}`)
      .finally(() => this.detaching.delete(detached));
    this.detaching.add(detached);
  }

  private async statement_logged(sql: string, what: string): Promise<void> {
    try {
      await this.statement(await this.duckdb(), sql);
      log.debug(`web: ${what}: done`);
    } catch (error) {
      log.error(`web: cannot ${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private async query(version: Version<M>, sql: string, params: Params = {}, in_slot = true): Promise<Row[]> {
    if (in_slot) await this.slot();
    let connection: DuckDBConnection | undefined;
    let timed_out = false;
    const timer = setTimeout(() => {
      timed_out = true;
      connection?.interrupt();
    }, this.options.query_timeout_ms);
    try {
      // One connection per query: DuckDB runs one query at a time per connection.
      connection = await (await this.duckdb()).connect();
      if (timed_out) throw new Error("interrupted");
      // Tests count these lines to prove that an answer needed no query.
      if (log.isDebugEnabled()) log.debug(`web: query on inode ${version.file.ino}: ${sql.replace(/\s+/g, " ").slice(0, 80)}`);
      version.running.add(connection);
      await connection.run(`USE ${version.alias}`);
      const reader = await connection.runAndReadAll(sql, params);
      return reader.getRowObjectsJS().map(plain_row);
    } catch (error) {
      if (timed_out) throw new HttpError(503, `a query took longer than WEB_QUERY_TIMEOUT_MS=${this.options.query_timeout_ms} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
      if (connection) {
        version.running.delete(connection);
        connection.closeSync();
      }
      if (in_slot) this.release_slot();
    }
  }

  /** At most WEB_QUERY_CONCURRENCY_MAX queries run; at most WEB_QUERY_QUEUE_MAX wait. */
  private slot(): Promise<void> {
    if (this.queries_running < this.options.query_concurrency_max) {
      this.queries_running++;
      return Promise.resolve();
    }
    if (this.waiting.length >= this.options.query_queue_max) {
      return Promise.reject(new HttpError(503, "too many requests at once: try again in a moment"));
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release_slot(): void {
    const next = this.waiting.shift();
    if (next) next(); // the slot passes straight to the next waiter
    else this.queries_running--;
  }
}

/** BIGINT → number and timestamps → ISO text, so rows serialize as JSON. */
function plain_row(row: Record<string, unknown>): Row {
  const out: Row = {};
  for (const [key, value] of Object.entries(row)) {
    out[key] = typeof value === "bigint" ? Number(value) : value instanceof Date ? value.toISOString() : value;
  }
  return out;
}
