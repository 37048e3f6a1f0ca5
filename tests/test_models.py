"""The model zoo: one module swapped, exact parameter counts, save/load, Auto classes, MLM heads."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMaskedLM,
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    BertModel,
)

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.config import make_config, preset_config
from eelbert_cli.core.model.embedding import HashEmbedding, HashTiedDecoder
from eelbert_cli.core.model.hashing import HashConfig
from eelbert_cli.core.model.modeling import (  # importing it registers the Auto classes
    EelbertForMaskedLM,
    EelbertForSequenceClassification,
    EelbertModel,
    build_model,
    load_model,
    parameter_count,
)
from eelbert_cli.core.model.presets import PRESETS, SHAPES, Shape

TINY = Shape(layers=1, hidden=16, heads=2, ffn=32)
AUTO = {"base": AutoModel, "masked-lm": AutoModelForMaskedLM, "sequence-classification": AutoModelForSequenceClassification}
CLASSES = {"base": EelbertModel, "masked-lm": EelbertForMaskedLM, "sequence-classification": EelbertForSequenceClassification}

# DESIGN.md section 4: transformers' BertModel with pooler, vocabulary 30,522, 512 positions, 2 types.
EXPECTED_PARAMS = {
    "bert-tiny": 4_385_920,
    "bert-mini": 11_170_560,
    "bert-small": 28_763_648,
    "bert-medium": 41_373_184,
    "bert-base": 109_482_240,
    "eelbert-tiny": 479_104,
    "eelbert-mini": 3_356_928,
    "eelbert-small": 13_136_384,
    "eelbert-medium": 25_745_920,
    "eelbert-base": 86_041_344,
    "uno-eelbert": 280_832,
}


def tiny_config(vocabulary, kind="ngram", **kwargs):
    return make_config(TINY, HashConfig(kind=kind), vocabulary, **kwargs)


def output_of(model, input_ids):
    model.eval()
    with torch.no_grad():
        output = model(input_ids)
    return output.last_hidden_state if hasattr(output, "last_hidden_state") else output.logits


@pytest.fixture(scope="module")
def bert_vocabulary_sized() -> list[str]:
    """30,522 distinct strings: the counts depend on the vocabulary's size, not its content."""
    return ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"tok{i}" for i in range(30_517)]


@pytest.mark.parametrize("name", list(EXPECTED_PARAMS))
def test_preset_parameter_counts_match_design(name, bert_vocabulary_sized):
    model = build_model(preset_config(name, bert_vocabulary_sized))
    assert parameter_count(model) == EXPECTED_PARAMS[name]


def test_every_preset_is_covered_and_uno_is_one_layer():
    assert set(PRESETS) == set(EXPECTED_PARAMS)
    assert PRESETS["uno-eelbert"].shape == SHAPES["uno"] and SHAPES["uno"].layers == 1
    assert PRESETS["uno-eelbert"].bert_twin == "bert-tiny"


@pytest.mark.parametrize("kind", ["ngram", "token"])
def test_hash_embedding_has_no_trainable_parameters(vocabulary, kind):
    model = build_model(tiny_config(vocabulary, kind))
    embedding = model.embeddings.word_embeddings
    assert isinstance(embedding, HashEmbedding)
    assert list(embedding.parameters()) == []
    assert "embeddings.word_embeddings.table" not in model.state_dict()


def test_only_the_word_embedding_is_swapped(vocabulary):
    """Everything else is transformers' BERT, parameter for parameter."""
    eelbert = build_model(tiny_config(vocabulary))
    bert = BertModel(eelbert.config)
    ours = {n: p.shape for n, p in eelbert.named_parameters()}
    theirs = {n: p.shape for n, p in bert.named_parameters() if not n.startswith("embeddings.word_embeddings")}
    assert ours == theirs


def test_learned_kind_is_plain_bert(vocabulary):
    model = build_model(tiny_config(vocabulary, "learned"))
    assert isinstance(model.embeddings.word_embeddings, torch.nn.Embedding)
    assert model.config.hash_vocabulary is None


