"""Plain-English captions of synthetic instruments, built from their NSynth metadata.

Every caption names the family and the source and describes each set quality bit, so the
words match what is rendered (see :meth:`Instrument.qualities`). Wording varies between
instruments (templates, synonyms, word order) but is fixed per instrument by the seed.
"""

from __future__ import annotations

from instrumentgen.nsynth import metadata
from instrumentgen.synth.instrument import DOMAIN_CAPTION, Instrument, rng_for

FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "bass": ("bass",), "brass": ("brass", "brass instrument"), "flute": ("flute",),
    "guitar": ("guitar", "plucked guitar"), "keyboard": ("keyboard", "keyboard instrument"),
    "mallet": ("mallet", "mallet instrument"), "organ": ("organ",), "reed": ("reed", "reed instrument"),
    "string": ("string", "bowed string"), "synth_lead": ("synth lead",),
    "vocal": ("vocal",),
}
SOURCE_WORDS: dict[str, tuple[str, ...]] = {
    "acoustic": ("acoustic",), "electronic": ("electronic", "electric"),
    "synthetic": ("synthetic", "synthesized"),
}
# Qualities said as adjectives before the noun ...
ADJECTIVES: dict[str, tuple[str, ...]] = {
    "bright": ("bright", "brilliant"), "dark": ("dark", "mellow"), "distortion": ("distorted", "overdriven"),
    "fast_decay": ("short", "fast-decaying"), "multiphonic": ("multiphonic",), "nonlinear_env": ("swelling",),
    "percussive": ("percussive",),
}
# ... and as phrases after it.
PHRASES: dict[str, tuple[str, ...]] = {
    "long_release": ("with a long release", "with a long tail"),
    "reverb": ("with reverb", "in a reverberant room"),
    "tempo-synced": ("with a tempo-synced tremolo", "with a rhythmic tremolo"),
}
assert set(ADJECTIVES) | set(PHRASES) == set(metadata.QUALITIES)

_TEMPLATES = (
    "{a} {adjs} {source} {family}{phrases}",
    "the sound of {a} {adjs} {source} {family}{phrases}",
    "{a} {adjs} note played on {a_src} {source} {family}{phrases}",
    "{a_src} {source} {family} sound that is {adjs_and}{phrases}",
)
_PLAIN_TEMPLATES = (
    "{a} {source} {family}{phrases}",
    "the sound of {a} {source} {family}{phrases}",
    "a note played on {a_src} {source} {family}{phrases}",
)


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    if len(words) == 2:
        return f"{words[0]} and {words[1]}"
    return ", ".join(words[:-1]) + f" and {words[-1]}"


def caption(inst: Instrument, seed: int) -> str:
    """A caption such as ``a bright, percussive acoustic mallet with reverb``."""
    rng = rng_for(seed, DOMAIN_CAPTION, inst.inst_id)

    def pick(options: tuple[str, ...]) -> str:
        return options[int(rng.integers(len(options)))]

    family, source = pick(FAMILY_WORDS[inst.family]), pick(SOURCE_WORDS[inst.source])
    on = [q for q, bit in zip(metadata.QUALITIES, inst.qualities(), strict=True) if bit]
    adjs = [pick(ADJECTIVES[q]) for q in on if q in ADJECTIVES]
    adjs = [adjs[i] for i in rng.permutation(len(adjs))]
    phrases = [pick(PHRASES[q]) for q in on if q in PHRASES]
    phrases = [phrases[i] for i in rng.permutation(len(phrases))]
    phrase_text = (" " + _join(phrases)) if phrases else ""
    if adjs:
        template = pick(_TEMPLATES)
        adj_text = ", ".join(adjs)
        lead = adj_text
    else:
        template = pick(_PLAIN_TEMPLATES)
        adj_text = ""
        lead = source
    text = template.format(a=_article(lead), adjs=adj_text, adjs_and=_join(adjs), source=source,
                           family=family, phrases=phrase_text, a_src=_article(source))
    return " ".join(text.split())


def captions(instruments: list[Instrument], seed: int) -> dict[str, str]:
    """``{instrument_str: caption}`` for ``instruments``."""
    return {inst.name: caption(inst, seed) for inst in instruments}

