"""Render a MIDI file through an SF2 bank to a WAV file with the FluidSynth command line.

The command (flags checked against ``fluidsynth --help`` of FluidSynth 2.3)::

    fluidsynth -n -i -q -R 0 -C 0 -g <gain> -r <rate> -T wav -O s16 -F out.wav bank.sf2 song.mid

``-n -i``: no MIDI input driver and no shell; ``-q``: no banner; ``-R 0 -C 0``: reverb and chorus
off (a dry render of the instrument); ``-F``: fast, file-only render of the MIDI file, which
ends at the file's end-of-track. The output is stereo 16-bit PCM. FluidSynth exits 0 even when
it cannot read a bank or MIDI file, so its error lines are checked as well as its exit status.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from instrumentgen.atomic import atomic_path

DEBIAN_PACKAGE = "fluidsynth"
GAIN = 1.0  # master gain: a full-scale sample at velocity 127 peaks at -6 dBFS in the (stereo)
# output, leaving headroom for overlapping notes (FluidSynth's default, 0.2, is 14 dB quieter)
SAMPLE_RATE_RANGE = (8000, 96000)  # FluidSynth's synth.sample-rate range
# Lines FluidSynth prints when a render will not be what was asked for. (It always warns that the
# drum channel 9 has no preset in a bank without drum kits; channel 0 is the one our MIDI files use.)
_FAILURE_MARKERS = ("error:", "not a SoundFont or MIDI file", "No preset found on channel 0 ")


class RenderError(RuntimeError):
    """FluidSynth is missing, failed, or could not read its inputs."""


def fluidsynth_executable() -> str:
    """Path of the ``fluidsynth`` executable, or a :class:`RenderError` saying how to install it."""
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise RenderError(f"the 'fluidsynth' command is not installed (not on PATH): install the Debian "
                          f"package '{DEBIAN_PACKAGE}' (apt-get install {DEBIAN_PACKAGE}; `make setup` "
                          "does this when run as root)")
    return exe


def render_command(sf2: Path, midi: Path, out_wav: Path, *, sample_rate: int, gain: float,
                   effects: bool = False, exe: str = "fluidsynth") -> list[str]:
    """The FluidSynth argument list rendering ``midi`` through ``sf2`` into ``out_wav``."""
    on = "1" if effects else "0"
    return [exe, "-n", "-i", "-q", "-R", on, "-C", on, "-g", f"{gain:g}", "-r", str(int(sample_rate)),
            "-T", "wav", "-O", "s16", "-F", str(out_wav), str(sf2), str(midi)]


def render_midi(sf2: str | os.PathLike, midi: str | os.PathLike, out_wav: str | os.PathLike, *,
                sample_rate: int = 44100, gain: float = GAIN, effects: bool = False,
                timeout_s: float = 300.0) -> Path:
    """Render ``midi`` through the SF2 bank ``sf2`` into the WAV ``out_wav`` (atomically).

    ``sample_rate``: output rate in Hz (8000..96000); ``gain``: FluidSynth master gain (0..10);
    ``effects``: FluidSynth's reverb and chorus (off by default). Returns ``out_wav``.
    """
    sf2, midi, out_wav = Path(sf2), Path(midi), Path(out_wav)
    for label, path in (("SF2 bank", sf2), ("MIDI file", midi)):
        if not path.is_file():
            raise FileNotFoundError(f"{label} to render not found: {path}")
    if not SAMPLE_RATE_RANGE[0] <= sample_rate <= SAMPLE_RATE_RANGE[1]:
        raise ValueError(f"render sample_rate {sample_rate} Hz is outside FluidSynth's range "
                         f"{SAMPLE_RATE_RANGE[0]}..{SAMPLE_RATE_RANGE[1]}")
    if not 0 < gain <= 10:
        raise ValueError(f"render gain {gain} is outside FluidSynth's range (0, 10]")
    exe = fluidsynth_executable()
    with atomic_path(out_wav, suffix=".wav") as tmp:
        cmd = render_command(sf2, midi, tmp, sample_rate=sample_rate, gain=gain, effects=effects, exe=exe)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RenderError(f"fluidsynth did not finish rendering {midi} within {timeout_s:g} s") from exc
        output = (proc.stdout + proc.stderr).strip()
        failures = [line for line in output.splitlines() if any(m in line for m in _FAILURE_MARKERS)]
        if proc.returncode != 0 or failures or not tmp.is_file() or tmp.stat().st_size <= 44:
            raise RenderError(f"fluidsynth failed to render {midi} through {sf2} (exit status "
                              f"{proc.returncode}): {output or 'no output written'}\n"
                              f"command: {' '.join(cmd)}")
    return out_wav