def test_cache_and_on_the_fly_vectors_are_identical(vocabulary):
    embedding = build_model(tiny_config(vocabulary)).embeddings.word_embeddings
    ids = torch.tensor([[2, 10, 40, 3], [2, 5, 0, 0]])
    from_cache = embedding(ids)
    on_the_fly = embedding.embed_strings([vocabulary[i] for i in ids.flatten().tolist()]).view_as(from_cache)
    assert torch.equal(from_cache, on_the_fly)


@pytest.mark.parametrize("kind", ["ngram", "learned"])
@pytest.mark.parametrize("task", list(AUTO))
def test_save_then_auto_load_gives_identical_outputs(tmp_path, vocabulary, kind, task):
    torch.manual_seed(0)
    model = build_model(tiny_config(vocabulary, kind), task)
    model.save_pretrained(tmp_path)
    loaded = AUTO[task].from_pretrained(tmp_path)
    assert type(loaded) is CLASSES[task]
    ids = torch.randint(0, len(vocabulary), (3, 7))
    assert torch.equal(output_of(model, ids), output_of(loaded, ids))


def test_checkpoint_holds_no_word_table_and_config_holds_the_vocabulary(tmp_path, vocabulary):
    build_model(tiny_config(vocabulary, mlm_head="tied"), "masked-lm").save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as weights:
        keys = set(weights.keys())
    assert not any("word_embeddings" in key for key in keys)
    assert not any(key.startswith("cls.predictions.decoder.weight") for key in keys)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "eelbert" and config["hash_vocabulary"] == vocabulary


def test_config_holds_one_hash_entry_and_reads_legacy_flat_keys(tmp_path, vocabulary):
    config = tiny_config(vocabulary).to_dict()
    assert config["hash"] == HashConfig().as_dict() and not any(key.startswith("hash_") and key != "hash_vocabulary" for key in config)
    legacy = {k: v for k, v in config.items() if k != "hash"}
    legacy |= {"hash_kind": "ngram", "hash_ngram_min": 2, "hash_ngram_max": 4, "hash_seed": 7}
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    loaded = AutoModel.from_config(AutoConfig.from_pretrained(tmp_path))
    assert loaded.config.hash_config == HashConfig(ngram_min=2, ngram_max=4, seed=7)
    assert loaded.embeddings.word_embeddings.hash_config == HashConfig(ngram_min=2, ngram_max=4, seed=7)


def test_model_layer_never_fetches_a_vocabulary():
    with pytest.raises(EelbertError, match="needs its tokenizer's vocabulary"):
        make_config(TINY, HashConfig())


def test_loaded_table_is_rebuilt_not_left_uninitialised(tmp_path, vocabulary):
    model = build_model(tiny_config(vocabulary))
    model.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path)
    assert torch.equal(loaded.embeddings.word_embeddings.table, model.embeddings.word_embeddings.table)


def test_tied_mlm_head_uses_the_hash_table(vocabulary):
    model = build_model(tiny_config(vocabulary, mlm_head="tied"), "masked-lm").eval()
    decoder = model.cls.predictions.decoder
    assert isinstance(decoder, HashTiedDecoder)
    assert decoder.bias is model.cls.predictions.bias
    hidden = torch.randn(4, TINY.hidden)
    table = model.bert.embeddings.word_embeddings.table
    torch.testing.assert_close(decoder(hidden), hidden @ table.T + decoder.bias)
    vocabulary_sized = [n for n, p in model.named_parameters() if p.shape[0] == len(vocabulary) and p.dim() == 2]
    assert vocabulary_sized == []


