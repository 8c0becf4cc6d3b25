/** A repeated measurement: its median and spread (min–max), in `unit`. */
export interface Sample {
  median: number;
  min: number;
  max: number;
  runs: number;
  unit: string;
}

export function sample(values: number[], unit: string): Sample {
  if (values.length === 0) throw new Error("a sample needs at least one value");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { median, min: sorted[0]!, max: sorted.at(-1)!, runs: values.length, unit };
}

/** One line of the benchmark table: ours against its reference, measured side by side in one run. */
export interface Figure {
  id: string;
  what: string;
  ours: Sample;
  reference: Sample;
  /** ours ÷ reference, of the medians. */
  ratio: number;
  goal: string;
  /** Whether the goal holds; undefined where the figure is informational. */
  goal_met?: boolean;
}

export function figure(id: string, what: string, ours: Sample, reference: Sample, goal: string,
  goal_met?: (ratio: number) => boolean): Figure {
  const ratio = reference.median === 0 ? Number.NaN : ours.median / reference.median;
  return { id, what, ours, reference, ratio, goal, goal_met: goal_met?.(ratio) };
}

/** Runs `ours` and `reference` alternately, `runs` times each, so both see the same machine noise. */
export async function side_by_side(runs: number, ours: () => Promise<number>, reference: () => Promise<number>) {
  const ours_values: number[] = [];
  const reference_values: number[] = [];
  for (let run = 0; run < runs; run++) {
    ours_values.push(await ours());
    reference_values.push(await reference());
  }
  return { ours: ours_values, reference: reference_values };
}

export async function seconds_of(work: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function show(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  if (Math.abs(value) >= 1000) return value.toFixed(0);
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toPrecision(3);
}

export function show_sample(s: Sample): string {
  return `${show(s.median)} ${s.unit} [${show(s.min)}–${show(s.max)}] ×${s.runs}`;
}

export function format_table(figures: Figure[]): string {
  const rows = figures.map((f) => [f.id, f.what, show_sample(f.ours), show_sample(f.reference), show(f.ratio),
    `${f.goal}${f.goal_met === undefined ? "" : f.goal_met ? " ✓" : " ✗"}`]);
  const header = ["#", "what", "ours (median [min–max] ×runs)", "reference", "ratio", "goal"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
