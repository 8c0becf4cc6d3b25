/**
 * An interruptible sleep: `ring()` ends the sleep under way, if any. A ring with no sleep under
 * way is dropped on purpose: the loop checks its flags (stop, reload) before it sleeps, and a
 * "Run now" during a cycle is to be ignored, not remembered.
 */
export class Alarm {
  private wake: (() => void) | undefined;

  ring(): void {
    this.wake?.();
  }

  /** Resolves "woken" on ring(), "elapsed" after `duration_ms`. */
  sleep(duration_ms: number): Promise<"woken" | "elapsed"> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish("elapsed"), duration_ms);
      const finish = (how: "woken" | "elapsed") => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve(how);
      };
      this.wake = () => finish("woken");
    });
  }
}
