"""``instrumentgen make``: a playable instrument from a text prompt or a reference sample.

    instrumentgen make --prompt "warm cello" --out my-cello
    instrumentgen make --audio ref.wav --out my-instrument --variant random \\
        --pitches 36-84 --velocities 50,100

Uses a model trained by the pipeline (``--profile``: ``data/<profile>/lm/<variant>.pt`` with that
profile's codec and CLAP) or files given explicitly (``--checkpoint``, ``--codec``, ``--clap``). The
output folder gets one WAV per (pitch, velocity) cell, an SFZ and an SF2 that cover the whole keyboard,
and a short MIDI demo rendered with FluidSynth.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from instrumentgen import artifacts
from instrumentgen.clap.loading import load_embedder
from instrumentgen.config import REPO_ROOT, ParamsError, load_profile
from instrumentgen.export.instrument import export_instrument
from instrumentgen.generate.protocols import check_grid, instrument_plan
from instrumentgen.generate.session import GenerationSession, SessionError
from instrumentgen.generate.settings import decoder_from_dict
from instrumentgen.variants import VARIANTS

log = logging.getLogger(__name__)
MIN_REFERENCE_S = 0.1  # shorter references carry too little of a timbre to embed
MIN_REFERENCE_PEAK = 1e-4  # -80 dBFS: a quieter reference carries too little of a timbre to embed


class MakeError(ValueError):
    """A request that cannot be served; the message says what to change."""


def parse_range(text: str, what: str) -> list[int]:
    """``"36-84"``, ``"36-84:2"`` (every 2nd), ``"48,60,72"`` or a mix → sorted ints."""
    values: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                span, _, step = part.partition(":")
                lo, hi = (int(x) for x in span.split("-"))
                values.update(range(lo, hi + 1, int(step) if step else 1))
            elif part:
                values.add(int(part))
        except ValueError:
            raise MakeError(f"--{what} {text!r}: expected numbers like 36-84, 36-84:2 or 48,60,72") from None
    if not values:
        raise MakeError(f"--{what} {text!r} names no value")
    return sorted(values)


def read_reference(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 ``[T]`` and rate of a reference sample; errors for unreadable, too short or silent."""
    if not path.is_file():
        raise MakeError(f"reference audio {path} does not exist")
    try:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as err:
        raise MakeError(f"reference audio {path} cannot be read ({err}); use WAV, FLAC or OGG") from None
    audio = audio.mean(axis=1)
    if len(audio) < MIN_REFERENCE_S * sr:
        raise MakeError(
            f"reference audio {path} is {len(audio) / sr:.3f} s long; at least {MIN_REFERENCE_S} s are needed"
        )
    if not np.isfinite(audio).all():
        raise MakeError(f"reference audio {path} contains NaN or infinite samples")
    if np.abs(audio).max() < MIN_REFERENCE_PEAK:
        raise MakeError(f"reference audio {path} is silent (peak below -80 dBFS)")
    return audio, int(sr)


def check_output(out: Path, overwrite: bool) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise MakeError(
                f"output folder {out} exists and is not empty; choose another --out or pass --overwrite"
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="instrumentgen make",
        description="Make a playable sample-based instrument (WAVs + SFZ + SF2) from a text prompt or a "
        "reference sound, with a model the pipeline trained.",
        epilog="Examples:\n  instrumentgen make --prompt 'warm cello' --out cello\n"
        "  instrumentgen make --audio pluck.wav --out pluck --pitches 36-84:2 --velocities 50,100\n"
        "Load OUT/<name>.sfz in an SFZ player (sfizz, Sforzando) or OUT/<name>.sf2 in any SoundFont "
        "player (FluidSynth, a DAW's SoundFont plug-in); OUT/demo.wav is a short preview.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--prompt", help="describe the sound, e.g. 'warm cello' (text to instrument)")
    what.add_argument("--audio", type=Path, help="a reference sound, WAV/FLAC/OGG (sample to instrument)")
    ap.add_argument("--out", type=Path, required=True, help="folder to create for the instrument")
    ap.add_argument("--name", help="instrument name (default: the output folder's name)")
    ap.add_argument("--overwrite", action="store_true", help="replace the output folder if it exists")
    model = ap.add_argument_group("model")
    model.add_argument(
        "--profile",
        default="tiny",
        help="pipeline profile whose trained models to use (default: tiny, the offline demo; "
        "paper: the full-size models)",
    )
    model.add_argument(
        "--variant",
        default="baseline",
        choices=list(VARIANTS),
        help="model variant; magnet decodes in 50 parallel steps instead of one per frame",
    )
    model.add_argument("--checkpoint", type=Path, help="a trained LM file instead of the profile's")
    model.add_argument("--codec", type=Path, help="codec file instead of the profile's")
    model.add_argument("--clap", type=Path, help="CLAP model file instead of the profile's")
    model.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    notes = ap.add_argument_group("notes")
    notes.add_argument(
        "--pitches", default="21-108", help="MIDI keys to generate, e.g. 21-108, 36-84:2, 48,60"
    )
    notes.add_argument(
        "--velocities", default="25,50,75,100,127", help="velocity layers (of 25,50,75,100,127)"
    )
    notes.add_argument("--seconds", type=float, help="note length (default: the profile's training notes)")
    sampling = ap.add_argument_group("sampling")
    sampling.add_argument("--seed", type=int, default=0, help="same seed, same instrument")
    sampling.add_argument(
        "--cfg", type=float, help="guidance strength: higher follows the prompt more closely"
    )
    sampling.add_argument("--temperature", type=float, help="lower is more conservative, higher more varied")
    sampling.add_argument("--top-k", type=int, help="sample among the k most likely codes (0: all)")
    return ap.parse_args(argv)


