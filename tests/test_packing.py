"""Packing: no token lost, [CLS] ... [SEP] rows, deterministic held-out split, cache reuse;
and WordPiece training with BERT's special-token layout."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from eelbert_cli.core.data import packing
from eelbert_cli.core.data.corpora import iter_documents, parse_corpus
from eelbert_cli.core.data.packing import PackedDataset, heldout_rows, pack_corpus, read_meta, token_dtype
from eelbert_cli.core.data.tokenization import load_tokenizer, vocabulary_of
from eelbert_cli.core.data.vocab_training import SPECIAL_TOKENS, train_wordpiece
from eelbert_cli.core.errors import EelbertError

WORDS = ["the", "cat", "dog", "plays", "with", "a", "house", "good", "movie", "running", "."]
SEQ_LEN = 8  # bodies of 6 tokens: many document boundaries land on every phase


@pytest.fixture(scope="module")
def tokenizer(fixture_vocab_path):
    return load_tokenizer(fixture_vocab_path)


@pytest.fixture
def corpus_file(tmp_path) -> Path:
    """60 documents of 1-17 single-token words, one per blank-line block."""
    rng = random.Random(0)
    docs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 17))) for _ in range(60)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def sources_for(*paths: Path):
    return parse_corpus([{"kind": "files", "paths": [str(path) for path in paths]}])


def all_rows(path: Path) -> np.ndarray:
    meta = read_meta(path)
    return np.fromfile(path / "tokens.bin", dtype=meta["dtype"]).reshape(-1, meta["seq_len"])


def reference_rows(documents: list[list[int]], seq_len: int, sep: int, cls: int) -> np.ndarray:
    """The packing rule written plainly: one stream, [SEP] between documents unless a document
    starts a sequence, cut into bodies, final partial body dropped."""
    body = seq_len - 2
    stream: list[int] = []
    for index, ids in enumerate(documents):
        if index and len(stream) % body:
            stream.append(sep)
        stream.extend(ids)
    bodies = [stream[start:start + body] for start in range(0, len(stream) - body + 1, body)]
    return np.array([[cls, *chunk, sep] for chunk in bodies])


def test_packing_loses_no_token_across_batches(tmp_path, tokenizer, corpus_file):
    sources = sources_for(corpus_file)
    encoded = [tokenizer.encode(doc, add_special_tokens=False).ids for doc in iter_documents(sources)]
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    expected = reference_rows(encoded, SEQ_LEN, sep, cls)
    for batch_documents in (1, 7, 1000):
        path = pack_corpus(sources, tokenizer, SEQ_LEN, heldout=0, cache_root=tmp_path / str(batch_documents),
                           batch_documents=batch_documents)
        np.testing.assert_array_equal(all_rows(path), expected)
    meta = read_meta(path)
    assert meta["documents"] == 60 and meta["document_tokens"] == sum(map(len, encoded))
    assert meta["document_tokens"] + meta["separator_tokens"] == meta["num_sequences"] * (SEQ_LEN - 2) + meta["dropped_tail_tokens"]
    assert 0 <= meta["dropped_tail_tokens"] < SEQ_LEN - 2
    assert meta["separator_tokens"] < 59  # some documents began exactly at a sequence start


def test_every_sequence_is_cls_body_sep(tmp_path, tokenizer, corpus_file):
    rows = all_rows(pack_corpus(sources_for(corpus_file), tokenizer, SEQ_LEN, heldout=0.1, cache_root=tmp_path))
    assert rows.dtype == np.uint16 and rows.shape[1] == SEQ_LEN
    assert (rows[:, 0] == tokenizer.token_to_id("[CLS]")).all() and (rows[:, -1] == tokenizer.token_to_id("[SEP]")).all()
    assert not (rows[:, 1:-1] == tokenizer.token_to_id("[CLS]")).any()


def test_heldout_rows_are_evenly_spread_and_deterministic():
    assert heldout_rows(100, 3).tolist() == [16, 50, 83]
    assert len(heldout_rows(100, 0.1)) == 10 and len(np.unique(heldout_rows(100, 0.1))) == 10
    assert heldout_rows(5, 0.01).tolist() == [2]  # a positive fraction holds out at least one
    assert heldout_rows(10, 0.0).size == 0
    with pytest.raises(EelbertError, match="none for training"):
        heldout_rows(3, 3)


def test_splits_partition_the_rows_deterministically(tmp_path, tokenizer, corpus_file):
    sources = sources_for(corpus_file)
    first = pack_corpus(sources, tokenizer, SEQ_LEN, heldout=0.2, cache_root=tmp_path / "one")
    second = pack_corpus(sources, tokenizer, SEQ_LEN, heldout=0.2, cache_root=tmp_path / "two")
    assert (first / "heldout.npy").read_bytes() == (second / "heldout.npy").read_bytes()
    train, heldout = PackedDataset(first, "train"), PackedDataset(first, "heldout")
    rows = all_rows(first)
    train_rows = train.global_rows(np.arange(len(train)))
    heldout_global = heldout.global_rows(np.arange(len(heldout)))
    assert len(heldout) == round(0.2 * len(rows)) and len(train) + len(heldout) == len(rows)
    assert sorted([*train_rows, *heldout_global]) == list(range(len(rows)))
    np.testing.assert_array_equal(train.batch(range(len(train))).numpy(), rows[train_rows])
    np.testing.assert_array_equal(heldout[-1].numpy(), rows[heldout_global[-1]])


def test_dataset_items_batches_and_dataloader(tmp_path, tokenizer, corpus_file):
    dataset = PackedDataset(pack_corpus(sources_for(corpus_file), tokenizer, SEQ_LEN, heldout=2, cache_root=tmp_path))
    item = dataset[3]
    assert item.dtype == torch.long and item.shape == (SEQ_LEN,)
    assert torch.equal(dataset.batch([3, 0])[0], item)
    loaded = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert torch.equal(loaded, dataset.batch([0, 1, 2, 3]))
    with pytest.raises(IndexError):
        dataset[len(dataset)]
    with pytest.raises(EelbertError, match="split"):
        PackedDataset(tmp_path, "validation")


def test_cache_hit_does_not_retokenize(tmp_path, tokenizer, corpus_file, monkeypatch):
    calls = []

    def spy(sources):
        calls.append(sources)
        return iter_documents(sources)

    monkeypatch.setattr(packing, "iter_documents", spy)
    sources = sources_for(corpus_file)
    first = pack_corpus(sources, tokenizer, SEQ_LEN, cache_root=tmp_path / "cache")
    assert pack_corpus(sources, tokenizer, SEQ_LEN, cache_root=tmp_path / "cache") == first
    assert len(calls) == 1
    assert pack_corpus(sources, tokenizer, SEQ_LEN + 1, cache_root=tmp_path / "cache") != first
    corpus_file.write_text(corpus_file.read_text(encoding="utf-8") + "\nthe cat plays .\n", encoding="utf-8")
    assert pack_corpus(sources, tokenizer, SEQ_LEN, cache_root=tmp_path / "cache") != first
    assert len(calls) == 3


def test_failed_pack_leaves_nothing_behind(tmp_path, tokenizer, corpus_file):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9\n")
    cache = tmp_path / "cache"
    with pytest.raises(EelbertError, match="bad.txt"):
        pack_corpus(sources_for(corpus_file, bad), tokenizer, SEQ_LEN, cache_root=cache)
    assert list(cache.iterdir()) == []


def test_corpus_too_small_for_one_sequence(tmp_path, tokenizer):
    path = tmp_path / "tiny.txt"
    path.write_text("the cat\n\nthe dog\n", encoding="utf-8")
    with pytest.raises(EelbertError) as caught:
        pack_corpus(sources_for(path), tokenizer, 16, cache_root=tmp_path / "cache")
    assert "2 documents, 4 tokens" in str(caught.value) and "at least 14 tokens" in str(caught.value)


@pytest.mark.parametrize("seq_len, heldout, fragment", [
    (1024, 0.01, "max_positions 512"),
    (2, 0.01, "too short"),
    (8, 1.5, "[0, 1)"),
    (8, -1, "negative"),
    (8, True, "fraction"),
])
def test_invalid_settings(tmp_path, tokenizer, corpus_file, seq_len, heldout, fragment):
    with pytest.raises(EelbertError) as caught:
        pack_corpus(sources_for(corpus_file), tokenizer, seq_len, heldout=heldout, max_positions=512, cache_root=tmp_path)
    assert fragment in str(caught.value)


def test_token_dtype_widens_only_when_ids_overflow_uint16():
    assert token_dtype(30522) == np.uint16 and token_dtype(65536) == np.uint16 and token_dtype(65537) == np.int32


# --- WordPiece training ----------------------------------------------------------------------------

TRAINING_TEXT = ["The players played. A player is playing!", "Unplayable games; the PLAYER plays again."] * 40


def test_train_wordpiece_has_bert_layout_and_round_trips(tmp_path):
    tokenizer = train_wordpiece(TRAINING_TEXT, 80, tmp_path / "tok")
    vocabulary = vocabulary_of(tokenizer)
    assert tuple(vocabulary[: len(SPECIAL_TOKENS)]) == SPECIAL_TOKENS  # [PAD]=0 ... [MASK]=4
    assert any(token.startswith("##") for token in vocabulary) and len(vocabulary) <= 80
    assert (tmp_path / "tok" / "vocab.txt").read_text(encoding="utf-8").splitlines() == vocabulary
    encoding = tokenizer.encode("The PLAYER plays")
    assert encoding.tokens[0] == "[CLS]" and encoding.tokens[-1] == "[SEP]" and "the" in encoding.tokens
    reloaded = load_tokenizer(tmp_path / "tok")
    assert reloaded.encode("Unplayable players").ids == tokenizer.encode("Unplayable players").ids
    assert json.loads((tmp_path / "tok" / "tokenizer.json").read_text())["model"]["continuing_subword_prefix"] == "##"


def test_trained_tokenizer_packs(tmp_path):
    tokenizer = train_wordpiece(TRAINING_TEXT, 80, tmp_path / "tok")
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n\n".join(TRAINING_TEXT), encoding="utf-8")
    rows = all_rows(pack_corpus(sources_for(corpus), tokenizer, 16, cache_root=tmp_path / "cache"))
    assert (rows[:, 0] == 2).all() and (rows[:, -1] == 3).all() and len(rows) > 10


def test_train_wordpiece_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good text\n\ncaf\xe9\n")
    with pytest.raises(EelbertError, match="bad.txt"):
        train_wordpiece(iter_documents(sources_for(bad)), 100, tmp_path / "tok")
    with pytest.raises(EelbertError, match="special tokens"):
        train_wordpiece(TRAINING_TEXT, 5, tmp_path / "tok")
    with pytest.raises(EelbertError, match="no text"):
        train_wordpiece([], 100, tmp_path / "tok")
    assert not (tmp_path / "tok").exists()


# --- the real offline corpus ---------------------------------------------------------------------


@pytest.mark.network
def test_pack_builtin_news_with_bert_uncased(tmp_path):
    tokenizer = load_tokenizer("bert-base-uncased")
    path = pack_corpus(parse_corpus([{"kind": "builtin", "name": "news"}]), tokenizer, 128, heldout=0.01, cache_root=tmp_path)
    meta = read_meta(path)
    assert meta["documents"] == 3788 and 2_500_000 < meta["document_tokens"] < 2_800_000
    assert meta["document_tokens"] + meta["separator_tokens"] == meta["num_sequences"] * 126 + meta["dropped_tail_tokens"]
    rows = all_rows(path)
    assert (rows[:, 0] == 101).all() and (rows[:, -1] == 102).all()
    assert len(PackedDataset(path, "heldout")) == round(0.01 * meta["num_sequences"])
