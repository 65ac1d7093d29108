"""The companion page in a real headless Chromium, served by ``python -m http.server`` on 127.0.0.1: it
loads without console errors, every player and picture resolves to a file of the page, and the keyboard
(computer keys, mouse, velocity and octave controls) starts the sample the exported SFZ would play,
read back from the page's state and checked against the audio of the layer file it plays from.

Set ``INSTRUMENTGEN_SCREENSHOTS=DIR`` to keep the screenshot the test takes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from browser import check_page_media, chromium, console_errors, serve, wait_for
from companion_fixtures import dominant_hz, hz, pipeline_files

from instrumentgen.companion.__main__ import main

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory):
    """The page built from made-up pipeline files, served, and a browser that has opened it."""
    root = tmp_path_factory.mktemp("companion_browser")
    main([*pipeline_files(root), "--out", str(root / "page")])
    with serve(root / "page") as url, chromium() as driver:
        driver.get(url)
        wait_for(driver, "window.instrumentgen && window.instrumentgen.ready")
        yield root / "page", driver


def press(driver, keys: str, hold_s: float = 0.15) -> dict:
    """Press and release computer ``keys`` one after the other; returns the last note started."""
    from selenium.webdriver.common.action_chains import ActionChains

    for key in keys:
        before = driver.execute_script("return window.instrumentgen.notesStarted;")
        ActionChains(driver).key_down(key).pause(hold_s).key_up(key).perform()
        if key.isalpha() and key not in "zx" or key == ";":
            wait_for(driver, f"window.instrumentgen.notesStarted > {before}")
    return driver.execute_script("return window.instrumentgen.lastNote;")


def select(driver, card: str) -> None:
    from selenium.webdriver.common.by import By

    button = driver.find_element(By.CSS_SELECTOR, f'button.select[data-card="{card}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", button)
    button.click()
    assert driver.execute_script("return window.instrumentgen.selected;") == card


def check_note(driver, folder: Path, key: int, pitch: int, layer: int, velocity: int) -> None:
    """The page's last note is the sample of cell ``(pitch, layer)`` for ``key`` at ``velocity``, started
    in a running audio context, transposed and scaled as the SFZ would; the samples it plays, as the
    browser decoded them, and the region of its layer file both sound at ``pitch``."""
    note = driver.execute_script("return window.instrumentgen.lastNote;")
    assert note["contextState"] == "running"
    decoded = driver.execute_script("return window.instrumentgen.lastSamples();")
    assert len(decoded["samples"]) == round(note["duration"] * decoded["rate"])
    assert dominant_hz(np.array(decoded["samples"]), decoded["rate"]) == pytest.approx(hz(pitch), rel=0.02)
    played = (note["key"], note["pitch"], note["layerVelocity"], note["velocity"])
    assert played == (key, pitch, layer, velocity)
    assert note["playbackRate"] == pytest.approx(2 ** ((key - pitch) / 12), rel=1e-6)
    assert note["gain"] == pytest.approx((velocity / 127) ** 2, rel=1e-6)
    audio, rate = sf.read(folder / note["layer"], dtype="float32")
    # the browser decoded the file (Chromium drops the last few Vorbis samples: within the gap after the
    # last note) and the region lies inside it
    assert note["offset"] + note["duration"] <= note["bufferDuration"] <= len(audio) / rate + 1e-3
    start = round(note["offset"] * rate)
    region = audio[start : start + round(note["duration"] * rate)]
    assert dominant_hz(region, rate) == pytest.approx(hz(pitch), rel=0.02)


def test_page_loads_without_console_errors_and_every_file_resolves(page):
    folder, driver = page
    assert console_errors(driver) == []
    checked = check_page_media(driver, folder)
    assert checked == 2 * 8 + 6  # a preview player and a picture per card, a phrase per generated card
    assert driver.execute_script("return document.getElementById('file-warning').hidden;")
    assert console_errors(driver) == []


def test_computer_keys_play_the_nearest_sample_of_the_nearest_layer(page):
    folder, driver = page
    select(driver, "s2i/keys_acoustic_001/baseline")  # pitches 48 55 60 67 72, layers 50 and 100
    press(driver, "d")
    check_note(driver, folder, key=64, pitch=67, layer=100, velocity=100)  # D = E4: 67 is nearer than 60
    press(driver, "j")
    check_note(driver, folder, key=71, pitch=72, layer=100, velocity=100)
    press(driver, "3a")
    check_note(driver, folder, key=60, pitch=60, layer=50, velocity=75)  # 75 is midway: the lower layer
    press(driver, "4w")
    check_note(driver, folder, key=61, pitch=60, layer=100, velocity=100)
    press(driver, "za")
    check_note(driver, folder, key=48, pitch=48, layer=100, velocity=100)  # an octave down
    press(driver, "x")
    assert driver.execute_script("return window.instrumentgen.octave;") == 4
    assert console_errors(driver) == []


def state(driver, name: str):
    return driver.execute_script(f"return window.instrumentgen.{name};")


def test_a_key_up_releases_its_note_whatever_happened_meanwhile(page):
    """The note a key started is released when that key goes up: also after an octave change while it
    was held, and when it was pressed and released (twice) before its layer had loaded."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _, driver = page
    select(driver, "t2i/bright_flute/baseline")
    releases = state(driver, "releases")
    ActionChains(driver).key_down("a").pause(0.2).perform()
    wait_for(driver, "window.instrumentgen.held === 1 && window.instrumentgen.lastNote.key === 60")
    ActionChains(driver).key_down("x").key_up("x").pause(0.05).key_up("a").perform()
    assert state(driver, "octave") == 5 and state(driver, "held") == 0  # the samples last 1 s
    assert state(driver, "releases") == releases + 1
    assert not driver.find_elements(By.CSS_SELECTOR, "#piano .key.down")
    press(driver, "z")

    select(driver, "t2i/bright_flute/magnet")  # its layers are not loaded yet
    started = state(driver, "notesStarted")
    ActionChains(driver).key_down("1").key_up("1").key_down("s").key_up("s").key_down("s").key_up("s").perform()
    wait_for(driver, f"window.instrumentgen.notesStarted > {started}")
    assert state(driver, "held") == 0 and state(driver, "errors") == []
    assert state(driver, "lastNote")["layerVelocity"] == 25
    assert console_errors(driver) == []