def test_untied_mlm_head_has_its_own_trainable_decoder(tmp_path, vocabulary):
    config = tiny_config(vocabulary, mlm_head="untied")
    model = build_model(config, "masked-lm")
    decoder = model.cls.predictions.decoder
    assert isinstance(decoder, torch.nn.Linear) and decoder.weight.shape == (len(vocabulary), TINY.hidden)
    tied_count = parameter_count(build_model(tiny_config(vocabulary, mlm_head="tied"), "masked-lm"))
    assert parameter_count(model) == tied_count + len(vocabulary) * TINY.hidden
    model.save_pretrained(tmp_path)
    ids = torch.randint(0, len(vocabulary), (2, 5))
    assert torch.equal(output_of(model, ids), output_of(AutoModelForMaskedLM.from_pretrained(tmp_path), ids))


def test_mlm_head_defaults_by_embedding_kind(vocabulary):
    assert tiny_config(vocabulary).mlm_head == "untied"
    assert tiny_config(vocabulary, "learned").mlm_head == "tied"


def test_bert_mlm_head_stays_tied_to_the_learned_table(vocabulary):
    model = build_model(tiny_config(vocabulary, "learned"), "masked-lm")
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight


def test_masked_lm_checkpoint_fine_tunes_with_the_encoder_kept(tmp_path, vocabulary):
    pretrained = build_model(tiny_config(vocabulary), "masked-lm")
    pretrained.save_pretrained(tmp_path)
    classifier = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=3)
    for name, tensor in pretrained.bert.encoder.state_dict().items():
        assert torch.equal(classifier.bert.encoder.state_dict()[name], tensor)
    assert classifier.classifier.out_features == 3


def test_hidden_not_divisible_by_heads_is_a_user_error(vocabulary):
    with pytest.raises(EelbertError, match="divisible"):
        make_config(Shape(1, 30, 4, 8), HashConfig(), vocabulary)


def _classifier(vocabulary, pooling, kind="ngram"):
    torch.manual_seed(0)
    return build_model(tiny_config(vocabulary, kind=kind), "sequence-classification", num_labels=3, sentence_vector=pooling).eval()


def test_mean_pooling_feeds_the_pooler_the_mean_of_the_unpadded_states(vocabulary):
    model = _classifier(vocabulary, "mean")
    input_ids = torch.tensor([[2, 7, 8, 9, 3, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0]])
    with torch.no_grad():
        logits = model(input_ids, attention_mask=mask).logits
        states = model.bert(input_ids, attention_mask=mask).last_hidden_state[0, :5]
        pooler = model.bert.pooler
        expected = model.classifier(pooler.activation(pooler.dense(states.mean(dim=0))))
        unpadded = model(input_ids[:, :5], attention_mask=mask[:, :5]).logits
    torch.testing.assert_close(logits[0], expected)
    torch.testing.assert_close(logits, unpadded)  # padding never enters the mean


def test_cls_pooling_is_transformers_own_head_and_mean_pooling_differs(vocabulary):
    cls_model, mean_model = _classifier(vocabulary, "cls"), _classifier(vocabulary, "mean")
    assert parameter_count(cls_model) == parameter_count(mean_model)
    mean_model.load_state_dict(cls_model.state_dict())
    input_ids = torch.tensor([[2, 7, 8, 9, 3]])
    with torch.no_grad():
        reference = BertForSequenceClassification.forward(cls_model, input_ids).logits
        torch.testing.assert_close(cls_model(input_ids).logits, reference)
        assert not torch.allclose(mean_model(input_ids).logits, reference)
        labels = torch.tensor([1])
        loss = mean_model(input_ids, labels=labels).loss
        torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(mean_model(input_ids).logits, labels))


