"""A listening-test kit ready for webMUSHRA (audiolabs/webMUSHRA, doc/experimenter.md): its YAML config,
the loudness-normalised stimuli beside it, ``kit.json`` (what Table 4's analysis needs) and a README.

Layout (paths in webMUSHRA configs are relative to its root folder, so the kit mirrors it)::

    <kit>/configs/<test_id>.yaml
    <kit>/configs/resources/<test_id>/s2i/<trial>/{reference,<variant>...,anchor}.wav
    <kit>/configs/resources/<test_id>/t2i/<prompt>/<variant>.wav
    <kit>/kit.json
    <kit>/README.md

Pages: a welcome page, the MOS pages (T2I: one ``likert_single_stimulus`` page per prompt whose
stimuli, each on its own screen, are the variants' renders of a phrase; two 1–5 scales, playability then
timbral consistency), the MUSHRA trials (S2I: hidden reference = the ground-truth note, conditions =
the variants and the anchor, in random page order), and a finish page asking for the participant's code
(written to both result files: webMUSHRA writes no session id to ``lss.csv``).

Loudness: every stimulus is normalised to ``target_lufs`` integrated loudness (ITU-R BS.1770 through
pyloudnorm); where that would clip, the stimulus is scaled down to a 0.99 peak and its loudness
recorded. Every stimulus of a MUSHRA trial has the length of its reference (webMUSHRA refuses pages
whose stimuli differ in length or rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf
import yaml

from instrumentgen.atomic import atomic_path, write_json_atomic, write_text_atomic
from instrumentgen.listening.stats import REFERENCE

PEAK = 0.99
QUESTIONS = ("playability", "timbral consistency")
SCALE = (1, 5)
LABELS = ("bad", "poor", "fair", "good", "excellent")


@dataclass(frozen=True)
class Audio:
    """A stimulus before normalisation: mono float samples ``[T]`` at ``rate`` Hz."""

    samples: np.ndarray
    rate: int

    @classmethod
    def read(cls, path: str | Path) -> Audio:
        """The sound file at ``path``, its channels averaged to mono."""
        samples, rate = sf.read(path, dtype="float32", always_2d=True)
        return cls(samples.mean(axis=1), int(rate))


def normalise(audio: Audio, target_lufs: float) -> tuple[np.ndarray, float]:
    """``audio`` at ``target_lufs`` (or its 0.99-peak level where that would clip) and the loudness it
    then has (−inf for silence, which is left as it is)."""
    x = np.asarray(audio.samples, dtype=np.float64)
    meter = pyloudnorm.Meter(audio.rate)
    block = int(math.ceil(meter.block_size * audio.rate))
    measured = meter.integrated_loudness(np.pad(x, (0, max(0, block - len(x)))))
    if not math.isfinite(measured):
        return x.astype(np.float32), float("-inf")
    gain = 10 ** ((target_lufs - measured) / 20)
    peak = float(np.max(np.abs(x))) * gain
    if peak > PEAK:
        gain *= PEAK / peak
    return (x * gain).astype(np.float32), float(measured + 20 * math.log10(gain))


def fit_length(samples: np.ndarray, n: int) -> np.ndarray:
    """``samples`` cut or zero-padded to ``n``."""
    return samples[:n] if len(samples) >= n else np.pad(samples, (0, n - len(samples)))


def _write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(tmp, samples, rate, subtype="PCM_16", format="WAV")


def _likert_scale() -> list[dict]:
    return [{"value": str(v), "label": f"{v} ({LABELS[v - 1]})"} for v in range(SCALE[0], SCALE[1] + 1)]


def _mushra_page(out: Path, folder: Path, trial: str, stimuli: dict[str, Audio], names: list[str],
                 target_lufs: float, note: dict, loudness: dict[str, float]) -> dict:
    """Write one S2I trial's stimuli (``reference`` first, then ``names``) and return its page."""
    missing = sorted({REFERENCE, *names} - set(stimuli))
    if missing:
        raise ValueError(f"MUSHRA trial {trial} lacks {', '.join(missing)}")
    rate, length = stimuli[REFERENCE].rate, len(stimuli[REFERENCE].samples)
    paths = {}
    for name in (REFERENCE, *names):
        if stimuli[name].rate != rate:
            raise ValueError(
                f"MUSHRA trial {trial}: {name} is at {stimuli[name].rate} Hz, the reference at {rate}"
            )
        samples, lufs = normalise(Audio(fit_length(stimuli[name].samples, length), rate), target_lufs)
        paths[name] = str(folder / f"{name}.wav")
        _write_wav(out / paths[name], samples, rate)
        loudness[paths[name]] = round(lufs, 2)
    where = f" (MIDI note {note['pitch']}, velocity {note['velocity']})" if note else ""
    return {
        "type": "mushra",
        "id": trial,
        "name": "Sample to instrument",
        "content": "Rate how close each sound is to the reference: the same instrument at the same pitch "
        f"and loudness, with the same quality{where}. One of the sounds is the reference itself.",
        "showWaveform": True,
        "enableLooping": False,
        "reference": paths[REFERENCE],
        "createAnchor35": False,
        "createAnchor70": False,
        "randomize": True,
        "stimuli": {name: paths[name] for name in names},
    }


