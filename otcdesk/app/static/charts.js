/* Hand-written SVG charts (after pages.js): for the book page a heat map of a spot × vol scenario grid and a
   line chart of PV against spot; for the surveillance page an order timeline. Colours and sizes are SVG attributes (allowed under the CSP); classes carry the
   rest of the look (style.css). Values reach the chart as numbers and <title> text only. */

/** Round tick values covering [lo, hi], about `n` of them. */
function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) { const d = Math.abs(lo) || 1; lo -= d / 2; hi += d / 2; }
  const raw = (hi - lo) / n, mag = 10 ** Math.floor(Math.log10(raw)), f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const ticks = [];  // from the step at or below lo to the first at or above hi
  for (let k = Math.floor(lo / step + 1e-9); ticks.length < 2 || ticks[ticks.length - 1] < hi - step * 1e-9; k++) {
    ticks.push(k === 0 ? 0 : k * step);
  }
  return ticks;
}

const GAIN = [31, 111, 178], LOSS = [217, 130, 43];  // blue for a desk gain, orange for a loss (see the legend)
/** The fill of a P&L value against the grid's largest absolute value: white at zero. */
function pnlColour(v, max) {
  const t = max > 0 ? Math.min(1, Math.abs(v) / max) : 0, c = v >= 0 ? GAIN : LOSS;
  const mix = c.map((x) => Math.round(255 + (x - 255) * t));
  return `rgb(${mix[0]},${mix[1]},${mix[2]})`;
}

const signedPct = (x) => `${x > 0 ? '+' : ''}${Number(x.toFixed(2))}%`;
const signedPts = (x) => `${x > 0 ? '+' : ''}${Number(x.toFixed(2))} 点`;

/**
 * Heat map of `pnl[i][j]`: spot shift `spotShifts[i]` (%) across, vol shift `volShifts[j]` (vol points) up.
 * One `rect.cell` per grid point; `onHover(text)` gets a cell's description.
 */
