// Draws every <canvas data-chart="…"> with Chart.js. The data comes from the page itself (the
// same figures as the table below it), so the CSP needs no inline script and no extra request.
"use strict";
(function () {
  const palette = ["#6f4e37", "#c8963e", "#2e7d6b", "#3f6ea6", "#a23b3b", "#7a7a7a"];
  const break_colour = "#6b3fa0";
  const number = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  // A dashed vertical line, labelled, at each series break the chart shows. The canvas records
  // how many it drew (data-breaks-drawn) for the browser test.
  const break_lines = {
    id: "break_lines",
    afterDatasetsDraw(chart, _args, options) {
      const markers = options.markers || [];
      const { ctx, chartArea, scales } = chart;
      let drawn = 0;
      ctx.save();
      ctx.strokeStyle = break_colour;
      ctx.fillStyle = break_colour;
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 1;
      ctx.font = "11px system-ui, sans-serif";
      for (const marker of markers) {
        const index = chart.data.labels.indexOf(marker.label);
        if (index === -1) continue;
        const x = scales.x.getPixelForValue(index);
        ctx.beginPath();
        ctx.moveTo(x, chartArea.top);
        ctx.lineTo(x, chartArea.bottom);
        ctx.stroke();
        ctx.fillText(`${marker.label} ${marker.note}`, x + 3, chartArea.top + 10);
        drawn++;
      }
      ctx.restore();
      chart.canvas.dataset.breaksDrawn = String(drawn);
    },
  };

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
      plugins: [break_lines],
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${number.format(item.parsed.y)}` } },
          break_lines: { markers: spec.markers || [] },
        },
        scales: {
          x: { stacked: spec.stacked, ticks: { maxRotation: 0, autoSkipPadding: 12 }, grid: { display: false } },
          y: { stacked: spec.stacked, beginAtZero: true, ticks: { callback: (value) => number.format(value) } },
        },
      },
    });
  }
})();
