"""Where a profile's pipeline puts every file: the one definition of the paths the Snakemake rules read
and write (``workflow/rules/*.smk`` use :class:`Paths`), the ``instrumentgen make`` command and the
benchmarks (the trained LM of each variant, the codec and the CLAP model: :func:`lm_file`,
:func:`codec_file`, :func:`clap_file`).

Paths are relative to the repository root, as the rules write them. Outputs of different profiles never
overwrite each other: a profile writes under ``data/<profile>``, ``results/<profile>`` and
``logs/<profile>`` (pretrained weights go where params ``weights_dir`` says, shared by the profiles that
use them). A path argument may be a Snakemake wildcard pattern (``paths.manifest("{split}")``).
"""

from __future__ import annotations

import os
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any


def data_dir(params: Mapping[str, Any]) -> str:
    """``data/<profile>``: outputs of different profiles never overwrite each other."""
    return f"data/{params['profile']}"


def weights_file(source: Mapping[str, Any]) -> str:
    """A pretrained weights file: ``weights_dir`` + the file name of its ``url`` (the download's name)."""
    return f"{source['weights_dir']}/{os.path.basename(urllib.parse.urlparse(source['url']).path)}"


def weights_sources(params: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The pretrained weights the pipeline can download, by the name ``features.fetch_weights`` knows them
    by: the params section (``url``, ``weights_dir``, for VGGish ``sha256``) of each. All three, whichever
    the profile uses: only the files a rule asks for are fetched."""
    return {
        "dac": params["codec"]["dac"],
        "clap": params["clap"]["laion"],
        "vggish": params["evaluate"]["vggish"],
    }


def weights_by_file(params: Mapping[str, Any]) -> dict[str, str]:
    """Weights file → its name in :func:`weights_sources` (what rule fetch_weights downloads to where).

    Raises:
        ValueError: when two sources would download to the same file.
    """
    out: dict[str, str] = {}
    for name, source in weights_sources(params).items():
        path = weights_file(source)
        if path in out:
            raise ValueError(f"the {out[path]} and {name} weights would both be downloaded to {path}; "
                             f"give them different weights_dir")
        out[path] = name
    return out


def weights_files_regex(params: Mapping[str, Any]) -> str:
    """A regular expression that matches the weights files of :func:`weights_by_file` and nothing else (the
    wildcard constraint of rule fetch_weights, whose output is the whole path)."""
    return "|".join(re.escape(path) for path in weights_by_file(params))


def codec_file(params: Mapping[str, Any]) -> str:
    """The codec: pretrained DAC weights (``codec.kind`` dac) or the fitted offline codec."""
    if params["codec"]["kind"] == "dac":
        return weights_file(params["codec"]["dac"])
    return f"{data_dir(params)}/models/codec.npz"


def clap_file(params: Mapping[str, Any]) -> str:
    """The CLAP model: the LAION-CLAP checkpoint (``clap.kind`` laion) or the small offline CLAP."""
    if params["clap"]["kind"] == "laion":
        return weights_file(params["clap"]["laion"])
    return f"{data_dir(params)}/models/clap.npz"


def lm_file(params: Mapping[str, Any], variant: str) -> str:
    """The trained codec LM of ``variant`` (what rule train_variant writes)."""
    return Paths(params).lm(variant)


class Paths:
    """Every file and folder of one profile's pipeline, by the rule that writes it (see the module doc)."""

    def __init__(self, params: Mapping[str, Any]):
        self.params = params
        self.profile: str = params["profile"]
        self.data = data_dir(params)
        self.results = f"results/{self.profile}"
        self.logs = f"logs/{self.profile}"

    def log(self, name: str) -> str:
        """The log file of a job, ``logs/<profile>/<name>.log``."""
        return f"{self.logs}/{name}.log"

    # ------------------------------------------------------------------ data phase (data.smk)
    def downloaded_split(self, split: str) -> str:
        """NSynth split folder as downloaded and extracted (rule nsynth)."""
        return f"{self.data}/nsynth/nsynth-{split}"

    def synthetic_split(self, split: str) -> str:
        """NSynth-format split folder of the synthetic data (rule synthesize)."""
        return f"{self.data}/synthetic/nsynth-{split}"

    def raw_split(self, split: str) -> str:
        """The NSynth-format split the pipeline prunes: downloaded (data.source nsynth) or synthesized."""
        nsynth = self.params["data"]["source"] == "nsynth"
        return self.downloaded_split(split) if nsynth else self.synthetic_split(split)

    @property
    def captions(self) -> str:
        """Captions of the synthetic instruments (what the small CLAP learns text from)."""
        return f"{self.data}/synthetic/captions.json"

    def manifest(self, split: str) -> str:
        """The pruned split's note table (rule prune)."""
        return f"{self.data}/manifest/{split}.parquet"

    def store(self, split: str) -> str:
        """Prefix of the resampled store of ``split``: :meth:`store_audio` and :meth:`store_index`."""
        return f"{self.data}/resampled/{split}"

    def store_audio(self, split: str) -> str:
        """The resampled notes of ``split``, one row per note (rule resample)."""
        return f"{self.store(split)}.npy"

    def store_index(self, split: str) -> str:
        """The index of those notes."""
        return f"{self.store(split)}.parquet"

    @property
    def data_summary(self) -> str:
        return f"{self.results}/data/summary.csv"

    @property
    def data_coverage(self) -> str:
        return f"{self.results}/data/coverage.png"

    # ------------------------------------------------------------------ features phase (features.smk)
    @property
    def codec(self) -> str:
        """The codec the pipeline encodes and decodes with (:func:`codec_file`)."""
        return codec_file(self.params)

    @property
    def clap(self) -> str:
        """The CLAP model the pipeline embeds with (:func:`clap_file`)."""
        return clap_file(self.params)

    @property
    def fitted_codec(self) -> str:
        """The offline codec fitted on the train split (rule bootstrap_codec)."""
        return f"{self.data}/models/codec.npz"

    @property
    def small_clap(self) -> str:
        """The offline CLAP fitted on the train split (rule bootstrap_clap)."""
        return f"{self.data}/models/clap.npz"

    @property
    def vggish(self) -> str:
        """The VGGish weights of the evaluation."""
        return weights_file(self.params["evaluate"]["vggish"])

    def codes(self, split: str) -> str:
        """Codec codes of every note of ``split``."""
        return f"{self.data}/features/codes/{split}.parquet"

    def clap_audio(self, split: str) -> str:
        """CLAP audio embeddings of every note of ``split``."""
        return f"{self.data}/features/clap_audio/{split}.parquet"

    @property
    def clap_text(self) -> str:
        """CLAP text embeddings of the T2I prompts."""
        return f"{self.data}/features/clap_text/prompts.parquet"

    def reference(self, split: str) -> str:
        """The fixed-CLAP reference note of every instrument of ``split``."""
        return f"{self.data}/features/reference/{split}.parquet"

    @property
    def codec_quality(self) -> str:
        return f"{self.results}/features/codec_quality.json"

    @property
    def clap_retrieval(self) -> str:
        return f"{self.results}/features/clap_retrieval.json"

    def encoder_reports(self) -> list[str]:
        """Encoder reports that need captions: only the synthetic data has them."""
        return [self.clap_retrieval] if self.params["data"]["source"] == "synthetic" else []

    # ------------------------------------------------------------------ train phase (train.smk)
    def lm(self, variant: str) -> str:
        """The trained codec LM of ``variant``."""
        return f"{self.data}/lm/{variant}.pt"

    def checkpoints(self, variant: str) -> str:
        """Root of the resumable training checkpoints of ``variant`` (not a rule output)."""
        return f"{self.data}/checkpoints/lm/{variant}"

    def train_run(self, variant: str) -> str:
        """Folder, with its ``/``, of the curves of ``variant``: train.csv, valid.csv, summary.json."""
        return f"{self.results}/train/{variant}/"

    def valid_curve(self, variant: str) -> str:
        """The validation-loss curve of ``variant``."""
        return f"{self.train_run(variant)}valid.csv"

    @property
    def loss_curves(self) -> str:
        return f"{self.results}/train/loss_curves.png"

    @property
    def loss_summary(self) -> str:
        return f"{self.results}/train/summary.csv"

    # ------------------------------------------------------------------ generate phase (generate.smk)
    def generated(self, variant: str, task: str) -> str:
        """Manifest of the notes ``variant`` generated for ``task``."""
        return f"{self.data}/generated/{variant}/{task}/manifest.parquet"

    def generated_audio(self, variant: str, task: str) -> str:
        """Folder of the WAV files of those notes."""
        return f"{self.data}/generated/{variant}/{task}/audio"

    def instruments(self, variant: str, task: str) -> str:
        """Folder of the exported instruments (WAVs, SFZ, SF2, MIDI demo) of ``variant`` and ``task``."""
        return f"{self.data}/instruments/{variant}/{task}/instruments"

    def instruments_index(self, variant: str, task: str) -> str:
        """Index of those exported instruments."""
        return f"{self.data}/instruments/{variant}/{task}/index.json"

    def pitch_report(self, variant: str, task: str) -> str:
        return f"{self.results}/generate/{variant}/{task}/pitch.json"

    @property
    def pitch_table(self) -> str:
        return f"{self.results}/generate/pitch_accuracy.csv"

    @property
    def pitch_figure(self) -> str:
        return f"{self.results}/generate/pitch_accuracy.png"

    @property
    def pitch_metrics(self) -> str:
        """DVC metrics of the pitch accuracy (outside the generate phase's outputs)."""
        return f"{self.results}/metrics/pitch_accuracy.json"

    # ------------------------------------------------------------------ evaluate phase (evaluate.smk)
    def embeddings(self, embedder: str, notes: str) -> str:
        """Embeddings by ``embedder`` of a set of notes: ``<variant>_<task>`` (generated),
        ``reconstruction_test`` (the codec's reconstruction of the test split) or ``test``."""
        return f"{self.data}/evaluation/{embedder}/{notes}.parquet"

    @property
    def evaluation_metrics(self) -> str:
        return f"{self.results}/metrics/evaluation.json"

    @property
    def evaluation_details(self) -> str:
        """Per-set details of the evaluation; its folder holds the tables and figures below."""
        return f"{self.results}/evaluate/details.json"

    def evaluation_figure(self, stem: str) -> str:
        """Prefix of a table or figure of the evaluation (``table2``, ``table3``, ``figure2``,
        ``t2i_spectrograms``), one file per format."""
        return f"{self.results}/evaluate/{stem}"

    @property
    def t2i_spectrograms(self) -> str:
        """The PNG of the T2I spectrograms (beside its SVG)."""
        return f"{self.evaluation_figure('t2i_spectrograms')}.png"

    # ------------------------------------------------------------------ listening phase (listening.smk)
    @property
    def listening_kit(self) -> str:
        """The webMUSHRA kit folder."""
        return f"{self.data}/listening/kit"

    @property
    def table4(self) -> str:
        """Prefix of Table 4's files: :attr:`table4_md`, :attr:`table4_png`, ``.tex``, ``.csv``,
        ``_pairs.csv``."""
        return f"{self.results}/listening/table4"

    @property
    def table4_md(self) -> str:
        return f"{self.table4}.md"

    @property
    def table4_png(self) -> str:
        return f"{self.table4}.png"

    @property
    def listening_metrics(self) -> str:
        return f"{self.results}/metrics/listening.json"

    @property
    def companion(self) -> str:
        """The companion page folder."""
        return f"{self.results}/companion"

    @property
    def companion_cards(self) -> str:
        return f"{self.results}/listening/companion_cards.csv"