def _mos_page(out: Path, folder: Path, prompt: str, stimuli: dict[str, Audio], names: list[str],
              target_lufs: float, loudness: dict[str, float]) -> dict:
    """Write one T2I prompt's stimuli (``names``) and return its page (two 1–5 scales)."""
    missing = sorted(set(names) - set(stimuli))
    if missing:
        raise ValueError(f"MOS prompt {prompt} lacks {', '.join(missing)}")
    paths = {}
    for name in names:
        samples, lufs = normalise(stimuli[name], target_lufs)
        paths[name] = str(folder / f"{name}.wav")
        _write_wav(out / paths[name], samples, stimuli[name].rate)
        loudness[paths[name]] = round(lufs, 2)
    return {
        "type": "likert_single_stimulus",
        "id": prompt,
        "name": "Text to instrument",
        "content": f"An instrument made from the prompt \"{prompt.replace('_', ' ')}\" plays a phrase. Rate "
        "it twice, from 1 (bad) to 5 (excellent): first its <b>playability</b> (would you play music with "
        "it?), then its <b>timbral consistency</b> (do all its notes sound like one instrument?).",
        "showWaveform": True,
        "mustRate": True,
        "mustPlayback": "ended",
        "randomize": True,
        "stimuli": paths,
        "response": [_likert_scale() for _ in QUESTIONS],
    }


def _config(test_id: str, mushra_pages: list[dict], mos_pages: list[dict]) -> dict:
    """The webMUSHRA config: welcome, the MOS pages and the MUSHRA pages (each in random order), finish."""
    return {
        "testname": "Generated sample-based instruments",
        "testId": test_id,
        "bufferSize": 2048,
        "stopOnErrors": True,
        "showButtonPreviousPage": False,
        "remoteService": "service/write.php",
        "pages": [
            {
                "type": "generic",
                "id": "welcome",
                "name": "Welcome",
                "content": "You will hear notes and short phrases of musical instruments made by computer "
                "models. Use headphones in a quiet room; set a comfortable volume on the first page with "
                "sound and keep it for the whole test.",
            },
            # MOS first: webMUSHRA's write.php sizes lss.csv's rating columns from the first stored
            # trial's response, which must therefore be a likert_single_stimulus one (a MUSHRA trial
            # there gives one rating column for two scales on PHP 7, a fatal error on PHP 8).
            ["random", *mos_pages],
            ["random", *mushra_pages],
            {
                "type": "finish",
                "name": "Thank you",
                "content": "Thank you for listening.",
                "showResults": False,
                "writeResults": True,
                "questionnaire": [{"type": "text", "label": "Participant code", "name": "participant"}],
            },
        ],
    }


def build_kit(
    out: Path,
    test_id: str,
    mushra: dict[str, dict[str, Audio]],
    mos: dict[str, dict[str, Audio]],
    conditions: list[str],
    anchor: str,
    target_lufs: float,
    notes: dict[str, dict] | None = None,
) -> dict:
    """Write the kit to ``out`` (see module doc) and return ``kit.json``'s content.

    ``mushra``: trial → {``reference``, each of ``conditions``, ``anchor``} → audio; ``mos``: prompt →
    {each of ``conditions``} → audio; ``notes``: what each trial plays (instrument, pitch, velocity),
    recorded in ``kit.json``."""
    if not mushra or not mos:
        raise ValueError(f"a kit needs MUSHRA trials and MOS prompts, got {len(mushra)} and {len(mos)}")
    notes = notes or {}
    resources = Path("configs") / "resources" / test_id
    loudness: dict[str, float] = {}
    mushra_pages = [
        _mushra_page(out, resources / "s2i" / trial, trial, stimuli, [*conditions, anchor], target_lufs,
                     notes.get(trial, {}), loudness)
        for trial, stimuli in mushra.items()
    ]
    mos_pages = [
        _mos_page(out, resources / "t2i" / prompt, prompt, stimuli, conditions, target_lufs, loudness)
        for prompt, stimuli in mos.items()
    ]
    config_path = out / "configs" / f"{test_id}.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config = _config(test_id, mushra_pages, mos_pages)
    write_text_atomic(config_path, yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=100))
    kit = {
        "test_id": test_id,
        "config": str(config_path.relative_to(out)),
        "target_lufs": target_lufs,
        "mushra": {"conditions": conditions, "anchor": anchor, "trials": list(mushra), "notes": notes},
        "mos": {"conditions": conditions, "questions": list(QUESTIONS), "scale": list(SCALE),
                "trials": list(mos)},
        "loudness_lufs": loudness,
    }
    write_json_atomic(out / "kit.json", kit)
    write_text_atomic(out / "README.md", readme(test_id, len(mushra), len(mos), conditions, target_lufs))
    return kit


def readme(test_id: str, n_mushra: int, n_mos: int, conditions: list[str], target_lufs: float) -> str:
    return f"""# Listening test kit `{test_id}` (paper Section 4.2, Table 4)

For [webMUSHRA](https://github.com/audiolabs/webMUSHRA) (its latest release, served by any web server
with PHP, e.g. its Docker image):

1. Copy this folder's `configs/` into the webMUSHRA folder (it adds `configs/{test_id}.yaml` and
   `configs/resources/{test_id}/`).
2. Open `http://<server>/?config={test_id}.yaml` and give each participant a code to type on the last page.
3. Ratings land in webMUSHRA's `results/{test_id}/`: `mushra.csv` (S2I) and `lss.csv` (T2I).
4. Point the pipeline at that folder (`listening.results: <path>/results/{test_id}` in the profile's
   params) and rerun it: Table 4 (`results/<profile>/listening/table4.*`) is computed from the ratings,
   after ITU-R BS.1534-3 post-screening.

Pages: {n_mos} MOS pages (T2I: a phrase played by each variant's instrument, rated 1–5 for
playability and for timbral consistency), then {n_mushra} MUSHRA trials (S2I: the hidden reference is
the test note; the conditions are {", ".join(conditions)} and `anchor`, a note of the same architecture
with random weights, as in the paper). The MOS pages come first because webMUSHRA sizes `lss.csv`'s
rating columns from the first rated page. Every stimulus is normalised to {target_lufs} LUFS
(ITU-R BS.1770); `kit.json` lists each file's loudness and the notes each trial plays.
"""
