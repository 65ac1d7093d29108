// instrumentgen companion page: a keyboard that plays a card's samples through Web Audio.
//
// A card's zones (window.COMPANION, written by instrumentgen.companion.page) are the map of its exported
// SFZ: [lokey, hikey, lovel, hivel, pitch, velocity, offset, duration]. A key at a velocity plays the
// zone's sample, the region offset..offset+duration (s) of its velocity layer's file, transposed by
// playbackRate 2^((key - pitch) / 12), at amplitude (velocity / 127)^2 (the SFZ default velocity
// curve), released over release_s after the key goes up.
//
// window.instrumentgen is the page's state, read back by the tests: selected (card id), velocity,
// octave, notesStarted, lastNote {card, key, velocity, pitch, layerVelocity, layer, offset, duration,
// playbackRate, gain, bufferDuration}.
"use strict";

(function () {
  const DATA = window.COMPANION;
  const ZONE = { lokey: 0, hikey: 1, lovel: 2, hivel: 3, pitch: 4, velocity: 5, offset: 6, duration: 7 };
  const COMPUTER_KEYS = "awsedftgyhujkolp;";
  const VELOCITY_KEYS = { 1: 25, 2: 50, 3: 75, 4: 100, 5: 127 };
  const cards = new Map(DATA.cards.map((card) => [card.id, card]));
  const state = {
    ready: false, selected: null, velocity: 100, octave: 4, notesStarted: 0, lastNote: null, errors: [],
  };
  window.instrumentgen = state;

  let context = null;
  const buffers = new Map(); // layer URL -> Promise<AudioBuffer>
  const voices = new Map(); // key -> {source, gain}
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

  async function noteOn(key) {
    const card = cards.get(state.selected);
    if (!card || voices.has(key)) return;
    const velocity = state.velocity;
    const zone = zoneFor(card, key, velocity);
    if (zone === null) return; // outside the 88 keys
    const element = keyElement(key);
    if (element) element.classList.add("down");
    const ctx = audioContext();
    const layer = card.layers[String(zone[ZONE.velocity])];
    voices.set(key, null); // pressed; the voice follows once its layer is decoded
    let buffer;
    try {
      buffer = await layerBuffer(layer);
    } catch (error) {
      voices.delete(key);
      if (element) element.classList.remove("down");
      fail(`cannot play ${layer}: ${error}`);
      return;
    }
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.playbackRate.value = 2 ** ((key - zone[ZONE.pitch]) / 12);
    const gain = ctx.createGain();
    gain.gain.value = (velocity / 127) ** 2;
    source.connect(gain).connect(ctx.destination);
    source.start(0, zone[ZONE.offset], zone[ZONE.duration]);
    source.onended = () => { if (voices.get(key)?.source === source) voices.delete(key); };
    const stillDown = voices.has(key);
    voices.set(key, { source, gain });
    state.notesStarted += 1;
    state.lastNote = {
      card: card.id, key, velocity, pitch: zone[ZONE.pitch], layerVelocity: zone[ZONE.velocity], layer,
      offset: zone[ZONE.offset], duration: zone[ZONE.duration], playbackRate: source.playbackRate.value,
      gain: gain.gain.value, bufferDuration: buffer.duration,
    };
    const shift = key - zone[ZONE.pitch];
    $("status").textContent = `key ${key} at velocity ${velocity}: sample ${zone[ZONE.pitch]} / `
      + `${zone[ZONE.velocity]}${shift ? ` transposed ${shift > 0 ? "+" : ""}${shift}` : ""}`;
    if (!stillDown) noteOff(key); // released while loading: play it, then release at once
  }

  function noteOff(key) {
    const element = keyElement(key);
    if (element) element.classList.remove("down");
    const voice = voices.get(key);
    if (voice === undefined) return;
    voices.delete(key);
    if (voice === null) return; // still loading: noteOn releases it
    const now = context.currentTime;
    voice.gain.gain.cancelScheduledValues(now);
    voice.gain.gain.setValueAtTime(voice.gain.gain.value, now);
    voice.gain.gain.linearRampToValueAtTime(0, now + DATA.release_s);
    voice.source.stop(now + DATA.release_s + 0.01);
  }

  function select(id) {
    const card = cards.get(id);
    if (!card) return fail(`unknown card ${id}`);
    state.selected = id;
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

  function computerKey(letter) {
    const index = COMPUTER_KEYS.indexOf(letter);
    return index < 0 ? null : 12 * (state.octave + 1) + index;
  }

  function setOctave(octave) {
    state.octave = Math.max(0, Math.min(7, octave));
    $("octave").textContent = state.octave;
    document.querySelectorAll("#piano .key span").forEach((span) => { span.textContent = ""; });
    [...COMPUTER_KEYS].forEach((letter) => {
      const element = keyElement(computerKey(letter));
      if (element) element.firstElementChild.textContent = letter.toUpperCase();
    });
  }

  function typing(event) {
    const target = event.target;
    return target instanceof HTMLInputElement && target.type !== "range";
  }

  document.addEventListener("keydown", (event) => {
    if (event.repeat || event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const letter = event.key.toLowerCase();
    if (letter === "z") setOctave(state.octave - 1);
    else if (letter === "x") setOctave(state.octave + 1);
    else if (letter in VELOCITY_KEYS) setVelocity(VELOCITY_KEYS[letter]);
    else if (computerKey(letter) !== null) noteOn(computerKey(letter));
    else return;
    event.preventDefault();
  });
  document.addEventListener("keyup", (event) => {
    const key = computerKey(event.key.toLowerCase());
    if (key !== null) noteOff(key);
  });

  const piano = $("piano");
  piano.addEventListener("pointerdown", (event) => {
    const element = event.target.closest(".key");
    if (!element) return;
    piano.setPointerCapture?.(event.pointerId);
    noteOn(Number(element.dataset.key));
    const release = () => { noteOff(Number(element.dataset.key)); piano.removeEventListener("pointerup", release); };
    piano.addEventListener("pointerup", release);
  });

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