def test_mouse_and_velocity_slider_play_another_card(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    folder, driver = page
    select(driver, "s2i/bass_synthetic_002/ground truth".replace(" ", "_"))  # 40 52 64; layers 75 127
    slider = driver.find_element(By.ID, "velocity")
    driver.execute_script("arguments[0].value = 120; arguments[0].dispatchEvent(new Event('input'));", slider)
    for key, pitch in ((46, 40), (47, 52), (108, 64)):  # 46 is midway: the lower sample
        before = driver.execute_script("return window.instrumentgen.notesStarted;")
        element = driver.find_element(By.CSS_SELECTOR, f'#piano .key[data-key="{key}"]')
        driver.execute_script("arguments[0].scrollIntoView({inline: 'center'});", element)
        ActionChains(driver).click_and_hold(element).pause(0.1).release().perform()
        wait_for(driver, f"window.instrumentgen.notesStarted > {before}")
        check_note(driver, folder, key=key, pitch=pitch, layer=127, velocity=120)
        assert state(driver, "held") == 0
    assert driver.execute_script("return window.instrumentgen.errors;") == []
    assert console_errors(driver) == []


def test_screenshot_of_a_playing_page(page, tmp_path: Path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _, driver = page
    select(driver, "t2i/bright_flute/magnet")
    press(driver, "4")  # velocity 100
    ActionChains(driver).key_down("g").perform()
    wait_for(driver, "window.instrumentgen.lastNote.key === 67")
    key = driver.find_element(By.CSS_SELECTOR, '#piano .key[data-key="67"]')
    assert key.get_attribute("class") == "key white down"
    assert driver.find_element(By.ID, "selected").text == "T2I “a bright <b>flute</b> & friends”: magnet"
    status = driver.find_element(By.ID, "status").text
    assert status == "key 67 at velocity 100: sample 72 / 100 transposed -5"
    shot = tmp_path / "companion.png"
    assert driver.save_screenshot(str(shot))
    ActionChains(driver).key_up("g").perform()
    if os.environ.get("INSTRUMENTGEN_SCREENSHOTS"):
        keep = Path(os.environ["INSTRUMENTGEN_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, keep / "companion_test.png")
    assert console_errors(driver) == []