def test_pooling_survives_save_and_load_and_a_bad_value_is_a_user_error(tmp_path, vocabulary):
    model = _classifier(vocabulary, "mean")
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path, "sequence-classification").eval()
    assert loaded.config.sentence_vector == "mean"
    input_ids = torch.tensor([[2, 7, 8, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids).logits, model(input_ids).logits)
    with pytest.raises(EelbertError, match="sentence_vector"):
        tiny_config(vocabulary, sentence_vector="max")


def test_a_config_json_with_the_old_classifier_pooling_key_still_loads(tmp_path, vocabulary):
    """Until issue 21 the field was ``classifier_pooling``: checkpoints saved then keep their head."""
    model = _classifier(vocabulary, "mean")
    model.save_pretrained(tmp_path)
    config_path = tmp_path / "config.json"
    raw = json.loads(config_path.read_text())
    raw["classifier_pooling"] = raw.pop("sentence_vector")
    config_path.write_text(json.dumps(raw))
    loaded = load_model(tmp_path, "sequence-classification").eval()
    assert loaded.config.sentence_vector == "mean" and not hasattr(loaded.config, "classifier_pooling")
    input_ids = torch.tensor([[2, 7, 8, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids).logits, model(input_ids).logits)
    loaded.save_pretrained(tmp_path / "again")  # saved again, it carries the new name only
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert again["sentence_vector"] == "mean" and "classifier_pooling" not in again
    # the old keyword still works where a caller passes it
    assert tiny_config(vocabulary, classifier_pooling="mean").sentence_vector == "mean"


def test_a_plain_hugging_face_bert_fine_tunes_with_mean_pooling(tmp_path, vocabulary):
    """transformers' BERT head reads [CLS] only: mean pooling loads the same weights into ours."""
    from transformers import BertConfig

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocabulary), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(tmp_path)
    model = load_model(tmp_path, "sequence-classification", num_labels=2, sentence_vector="mean")
    assert isinstance(model, EelbertForSequenceClassification) and model.config.sentence_vector == "mean"
    encoder = BertModel.from_pretrained(tmp_path)
    torch.testing.assert_close(model.bert.encoder.layer[0].output.dense.weight, encoder.encoder.layer[0].output.dense.weight)
    assert type(load_model(tmp_path, "sequence-classification", num_labels=2)).__name__ == "BertForSequenceClassification"


@pytest.mark.parametrize("kind", ["ngram", "learned"])
def test_an_fp16_checkpoint_loads_in_fp32_for_training(tmp_path, vocabulary, kind):
    """The GPU track brings encoders back in fp16; fine-tuned as fp16 on the CPU, bert-tiny collapsed
    to the majority class (2026-12-04). Loading gives fp32 weights with the file's values."""
    config = make_config(Shape(1, 16, 2, 32), HashConfig(kind=kind), vocabulary)
    model = build_model(config, "base").to(torch.float16)
    model.save_pretrained(tmp_path / "fp16")
    for task in ("base", "sequence-classification"):
        loaded = load_model(tmp_path / "fp16", task)
        assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    reloaded = load_model(tmp_path / "fp16", "base")
    expected = model.encoder.layer[0].output.dense.weight.float()
    assert torch.equal(reloaded.encoder.layer[0].output.dense.weight, expected)


def test_hash_vector_mlm_head_has_no_vocabulary_sized_output(tmp_path, vocabulary):
    model = build_model(tiny_config(vocabulary, mlm_head="hash-vector"), "masked-lm")
    decoder = model.cls.predictions.decoder
    assert isinstance(decoder, torch.nn.Linear) and decoder.weight.shape == (TINY.hidden, TINY.hidden)
    assert all(len(vocabulary) not in p.shape for p in model.parameters())  # nothing here names an id
    model.save_pretrained(tmp_path)
    ids = torch.randint(0, len(vocabulary), (2, 5))
    assert torch.equal(output_of(model, ids), output_of(AutoModelForMaskedLM.from_pretrained(tmp_path), ids))
    with pytest.raises(EelbertError, match="needs a hash embedding"):
        tiny_config(vocabulary, "learned", mlm_head="hash-vector")


def test_hash_vector_loss_is_one_minus_cosine_to_the_token_hash_vector(vocabulary):
    from eelbert_cli.core.training.masking import IGNORE_INDEX
    from eelbert_cli.core.training.objectives import masked_lm_terms

    model = build_model(tiny_config(vocabulary, mlm_head="hash-vector"), "masked-lm")
    table = model.bert.embeddings.word_embeddings.table
    labels = torch.tensor([5, 9, IGNORE_INDEX, 12])
    exact = table[labels.clamp(min=0)] * 3.0  # the length does not matter, the direction does
    exact[2] = torch.randn(TINY.hidden) * 100  # an ignored position counts for nothing
    loss, correct, count = masked_lm_terms(model, exact, labels)
    assert loss.item() == pytest.approx(0.0, abs=1e-5) and correct.item() == 3 and count.item() == 3
    loss, correct, _ = masked_lm_terms(model, -exact, labels)
    assert loss.item() == pytest.approx(2.0, abs=1e-5) and correct.item() == 0
    untied = build_model(tiny_config(vocabulary, mlm_head="untied"), "masked-lm")
    logits = torch.randn(4, len(vocabulary))
    loss, _, count = masked_lm_terms(untied, logits, labels)
    keep = labels != IGNORE_INDEX
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits[keep], labels[keep]))


