// The visualizer page: asks the server (visualizer.py) for a sample's painting, all steps in
// one binary response, keeps every frame as ImageData, and redraws a step without the server.
// window.viz exposes the state and the measured latencies (the browser tests read them).
'use strict';

const $ = (id) => document.getElementById(id);
const CHANNEL_COLOURS = { 1: ['#333'], 3: ['#d33', '#2a2', '#33d'] };

const viz = window.viz = {
  info: null,           // /api/info of the chosen network.
  data: null,           // The decoded render: header, arrays, cached frames.
  step: 0,              // The step shown (0 = nothing painted yet, T = the whole painting).
  job: null,            // The projection job whose result is shown, or null for the seed's sample.
  renders: 0,           // Renders drawn so far (tests wait on it).
  lastError: '',
  stats: { seedFirstFrame: [], seedAllFrames: [], step: [], projectionStart: [] },  // Milliseconds from the input event.
};

function showError(message) {
  viz.lastError = message || '';
  $('error').textContent = viz.lastError;
}

async function fetchChecked(url, options) {
  const response = await fetch(url, options);
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

//----------------------------------------------------------------------------
// The binary of /api/render: uint32 header length, JSON header, arrays at 4-byte aligned offsets.

function decode(buffer) {
  const headerLength = new DataView(buffer).getUint32(0, true);
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 4, headerLength)));
  const base = 4 + headerLength;
  const arrays = {};
  for (const [name, a] of Object.entries(header.arrays)) {
    const count = a.shape.reduce((x, y) => x * y, 1);
    const data = a.dtype === 'u8' ? new Uint8Array(buffer, base + a.offset, count) : new Float32Array(buffer, base + a.offset, count);
    arrays[name] = { data, shape: a.shape };
  }
  return { header, arrays };
}

// uint8 pixels [N, N, C] starting at `offset` -> ImageData; channel >= 0 shows that channel alone, in grey.
function toImageData(u8, offset, N, C, channel = -1) {
  const image = new ImageData(N, N);
  const out = image.data;
  for (let i = 0, j = offset; i < N * N; i++, j += C) {
    if (channel >= 0) { out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = u8[j + channel]; }
    else if (C === 1) { out[4 * i] = out[4 * i + 1] = out[4 * i + 2] = u8[j]; }
    else { out[4 * i] = u8[j]; out[4 * i + 1] = u8[j + 1]; out[4 * i + 2] = u8[j + 2]; }
    out[4 * i + 3] = 255;
  }
  return image;
}

function putImage(canvas, image) {
  if (canvas.width !== image.width || canvas.height !== image.height) { canvas.width = image.width; canvas.height = image.height; }
  canvas.getContext('2d').putImageData(image, 0, 0);
}

function clearCanvas(canvas) {
  canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
}

// Line plots: series = [{values, colour}], scaled to the largest |value|; marker = x index or null.
function plot(canvas, series, marker = null) {
  const ctx = canvas.getContext('2d');
  const W = canvas.width, H = canvas.height, pad = 4;
  ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, W, H);
  let peak = 0, n = 1;
  for (const s of series) { n = Math.max(n, s.values.length); for (const v of s.values) peak = Math.max(peak, Math.abs(v)); }
  peak = peak > 0 ? peak : 1;
  const allPositive = series.every((s) => s.values.every((v) => v >= 0));
  const y = (v) => allPositive ? H - pad - (v / peak) * (H - 2 * pad) : H / 2 - (v / peak) * (H / 2 - pad);
  const x = (i) => pad + (n > 1 ? i / (n - 1) : 0.5) * (W - 2 * pad);
  ctx.strokeStyle = '#bbb'; ctx.beginPath(); ctx.moveTo(0, y(0)); ctx.lineTo(W, y(0)); ctx.stroke();
  if (marker !== null) { ctx.strokeStyle = '#888'; ctx.beginPath(); ctx.moveTo(x(marker), 0); ctx.lineTo(x(marker), H); ctx.stroke(); }
  for (const s of series) {
    ctx.strokeStyle = s.colour; ctx.beginPath();
    s.values.forEach((v, i) => (i ? ctx.lineTo(x(i), y(v)) : ctx.moveTo(x(i), y(v))));
    ctx.stroke();
  }
  ctx.fillStyle = '#555'; ctx.font = '10px sans-serif'; ctx.fillText(`max |x| ${peak.toPrecision(3)}`, W - 90, 11);
}

//----------------------------------------------------------------------------
// A render: frames cached once, a step drawn from the cache.

