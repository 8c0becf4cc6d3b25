export interface Deadline {
  signal: AbortSignal;
  timed_out(): boolean;
  /** Stops the timer and the link to `cancel`; call when the work is done. */
  clear(): void;
}

/**
 * A signal that aborts after `timeout_ms` or when `cancel` aborts. A plain timer on purpose: in
 * Node 20, the timeout signal inside `AbortSignal.any([AbortSignal.timeout(ms), …])` is only weakly
 * held and can be garbage-collected before it fires, leaving the work unbounded.
 */
export function start_deadline(timeout_ms: number, cancel?: AbortSignal): Deadline {
  const controller = new AbortController();
  let timed_out = false;
  const timer = setTimeout(() => {
    timed_out = true;
    controller.abort(new Error(`timed out after ${timeout_ms} ms`));
  }, timeout_ms);
  const on_cancel = () => controller.abort(cancel?.reason);
  if (cancel?.aborted) on_cancel();
  else cancel?.addEventListener("abort", on_cancel, { once: true });
  return {
    signal: controller.signal,
    timed_out: () => timed_out,
    clear: () => {
      clearTimeout(timer);
      cancel?.removeEventListener("abort", on_cancel);
    },
  };
}
