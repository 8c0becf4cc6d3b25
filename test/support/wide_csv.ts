import fs from "node:fs";
import { wide_csv_path } from "./sandbox.js";

/** The wide CSV's rows: one per country and year, one number per attribute column. */
export function read_wide_csv(): { country: string; year: number; values: Record<string, number> }[] {
  const [header, ...lines] = fs.readFileSync(wide_csv_path, "utf8").trim().split(/\r?\n/);
  const columns = split_csv_line(header!);
  return lines.map((line) => {
    const cells = split_csv_line(line);
    const values: Record<string, number> = {};
    columns.slice(2).forEach((column, index) => (values[column] = Number(cells[index + 2])));
    return { country: cells[0]!, year: Number(cells[1]), values };
  });
}

function split_csv_line(line: string): string[] {
  const cells: string[] = [];
  for (const match of line.matchAll(/("([^"]*)"|[^,]*)(,|$)/g)) {
    cells.push(match[2] ?? match[1]!);
    if (match[3] === "") break;
  }
  return cells;
}

/** World totals per year of one attribute column, summed independently of the pipeline. */
export function world_totals(column: string): Map<number, number> {
  const totals = new Map<number, number>();
  for (const row of read_wide_csv()) totals.set(row.year, (totals.get(row.year) ?? 0) + row.values[column]!);
  return totals;
}