function heatmap(container, spotShifts, volShifts, pnl, onHover) {
  const nx = spotShifts.length, ny = volShifts.length;
  const W = 1100, ml = 78, mr = 12, mt = 8, cellH = 34, mb = 78;
  const cw = (W - ml - mr) / nx, H = mt + ny * cellH + mb;
  const max = Math.max(0, ...pnl.flat().filter(isNum).map(Math.abs));
  const chart = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'heatmap', role: 'img', 'aria-label': '现货 × 波动率情景盈亏热力图'});
  for (let i = 0; i < nx; i++) {
    for (let j = 0; j < ny; j++) {
      const v = (pnl[i] || [])[j];
      const text = `现货 ${signedPct(spotShifts[i])} · 波动率 ${signedPts(volShifts[j])} · 本方盈亏 ${money(v)} 元`;
      const cell = svg('rect', {class: 'cell', x: (ml + i * cw).toFixed(2), y: mt + (ny - 1 - j) * cellH,
        width: (cw + 0.02).toFixed(2), height: cellH, fill: isNum(v) ? pnlColour(v, max) : '#ccc',
        data: {spot: spotShifts[i], vol: volShifts[j], pnl: isNum(v) ? v : ''}}, svg('title', {text}));
      cell.addEventListener('mouseenter', () => onHover && onHover(text));
      chart.append(cell);
    }
  }
  volShifts.forEach((v, j) => chart.append(svg('text', {class: 'axis', x: ml - 6, y: mt + (ny - 1 - j) * cellH + cellH / 2 + 4,
    'text-anchor': 'end', text: signedPts(v)})));
  const every = Math.max(1, Math.ceil(nx / 11));
  spotShifts.forEach((s, i) => {
    if (i % every && i !== nx - 1) return;
    chart.append(svg('text', {class: 'axis', x: ml + (i + 0.5) * cw, y: mt + ny * cellH + 14, 'text-anchor': 'middle', text: signedPct(s)}));
  });
  chart.append(svg('text', {class: 'axis-title', x: ml + (W - ml - mr) / 2, y: mt + ny * cellH + 32, 'text-anchor': 'middle', text: '现货变动'}));
  chart.append(svg('text', {class: 'axis-title', x: 12, y: mt + ny * cellH / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 12 ${mt + ny * cellH / 2})`, text: '波动率'}));
  // legend: five swatches from the largest loss to the largest gain
  const ly = mt + ny * cellH + 46, lw = 90;
  [-1, -0.5, 0, 0.5, 1].forEach((f, k) => {
    const x = ml + k * (lw + 6);
    chart.append(svg('rect', {class: 'swatch', x, y: ly, width: lw, height: 12, fill: pnlColour(f * max, max)}));
    chart.append(svg('text', {class: 'axis', x: x + lw / 2, y: ly + 26, 'text-anchor': 'middle',
      text: f === 0 ? '0' : `${f < 0 ? '亏损' : '收益'} ${wan(Math.abs(f * max))}`}));
  });
  fill(container, chart);
  return chart;
}

/**
 * Line chart of `ys` against `xs` (PV against spot): a `path.ladder`, a `circle.pt` per point with its value,
 * the zero line when in range, and a dashed marker at `markerX` (today's spot).
 */
function ladderChart(container, xs, ys, {xLabel = '现货', xFormat = String, markerX = null, markerLabel = '当前'} = {}) {
  const W = 1100, H = 340, ml = 96, mr = 16, mt = 14, mb = 48;
  const pts = xs.map((x, i) => [x, ys[i]]).filter(([x, y]) => isNum(x) && isNum(y));
  const chart = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'ladder-chart', role: 'img', 'aria-label': 'PV 随现货变化'});
  if (pts.length < 2) {
    chart.append(svg('text', {class: 'axis', x: W / 2, y: H / 2, 'text-anchor': 'middle', text: '没有可画的数据'}));
    fill(container, chart);
    return chart;
  }
  const xlo = Math.min(...pts.map((p) => p[0])), xhi = Math.max(...pts.map((p) => p[0]));
  const yt = niceTicks(Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1])));  // the data's range
  const ylo = yt[0], yhi = yt[yt.length - 1];
  const yDigits = yt.length > 1 && Math.abs(yt[1] - yt[0]) < 1e4 ? 2 : yt.length > 1 && Math.abs(yt[1] - yt[0]) < 1e5 ? 1 : 0;
  const sx = (x) => ml + (xhi > xlo ? (x - xlo) / (xhi - xlo) : 0.5) * (W - ml - mr);
  const sy = (y) => mt + (yhi > ylo ? (yhi - y) / (yhi - ylo) : 0.5) * (H - mt - mb);
  for (const t of yt) {
    chart.append(svg('line', {class: t === 0 ? 'zero' : 'grid', x1: ml, x2: W - mr, y1: sy(t), y2: sy(t)}));
    chart.append(svg('text', {class: 'axis', x: ml - 6, y: sy(t) + 4, 'text-anchor': 'end', text: wan(t, yDigits)}));
  }
  for (const t of niceTicks(xlo, xhi, 8)) {
    if (t < xlo - 1e-9 || t > xhi + 1e-9) continue;
    chart.append(svg('line', {class: 'tick', x1: sx(t), x2: sx(t), y1: H - mb, y2: H - mb + 5}));
    chart.append(svg('text', {class: 'axis', x: sx(t), y: H - mb + 18, 'text-anchor': 'middle', text: xFormat(t)}));
  }
  chart.append(svg('line', {class: 'frame', x1: ml, x2: W - mr, y1: H - mb, y2: H - mb}));
  chart.append(svg('line', {class: 'frame', x1: ml, x2: ml, y1: mt, y2: H - mb}));
  if (isNum(markerX) && markerX >= xlo && markerX <= xhi) {
    chart.append(svg('line', {class: 'marker', x1: sx(markerX), x2: sx(markerX), y1: mt, y2: H - mb}));
    chart.append(svg('text', {class: 'axis', x: sx(markerX) + 4, y: mt + 10, text: markerLabel}));
  }
  chart.append(svg('text', {class: 'axis-title', x: ml + (W - ml - mr) / 2, y: H - 8, 'text-anchor': 'middle', text: xLabel}));
  chart.append(svg('text', {class: 'axis-title', x: 14, y: mt + (H - mt - mb) / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 14 ${mt + (H - mt - mb) / 2})`, text: '本方 PV（万元）'}));
  const d = pts.map(([x, y], i) => `${i ? 'L' : 'M'}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
  chart.append(svg('path', {class: 'ladder', d, fill: 'none'}));
  for (const [x, y] of pts) {
    chart.append(svg('circle', {class: 'pt', cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 3},
      svg('title', {text: `${xLabel} ${xFormat(x)} · PV ${money(y)} 元`})));
  }
  fill(container, chart);
  return chart;
}

const SIDE = {B: '买', S: '卖'};
const ORDER_EVENT = {new: '下单', cancel: '撤单', fill: '成交'};
const hms = (t) => new Date(t).toLocaleTimeString('zh-CN', {hour12: false, timeZone: 'Asia/Shanghai'});

/** A mark of one order event at (x, y): a hollow circle for a new order, a cross for its cancel, a triangle for a
 *  fill (pointing up for a buy, down for a sell). Classes carry the side's colour (style.css). */
function orderMark(x, y, r, title) {
  const cls = `order-mark mark-${r.event} side-${r.side || 'X'}`;
  const data = {event: r.event, side: r.side || '', order: r.order_id || ''};
  const t = svg('title', {text: title});
  if (r.event === 'new') return svg('circle', {class: cls, cx: x.toFixed(1), cy: y.toFixed(1), r: 5, data}, t);
  if (r.event === 'cancel') {
    const d = `M${x - 5},${y - 5} L${x + 5},${y + 5} M${x - 5},${y + 5} L${x + 5},${y - 5}`;
    return svg('path', {class: cls, d, data}, t);
  }
  const up = r.side !== 'S', k = up ? -1 : 1;
  const d = `M${x},${y + 7 * k} L${x - 6},${y - 5 * k} L${x + 6},${y - 5 * k} Z`;
  return svg('path', {class: cls, d, data}, t);
}

/**
 * An alert's orders over time (`rows`: the API's timeline, {ts, event: new|cancel|fill, order_id, account, side,
 * price, qty, lifetime_ms}): time across, price or size (`y`: 'price' | 'qty') up. A large order's life is a line
 * from its placing (○) to its cancel (✕); fills are triangles (▲ buy, ▼ sell). Episodes more than `gapMs`
 * apart get panels of their own (at most `maxPanels`), so seconds-long episodes of one day stay readable.
 */
function orderTimeline(container, rows, {y = 'price', gapMs = 20000, maxPanels = 6} = {}) {
  const W = 1100, H = 330, ml = 78, mr = 16, mt = 14, mb = 70, gap = 26;
  const pts = rows.map((r) => ({...r, t: Date.parse(r.ts), v: r[y]})).filter((r) => isNum(r.t) && isNum(r.v))
    .sort((a, b) => a.t - b.t);
  const chart = svg('svg', {viewBox: `0 0 ${W} ${H}`, class: 'order-timeline', role: 'img', 'aria-label': '委托时间线'});
  if (!pts.length) {
    chart.append(svg('text', {class: 'axis', x: W / 2, y: H / 2, 'text-anchor': 'middle', text: '没有可画的委托'}));
    fill(container, chart);
    return chart;
  }
  const episodes = [];
  for (const p of pts) {
    const last = episodes[episodes.length - 1];
    if (last && p.t - last[last.length - 1].t <= gapMs) last.push(p); else episodes.push([p]);
  }
  const shown = episodes.slice(0, maxPanels);
  const yt = niceTicks(Math.min(...pts.map((p) => p.v)), Math.max(...pts.map((p) => p.v)));
  const ylo = yt[0], yhi = yt[yt.length - 1];
  const sy = (v) => mt + (yhi > ylo ? (yhi - v) / (yhi - ylo) : 0.5) * (H - mt - mb);
  const yText = (v) => (y === 'qty' ? NF0.format(v) : fixed(v, 2));
  for (const t of yt) {
    chart.append(svg('line', {class: 'grid', x1: ml, x2: W - mr, y1: sy(t), y2: sy(t)}));
    chart.append(svg('text', {class: 'axis', x: ml - 6, y: sy(t) + 4, 'text-anchor': 'end', text: yText(t)}));
  }
  chart.append(svg('text', {class: 'axis-title', x: 14, y: mt + (H - mt - mb) / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 14 ${mt + (H - mt - mb) / 2})`, text: y === 'qty' ? '数量' : '价格'}));
  const pw = (W - ml - mr - gap * (shown.length - 1)) / shown.length;
  shown.forEach((ep, i) => {
    const x0 = ml + i * (pw + gap), span = ep[ep.length - 1].t - ep[0].t, pad = Math.max(300, span * 0.08);
    const tlo = ep[0].t - pad, thi = ep[ep.length - 1].t + pad;
    const sx = (t) => x0 + ((t - tlo) / (thi - tlo)) * pw;
    const g = svg('g', {class: 'episode', data: {start: ep[0].ts}});
    g.append(svg('line', {class: 'frame', x1: x0, x2: x0 + pw, y1: H - mb, y2: H - mb}));
    g.append(svg('line', {class: 'frame', x1: x0, x2: x0, y1: mt, y2: H - mb}));
    const step = niceTicks(0, (thi - tlo) / 1000, 4);
    for (const s of step) {
      const t = ep[0].t + s * 1000;
      if (t > thi || s < 0) continue;
      g.append(svg('line', {class: 'tick', x1: sx(t), x2: sx(t), y1: H - mb, y2: H - mb + 4}));
      g.append(svg('text', {class: 'axis', x: sx(t), y: H - mb + 16, 'text-anchor': 'middle', text: `+${Number(s.toFixed(1))}s`}));
    }
    g.append(svg('text', {class: 'axis-title', x: x0 + pw / 2, y: H - mb + 34, 'text-anchor': 'middle', text: hms(ep[0].t)}));
    // each order's life: from its placing to its cancel, at its price (or size)
    const placed = new Map();
    for (const p of ep) {
      if (p.event === 'new') placed.set(p.order_id, p);
      else if (p.event === 'cancel' && placed.has(p.order_id)) {
        const n = placed.get(p.order_id);
        g.append(svg('line', {class: `order-life side-${p.side}`, x1: sx(n.t).toFixed(1), x2: sx(p.t).toFixed(1),
          y1: sy(n.v).toFixed(1), y2: sy(p.v).toFixed(1)}));
      }
    }
    for (const p of ep) {
      const title = `${hms(p.t)}.${String(p.t % 1000).padStart(3, '0')} ${p.account || ''} ${label(SIDE, p.side)}` +
        `${label(ORDER_EVENT, p.event)} ${p.order_id || ''} 价格 ${fixed(p.price, 2)} 数量 ${NF0.format(p.qty || 0)}` +
        (isNum(p.lifetime_ms) ? ` 存续 ${p.lifetime_ms} ms` : '');
      g.append(orderMark(sx(p.t), sy(p.v), p, title));
    }
    chart.append(g);
  });
  // legend
  const ly = H - 14;
  const legend = [['new', 'B', '下单（买）'], ['new', 'S', '下单（卖）'], ['cancel', 'B', '撤单'], ['fill', 'B', '成交（买）'], ['fill', 'S', '成交（卖）']];
  legend.forEach(([event, side, text], k) => {
    const x = ml + k * 130;
    const m = orderMark(x + 6, ly - 4, {event, side}, text);
    m.setAttribute('class', `legend-mark mark-${event} side-${side}`);
    chart.append(m, svg('text', {class: 'axis', x: x + 16, y: ly, text}));
  });
  if (episodes.length > shown.length) {
    chart.append(svg('text', {class: 'axis', x: W - mr, y: ly, 'text-anchor': 'end', text: `另有 ${episodes.length - shown.length} 段未画出`}));
  }
  fill(container, chart);
  return chart;
}
