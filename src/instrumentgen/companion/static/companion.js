// instrumentgen companion page: a keyboard that plays a card's samples through Web Audio.
//
// A card's zones (window.COMPANION, written by instrumentgen.companion.page) are the map of its exported
// SFZ: [lokey, hikey, lovel, hivel, pitch, velocity, offset, duration]. A key at a velocity plays the
// zone's sample, the region offset..offset+duration (s) of its velocity layer's file, transposed by
// playbackRate 2^((key - pitch) / 12), at amplitude (velocity / 127)^2 (the SFZ default velocity
// curve), released over release_s after the key goes up.
//
// window.instrumentgen is the page's state, read back by the tests: selected (card id), velocity,
// octave, notesStarted, held (keys down), releases (notes released by a key-up), errors, lastNote {card,
// key, velocity, pitch, layerVelocity, layer, offset, duration, playbackRate, gain, bufferDuration,
// contextState}, and lastSamples() (the decoded samples the last note plays, untransposed).
"use strict";

(function () {
  const DATA = window.COMPANION;
  const ZONE = { lokey: 0, hikey: 1, lovel: 2, hivel: 3, pitch: 4, velocity: 5, offset: 6, duration: 7 };
  // A W S E D F T G Y H U J K O L P ; play C to E (physical keys of a US layout, any layout's same keys)
  const KEY_CODES = ["KeyA", "KeyW", "KeyS", "KeyE", "KeyD", "KeyF", "KeyT", "KeyG", "KeyY", "KeyH", "KeyU",
    "KeyJ", "KeyK", "KeyO", "KeyL", "KeyP", "Semicolon"];
  const KEY_LABELS = KEY_CODES.map((code) => (code === "Semicolon" ? ";" : code.slice(3)));
  const VELOCITY_CODES = { Digit1: 25, Digit2: 50, Digit3: 75, Digit4: 100, Digit5: 127 };
  const cards = new Map(DATA.cards.map((card) => [card.id, card]));
  const state = {
    ready: false, selected: null, velocity: 100, octave: 4, notesStarted: 0, lastNote: null, errors: [],
    held: 0, releases: 0,
  };
  window.instrumentgen = state;

  let context = null;
  const buffers = new Map(); // layer URL -> Promise<AudioBuffer>, the selected card's layers only
  const voices = new Map(); // key -> a press: {} while its layer loads, then {source, gain}
  const $ = (id) => document.getElementById(id);

  function audioContext() {
    if (context === null) context = new AudioContext();
    if (context.state === "suspended") context.resume();
    return context;
  }

  function layerBuffer(url) {
    if (!buffers.has(url)) {
      const loading = fetch(url)
        .then((response) => {
          if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
          return response.arrayBuffer();
        })
        .then((bytes) => audioContext().decodeAudioData(bytes));
      loading.catch(() => buffers.delete(url)); // a later press retries
      buffers.set(url, loading);
    }
    return buffers.get(url);
  }

  function zoneFor(card, key, velocity) {
    return card.zones.find((z) => z[ZONE.lokey] <= key && key <= z[ZONE.hikey]
      && z[ZONE.lovel] <= velocity && velocity <= z[ZONE.hivel]) || null;
  }

  function fail(message) {
    state.errors.push(message);
    $("status").textContent = message;
    console.error(message);
  }

  function keyElement(key) {
    return document.querySelector(`#piano .key[data-key="${key}"]`);
  }

  function showHeld() {
    state.held = voices.size;
    document.querySelectorAll("#piano .key.down").forEach((el) => el.classList.remove("down"));
    voices.forEach((_, key) => keyElement(key)?.classList.add("down"));
  }

  function release(voice) {
    const now = context.currentTime;
    voice.gain.gain.cancelScheduledValues(now);
    voice.gain.gain.setValueAtTime(voice.gain.gain.value, now);
    voice.gain.gain.linearRampToValueAtTime(0, now + DATA.release_s);
    voice.source.stop(now + DATA.release_s + 0.01);
    state.releases += 1;
  }

  async function noteOn(key) {
    const card = cards.get(state.selected);
    if (!card || voices.has(key)) return;
    const velocity = state.velocity;
    const zone = zoneFor(card, key, velocity);
    if (zone === null) return; // outside the 88 keys
    const ctx = audioContext();
    const layer = card.layers[String(zone[ZONE.velocity])];
    const press = {};
    voices.set(key, press);
    showHeld();
    let buffer;
    try {
      buffer = await layerBuffer(layer);
    } catch (error) {
      if (voices.get(key) === press) voices.delete(key);
      showHeld();
      fail(`cannot play ${layer}: ${error}`);
      return;
    }
    const current = voices.get(key);
    if (current !== undefined && current !== press) return; // pressed again while loading: that press plays
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.playbackRate.value = 2 ** ((key - zone[ZONE.pitch]) / 12);
    const gain = ctx.createGain();
    gain.gain.value = (velocity / 127) ** 2;
    source.connect(gain).connect(ctx.destination);
    source.start(0, zone[ZONE.offset], zone[ZONE.duration]);
    const voice = { source, gain };
    source.onended = () => {
      if (voices.get(key) === voice) voices.delete(key);
      showHeld();
    };
    state.notesStarted += 1;
    state.lastNote = {
      card: card.id, key, velocity, pitch: zone[ZONE.pitch], layerVelocity: zone[ZONE.velocity], layer,
      offset: zone[ZONE.offset], duration: zone[ZONE.duration], playbackRate: source.playbackRate.value,
      gain: gain.gain.value, bufferDuration: buffer.duration, contextState: ctx.state,
    };
    lastPlayed = { buffer, offset: zone[ZONE.offset], duration: zone[ZONE.duration] };
    const shift = key - zone[ZONE.pitch];
    $("status").textContent = `key ${key} at velocity ${velocity}: sample ${zone[ZONE.pitch]} / `
      + `${zone[ZONE.velocity]}${shift ? ` transposed ${shift > 0 ? "+" : ""}${shift}` : ""}`;
    if (current === press) voices.set(key, voice);
    else release(voice); // released while loading: it sounds, then fades at once
  }

  function noteOff(key) {
    const voice = voices.get(key);
    if (voice === undefined) return;
    voices.delete(key);
    showHeld();
    if (voice.source) release(voice); // a press still loading is released by its noteOn
  }

  function releaseAll() {
    [...voices.keys()].forEach(noteOff);
    pressedCodes.clear();
    pointers.clear();
  }

  // The samples of the last note started, as the browser decoded them: [region samples], rate.
  let lastPlayed = null;
  state.lastSamples = () => {
    if (lastPlayed === null) return null;
    const { buffer, offset, duration } = lastPlayed;
    const start = Math.round(offset * buffer.sampleRate);
    const data = buffer.getChannelData(0).subarray(start, start + Math.round(duration * buffer.sampleRate));
    return { samples: Array.from(data), rate: buffer.sampleRate };
  };

  function select(id) {
    const card = cards.get(id);
    if (!card) return fail(`unknown card ${id}`);
    releaseAll();
    state.selected = id;
    const keep = new Set(Object.values(card.layers));
    [...buffers.keys()].filter((url) => !keep.has(url)).forEach((url) => buffers.delete(url));
    document.querySelectorAll(".card.selected").forEach((el) => el.classList.remove("selected"));
    document.querySelectorAll(`.card[data-card="${CSS.escape(id)}"]`).forEach((el) => el.classList.add("selected"));
    const title = card.task === "t2i" ? `“${card.title}”` : card.title;
    $("selected").textContent = `${card.task.toUpperCase()} ${title}: ${card.source}`;
    const zone = zoneFor(card, 60, state.velocity);
    if (zone) layerBuffer(card.layers[String(zone[ZONE.velocity])]).catch((error) => fail(String(error)));
  }

  function setVelocity(value) {
    state.velocity = Math.max(1, Math.min(127, Math.round(value)));
    $("velocity").value = state.velocity;
    $("velocity-value").textContent = state.velocity;
  }

  function computerKey(code) {
    const index = KEY_CODES.indexOf(code);
    return index < 0 ? null : 12 * (state.octave + 1) + index;
  }

  function setOctave(octave) {
    state.octave = Math.max(0, Math.min(7, octave));
    $("octave").textContent = state.octave;
    document.querySelectorAll("#piano .key span").forEach((span) => { span.textContent = ""; });
    KEY_CODES.forEach((code, i) => {
      const element = keyElement(computerKey(code));
      if (element) element.firstElementChild.textContent = KEY_LABELS[i];
    });
  }

  function typing(event) {
    const target = event.target;
    return target instanceof HTMLInputElement && target.type !== "range";
  }

  // Computer keys by physical position (event.code: the same keys on any layout); a key-up releases
  // the note its key-down started, whatever the octave is by then.
  const pressedCodes = new Map(); // event.code -> MIDI key
  document.addEventListener("keydown", (event) => {
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const key = computerKey(event.code);
    if (event.code === "KeyZ") setOctave(state.octave - 1);
    else if (event.code === "KeyX") setOctave(state.octave + 1);
    else if (event.code in VELOCITY_CODES) setVelocity(VELOCITY_CODES[event.code]);
    else if (key !== null) {
      pressedCodes.set(event.code, key);
      noteOn(key);
    } else return;
    event.preventDefault();
  });
  document.addEventListener("keyup", (event) => {
    const key = pressedCodes.get(event.code);
    if (key === undefined) return;
    pressedCodes.delete(event.code);
    noteOff(key);
  });
  window.addEventListener("blur", releaseAll);

  const piano = $("piano");
  const pointers = new Map(); // pointerId -> MIDI key
  piano.addEventListener("pointerdown", (event) => {
    const element = event.target.closest(".key");
    if (!element) return;
    piano.setPointerCapture?.(event.pointerId);
    const key = Number(element.dataset.key);
    pointers.set(event.pointerId, key);
    noteOn(key);
  });
  const pointerUp = (event) => {
    const key = pointers.get(event.pointerId);
    if (key === undefined) return;
    pointers.delete(event.pointerId);
    noteOff(key);
  };
  ["pointerup", "pointercancel", "lostpointercapture"].forEach((type) => piano.addEventListener(type, pointerUp));

  document.querySelectorAll("button.select").forEach((button) => {
    button.addEventListener("click", () => select(button.dataset.card));
  });
  $("velocity").addEventListener("input", (event) => setVelocity(Number(event.target.value)));
  $("octave-down").addEventListener("click", () => setOctave(state.octave - 1));
  $("octave-up").addEventListener("click", () => setOctave(state.octave + 1));

  if (location.protocol === "file:") {
    $("file-warning").hidden = false;
    document.querySelectorAll("button.select").forEach((button) => { button.disabled = true; });
  }
  setVelocity(state.velocity);
  setOctave(state.octave);
  state.ready = true;
})();
