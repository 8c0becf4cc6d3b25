/** How soon a child process that died is started again. */
export interface RestartDelayBounds {
  first_ms: number;
  ms_max: number;
  /** A child that ran this long died of something new: start over from `first_ms`. */
  reset_after_ms: number;
}

// Quick enough that a killed web child serves again within a second, slow enough not to spin.
export const restart_delay_first_ms = 500;

/** Doubles the delay while the child keeps dying young, up to `ms_max`. */
export function next_restart_delay_ms(previous_ms: number | undefined, uptime_ms: number, bounds: RestartDelayBounds): number {
  if (previous_ms === undefined || uptime_ms >= bounds.reset_after_ms) return Math.min(bounds.first_ms, bounds.ms_max);
  return Math.min(previous_ms * 2, bounds.ms_max);
}
