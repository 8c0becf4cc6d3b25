export interface Deadline {
  /** Aborts when the time is up (reason: `timeout_message`) or when `cancel` aborts (reason: "cancelled"). */
  signal: AbortSignal;
  timed_out(): boolean;
  /** Stops the timer and the link to `cancel`; call when the work is done. */
  clear(): void;
}

/**
 * A signal that aborts after `timeout_ms` or when `cancel` aborts; its reason is an Error whose
 * message says which, for the error the aborted work reports. A plain timer on purpose: in
 * Node 20, the timeout signal inside `AbortSignal.any([AbortSignal.timeout(ms), …])` is only weakly
 * held and can be garbage-collected before it fires, leaving the work unbounded.
 */
export function start_deadline(timeout_ms: number, cancel?: AbortSignal,
  timeout_message = `timed out after ${timeout_ms} ms`): Deadline {
  const controller = new AbortController();
  let timed_out = false;
  const timer = setTimeout(() => {
    timed_out = true;
    controller.abort(new Error(timeout_message));
  }, timeout_ms);
  const on_cancel = () => controller.abort(new Error("cancelled"));
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

/** Why `signal` aborted, in words for an error message: "timed out after …" or "cancelled". */
export function abort_reason(signal: AbortSignal): string {
  return signal.reason instanceof Error ? signal.reason.message : "cancelled";
}
