// The Reports page: the period's charts (uPlot) from the page's JSON block, and the custom
// dates shown only when the period asks for them. Every figure is also in the page's tables.
"use strict";
(function () {
  const period = document.getElementById("period");
  const dates = document.querySelectorAll(".custom-date");
  function showDates() {
    const custom = period.value === "custom";
    for (const field of dates) {
      const invalid = field.querySelector("[aria-invalid]");
      field.hidden = !custom && !invalid;
    }
  }
  if (period) {
    period.addEventListener("change", showDates);
    showDates();
  }

  const block = document.getElementById("report-data");
  if (!block || typeof uPlot === "undefined") return;
  const data = JSON.parse(block.textContent);
  const labels = data.labels;
  const x = labels.map((_, i) => i);
  const numbers = new Intl.NumberFormat(data.locale, { maximumFractionDigits: 1 });
  // The series hold 0 to 100; the locale places the sign ("80%", "80 %") as the tables do.
  const percents = new Intl.NumberFormat(data.locale, {
    style: "percent",
    maximumFractionDigits: 1,
  });
  const COLOURS = {
    offered: "#0b5cad",
    answered: "#1d6b32",
    abandoned: "#a4161a",
    short_abandoned: "#8a5300",
    service_level: "#0b5cad",
    abandon_rate: "#a4161a",
    aht: "#0b5cad",
    att: "#1d6b32",
    asa: "#8a5300",
  };

  function clock(seconds) {
    if (seconds == null) return "—";
    const whole = Math.max(0, Math.round(seconds));
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const s = String(whole % 60).padStart(2, "0");
    return h ? h + ":" + String(m).padStart(2, "0") + ":" + s : m + ":" + s;
  }
  const units = {
    count: (v) => (v == null ? "—" : numbers.format(v)),
    percent: (v) => (v == null ? "—" : percents.format(v / 100)),
    duration: clock,
  };

  function series(key, unit, bars) {
    const colour = COLOURS[key];
    const line = {
      label: data.names[key],
      stroke: colour,
      width: 2,
      value: (u, v) => units[unit](v),
      points: { show: labels.length <= 48, size: 5, fill: colour },
      spanGaps: false,
    };
    if (bars) {
      line.fill = colour + "33";
      line.width = 1;
      line.points = { show: false };
      line.paths = uPlot.paths.bars({ size: [0.7, 60] });
    }
    return line;
  }

  const CHARTS = {
    volumes: { unit: "count", series: [["offered", true], ["answered"], ["abandoned"]] },
    service: { unit: "percent", series: [["service_level"]], range: [0, 100] },
    abandons: { unit: "count", series: [["abandoned", true], ["short_abandoned"]] },
    handling: { unit: "duration", series: [["aht"], ["att"], ["asa"]] },
  };

  // Ticks fall on whole buckets only; uPlot spaces them (the axis's ``space``).
  const BUCKET_STEPS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 48, 96, 192, 384, 768];
  const AXIS_STEPS = {
    count: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000, 100000],
    percent: [10, 20, 25, 50],
    duration: [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200],
  };

  const plots = [];
  for (const holder of document.querySelectorAll(".chart[data-chart]")) {
    const chart = CHARTS[holder.dataset.chart];
    if (!chart) continue;
    const columns = [x];
    const lines = [{ label: data.names.start, value: (u, i) => (i == null ? "—" : labels[i]) }];
    for (const [key, bars] of chart.series) {
      columns.push(data.series[key]);
      lines.push(series(key, chart.unit, bars));
    }
    const width = () => Math.max(280, holder.clientWidth);
    const yScale = chart.range
      ? { range: () => chart.range }
      : { range: (u, min, max) => [0, chart.unit === "count" ? Math.max(4, Math.ceil(max * 1.15)) : Math.max(10, max * 1.15)] };
    const opts = {
      width: width(),
      height: 240,
      scales: { x: { time: false, range: () => [-0.5, labels.length - 0.5] }, y: yScale },
      axes: [
        {
          values: (u, splits) => splits.map((i) => data.ticks[i] || ""),
          space: 72,
          incrs: BUCKET_STEPS,
          grid: { show: false },
          stroke: "#4a5360",
        },
        {
          values: (u, splits) => splits.map(units[chart.unit]),
          incrs: AXIS_STEPS[chart.unit],
          size: 64,
          stroke: "#4a5360",
          grid: { stroke: "#e4e8ec" },
        },
      ],
      series: lines,
      cursor: { points: { size: 7 } },
      legend: { live: true },
    };
    // The legend is uPlot's table of the hovered values: the chart's own text is its label.
    const plot = new uPlot(opts, columns, holder);
    plot.root.setAttribute("aria-hidden", "true");
    plots.push([plot, holder, width]);
  }
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      for (const [plot, , width] of plots) plot.setSize({ width: width(), height: 240 });
    }, 150);
  });
})();
