// StyleGAN explorer page: reads the controls, asks /api/render for the image, shows it.
//
// Rendering policy: control changes are debounced (DEBOUNCE_MS); at most one request per page is in
// flight; changes made while one is in flight are coalesced into a single follow-up request with the
// latest controls, so stale states are never sent. The image element carries data-state
// ('rendering' | 'ready' | 'error'), data-renders (images shown so far) and data-request (the JSON request
// of the image on screen) for scripts and tests.
//
// Semantic editing: choosing a method (or, for SeFa, a layer range) asks /api/directions for its sliders;
// #edit-sliders carries data-state ('loading' | 'ready' | 'error'), data-method and data-layers of the
// sliders shown. Non-zero strengths go into the render request as {edit: {method, layers, strengths}}.
(() => {
  'use strict';

  const DEBOUNCE_MS = 60;
  const MAX_SEED = 4294967295;

  const $ = (id) => document.getElementById(id);

  function randomSeed() {
    return crypto.getRandomValues(new Uint32Array(1))[0];
  }

  function readSeed(id, what) {
    const text = $(id).value.trim();
    if (!/^\d+$/.test(text) || Number(text) > MAX_SEED) {
      throw new Error(`${what} must be a whole number 0..${MAX_SEED}`);
    }
    return Number(text);
  }

  function fileStem(req) {
    let stem = `seed${req.seed}`;
    if (req.seed2 !== undefined) stem += `-to${req.seed2}-t${req.t.toFixed(2)}`;
    if (req.mix_seed !== undefined) stem += `-mix${req.mix_seed}`;
    if (req.class !== undefined) stem += `-class${req.class}`;
    if (req.translate !== undefined && (req.translate[0] !== 0 || req.translate[1] !== 0)) {
      stem += `-tx${req.translate[0].toFixed(2)}-ty${req.translate[1].toFixed(2)}`;
    }
    if (req.rotate) stem += `-rot${req.rotate}`;
    if (req.edit !== undefined) stem += `-${req.edit.method}`;
    return stem;
  }

  function saveBlob(blob, filename) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = filename;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  class Explorer {
    constructor(info) {
      this.info = info;
      this.timer = null;
      this.inflight = false;
      this.pending = false;
      this.shown = null;        // {key, req, blob, url} of the image on screen
      this.image = $('image');
      this.editLoad = 0;        // number of the latest /api/directions request (older answers are dropped)
    }

    // --- building the page from /api/info ---

    setup() {
      const info = this.info;
      $('network-name').textContent = info.name;
      this.fillSummary();
      if (info.conditional) {
        const select = $('class');
        for (let c = 0; c < info.c_dim; c++) select.add(new Option(String(c), String(c)));
        $('class-row').hidden = false;
      }
      const cutoff = $('cutoff');
      cutoff.max = String(info.num_ws);
      cutoff.value = String(info.default_cutoff);
      const [psiLo, psiHi] = info.bounds.psi;
      $('psi').min = String(psiLo);
      $('psi').max = String(psiHi);
      $('psi').disabled = !info.can_truncate;
      const [nsLo, nsHi] = info.bounds.noise_strength;
      $('noise-strength').min = String(nsLo);
      $('noise-strength').max = String(nsHi);
      if (!info.has_noise) {
        for (const id of ['noise-mode', 'noise-strength']) $(id).disabled = true;
        $('noise-box').title = 'this network has no noise inputs';
      }
      $('transform-box').hidden = !info.has_transform;  // StyleGAN3 only: translate/rotate the input grid
      this.setupEditing();
      this.buildLayers();
      this.bindControls();
      this.updateOutputs();
      this.schedule(true);
    }

    fillSummary() {
      const info = this.info;
      const res = info.img_resolution;
      const rows = [
        ['Network', info.name],
        ['Type', info.kind],
        ['Architecture', info.architecture],
        ['Resolution', `${res}\u00d7${res}, ${info.img_channels} channel${info.img_channels === 1 ? '' : 's'}`],
        ['Parameters', info.num_params.toLocaleString('en-US')],
        ['num_ws', String(info.num_ws)],
        ['w_dim / z_dim', `${info.w_dim} / ${info.z_dim}`],
        ['Conditional', info.conditional ? `yes, ${info.c_dim} classes` : 'no'],
        ['Device', info.device],
      ];
      const body = $('summary').tBodies[0];
      body.replaceChildren();
      for (const [key, value] of rows) {
        const tr = body.insertRow();
        const th = document.createElement('th');
        th.textContent = key;
        tr.appendChild(th);
        tr.insertCell().textContent = value;
        tr.dataset.key = key;
      }
    }

    buildLayers() {
      const box = $('layers');
      this.info.ws_resolutions.forEach((res, idx) => {
        const label = document.createElement('label');
        label.title = `w${idx} acts at ${res}\u00d7${res}`;
        const box_ = document.createElement('input');
        box_.type = 'checkbox';
        box_.className = 'layer';
        box_.value = String(idx);
        box_.id = `layer-${idx}`;
        label.append(box_, ` ${idx} `);
        const small = document.createElement('small');
        small.textContent = `${res}px`;
        label.append(small);
        box.appendChild(label);
      });
    }

    bindControls() {
      const form = $('controls');
      form.addEventListener('input', () => { this.updateOutputs(); this.schedule(false); });
      form.addEventListener('change', () => { this.updateOutputs(); this.schedule(false); });
      const randomButtons = [['seed-random', 'seed'], ['seed2-random', 'seed2'], ['mix-seed-random', 'mix-seed']];
      for (const [button, field] of randomButtons) {
        $(button).addEventListener('click', () => {
          $(field).value = String(randomSeed());
          if (field === 'seed2') $('interp-on').checked = true;
          if (field === 'mix-seed') $('mix-on').checked = true;
          this.schedule(true);
        });
      }
      for (const button of document.querySelectorAll('button.range')) {
        button.addEventListener('click', () => this.selectRange(button.dataset.range));
      }
      $('transform-reset').addEventListener('click', () => {
        for (const id of ['translate-x', 'translate-y', 'rotate']) $(id).value = '0';
        this.updateOutputs();
        this.schedule(true);
      });
      $('edit-method').addEventListener('change', () => this.editMethodChanged());
      for (const id of ['edit-from', 'edit-to']) {
        $(id).addEventListener('change', () => this.editLayersChanged());
      }
      for (const button of document.querySelectorAll('button.edit-range')) {
        button.addEventListener('click', () => this.selectEditRange(button.dataset.range));
      }
      $('edit-reset').addEventListener('click', () => {
        for (const slider of document.querySelectorAll('input.edit-strength')) slider.value = '0';
        this.updateOutputs();
        this.schedule(true);
      });
      $('download-png').addEventListener('click', () => this.downloadPng());
      $('download-w').addEventListener('click', () => this.downloadW());
    }

    selectRange(name) {
      const chosen = new Set(name === 'none' ? [] : this.info.style_ranges[name]);
      for (const box of document.querySelectorAll('input.layer')) box.checked = chosen.has(Number(box.value));
      if (name !== 'none') $('mix-on').checked = true;
      this.schedule(true);
    }

    updateOutputs() {
      $('psi-value').textContent = Number($('psi').value).toFixed(2);
      $('t-value').textContent = Number($('t').value).toFixed(2);
      $('noise-strength-value').textContent = Number($('noise-strength').value).toFixed(2);
      $('translate-x-value').textContent = Number($('translate-x').value).toFixed(2);
      $('translate-y-value').textContent = Number($('translate-y').value).toFixed(2);
      $('rotate-value').textContent = String(Number($('rotate').value));
      for (const slider of document.querySelectorAll('input.edit-strength')) {
        $(`${slider.id}-value`).textContent = Number(slider.value).toFixed(2);
      }
      const cutoff = Number($('cutoff').value);
      $('cutoff-value').textContent = cutoff === this.info.num_ws ? `all (${cutoff})` : String(cutoff);
    }

    // --- requests ---

    currentRequest() {
      const req = {
        seed: readSeed('seed', 'Seed'),
        psi: Number($('psi').value),
        cutoff: Number($('cutoff').value),
        noise_mode: $('noise-mode').value,
        noise_strength: Number($('noise-strength').value),
      };
      if (this.info.conditional) req.class = Number($('class').value);
      if (this.info.has_transform) {
        req.translate = [Number($('translate-x').value), Number($('translate-y').value)];
        req.rotate = Number($('rotate').value);
      }
      if ($('interp-on').checked) {
        req.seed2 = readSeed('seed2', 'Seed 2');
        req.t = Number($('t').value);
      }
      const layers = [...document.querySelectorAll('input.layer:checked')].map((box) => Number(box.value));
      if ($('mix-on').checked && layers.length > 0) {
        req.mix_seed = readSeed('mix-seed', 'The mixing seed');
        req.mix_layers = layers;
      }
      const method = $('edit-method').value;
      const strengths = [...document.querySelectorAll('input.edit-strength')].map((s) => Number(s.value));
      if (method && strengths.some((s) => s !== 0)) {
        req.edit = {method, layers: this.editLayers(), strengths};
      }
      return req;
    }

    // --- semantic editing ---

    setupEditing() {
      const select = $('edit-method');
      for (const m of this.info.edit.methods) select.add(new Option(`${m.name} \u2013 ${m.title}`, m.name));
      const last = String(this.info.num_ws - 1);
      for (const id of ['edit-from', 'edit-to']) $(id).max = last;
      $('edit-to').value = last;
      $('edit-note').textContent = 'Pick a method: its top directions become sliders (W units, \u00b1'
        + `${this.info.edit.slider_scales} standard deviations of w along each).`;
    }

    method() {
      return this.info.edit.methods.find((m) => m.name === $('edit-method').value);
    }

    // The chosen ws indices [from..to]; throws (shown like a bad seed) when the range is not valid.
    editLayers() {
      const last = this.info.num_ws - 1;
      const from = $('edit-from').value.trim();
      const to = $('edit-to').value.trim();
      if (!/^\d+$/.test(from) || !/^\d+$/.test(to) || Number(from) > Number(to) || Number(to) > last) {
        throw new Error(`the edited layers must be w from..to with 0 <= from <= to <= ${last}`);
      }
      const out = [];
      for (let i = Number(from); i <= Number(to); i++) out.push(i);
      return out;
    }

    selectEditRange(name) {
      const layers = name === 'all' ? [...Array(this.info.num_ws).keys()] : this.info.style_ranges[name];
      if (!layers || layers.length === 0) return;
      $('edit-from').value = String(Math.min(...layers));
      $('edit-to').value = String(Math.max(...layers));
      this.editLayersChanged();
    }

    editMethodChanged() {
      const m = this.method();
      if (m && m.name === 'file') {  // a loaded file starts on the layers it was made for
        $('edit-from').value = String(Math.min(...m.default_layers));
        $('edit-to').value = String(Math.max(...m.default_layers));
      }
      this.loadDirections(true);
    }

    editLayersChanged() {
      const m = this.method();
      if (m && m.per_layers) this.loadDirections(true);  // SeFa factorizes the chosen layers' weights
      else this.schedule(true);
    }

    // Ask the server for the sliders of the chosen method; `fresh` = the directions change, strengths go to 0.
    async loadDirections(fresh) {
      const box = $('edit-sliders');
      const m = this.method();
      const number = ++this.editLoad;
      if (fresh) box.replaceChildren();
      if (!m) {
        box.dataset.state = 'idle';
        this.schedule(true);
        return;
      }
      let layers;
      try {
        layers = this.editLayers();
      } catch (err) {
        box.dataset.state = 'error';
        this.showError(err.message);
        return;
      }
      box.dataset.state = 'loading';
      $('edit-note').textContent = `computing the ${m.name} directions\u2026`;
      try {
        const query = new URLSearchParams({method: m.name, layers: `${layers[0]}-${layers[layers.length - 1]}`});
        const res = await fetch(`/api/directions?${query}`);
        const body = await res.json();
        if (number !== this.editLoad) return;  // another method or range was chosen meanwhile
        if (!res.ok) throw new Error(body.error || `${res.status} ${res.statusText}`);
        this.buildSliders(body);
        box.dataset.method = m.name;
        box.dataset.layers = JSON.stringify(body.layers);
        box.dataset.state = 'ready';
      } catch (err) {
        if (number !== this.editLoad) return;
        box.dataset.state = 'error';
        this.showError(`cannot load the ${m.name} directions: ${err.message}`);
        return;
      }
      this.updateOutputs();
      this.schedule(true);
    }

    buildSliders(summary) {
      const box = $('edit-sliders');
      box.replaceChildren();
      const percent = summary.value_name === 'explained variance';
      for (const c of summary.components) {
        const label = document.createElement('label');
        const name = document.createElement('span');
        let value = '';
        if (c.value !== null) value = percent ? ` (${(100 * c.value).toFixed(1)}%)` : ` (${c.value.toPrecision(3)})`;
        name.textContent = `${c.label}${value}`;
        name.title = `${summary.value_name}${value}; w varies by ${c.scale.toPrecision(3)} (one standard deviation)`;
        const slider = document.createElement('input');
        slider.type = 'range';
        slider.className = 'edit-strength';
        slider.id = `edit-${c.index}`;
        const span = this.info.edit.slider_scales * c.scale;
        slider.min = String(-span);
        slider.max = String(span);
        slider.step = 'any';
        slider.value = '0';
        const output = document.createElement('output');
        output.id = `edit-${c.index}-value`;
        output.textContent = '0.00';
        label.append(name, slider, output);
        box.appendChild(label);
      }
      $('edit-note').textContent = `${summary.components.length} ${summary.method} directions on w${summary.layers[0]}`
        + `-w${summary.layers[summary.layers.length - 1]}; strength in W units (labels: ${summary.value_name}).`;
    }

    schedule(now) {
      clearTimeout(this.timer);
      this.image.dataset.state = 'rendering';
      this.timer = setTimeout(() => { this.timer = null; this.kick(); }, now ? 0 : DEBOUNCE_MS);
    }

    // 'ready' once nothing is waiting: no debounce timer, no request in flight, none pending.
    settledState() {
      return this.timer === null && !this.inflight && !this.pending ? 'ready' : 'rendering';
    }

    kick() {
      if (this.inflight) {
        this.pending = true;  // sent with the latest controls once the current render is back
        return;
      }
      this.send();
    }

    async send() {
      this.pending = false;
      let req;
      try {
        req = this.currentRequest();
      } catch (err) {
        this.showError(err.message);
        return;
      }
      const key = JSON.stringify(req);
      if (this.shown && this.shown.key === key && req.noise_mode !== 'random') {
        this.image.dataset.state = this.settledState();
        $('error').hidden = true;
        return;
      }
      this.inflight = true;
      this.image.dataset.state = 'rendering';
      try {
        const res = await fetch('/api/render', {
          method: 'POST', headers: {'Content-Type': 'application/json'}, body: key,
        });
        if (!res.ok) {
          const body = await res.json().catch(() => ({error: `${res.status} ${res.statusText}`}));
          this.showError(body.error);
        } else {
          this.show(key, req, await res.blob(), res.headers);
        }
      } catch (err) {
        this.showError(`the server did not answer (${err.message})`);
      } finally {
        this.inflight = false;
        if (this.pending) this.send();
        else if (this.image.dataset.state === 'rendering') this.image.dataset.state = this.settledState();
      }
    }

    show(key, req, blob, headers) {
      const url = URL.createObjectURL(blob);
      const old = this.shown;
      this.shown = {key, req, blob, url};
      this.image.src = url;
      this.image.dataset.request = key;
      if (old) setTimeout(() => URL.revokeObjectURL(old.url), 1000);
      const ms = Number(headers.get('X-Render-Ms'));
      const cached = headers.get('X-Cache') === 'hit';
      $('status').textContent = cached ? `${fileStem(req)} \u00b7 from the cache`
        : `${fileStem(req)} \u00b7 rendered in ${Math.round(ms)} ms`;
      $('error').hidden = true;
      $('download-png').disabled = false;
      $('download-w').disabled = false;
      this.image.dataset.renders = String(Number(this.image.dataset.renders) + 1);
    }

    showError(message) {
      const box = $('error');
      box.textContent = message;
      box.hidden = false;
      this.image.dataset.state = 'error';
    }

    // --- downloads (of the image on screen, not of controls changed since) ---

    downloadPng() {
      if (this.shown) saveBlob(this.shown.blob, `${fileStem(this.shown.req)}.png`);
    }

    async downloadW() {
      if (!this.shown) return;
      const res = await fetch('/api/w', {
        method: 'POST', headers: {'Content-Type': 'application/json'}, body: this.shown.key,
      });
      if (!res.ok) {
        const body = await res.json().catch(() => ({error: `${res.status} ${res.statusText}`}));
        this.showError(body.error);
        return;
      }
      saveBlob(await res.blob(), `${fileStem(this.shown.req)}.npz`);
    }
  }

  async function start() {
    try {
      const res = await fetch('/api/info');
      const info = await res.json();
      if (!res.ok) throw new Error(info.error || `${res.status} ${res.statusText}`);
      new Explorer(info).setup();
    } catch (err) {
      $('status').textContent = '';
      $('error').textContent = `cannot load the network summary: ${err.message}`;
      $('error').hidden = false;
    }
  }

  start();
})();