def resolve(args: argparse.Namespace) -> tuple[dict, Path, Path, Path]:
    """Profile parameters and the LM, codec and CLAP files to use (each checked to exist)."""
    try:
        params = load_profile(args.profile)
    except ParamsError as err:
        raise MakeError(str(err)) from None
    files = {
        "checkpoint": args.checkpoint or REPO_ROOT / artifacts.lm_file(params, args.variant),
        "codec": args.codec or REPO_ROOT / artifacts.codec_file(params),
        "clap": args.clap or REPO_ROOT / artifacts.clap_file(params),
    }
    for flag, path in files.items():
        if not Path(path).is_file():
            hint = (
                f"train it with `snakemake --profile workflow/profiles/{args.profile}` (`make demo` for tiny)"
                if getattr(args, flag) is None
                else "check the path"
            )
            raise MakeError(f"no {flag} file at {path}: {hint}, or pass --{flag}")
    return params, Path(files["checkpoint"]), Path(files["codec"]), Path(files["clap"])


def decoding(params: dict, args: argparse.Namespace):
    sampling = dict(params["generate"]["sampling"])
    magnet = dict(params["generate"]["magnet"])
    if args.cfg is not None:
        sampling["cfg_coef"] = args.cfg
        magnet["cfg_max"] = max(args.cfg, magnet["cfg_min"])
    if args.temperature is not None:
        sampling["temperature"] = args.temperature
    if args.top_k is not None:
        sampling["top_k"] = args.top_k
    try:
        return decoder_from_dict({"sampling": sampling, "magnet": magnet})
    except ValueError as err:
        raise MakeError(str(err)) from None


def embed(clap_path: Path, args: argparse.Namespace) -> np.ndarray:
    """The CLAP embedding ``[1, D]`` of the prompt or the reference sound."""
    if args.prompt is not None and not args.prompt.strip():
        raise MakeError("--prompt is empty: describe the sound, e.g. --prompt 'warm cello'")
    reference = read_reference(args.audio) if args.audio is not None else None
    model = load_embedder(clap_path, device=args.device)
    if reference is not None:
        return np.asarray(model.embed_audio(reference[0][None], reference[1]), dtype=np.float32)
    vocabulary = getattr(model, "vocabulary", None)
    if vocabulary is not None:
        from instrumentgen.clap.text import FUNCTION_WORDS, content_words

        if not content_words(args.prompt, vocabulary):
            raise MakeError(
                f"the {args.profile} profile's small CLAP knows none of the descriptive words of "
                f"{args.prompt!r} (words such as 'a', 'with' or 'note' describe no sound); it knows: "
                f"{', '.join(sorted(set(vocabulary) - FUNCTION_WORDS))}"
            )
    return np.asarray(model.embed_text([args.prompt.strip()]), dtype=np.float32)


def make(args: argparse.Namespace) -> dict:
    """Generate and export one instrument; returns the export summary (paths, counts)."""
    if args.seconds is not None and args.seconds <= 0:
        raise MakeError(f"--seconds must be positive, got {args.seconds}")
    try:
        pitches, velocities = check_grid(
            parse_range(args.pitches, "pitches"), parse_range(args.velocities, "velocities")
        )
    except ValueError as err:
        raise MakeError(str(err)) from None
    check_output(args.out, args.overwrite)
    name = args.name or args.out.resolve().name
    params, checkpoint, codec_path, clap_path = resolve(args)
    decoder = decoding(params, args)
    clap = embed(clap_path, args)
    try:
        session = GenerationSession.open(
            checkpoint, codec_path, decoder, args.seconds or params["data"]["note_seconds"], args.device
        )
        session.check_clap(clap, f"CLAP model {clap_path}")
    except SessionError as err:
        raise MakeError(str(err)) from None
    source = "audio" if args.audio is not None else "text"
    # a fixed plan name: the sampler seed depends on (seed, plan name), not on the output folder's name
    plan = instrument_plan("instrument", pitches, velocities, source)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="instrumentgen-") as tmp:
        manifest = session.generate(plan, clap, Path(tmp), args.seed, progress=True)
        if args.out.exists() and args.overwrite:
            shutil.rmtree(args.out)
        summary = export_instrument(manifest[["pitch", "velocity", "path"]], name, args.out, overwrite=True)
    log.info("%d notes in %.1f s", len(manifest), time.perf_counter() - t0)
    return summary


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    try:
        summary = make(args)
    except (MakeError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(
        f"made {args.out}: {summary['n_samples']} samples, SFZ {summary['sfz']}, SF2 {summary['sf2']}, "
        f"preview {summary['demo_wav']}"
    )
