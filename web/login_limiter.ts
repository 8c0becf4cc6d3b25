// How many wrong admin passwords a client may try: after `failures_max` failures within one
// window, every login from that address (the right password included) is refused until the
// window ends, so guessing costs a window per `failures_max` tries. Pure logic with an injected
// clock; admin_guard.ts does the HTTP side.

export interface LoginLimiterOptions {
  failures_max: number;
  window_ms: number;
  /** Addresses remembered at once; past it, new addresses share one counter, so memory stays bounded. */
  clients_max: number;
}

interface Window {
  started_ms: number;
  failures: number;
}

export class LoginLimiter {
  /** Address → its current window, in the order the windows started (oldest first: pruned from the front). */
  private readonly clients = new Map<string, Window>();
  /** The counter of addresses that found the map full: an attacker with many addresses is limited as one. */
  private overflow: Window | undefined;

  constructor(readonly options: LoginLimiterOptions, private readonly now_ms: () => number = Date.now) {
    if (!(options.failures_max >= 1 && options.window_ms >= 1 && options.clients_max >= 1)) {
      throw new Error(`LoginLimiter: bounds must be at least 1: ${JSON.stringify(options)}`);
    }
  }

  /** Seconds until `client` may try again; 0 when it may try now. */
  retry_after_s(client: string): number {
    const window = this.window_of(client);
    if (!window || window.failures < this.options.failures_max) return 0;
    return Math.max(1, Math.ceil((window.started_ms + this.options.window_ms - this.now_ms()) / 1000));
  }

  /** Counts one wrong password from `client`; returns its failures in the current window. */
  failed(client: string): number {
    let window = this.window_of(client);
    if (!window) {
      window = { started_ms: this.now_ms(), failures: 0 };
      if (this.clients.size < this.options.clients_max) this.clients.set(client, window);
      else this.overflow = window;
    }
    return ++window.failures;
  }

  /** The right password: `client` starts afresh (unless it shares the overflow counter). */
  succeeded(client: string): void {
    this.clients.delete(client);
  }

  /** How many addresses are remembered now (for tests and the bound's proof). */
  remembered(): number {
    return this.clients.size;
  }

  /** The live window counting `client`'s failures, if any; drops every window that has ended. */
  private window_of(client: string): Window | undefined {
    const now = this.now_ms();
    const ended = (window: Window) => window.started_ms + this.options.window_ms <= now;
    for (const [address, window] of this.clients) {
      if (!ended(window)) break;
      this.clients.delete(address);
    }
    if (this.overflow && ended(this.overflow)) this.overflow = undefined;
    return this.clients.get(client) ?? (this.clients.size >= this.options.clients_max ? this.overflow : undefined);
  }
}