def test_frequent_ids_head_ranks_by_count_and_keeps_its_classes_through_save(tmp_path, vocabulary):
    from eelbert_cli.core.model.modeling import frequent_classes, set_frequent_classes

    counts = torch.zeros(len(vocabulary), dtype=torch.long)
    counts[[40, 7, 12, 30]] = torch.tensor([5, 9, 9, 1])  # 7 and 12 tie: id order decides
    assert frequent_classes(counts, 4)[[7, 12, 40, 30, 0]].tolist() == [0, 1, 2, 3, 3]
    model = build_model(tiny_config(vocabulary, mlm_head="frequent-ids", mlm_classes=4), "masked-lm")
    decoder = model.cls.predictions.decoder
    assert isinstance(decoder, torch.nn.Linear) and decoder.weight.shape == (4, TINY.hidden)
    set_frequent_classes(model, counts)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert torch.equal(loaded.cls.predictions.class_of_id, frequent_classes(counts, 4))
    ids = torch.randint(0, len(vocabulary), (2, 5))
    assert torch.equal(output_of(model, ids), output_of(loaded, ids))
    with pytest.raises(EelbertError, match="token counts cover"):
        set_frequent_classes(model, counts[:10])
    with pytest.raises(EelbertError, match="mlm_classes must be between 2"):
        tiny_config(vocabulary, mlm_head="frequent-ids", mlm_classes=len(vocabulary) + 1)
    with pytest.raises(EelbertError, match="sizes the frequent-ids head"):
        tiny_config(vocabulary, mlm_head="untied", mlm_classes=4)


def test_frequent_ids_loss_is_cross_entropy_over_the_token_classes(vocabulary):
    from eelbert_cli.core.model.modeling import set_frequent_classes
    from eelbert_cli.core.training.masking import IGNORE_INDEX
    from eelbert_cli.core.training.objectives import masked_lm_terms

    model = build_model(tiny_config(vocabulary, mlm_head="frequent-ids", mlm_classes=3), "masked-lm")
    counts = torch.zeros(len(vocabulary), dtype=torch.long)
    counts[[20, 21]] = torch.tensor([10, 5])  # classes: 20 -> 0, 21 -> 1, every other id -> 2
    set_frequent_classes(model, counts)
    labels = torch.tensor([20, 21, IGNORE_INDEX, 50, 60])
    logits = torch.randn(5, 3)
    logits[2] = 100.0  # an ignored position counts for nothing
    loss, correct, count = masked_lm_terms(model, logits, labels)
    classes = torch.tensor([0, 1, 2, 2])
    kept = logits[[0, 1, 3, 4]]
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(kept, classes))
    assert correct.item() == (kept.argmax(-1) == classes).sum().item() and count.item() == 4
    rare_guess = torch.tensor([[0.0, 0.0, 9.0]] * 5)  # 50 and 60 are both "a rarer token": the guess is right for both
    assert masked_lm_terms(model, rare_guess, labels)[1].item() == 2
