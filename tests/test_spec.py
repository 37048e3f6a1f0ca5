"""Experiment specs: strict validation with YAML paths in the message, overrides, model forms."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.spec import load_spec, read_spec_mapping, spec_to_yaml
from eelbert_cli.core.targets import resolve_model_config

EXPERIMENTS = Path(__file__).parent.parent / "experiments"


def write_spec(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def spec_error(tmp_path: Path, text: str, overrides: list[str] | None = None) -> str:
    with pytest.raises(EelbertError) as caught:
        load_spec(write_spec(tmp_path, text), overrides)
    return str(caught.value)


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_specs_validate(path):
    spec = load_spec(path)
    assert spec.name == path.stem


SHIPPED = sorted(  # _*.yaml and experiments/_recipes/: shared parts to extend
    p for p in EXPERIMENTS.rglob("*.yaml") if not p.name.startswith("_") and "_recipes" not in p.relative_to(EXPERIMENTS).parts
)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_every_shipped_spec_validates_and_names_its_own_run(path):
    if "baseline" in read_spec_mapping(path):  # `eelbert baseline`'s specs have their own schema
        from eelbert_cli.core.baselines import load_baseline_spec

        spec = load_baseline_spec(path)
    else:
        spec = load_spec(path)
    assert spec.run_dir.name == spec.name and "/" not in spec.name


def test_preset_shorthand_and_defaults(tmp_path):
    spec = load_spec(write_spec(tmp_path, "name: a\nmodel: uno-eelbert\n"))
    assert spec.model.preset == "uno-eelbert"
    assert spec.run_dir == Path("runs/a")
    assert spec.model.hash_config.kind == "ngram" and spec.model.shape.layers == 1


def test_preset_hash_fields_merge_over_the_preset(tmp_path):
    spec = load_spec(write_spec(tmp_path, "name: a\nmodel: {preset: bert-tiny, hash: {kind: token}}\n"))
    assert spec.model.hash_config.kind == "token"
    spec = load_spec(write_spec(tmp_path, "name: a\nmodel: {preset: eelbert-tiny, hash: {ngram_max: 4}}\n"))
    assert (spec.model.hash_config.kind, spec.model.hash_config.ngram_max) == ("ngram", 4)


def test_unknown_key_names_its_yaml_path(tmp_path):
    message = spec_error(tmp_path, "name: a\nmodel: {preset: eelbert-tiny, hash: {ngram_mx: 4}}\n")
    assert "model.hash.ngram_mx" in message and "unknown key" in message


def test_wrong_type_names_its_yaml_path(tmp_path):
    message = spec_error(tmp_path, "name: a\nmodel: {layers: two, hidden: 8, heads: 2, ffn: 8}\n")
    assert "model.layers" in message and "integer" in message


def test_string_number_is_not_silently_coerced(tmp_path):
    assert "model.hidden" in spec_error(tmp_path, "name: a\nmodel: {preset: eelbert-tiny, hidden: '128'}\n")


@pytest.mark.parametrize(
    "model, expected",
    [
        ("{layers: 2, hidden: 100, heads: 3, ffn: 64}", "divisible"),
        ("{preset: eelbert-tiny, hash: {ngram_min: 4, ngram_max: 2}}", "must not exceed"),
        ("{layers: -1, hidden: 8, heads: 2, ffn: 8}", "model.layers"),
        ("{preset: eelbert-tiny, hash: {scale: -2.0}}", "model.hash.scale"),
        ("{preset: gpt-tiny}", "valid presets"),
        ("{hidden: 8}", "give all of layers, hidden, heads and ffn"),
        ("{checkpoint: somewhere, layers: 2}", "checkpoint fixes the architecture"),
    ],
)
def test_impossible_values_are_errors(tmp_path, model, expected):
    assert expected in spec_error(tmp_path, f"name: a\nmodel: {model}\n")


def test_missing_required_keys(tmp_path):
    message = spec_error(tmp_path, "output_dir: x\n")
    assert "name: Field required" in message and "model: Field required" in message


def test_model_string_that_is_neither_preset_nor_checkpoint(tmp_path):
    assert "neither a preset" in spec_error(tmp_path, "name: a\nmodel: no-such-thing\n")


def test_file_level_errors(tmp_path):
    with pytest.raises(EelbertError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(EelbertError, match="not UTF-8"):
        load_spec(bad)
    with pytest.raises(EelbertError, match="not valid YAML"):
        load_spec(write_spec(tmp_path, "name: [unclosed\n"))
    with pytest.raises(EelbertError, match="mapping"):
        load_spec(write_spec(tmp_path, "- just\n- a list\n"))


def test_set_overrides_are_type_checked(tmp_path):
    path = write_spec(tmp_path, "name: a\nmodel: eelbert-tiny\n")
    spec = load_spec(path, ["model.hash.ngram_max=4", "model.mlm_head=untied", "output_dir=elsewhere"])
    assert spec.model.hash_config.ngram_max == 4 and spec.model.mlm_head == "untied"
    assert spec.run_dir == Path("elsewhere")
    with pytest.raises(EelbertError, match="model.hash.ngram_max"):
        load_spec(path, ["model.hash.ngram_max=lots"])
    with pytest.raises(EelbertError, match="dotted.key=value"):
        load_spec(path, ["model.hash.ngram_max"])
    with pytest.raises(EelbertError, match="model.nonsense"):
        load_spec(path, ["model.nonsense=1"])
    assert load_spec(path, ["model.mlm_head=frequent-ids", "model.mlm_classes=512"]).model.mlm_classes == 512
    with pytest.raises(EelbertError, match="set mlm_head: frequent-ids"):
        load_spec(path, ["model.mlm_classes=512"])


def test_resolved_config_carries_shape_hash_and_vocabulary(tmp_path, fixture_vocab_path, vocabulary):
    spec = load_spec(EXPERIMENTS / "eelbert-custom.yaml", [f"tokenizer={fixture_vocab_path}"])
    config = resolve_model_config(spec.model, spec.tokenizer)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (3, 192, 3)
    assert (config.hash_config.ngram_min, config.hash_config.ngram_max, config.hash_config.values) == (2, 4, "ternary")
    assert config.max_position_embeddings == 256
    assert config.hash_vocabulary == vocabulary and config.preset is None


def test_resolved_spec_round_trips(tmp_path):
    spec = load_spec(EXPERIMENTS / "eelbert-tiny.yaml", ["model.hash.seed=3"])
    again = load_spec(write_spec(tmp_path, spec_to_yaml(spec)))
    assert again == spec and yaml.safe_load(spec_to_yaml(spec))["model"]["hash"]["seed"] == 3


def test_extends_merges_a_base_spec_deeply(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\nmodel: {preset: eelbert-tiny, hash: {ngram_max: 4, seed: 2}}\nseed: 7\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\nmodel: {hash: {seed: 5}}\n")
    spec = load_spec(child)
    assert (spec.name, spec.seed) == ("child", 7)
    assert (spec.model.preset, spec.model.hash_config.ngram_max, spec.model.hash_config.seed) == ("eelbert-tiny", 4, 5)
    (tmp_path / "loop.yaml").write_text("extends: loop.yaml\nname: x\nmodel: bert-tiny\n")
    with pytest.raises(EelbertError, match="extends itself"):
        load_spec(tmp_path / "loop.yaml")


# --------------------------------------------- finetune.sentence_vector and its old name, pooling
RECORDS = Path(__file__).parent.parent / "docs" / "results"
GPU_CHECKPOINTS = Path(__file__).parent.parent.parent / "shared" / "gpu-runs" / "2026-12-04-h200" / "call2"


@pytest.fixture
def fresh_warnings():
    from eelbert_cli.core import console

    console._WARNED.clear()
    yield
    console._WARNED.clear()


def test_finetune_pooling_is_a_deprecated_alias_of_sentence_vector(tmp_path, caplog, fresh_warnings):
    with caplog.at_level("WARNING", logger="eelbert"):
        spec = load_spec(write_spec(tmp_path, "name: a\nmodel: bert-tiny\nfinetune: {pooling: mean}\n"))
    assert spec.finetune.sentence_vector == "mean"
    assert "finetune.pooling is deprecated" in caplog.text and "sentence_vector" in caplog.text
    assert "pooling" not in spec.finetune.model_dump()  # the record is written under the new name
    assert "sentence_vector: mean" in spec_to_yaml(spec)
    overridden = load_spec(write_spec(tmp_path, "name: a\nmodel: bert-tiny\nfinetune: {}\n"), ["finetune.pooling=mean"])
    assert overridden.finetune.sentence_vector == "mean"


def test_the_new_key_warns_nothing_and_a_conflict_with_the_old_one_is_refused(tmp_path, caplog, fresh_warnings):
    with caplog.at_level("WARNING", logger="eelbert"):
        spec = load_spec(write_spec(tmp_path, "name: a\nmodel: bert-tiny\nfinetune: {sentence_vector: mean}\n"))
    assert spec.finetune.sentence_vector == "mean" and "deprecated" not in caplog.text
    both = load_spec(write_spec(tmp_path, "name: a\nmodel: bert-tiny\nfinetune: {sentence_vector: mean, pooling: mean}\n"))
    assert both.finetune.sentence_vector == "mean"
    message = spec_error(tmp_path, "name: a\nmodel: bert-tiny\nfinetune: {sentence_vector: mean, pooling: cls}\n")
    assert "finetune" in message and "sentence_vector" in message
    assert "sentence_vector" in spec_error(tmp_path, "name: a\nmodel: bert-tiny\nfinetune: {sentence_vector: max}\n")


@pytest.mark.parametrize("path", sorted(RECORDS.rglob("spec.resolved.yaml")), ids=lambda p: str(p.relative_to(RECORDS)))
def test_kept_run_records_still_load(path):
    """docs/results keeps resolved specs written before the rename (finetune.pooling)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = load_spec(path)
    old = (raw.get("finetune") or {}).get("pooling")
    if old is not None:
        assert spec.finetune.sentence_vector == old


