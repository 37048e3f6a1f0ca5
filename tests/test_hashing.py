"""The n-gram hash: markers, n-grams, determinism, known answers, similarity structure."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eelbert_cli.core.model.embedding import hash_vectors
from eelbert_cli.core.model.hashing import (
    HashConfig,
    expand_hashes,
    hash_ngram,
    hash_vectors_numpy,
    mark_token,
    token_ngrams,
)

DEFAULT = HashConfig()


def cosine(a: str, b: str, config: HashConfig = DEFAULT, dim: int = 128) -> float:
    vectors = hash_vectors([a, b], dim, config)
    return F.cosine_similarity(vectors[0], vectors[1], dim=0).item()


def test_markers_distinguish_word_start_from_continuation():
    assert mark_token("play") == "^play$"
    assert mark_token("##ing") == "ing$"
    assert mark_token("##") == "^##$"  # a bare '##' is a word, not a continuation marker


def test_ngrams_of_a_continuation_piece():
    assert token_ngrams("##ing", DEFAULT) == ["i", "n", "g", "$", "in", "ng", "g$", "ing", "ng$"]


def test_special_tokens_are_hashed_whole():
    for token in ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "[unused7]"):
        assert token_ngrams(token, DEFAULT) == [token]


def test_token_kind_hashes_the_marked_string_as_one_ngram():
    assert token_ngrams("play", HashConfig(kind="token")) == ["^play$"]


def test_string_shorter_than_ngram_min_still_gets_one_ngram():
    assert token_ngrams("##a", HashConfig(ngram_min=4, ngram_max=5)) == ["a$"]


def test_known_answers_under_default_config():
    """Pinned values: any change to hashing, expansion or pooling shows up here."""
    assert hash_ngram("play", 0) == 8155127238585228858
    assert hash_ngram("play", 1) == 4552197800848063899
    expected = torch.tensor(
        [
            [-0.8938252925872803, -0.48456692695617676, -0.0077931880950927734,
             -0.8310164213180542, 0.7550619840621948, -0.8956224918365479],
            [0.013643089681863785, -0.08158792555332184, -0.15283918380737305,
             0.13942521810531616, -0.11094745993614197, -0.05786558613181114],
            [-0.13079549372196198, 0.022192729637026787, 0.29792410135269165,
             0.015168283134698868, 0.008264250122010708, -0.1337866485118866],
        ],
        dtype=torch.float32,
    )
    assert torch.equal(hash_vectors(["[CLS]", "play", "##ing"], 6, DEFAULT), expected)


_CHILD = (
    "from eelbert_cli.core.model.embedding import hash_vectors; from eelbert_cli.core.model.hashing import HashConfig;"
    "print(hash_vectors(['play', '##ing', '[CLS]', 'zebra'], 64, HashConfig()).numpy().tobytes().hex())"
)


def test_bit_identical_across_processes_with_different_hash_seeds():
    outputs = []
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True)
        outputs.append(result.stdout.strip())
    here = hash_vectors(["play", "##ing", "[CLS]", "zebra"], 64, DEFAULT).numpy().tobytes().hex()
    assert outputs[0] == outputs[1] == here


def test_shared_ngrams_mean_closer_vectors():
    assert cosine("play", "playing") > cosine("play", "cat") + 0.2


def test_continuation_differs_from_word():
    assert cosine("ing", "##ing") < 0.99
    assert not torch.equal(*hash_vectors(["ing", "##ing"], 32, DEFAULT))


def test_special_tokens_all_distinct():
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vectors = F.normalize(hash_vectors(specials, 128, DEFAULT), dim=1)
    similarity = vectors @ vectors.T
    off_diagonal = similarity[~torch.eye(len(specials), dtype=torch.bool)]
    assert off_diagonal.abs().max() < 0.5


def test_token_kind_shares_nothing_between_related_words():
    token = HashConfig(kind="token")
    assert abs(cosine("play", "playing", token)) < 0.3 < cosine("play", "playing")


def test_unseen_strings_get_distinct_nonzero_vectors():
    a, b = hash_vectors(["qwzxv", "plmokn"], 64, DEFAULT)
    assert a.abs().sum() > 0 and not torch.equal(a, b)


def test_seed_changes_every_vector():
    assert not torch.allclose(hash_vectors(["play"], 16, DEFAULT), hash_vectors(["play"], 16, HashConfig(seed=7)))


def test_uniform_values_lie_in_half_open_interval():
    values = expand_hashes(np.arange(1000, dtype=np.uint64), 256, "uniform")
    assert values.min() >= -1.0 and values.max() < 1.0
    assert abs(values.mean()) < 0.01 and 0.55 < values.std() < 0.6  # uniform on [-1,1): std 1/sqrt(3)


def test_ternary_values_are_minus_one_zero_one():
    values = expand_hashes(np.arange(1000, dtype=np.uint64), 256, "ternary")
    assert set(np.unique(values).tolist()) == {-1.0, 0.0, 1.0}


def test_sum_pooling_is_mean_times_ngram_count_and_scale_multiplies():
    mean = hash_vectors(["play"], 32, DEFAULT)
    total = hash_vectors(["play"], 32, HashConfig(pooling="sum"))
    count = len(token_ngrams("play", DEFAULT))
    torch.testing.assert_close(total, mean * count)
    torch.testing.assert_close(hash_vectors(["play"], 32, HashConfig(scale=2.5)), mean * 2.5)


def test_longer_ngram_range_changes_vectors():
    assert not torch.equal(hash_vectors(["playing"], 16, DEFAULT), hash_vectors(["playing"], 16, HashConfig(ngram_max=4)))


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"ngram_min": 3, "ngram_max": 2}, "must not exceed"),
        ({"ngram_min": 0}, ">= 1"),
        ({"kind": "bloom"}, "hash kind"),
        ({"seed": -1}, "seed"),
        ({"values": "gauss"}, "values"),
        ({"pooling": "max"}, "pooling"),
    ],
)
def test_invalid_hash_configs_are_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        HashConfig(**fields)


@pytest.mark.parametrize(
    "config",
    [DEFAULT, HashConfig(pooling="sum", scale=2.5), HashConfig(ngram_min=2, ngram_max=5, values="ternary"), HashConfig(kind="token")],
)
def test_numpy_and_torch_paths_give_the_same_bits(vocabulary, config):
    """The torch-free runtime rebuilds the table with numpy; it must equal the model's, bit for bit."""
    strings = [*vocabulary, "unbelievably", "##ness", "\u00e9t\u00e9", "x"]
    assert np.array_equal(hash_vectors_numpy(strings, 48, config), hash_vectors(strings, 48, config).numpy())


def test_learned_kind_has_no_hash_vectors():
    with pytest.raises(ValueError, match="learned"):
        hash_vectors(["play"], 8, HashConfig(kind="learned"))
    with pytest.raises(ValueError, match="learned"):
        hash_vectors_numpy(["play"], 8, HashConfig(kind="learned"))