function cacheFrame(d, t) {
  const { N, C } = d;
  if (!d.partialFrames[t]) d.partialFrames[t] = toImageData(d.arrays.partials.data, t * N * N * C, N, C);
  return d.partialFrames[t];
}

function cacheAll(d) {
  const { T, N, C, arrays } = d;
  for (let t = 0; t <= T; t++) {
    cacheFrame(d, t);
    d.updateFrames[t] = t === 0 ? null : toImageData(arrays.updates.data, (t - 1) * N * N * C, N, C);
    d.channelFrames[t] = C === 3 ? [0, 1, 2].map((c) => toImageData(arrays.partials.data, t * N * N * C, N, C, c)) : [];
  }
  if (arrays.lrs) {  // Per channel, the mean over the value rows of a vector learning rate.
    const [, , r] = arrays.lrs.shape;
    d.lrCurves = [...Array(C).keys()].map((c) => Array.from({ length: T }, (_, t) => {
      let sum = 0; for (let i = 0; i < r; i++) sum += arrays.lrs.data[(t * C + c) * r + i]; return sum / r;
    }));
  }
  d.ready = true;
}

function vectorsAt(array, t, C, N) {
  return [...Array(C).keys()].map((c) => ({ values: array.data.subarray(((t - 1) * C + c) * N, ((t - 1) * C + c + 1) * N), colour: CHANNEL_COLOURS[C]?.[c] ?? '#333' }));
}

function drawStep(t) {
  const d = viz.data;
  viz.step = t;
  $('step').value = t; $('step-out').value = `${t} / ${d.T}`;
  putImage($('image'), cacheFrame(d, t));
  $('image-caption').textContent = t === d.T ? `W_${t}: the painted image (step ${t} of ${d.T})` : `W_${t}: partial image after step ${t} of ${d.T}`;
  if (!d.ready) return;
  if (t > 0) putImage($('stroke'), d.updateFrames[t]); else clearCanvas($('stroke'));
  const colours = CHANNEL_COLOURS[d.C] ?? [];
  plot($('plot-written'), t > 0 ? vectorsAt(d.arrays.written, t, d.C, d.N) : []);
  plot($('plot-key'), t > 0 ? vectorsAt(d.arrays.keys, t, d.C, d.N) : []);
  plot($('plot-lr'), d.lrCurves ? d.lrCurves.map((values, c) => ({ values, colour: colours[c] ?? '#333' })) : [], t > 0 ? t - 1 : null);
  d.channelFrames[t].forEach((image, c) => putImage($(`channel-${c}`), image));
}

function showRender(decoded) {
  const { header, arrays } = decoded;
  const image = arrays.image;
  const [N, , C] = image.shape;
  const d = viz.data = { header, arrays, N, C, T: header.paints ? header.num_steps : 0, partialFrames: [], updateFrames: [], channelFrames: [], ready: false };
  $('painter').hidden = !header.paints;
  if (header.paints) {
    $('step').max = d.T;
    const t = Math.min(viz.step, d.T);
    drawStep(t);
  } else {
    putImage($('image'), toImageData(image.data, 0, N, C));
    $('image-caption').textContent = 'output image';
  }
  const first = performance.now();
  if (header.paints) {
    cacheAll(d);
    drawStep(viz.step);
    if (arrays.refined) {
      putImage($('before-unet'), toImageData(image.data, 0, N, C));
      putImage($('after-unet'), toImageData(arrays.refined.data, 0, N, C));
    }
  }
  d.ready = true;
  $('unet').hidden = !arrays.refined;
  $('target-fig').hidden = !arrays.target;
  if (arrays.target) putImage($('target'), toImageData(arrays.target.data, 0, N, C));
  viz.renders += 1;
  return first;
}

//----------------------------------------------------------------------------
// Requests: one render in flight at a time; inputs that arrive meanwhile are merged into the next.

let inFlight = false;
let pending = null;     // {query, t0} of the latest input not yet sent.

function sampleQuery() {
  const info = viz.info;
  const q = new URLSearchParams({ network: info.network, seed: $('seed').value, seed_b: $('seed_b').value, psi: $('psi').value });
  if (info.c_dim > 0) q.set('class', $('class').value);
  if (!info.paints) q.set('noise_mode', $('noise_mode').value);
  const walk = Number($('walk').value);
  let lo = 0, hi = 0;
  if (info.paints) { lo = Number($('mix_k').value); hi = lo < info.num_ws ? info.num_ws : lo; }
  else { lo = Number($('mix_lo').value); hi = Math.max(lo, Number($('mix_hi').value)); }
  if (walk > 0 || hi > lo) { q.set('walk', walk); q.set('space', $('space').value); q.set('mix_lo', lo); q.set('mix_hi', hi); }
  if (info.input_transform) { q.set('tx', $('tx').value); q.set('ty', $('ty').value); q.set('angle', $('angle').value); }
  return q.toString();
}