@pytest.mark.skipif(not GPU_CHECKPOINTS.is_dir(), reason="the shared GPU checkpoints are not on this machine")
def test_gpu_checkpoints_with_the_old_config_key_still_load():
    from eelbert_cli.core.targets import checkpoint_config

    checkpoints = sorted(GPU_CHECKPOINTS.glob("*/checkpoint"))
    assert checkpoints
    for checkpoint in checkpoints:
        config = checkpoint_config(checkpoint)
        assert config.sentence_vector == (yaml.safe_load((checkpoint / "config.json").read_text()).get("classifier_pooling") or "cls")


def test_the_rename_leaves_run_fingerprints_as_they_were():
    """`eelbert run` skips stages whose fingerprint is recorded: a run finished before the rename
    (its finetune section hashed with ``pooling``) must not fine-tune again."""
    import hashlib
    import json

    from eelbert_cli.core.pipeline import fingerprint
    from eelbert_cli.core.spec import validate_spec

    spec = validate_spec({"name": "a", "model": "bert-tiny", "finetune": {"sentence_vector": "mean"}})
    data = spec.model_dump(mode="json")
    before = {key: value for key, value in data["finetune"].items() if key != "sentence_vector"} | {"pooling": "mean"}
    before["grid"] = before["grid"] | {"epochs": [3]}  # the default before `epochs: auto`, hashed as it was
    relevant = {"model": data["model"], "tokenizer": data["tokenizer"], "seed": data["seed"], "finetune": before}
    assert fingerprint(spec, "finetune") == hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]
