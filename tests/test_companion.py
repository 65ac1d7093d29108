"""The companion page's files: which cards it shows, the keyboard map and the layer files behind it,
the preview, the escaping of prompt texts, and the errors on inconsistent pipeline files."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from companion_fixtures import (
    DECAY,
    PROMPTS,
    S2I_CELLS,
    T2I_CELLS,
    VARIANTS,
    dominant_hz,
    hz,
    pipeline_files,
    tone,
)

from instrumentgen.atomic import current_umask
from instrumentgen.companion.__main__ import main
from instrumentgen.companion.page import preview_cells


def read_data(page: Path) -> dict:
    text = (page / "data.js").read_text()
    prefix = "window.COMPANION = "
    assert text.startswith(prefix) and text.rstrip().endswith(";")
    return json.loads(text[len(prefix):].rstrip().rstrip(";"))


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("companion")
    main([*pipeline_files(root), "--out", str(root / "page")])
    return root / "page", read_data(root / "page")


def zone_at(card: dict, key: int, velocity: int) -> tuple[int, int]:
    hits = [z for z in card["zones"] if z[0] <= key <= z[1] and z[2] <= velocity <= z[3]]
    assert len(hits) == 1, f"key {key} at velocity {velocity} is in {len(hits)} zones"
    return hits[0][4], hits[0][5]


def test_every_group_has_its_cards_ground_truth_first(page):
    folder, data = page
    cards = {(c["task"], c["group"]): [] for c in data["cards"]}
    for c in data["cards"]:
        cards[(c["task"], c["group"])].append(c["source"])
    expected = {("s2i", i): ["ground truth", *VARIANTS] for i in S2I_CELLS}
    expected |= {("t2i", p): list(VARIANTS) for p in T2I_CELLS}
    assert cards == expected  # the store's other instrument and the unused prompt are not shown
    table = pd.read_csv(folder / "cards.csv")
    assert len(table) == len(data["cards"]) and set(table["task"]) == {"s2i", "t2i"}
    for c in data["cards"]:
        cells = S2I_CELLS[c["group"]] if c["task"] == "s2i" else T2I_CELLS[c["group"]]
        assert c["n_samples"] == len(cells) and {(z[4], z[5]) for z in c["zones"]} == set(cells)
        assert (c["phrase"] is None) == (c["source"] == "ground truth")


def test_keyboard_map_is_the_sfz_map_nearest_layer_then_nearest_pitch(page):
    _, data = page
    card = next(c for c in data["cards"] if c["id"] == "s2i/keys_acoustic_001/baseline")
    # pitches 48 55 60 67 72, layers 50 and 100; ties go to the lower sample, as in the SFZ
    assert zone_at(card, 21, 1) == (48, 50)
    assert zone_at(card, 62, 100) == (60, 100)
    assert zone_at(card, 63, 100) == (60, 100) and zone_at(card, 64, 100) == (67, 100)
    assert zone_at(card, 108, 127) == (72, 100)
    assert zone_at(card, 60, 75) == (60, 50) and zone_at(card, 60, 76) == (60, 100)
    keys = sorted((z[2], z[0]) for z in card["zones"])
    assert keys[0] == (1, 21) and max(z[1] for z in card["zones"]) == 108


def test_each_region_of_a_layer_file_holds_its_own_sample(page):
    folder, data = page
    for card in data["cards"]:
        decay = DECAY[card["source"]]
        layers = {v: sf.read(folder / path, dtype="float32") for v, path in card["layers"].items()}
        for _, _, _, _, pitch, velocity, offset, duration in card["zones"]:
            audio, rate = layers[str(velocity)]
            start = round(offset * rate)
            region = audio[start : start + round(duration * rate)]
            original = tone(pitch, velocity, decay)
            assert len(region) == len(original)
            assert dominant_hz(region, rate) == pytest.approx(hz(pitch), rel=0.02)
            assert np.corrcoef(region, original)[0, 1] > 0.98, (card["id"], pitch, velocity)


def test_preview_is_the_same_cells_for_every_card_of_a_group(page):
    folder, data = page
    html = (folder / "index.html").read_text()
    assert html.count('class="card"') == len(data["cards"])
    for c in data["cards"]:
        assert f'data-card="{c["id"]}"' in html and (folder / c["image"]).is_file()
        width, height = c["image_size"]
        assert height == 96 and width > 3 * 10
    card_label = r'<figure class="card" data-card="([^"]+)">.*?<p class="label">([^<]+)</p>'
    labels = dict(re.findall(card_label, html))
    # keys_acoustic: layer 100 (nearest to 100), the pitches at 1/6, 1/2, 5/6 of 48 55 60 67 72;
    # bass: layers 75 and 127, 75 is nearer to 100 (by 25 against 27); flute: layer 100
    expected = {"keys_acoustic_001": "G3, C4, G4 at velocity 100",
                "bass_synthetic_002": "E2, E3, E4 at velocity 75",
                "bright_flute": "C3, C4, C5 at velocity 100"}
    assert labels == {c["id"]: expected[c["group"]] for c in data["cards"]}
    for c in data["cards"]:  # three notes of 1 s, each followed by 0.25 s of silence
        assert sf.info(folder / c["preview"]).duration == pytest.approx(3 * 1.25, abs=0.01)


def test_preview_cells_pick_the_nearest_layer_and_spread_pitches():
    class Card:
        def __init__(self, cells):
            self.cells, self.task, self.group, self.source = set(cells), "t2i", "g", "v"

    cells = [(p, v) for p in range(40, 80, 2) for v in (25, 127)]
    picked = preview_cells([Card(cells), Card(cells)])
    assert [v for _, v in picked] == [127] * 3 and [p for p, _ in picked] == [46, 60, 72]
    with pytest.raises(ValueError, match="no cell is common"):
        preview_cells([Card([(40, 25)]), Card([(41, 25)])])


def test_prompt_text_is_escaped_and_the_page_is_readable_by_a_web_server(page):
    folder, _ = page
    html = (folder / "index.html").read_text()
    assert PROMPTS["bright_flute"] not in html
    assert "“a bright &lt;b&gt;flute&lt;/b&gt; &amp; friends”" in html
    umask = current_umask()
    for path in [folder, *folder.rglob("*")]:
        full = 0o777 if path.is_dir() else 0o666
        assert stat.S_IMODE(path.stat().st_mode) == full & ~umask, f"{path} is private"


def run_main(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


def test_inconsistent_pipeline_files_are_named(tmp_path: Path, capsys):
    argv = pipeline_files(tmp_path)
    out = ["--out", str(tmp_path / "page")]
    s2i = argv.index("--s2i")
    swapped = argv[: s2i + 1] + [argv[s2i + 2], argv[s2i + 1]] + argv[s2i + 3 :]
    assert "must name the same variants in the same order" in run_main(swapped + out, capsys)

    manifest = Path(argv[s2i + 2].split("=", 1)[1])  # magnet's S2I manifest loses an instrument
    frame = pd.read_parquet(manifest)
    frame[frame["instrument"] != "bass_synthetic_002"].to_parquet(manifest)
    err = run_main(argv + out, capsys)
    assert "variant magnet generated other instruments than baseline" in err and "bass_synthetic_002" in err
    frame.to_parquet(manifest)

    prompts = Path(argv[argv.index("--prompts") + 1])
    prompts.write_text("version: 1\nprompts:\n  - {id: other, text: other, source: ours}\n")
    assert "T2I instrument 'bright_flute' is not a prompt id" in run_main(argv + out, capsys)
    assert not (tmp_path / "page").exists()


def test_a_generated_cell_missing_from_the_test_split_is_named(tmp_path: Path, capsys):
    argv = pipeline_files(tmp_path)
    store = Path(argv[argv.index("--test-store") + 1]).with_suffix(".parquet")
    index = pd.read_parquet(store)
    index.loc[index["note_str"] == "keys_acoustic_001-055-050", "pitch"] = 56
    index.to_parquet(store)
    err = run_main([*argv, "--out", str(tmp_path / "page")], capsys)
    assert "keys_acoustic_001: the test split has no note at pitch 55, velocity 50" in err


def test_an_unreadable_sample_is_named_with_its_card(tmp_path: Path, capsys):
    argv = pipeline_files(tmp_path)
    wav = tmp_path / "generated/magnet/t2i/audio/bright_flute/bright_flute-060-100.wav"
    wav.write_bytes(b"RIFF....not a wav")
    err = run_main([*argv, "--out", str(tmp_path / "page"), "--workers", "2"], capsys)
    assert "t2i bright_flute, magnet:" in err and "bright_flute-060-100.wav" in err