function checkSeed(id) {
  const value = $(id).value;
  if (!/^\d+$/.test(value) || Number(value) > 4294967295) { showError(`${id}: expected an integer in 0..4294967295`); return false; }
  return true;
}

function requestRender(t0) {
  if (!viz.info || !checkSeed('seed') || !checkSeed('seed_b')) return;
  viz.job = null;
  pending = { query: sampleQuery(), t0 };
  updateSaveLinks();
  if (!inFlight) sendPending();
}

async function sendPending() {
  const { query, t0 } = pending;
  pending = null;
  inFlight = true;
  try {
    const buffer = await (await fetchChecked('/api/render?' + query)).arrayBuffer();
    if (!pending && !viz.job) {    // Drawn only if no newer input is waiting.
      const first = showRender(decode(buffer));
      const done = performance.now();
      viz.stats.seedFirstFrame.push(first - t0);
      viz.stats.seedAllFrames.push(done - t0);
      showTiming();
      showError('');
    }
  } catch (err) {
    if (!pending) showError(err.message);
  } finally {
    inFlight = false;
    if (pending) sendPending();
  }
}

function showTiming() {
  const last = (a) => (a.length ? `${a[a.length - 1].toFixed(1)} ms` : '-');
  const s = viz.stats;
  $('timing').textContent = `last input -> first frame ${last(s.seedFirstFrame)}, all frames ${last(s.seedAllFrames)}\n` +
    `last step change -> drawn ${last(s.step)}` + (s.projectionStart.length ? `\nprojection start -> first step ${last(s.projectionStart)}` : '');
}

//----------------------------------------------------------------------------
// The network picker.

async function loadNetworks() {
  try {
    const { networks } = await (await fetchChecked('/api/networks')).json();
    const select = $('network');
    select.replaceChildren(...networks.map((name) => new Option(name, name)));
    if (!networks.length) { showError('no network files under --networks'); return; }
    await chooseNetwork(performance.now());
  } catch (err) { showError(err.message); }
}

async function chooseNetwork(t0) {
  const name = $('network').value;
  viz.info = null;
  try {
    const info = await (await fetchChecked('/api/info?' + new URLSearchParams({ network: name }))).json();
    if ($('network').value !== name) return;
    viz.info = info;
  } catch (err) {
    showError(err.message);
    $('netinfo').textContent = '';
    return;
  }
  const info = viz.info;
  $('netinfo').textContent = `${info.class_name}: ${info.img_resolution}x${info.img_resolution}x${info.img_channels}` +
    (info.paints ? `, ${info.num_steps} painting steps` : `, ${info.num_ws} ws rows`) + (info.c_dim ? `, ${info.c_dim} classes` : '');
  $('class-row').hidden = info.c_dim === 0;
  $('class').replaceChildren(...[...Array(info.c_dim).keys()].map((c) => new Option(String(c), String(c))));
  $('noise-row').hidden = info.paints || info.noise_maps === 0;
  $('mixk-row').hidden = !info.paints;
  $('mixlayers-row').hidden = info.paints;
  $('transform-row').hidden = !info.input_transform;
  for (const id of ['mix_k', 'mix_lo', 'mix_hi']) $(id).max = info.num_ws;
  $('mix_k').value = info.num_ws; $('mix_k-out').value = info.num_ws;
  $('mix_lo').value = 0; $('mix_hi').value = 0; $('mix_lo-out').value = 0; $('mix_hi-out').value = 0;
  viz.step = info.paints ? info.num_steps : 0;
  const channels = $('channels');
  channels.replaceChildren();
  if (info.paints && info.img_channels === 3) {
    ['red', 'green', 'blue'].forEach((colour, c) => {
      const figure = document.createElement('figure');
      figure.innerHTML = `<canvas id="channel-${c}" class="small"></canvas><figcaption>W_t, ${colour} channel</figcaption>`;
      channels.append(figure);
    });
  }
  showError('');
  requestRender(t0);
}

//----------------------------------------------------------------------------
// Playing the painting.

let playTimer = null;
function togglePlay() {
  if (playTimer) { clearInterval(playTimer); playTimer = null; $('play').textContent = 'Play'; return; }
  if (!viz.data || !viz.data.T) return;
  if (viz.step >= viz.data.T) drawStep(0);
  $('play').textContent = 'Pause';
  playTimer = setInterval(() => {
    if (!viz.data || viz.step >= viz.data.T) { togglePlay(); return; }
    drawStep(viz.step + 1);
  }, 100);
}

