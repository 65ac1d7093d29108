"""Write the companion page: static files that any web server (``python -m http.server``) can serve.

Layout of ``out``::

    index.html                         every group (S2I test instruments, then T2I prompts) and its cards
    companion.js, companion.css        the keyboard and the page style (copied from the package)
    data.js                            the cards as ``window.COMPANION`` (zones, layer files, regions)
    audio/<task>/<group>/<source>/     v<velocity>.ogg per layer, preview.ogg, phrase.ogg (generated)
    img/<task>/<group>/<source>.png    the preview notes' spectrograms
    cards.csv                          one row per card: what it holds and where

Each card shows a *preview*: the same three cells for every card of a group (low, middle and high
pitch of the cells they all have, at the velocity layer nearest :data:`PREVIEW_VELOCITY`), as one audio
player and one spectrogram, then the phrase its export rendered (generated instruments); players load
nothing until played (a paper-profile page has hundreds). Its keyboard
map is :func:`~instrumentgen.export.zones.plan_zones` of its cells, the map of its SFZ and SF2: a key
plays the nearest sample of the nearest velocity layer, transposed from the sample's pitch, with the
SFZ's default velocity curve (amplitude ``(velocity / 127)²``) and its release.
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

from instrumentgen.atomic import atomic_dir
from instrumentgen.companion.audio import PREVIEW_GAP_S, join, write_layers, write_ogg
from instrumentgen.companion.cards import TASKS, Card, Group
from instrumentgen.companion.spectrogram import write_spectrogram
from instrumentgen.export.sfz import RELEASE_S
from instrumentgen.export.zones import KEY_RANGE, plan_zones
from instrumentgen.listening.kit import Audio
from instrumentgen.progress import progress_bar

PREVIEW_VELOCITY = 100
PREVIEW_QUANTILES = (1 / 6, 1 / 2, 5 / 6)
STATIC = Path(__file__).parent / "static"
STATIC_FILES = ("companion.js", "companion.css")
NOTE_NAMES = ("C", "C♯", "D", "D♯", "E", "F", "F♯", "G", "G♯", "A", "A♯", "B")


def note_name(key: int) -> str:
    """MIDI key → scientific pitch name (60 → C4)."""
    return f"{NOTE_NAMES[key % 12]}{key // 12 - 1}"


def preview_cells(cards: Sequence[Card], velocity: int = PREVIEW_VELOCITY) -> list[tuple[int, int]]:
    """The cells every card of a group has: up to three pitches (at :data:`PREVIEW_QUANTILES` of the
    pitches) of the velocity layer nearest ``velocity`` (a tie goes to the lower)."""
    common = set.intersection(*(c.cells for c in cards))
    if not common:
        sources = ", ".join(c.source for c in cards)
        raise ValueError(f"{cards[0].task} {cards[0].group}: no cell is common to {sources}")
    layer = min({v for _, v in common}, key=lambda v: (abs(v - velocity), v))
    pitches = sorted(p for p, v in common if v == layer)
    picks = sorted({pitches[round(q * (len(pitches) - 1))] for q in PREVIEW_QUANTILES})
    return [(p, layer) for p in picks]


def write_card(card: Card, preview: list[tuple[int, int]], root: Path) -> dict:
    """Write a card's audio and picture under ``root``; returns its entry of ``data.js`` (paths
    relative to ``root``). An unreadable sample or an unmappable cell is a ValueError naming the card."""
    try:
        return _write_card(card, preview, root)
    except (ValueError, RuntimeError) as err:  # soundfile's errors are RuntimeErrors
        raise ValueError(f"{card.task} {card.group}, {card.source}: {err}") from err


def _write_card(card: Card, preview: list[tuple[int, int]], root: Path) -> dict:
    audio_dir = Path("audio") / card.slug
    notes = {(n.pitch, n.velocity): n.read() for n in card.notes}
    layers, regions = write_layers(notes, root / audio_dir)
    where = {(r.pitch, r.velocity): r for r in regions}
    zones = [[z.lokey, z.hikey, z.lovel, z.hivel, z.pitch, z.velocity, where[z.cell].offset,
              where[z.cell].duration] for z in plan_zones(notes)]
    sounds = [notes[c] for c in preview]
    joined, _ = join(sounds, PREVIEW_GAP_S)
    write_ogg(root / audio_dir / "preview.ogg", joined.samples, joined.rate)
    image = Path("img") / f"{card.slug}.png"
    width, height = write_spectrogram(root / image, sounds)
    phrase = None
    if card.phrase is not None:
        rendered = Audio.read(card.phrase)
        phrase = audio_dir / "phrase.ogg"
        write_ogg(root / phrase, rendered.samples, rendered.rate)
    return {
        "id": card.slug, "task": card.task, "group": card.group, "source": card.source,
        "layers": {str(v): (audio_dir / name).as_posix() for v, name in layers.items()},
        "zones": zones, "preview": (audio_dir / "preview.ogg").as_posix(),
        "phrase": phrase.as_posix() if phrase else None, "image": image.as_posix(),
        "image_size": [width, height], "sample_rate": joined.rate, "n_samples": len(notes),
    }


def _card_html(entry: dict, preview: list[tuple[int, int]]) -> str:
    esc = html.escape
    cells = ", ".join(note_name(p) for p, _ in preview)
    phrase = (f'<p class="label">Phrase (its SF2 through FluidSynth)</p>'
              f'<audio controls preload="none" src="{esc(entry["phrase"])}"></audio>'
              if entry["phrase"] else '<p class="label">No phrase: the test notes themselves</p>')
    width, height = entry["image_size"]
    return (
        f'<figure class="card" data-card="{esc(entry["id"])}">'
        f'<figcaption>{esc(entry["source"])} <span class="count">{entry["n_samples"]} samples</span>'
        "</figcaption>"
        f'<img src="{esc(entry["image"])}" width="{width}" height="{height}" loading="lazy" '
        f'alt="spectrograms of {esc(entry["source"])} at {cells}, velocity {preview[0][1]}">'
        f'<p class="label">{cells} at velocity {preview[0][1]}</p>'
        f'<audio controls preload="none" src="{esc(entry["preview"])}"></audio>{phrase}'
        f'<button type="button" class="select" data-card="{esc(entry["id"])}">Play on the keyboard</button>'
        "</figure>"
    )


def _keyboard_html() -> str:
    keys = "".join(
        f'<div class="key {"black" if k % 12 in (1, 3, 6, 8, 10) else "white"}" data-key="{k}" '
        f'title="{note_name(k)}"><span></span></div>'
        for k in range(KEY_RANGE[0], KEY_RANGE[1] + 1)
    )
    return (
        '<section id="keyboard" aria-label="keyboard"><div class="controls">'
        '<span id="selected">Choose an instrument: “Play on the keyboard”</span>'
        '<label>Velocity <input id="velocity" type="range" min="1" max="127" value="100">'
        '<output id="velocity-value">100</output></label>'
        '<span>Octave <button type="button" id="octave-down">−</button> <output id="octave">4</output> '
        '<button type="button" id="octave-up">+</button></span>'
        '<span id="status" role="status"></span></div>'
        f'<div id="piano">{keys}</div>'
        '<p class="help">Mouse, or the computer keys A W S E D F T G Y H U J K O L P ; (C to E), '
        "Z / X octave down / up, 1–5 velocity 25 / 50 / 75 / 100 / 127. A key plays the nearest sample of "
        "the nearest velocity layer, transposed, as the exported SFZ does.</p></section>"
    )


def page_html(title: str, groups: Sequence[Group], entries: dict[str, dict],
              previews: dict[tuple[str, str], list[tuple[int, int]]]) -> str:
    """The whole ``index.html``."""
    esc = html.escape
    sections = []
    for task, heading in TASKS.items():
        rows = [g for g in groups if g.task == task]
        if not rows:
            continue
        body = []
        for g in rows:
            shown = f"“{g.title}”" if task == "t2i" else g.title
            cards = "".join(_card_html(entries[c.slug], previews[(g.task, g.group)]) for c in g.cards)
            body.append(f'<section class="group" id="{esc(task)}-{esc(g.group)}"><h3>{esc(shown)}</h3>'
                        f'<div class="cards">{cards}</div></section>')
        sections.append(f'<section class="task" id="{task}"><h2>{esc(heading)}</h2>{"".join(body)}</section>')
    shown_tasks = [t for t in TASKS if any(g.task == t for g in groups)]
    nav = " · ".join(f'<a href="#{t}">{esc(TASKS[t])}</a>' for t in shown_tasks)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{esc(title)}</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="companion.css"></head><body>'
        f"<header><h1>{esc(title)}</h1><p>Every generated instrument with its spectrogram, audio and a "
        "keyboard to play it; S2I shows the test instrument's own notes (ground truth) first.</p>"
        f"<nav>{nav}</nav>"
        '<p id="file-warning" hidden>The keyboard needs the page served over HTTP: '
        "<code>python -m http.server --directory THIS_FOLDER</code>, then open "
        "<code>http://127.0.0.1:8000/</code>. The players and pictures work as they are.</p></header>"
        f"<main>{''.join(sections)}</main>{_keyboard_html()}"
        '<script src="data.js"></script><script src="companion.js"></script></body></html>\n'
    )


def write_page(out: Path, title: str, groups: Sequence[Group], workers: int = 1) -> pd.DataFrame:
    """Write the page into ``out`` (replaced as a whole, atomically); returns the rows of cards.csv.
    ``workers`` cards are written at once (threads: decoding, FFTs and Vorbis encoding release the GIL)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    previews = {(g.task, g.group): preview_cells(g.cards) for g in groups}
    cards = [(g, c) for g in groups for c in g.cards]
    with atomic_dir(out) as tmp, ThreadPoolExecutor(workers) as pool:
        written = pool.map(lambda gc: write_card(gc[1], previews[(gc[0].task, gc[0].group)], tmp), cards)
        entries = {}
        for (group, card), entry in progress_bar(zip(cards, written, strict=True), total=len(cards),
                                                 desc="companion", unit="card"):
            entries[card.slug] = {**entry, "title": group.title}
        data = {"title": title, "release_s": RELEASE_S, "key_range": list(KEY_RANGE),
                "cards": list(entries.values())}
        (tmp / "data.js").write_text("window.COMPANION = " + json.dumps(data, separators=(",", ":")) + ";\n")
        (tmp / "index.html").write_text(page_html(title, groups, entries, previews), encoding="utf-8")
        for name in STATIC_FILES:
            shutil.copyfile(STATIC / name, tmp / name)
        table = pd.DataFrame([
            {"task": e["task"], "group": e["group"], "source": e["source"], "samples": e["n_samples"],
             "layers": len(e["layers"]), "preview": e["preview"], "phrase": e["phrase"] or "",
             "image": e["image"]} for e in entries.values()
        ])
        table.to_csv(tmp / "cards.csv", index=False)
    return table
