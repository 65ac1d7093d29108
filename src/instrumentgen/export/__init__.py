"""Playable-instrument export: generated samples → a folder with SFZ, SF2, a demo MIDI and its render.

- :mod:`~instrumentgen.export.zones`: the key/velocity map shared by SFZ and SF2;
- :mod:`~instrumentgen.export.sfz`, :mod:`~instrumentgen.export.sf2`: the two sampler formats;
- :mod:`~instrumentgen.export.midi`: demo and test MIDI files (``mido``);
- :mod:`~instrumentgen.export.render`: MIDI + SF2 → WAV with the FluidSynth command line;
- :mod:`~instrumentgen.export.instrument`: :func:`export_instrument`, all of the above for one instrument.
"""

from instrumentgen.export.instrument import ExportError, export_instrument, file_stem
from instrumentgen.export.midi import Note, demo_notes, write_midi
from instrumentgen.export.render import RenderError, render_midi
from instrumentgen.export.sf2 import Sf2Sample, to_pcm16, write_sf2
from instrumentgen.export.sfz import write_sfz
from instrumentgen.export.zones import Zone, ZoneError, plan_zones

__all__ = [
    "ExportError", "Note", "RenderError", "Sf2Sample", "Zone", "ZoneError", "demo_notes", "export_instrument",
    "file_stem", "plan_zones", "render_midi", "to_pcm16", "write_midi", "write_sf2", "write_sfz",
]
