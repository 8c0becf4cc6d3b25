/**
 * An interruptible sleep: `ring()` ends the current sleep at once, or the next one when no
 * sleep is under way (a signal that arrives while a cycle runs is not lost).
 */
export class Alarm {
  private rung = false;
  private wake: (() => void) | undefined;

  ring(): void {
    this.rung = true;
    this.wake?.();
  }

  /** Resolves "woken" on ring(), "elapsed" after `duration_ms`. */
  sleep(duration_ms: number): Promise<"woken" | "elapsed"> {
    if (this.rung) {
      this.rung = false;
      return Promise.resolve("woken");
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => finish("elapsed"), duration_ms);
      const finish = (how: "woken" | "elapsed") => {
        clearTimeout(timer);
        this.wake = undefined;
        this.rung = false;
        resolve(how);
      };
      this.wake = () => finish("woken");
    });
  }
}
