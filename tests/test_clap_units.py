"""CLAP helpers: fixed windows, bags of words, retrieval figures and their chance values."""

from __future__ import annotations

import numpy as np
import pytest

from instrumentgen.clap.audio import l2_normalize, repeat_pad, zero_pad
from instrumentgen.clap.features import FeatureConfig, FeatureExtractor
from instrumentgen.clap.retrieval import retrieval_report
from instrumentgen.clap.text import bag_of_words, build_vocabulary, content_words, words


def test_repeat_pad_and_zero_pad():
    x = np.arange(1, 4, dtype=np.float32)[None]  # [1, 2, 3]
    np.testing.assert_array_equal(repeat_pad(x, 8), [[1, 2, 3, 1, 2, 3, 0, 0]])
    np.testing.assert_array_equal(repeat_pad(x, 2), [[1, 2]])
    np.testing.assert_array_equal(zero_pad(x, 5), [[1, 2, 3, 0, 0]])
    np.testing.assert_array_equal(zero_pad(x, 2), [[1, 2]])


def test_l2_normalize():
    y = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    np.testing.assert_allclose(y, [[0.6, 0.8], [0.0, 0.0]])
    assert y.dtype == np.float32


def test_bag_of_words():
    assert words("A bright, fast-decaying BASS") == ["a", "bright", "fast", "decaying", "bass"]
    vocab = build_vocabulary(["a dark bass", "a bright organ"])
    assert vocab == ["a", "bass", "bright", "dark", "organ"]
    np.testing.assert_array_equal(bag_of_words(["a a bass unknown"], vocab), [[2, 1, 0, 0, 0]])


def test_features_shape_and_silence():
    fx = FeatureExtractor()
    out = fx(np.zeros((2, 8000), np.float32), 16000)
    assert out.shape == (2, FeatureConfig().dim) and np.isfinite(out).all()
    with pytest.raises(ValueError, match="window"):
        FeatureExtractor(FeatureConfig(window_s=0.01))


def _report(audio: np.ndarray, text: np.ndarray) -> dict:
    instruments = ["bass_0", "bass_1", "organ_0", "flute_0"]
    note_inst = [i for i in instruments for _ in range(3)]
    note_fam = [i.split("_")[0] for i in note_inst]
    return retrieval_report(audio, note_inst, note_fam, text, instruments)


def test_retrieval_perfect_and_chance_values():
    basis = np.eye(4, 8)
    audio = np.repeat(basis, 3, axis=0) + 0.01 * np.arange(12)[:, None] / 12
    report = _report(audio, basis)
    inst = report["text_to_audio"]["instrument_level"]["instrument"]
    assert inst["recall@1"] == 1.0 and inst["mean_rank"] == 1.0 and inst["mrr"] == 1.0
    assert inst["chance_recall@1"] == pytest.approx(0.25) and inst["chance_recall@5"] == 1.0
    fam = report["text_to_audio"]["instrument_level"]["family"]
    # Two bass instruments among four: P(one in the top 1) = 2/4 for the bass queries, 1/4 otherwise.
    assert fam["chance_recall@1"] == pytest.approx((0.5 + 0.5 + 0.25 + 0.25) / 4)
    notes = report["text_to_audio"]["note_level"]["instrument"]
    assert notes["precision@1"] == 1.0 and notes["chance_precision@1"] == pytest.approx(0.25)
    # P(at least one of 3 relevant notes among the top 5 of 12) = 1 - C(9,5)/C(12,5).
    assert notes["chance_recall@5"] == pytest.approx(1 - 126 / 792)
    assert report["audio_to_text"]["instrument"]["recall@1"] == 1.0
    assert [q["rank"] for q in report["queries"]] == [1, 1, 1, 1]


def test_retrieval_worst_case_and_errors():
    basis = np.eye(4, 8)
    audio = np.repeat(basis, 3, axis=0)
    report = _report(audio, -basis)  # every caption's own instrument scores lowest
    assert report["text_to_audio"]["instrument_level"]["instrument"]["mean_rank"] == 4.0
    with pytest.raises(ValueError, match="without notes"):
        retrieval_report(audio, ["a"] * 12, ["f"] * 12, basis[:2], ["a", "b"])
    with pytest.raises(ValueError, match="mismatched"):
        retrieval_report(audio[:5], ["a"] * 12, ["f"] * 12, basis[:1], ["a"])


def test_content_words_leave_out_function_words_and_unknown_words():
    vocabulary = ["a", "bass", "bright", "note", "on", "played", "with"]
    assert content_words("A bright note played on a bass, with zzz", vocabulary) == ["bright", "bass"]
    assert content_words("a zzzz qqq", vocabulary) == []
    assert content_words("a note played with", vocabulary) == []
