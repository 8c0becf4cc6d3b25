// Draws every <canvas data-chart="…"> with Chart.js. The data comes from the page itself (the
// same figures as the table below it), so the CSP needs no inline script and no extra request.
"use strict";
(function () {
  const palette = ["#6f4e37", "#c8963e", "#2e7d6b", "#3f6ea6", "#a23b3b", "#7a7a7a"];
  const number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  for (const canvas of document.querySelectorAll("canvas[data-chart]")) {
    const spec = JSON.parse(canvas.dataset.chart);
    const line = spec.kind === "line";
    new Chart(canvas, {
      type: spec.kind,
      data: {
        labels: spec.labels,
        datasets: spec.series.map((series, index) => ({
          label: series.label,
          data: series.data,
          borderColor: palette[index % palette.length],
          backgroundColor: palette[index % palette.length],
          borderWidth: line ? 2 : 0,
          pointRadius: 0,
          tension: 0.15,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${number.format(item.parsed.y)}` } },
        },
        scales: {
          x: { stacked: spec.stacked, ticks: { maxRotation: 0, autoSkipPadding: 12 }, grid: { display: false } },
          y: { stacked: spec.stacked, beginAtZero: true, ticks: { callback: (value) => number.format(value) } },
        },
      },
    });
  }
})();
