// PSD's coffee market year 2023 is the 2023/24 season (it starts in 2023 in most countries and
// ends in 2024): pages, charts and CSV files say "2023/24"; JSON keeps the integer beside it.

export function market_year_label(year: number): string {
  return `${year}/${String((year + 1) % 100).padStart(2, "0")}`;
}