//----------------------------------------------------------------------------
// Projection: upload, poll the job, show its painting.

async function project(t0) {
  const file = $('upload').files[0];
  if (!viz.info) return;
  if (!file) { showError('projection: choose an image file first'); return; }
  const q = new URLSearchParams({ network: viz.info.network, num_steps: $('proj_steps').value, seed: $('seed').value });
  if (viz.info.c_dim > 0) q.set('class', $('class').value);
  let job;
  try {
    job = await (await fetchChecked('/api/project?' + q, { method: 'POST', body: file, headers: { 'Content-Type': 'application/octet-stream' } })).json();
  } catch (err) { showError(err.message); return; }
  viz.lastJob = job;
  showError('');
  $('cancel').disabled = false;
  let started = false;
  while (true) {
    try {
      job = await (await fetchChecked('/api/job?' + new URLSearchParams({ id: job.id }))).json();
    } catch (err) { showError(err.message); break; }
    viz.lastJob = job;
    $('proj-progress').max = job.num_steps; $('proj-progress').value = job.step;
    $('proj-status').textContent = `${job.state}: step ${job.step} / ${job.num_steps}` + (job.dist !== null ? `, distance ${job.dist.toPrecision(4)}` : '');
    if (job.step >= 1 && !started) { started = true; viz.stats.projectionStart.push(performance.now() - t0); showTiming(); }
    if (job.state === 'failed') { showError(job.error); break; }
    if (job.state !== 'running') break;
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  $('cancel').disabled = true;
  if (job.state === 'done') {
    try {
      const buffer = await (await fetchChecked('/api/render?' + new URLSearchParams({ job: job.id }))).arrayBuffer();
      viz.job = job.id;
      showRender(decode(buffer));
      updateSaveLinks();
    } catch (err) { showError(err.message); }
  }
  viz.lastJob = job;
}

//----------------------------------------------------------------------------
// Saving.

function updateSaveLinks() {
  const paints = viz.info && viz.info.paints;
  const query = viz.job ? new URLSearchParams({ job: viz.job }).toString() : (viz.info ? sampleQuery() : '');
  for (const format of ['gif', 'webp']) {
    const link = $(`save-${format}`);
    link.classList.toggle('disabled', !paints);
    link.href = paints ? `/api/animation?${query}&format=${format}` : '#';
  }
}

function savePng() {
  const source = $('image');
  const scale = Math.max(1, Math.ceil(256 / source.width));
  const canvas = document.createElement('canvas');
  canvas.width = source.width * scale; canvas.height = source.height * scale;
  const ctx = canvas.getContext('2d');
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const name = viz.job ? `projection-${viz.job}` : `seed${$('seed').value.padStart(4, '0')}`;
  canvas.toBlob((blob) => {
    const link = document.createElement('a');
    link.href = URL.createObjectURL(blob);
    link.download = viz.data && viz.data.T ? `${name}-step${viz.step}.png` : `${name}.png`;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });
}

//----------------------------------------------------------------------------
// Wiring.

function bindOutput(id, format = (v) => v) {
  $(id).addEventListener('input', () => { $(`${id}-out`).value = format($(id).value); });
}

function init() {
  bindOutput('psi', (v) => Number(v).toFixed(2));
  bindOutput('walk', (v) => Number(v).toFixed(2));
  bindOutput('mix_k'); bindOutput('mix_lo'); bindOutput('mix_hi');
  $('network').addEventListener('change', (ev) => chooseNetwork(ev.timeStamp));
  for (const id of ['seed', 'psi', 'class', 'noise_mode', 'seed_b', 'walk', 'space', 'mix_k', 'mix_lo', 'mix_hi', 'tx', 'ty', 'angle']) {
    $(id).addEventListener('input', (ev) => requestRender(ev.timeStamp));
  }
  $('step').addEventListener('input', (ev) => {
    if (!viz.data || !viz.data.ready) return;
    drawStep(Number($('step').value));
    viz.stats.step.push(performance.now() - ev.timeStamp);
    showTiming();
  });
  $('play').addEventListener('click', togglePlay);
  $('project').addEventListener('click', (ev) => project(ev.timeStamp));
  $('cancel').addEventListener('click', async () => {
    const job = viz.lastJob;
    if (job) await fetch('/api/cancel?' + new URLSearchParams({ id: job.id }), { method: 'POST' });
  });
  $('save-png').addEventListener('click', savePng);
  loadNetworks();
}

init();
