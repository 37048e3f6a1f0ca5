"""Masked-LM pretraining: masking, schedule, data order, the objective, and whole runs (resume, signals, DDP)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM
from typer.testing import CliRunner

from eelbert_cli.cli import app
from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.config import make_config
from eelbert_cli.core.model.hashing import HashConfig
from eelbert_cli.core.model.modeling import build_model, load_model
from eelbert_cli.core.model.presets import Shape
from eelbert_cli.core.spec import PretrainSpec, validate_spec
from eelbert_cli.core.training.masking import IGNORE_INDEX, choose_positions, mask_tokens, static_count
from eelbert_cli.core.training.objectives import MaskedLMObjective
from eelbert_cli.core.training.optim import lr_multiplier
from eelbert_cli.core.training.order import BatchOrder
from eelbert_cli.core.training.pretrain import make_optimizer, pretrain
from tests.conftest import TINY_MODEL, metrics, spec_dict, write_spec

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("private_cache")


# ----------------------------------------------------------------------------------- masking

def test_masking_rate_specials_and_80_10_10(masking, vocabulary):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, len(vocabulary), (400, 128), generator=generator)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    corrupted, labels = mask_tokens(ids, 0.15, masking, generator)
    chosen = labels != IGNORE_INDEX
    assert 0.14 < chosen.float().mean().item() < 0.16
    assert not chosen[:, 0].any() and not chosen[:, -1].any()
    assert torch.equal(labels[chosen], ids[chosen]) and torch.equal(corrupted[~chosen], ids[~chosen])
    as_mask = (corrupted[chosen] == masking.mask_id).float().mean().item()
    unchanged = (corrupted[chosen] == ids[chosen]).float().mean().item()
    assert 0.78 < as_mask < 0.82 and 0.09 < unchanged < 0.12  # 10% kept (+ random hits of the same id)
    assert not masking.special[corrupted[chosen & (corrupted != masking.mask_id)]].any()


def test_whole_word_masking_masks_all_pieces_of_a_word(masking, vocabulary):
    un, believ, able, cat = (vocabulary.index(t) for t in ("un", "##believ", "##able", "cat"))
    ids = torch.tensor([[2] + [un, believ, able, cat] * 30 + [3]])
    chosen = choose_positions(ids, 0.5, masking, torch.Generator().manual_seed(1), whole_word=True)
    words = chosen[0, 1:-1].view(30, 4)
    assert torch.equal(words[:, 0], words[:, 1]) and torch.equal(words[:, 0], words[:, 2])
    assert words[:, 0].any() and not words[:, 0].all()


def test_static_masking_predicts_the_same_number_of_positions_every_batch(masking, vocabulary):
    counts, rates = set(), []
    for seed in range(5):
        generator = torch.Generator().manual_seed(seed)
        ids = torch.randint(5, len(vocabulary), (8, 64), generator=generator)
        ids[:, 0], ids[:, -1], ids[:, 30] = 2, 3, 3  # [CLS] ... [SEP] ... [SEP]
        corrupted, labels = mask_tokens(ids, 0.15, masking, generator, static=True)
        chosen = labels != IGNORE_INDEX
        counts.add(int(chosen.sum()))
        rates.append(chosen[:, 1:-1].float().mean().item())
        assert not chosen[:, [0, 30, 63]].any()
        assert chosen.sum(dim=1).min() > 0  # spread over the rows, not piled into one
    assert counts == {static_count((8, 64), 0.15)} == {round(0.15 * 8 * 62)}
    assert 0.14 < sum(rates) / len(rates) < 0.16


def test_static_whole_word_masking_keeps_words_together_but_one(masking, vocabulary):
    un, believ, able, cat = (vocabulary.index(t) for t in ("un", "##believ", "##able", "cat"))
    ids = torch.tensor([[2] + [un, believ, able, cat] * 30 + [3]] * 2)
    chosen = choose_positions(ids, 0.3, masking, torch.Generator().manual_seed(1), whole_word=True, static=True)
    assert int(chosen.sum()) == static_count(ids.shape, 0.3)
    words = chosen[:, 1:-1].reshape(60, 4)[:, :3]
    split_words = (words.any(dim=1) & ~words.all(dim=1)).sum()
    assert split_words <= 1  # only the word at the cut can be partly chosen


def test_masking_is_a_function_of_the_generator_seed(masking):
    ids = torch.randint(5, 60, (4, 32))
    first = mask_tokens(ids, 0.15, masking, torch.Generator().manual_seed(5))
    again = mask_tokens(ids, 0.15, masking, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


# ------------------------------------------------------------------------ schedule and order
def test_lr_schedule_warms_up_then_decays_to_the_floor():
    assert lr_multiplier(0.05, 0.1, "linear", 0.0) == pytest.approx(0.5)
    assert lr_multiplier(0.1, 0.1, "linear", 0.0) == pytest.approx(1.0)
    assert lr_multiplier(0.55, 0.1, "linear", 0.0) == pytest.approx(0.5)
    assert lr_multiplier(1.0, 0.1, "linear", 0.1) == pytest.approx(0.1)
    assert lr_multiplier(0.55, 0.1, "cosine", 0.0) == pytest.approx(0.5)
    assert lr_multiplier(0.9, 0.0, "constant", 0.0) == 1.0


def test_batch_order_splits_ranks_and_microsteps_and_covers_each_epoch():
    order = BatchOrder(num_rows=48, batch_size=3, grad_accum=2, world_size=2, seed=0)
    seen = [order.rows(step, micro, rank) for step in range(4) for micro in range(2) for rank in range(2)]
    flat = torch.tensor([int(r) for rows in seen for r in rows])
    assert sorted(flat.tolist()) == list(range(48))  # 4 steps x 12 rows = one epoch, no repeats
    assert (order.rows(3, 1, 1) == BatchOrder(48, 3, 2, 2, 0).rows(3, 1, 1)).all()


def test_weight_decay_only_on_matrices(vocabulary):
    model = build_model(make_config(Shape(1, 16, 2, 32), HashConfig(), vocabulary), "masked-lm")
    optimizer = make_optimizer(model, PretrainSpec(weight_decay=0.1), torch.device("cpu"))
    decayed, plain = optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() == 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])


@pytest.mark.parametrize("kind", ["ngram", "learned"])
def test_masked_only_loss_equals_full_vocabulary_loss(vocabulary, masking, kind):
    """Projecting only the masked positions changes the cost, not the loss."""
    torch.manual_seed(0)
    model = build_model(make_config(Shape(1, 16, 2, 32), HashConfig(kind=kind), vocabulary), "masked-lm").eval()
    ids = torch.randint(5, len(vocabulary), (3, 20))
    inputs, labels = mask_tokens(ids, 0.3, masking, torch.Generator().manual_seed(0))
    ours, _, count = MaskedLMObjective(model)(inputs, labels)
    reference = model(input_ids=inputs, labels=labels).loss
    torch.testing.assert_close(ours, reference)
    assert count == (labels != IGNORE_INDEX).sum()


# -------------------------------------------------------------------------------- whole runs
def test_pretrain_cli_learns_and_writes_a_loadable_checkpoint(tmp_path, corpus, fixture_vocab_path):
    spec = write_spec(tmp_path, spec_dict(tmp_path, corpus, fixture_vocab_path, budget={"steps": 30}, lr=1e-2))
    result = runner.invoke(app, ["pretrain", str(spec)])
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "run"
    rows = metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 31))
    assert {"step", "tokens", "loss", "lr", "tokens_per_second"} <= set(rows[0])
    assert sum(r["loss"] for r in rows[-5:]) < sum(r["loss"] for r in rows[:5]) - 5 * 0.5
    results = json.loads((run / "pretrain_results.json").read_text())
    assert results["steps"] == 30 and results["tokens"] == 30 * 4 * 16 and results["heldout_masked_tokens"] > 0
    model = AutoModelForMaskedLM.from_pretrained(run / "checkpoint")
    assert type(model).__name__ == "EelbertForMaskedLM"
    assert (run / "checkpoint" / "tokenizer.json").is_file() and (run / "spec.resolved.yaml").is_file()
    assert len(list((run / "checkpoints").iterdir())) == 2  # keep_checkpoints


def test_paused_and_resumed_run_matches_an_uninterrupted_one(tmp_path, corpus, fixture_vocab_path):
    straight = validate_spec(spec_dict(tmp_path / "a", corpus, fixture_vocab_path))
    pretrain(straight, progress=False)
    split = validate_spec(spec_dict(tmp_path / "b", corpus, fixture_vocab_path))
    paused = pretrain(split, stop_after_steps=5, progress=False)
    assert paused.paused_at_step == 5 and paused.checkpoint.name == "step-00000005"
    pretrain(split, resume=True, progress=False)
    a = load_file(tmp_path / "a" / "run" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "b" / "run" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert metrics(tmp_path / "a" / "run")[-1]["loss"] == metrics(tmp_path / "b" / "run")[-1]["loss"]


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, corpus, fixture_vocab_path, monkeypatch):
    calls = {"n": 0}
    real_forward = MaskedLMObjective.forward

    def poisoned(self, input_ids, labels):
        calls["n"] += 1
        loss, correct, count = real_forward(self, input_ids, labels)
        return (loss * float("nan") if calls["n"] >= 7 else loss), correct, count

    monkeypatch.setattr(MaskedLMObjective, "forward", poisoned)
    spec = validate_spec(spec_dict(tmp_path, corpus, fixture_vocab_path, checkpoint_every=2))
    with pytest.raises(EelbertError, match="NaN") as caught:
        pretrain(spec, progress=False)
    assert "step-00000006" in str(caught.value)
    kept = load_file(tmp_path / "run" / "checkpoints" / "step-00000006" / "model" / "model.safetensors")
    assert all(torch.isfinite(t).all() for t in kept.values())
    assert not (tmp_path / "run" / "checkpoints" / "step-00000008").exists()


def test_user_errors_exit_2(tmp_path, corpus, fixture_vocab_path):
    too_long = write_spec(tmp_path, spec_dict(tmp_path, corpus, fixture_vocab_path, seq_len=128))
    result = runner.invoke(app, ["pretrain", str(too_long)])
    assert result.exit_code == 2 and "128" in result.stderr and "Traceback" not in result.stderr
    ok = write_spec(tmp_path, spec_dict(tmp_path, corpus, fixture_vocab_path, budget={"steps": 2}))
    assert runner.invoke(app, ["pretrain", str(ok)]).exit_code == 0
    again = runner.invoke(app, ["pretrain", str(ok)])
    assert again.exit_code == 2 and "--resume" in again.stderr
    no_section = tmp_path / "plain.yaml"
    no_section.write_text("name: x\nmodel: eelbert-tiny\n")
    assert "no 'pretrain' section" in runner.invoke(app, ["pretrain", str(no_section)]).stderr


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "eelbert_cli.cli", *args]


def test_sigterm_saves_a_checkpoint_and_the_run_resumes(tmp_path, corpus, fixture_vocab_path):
    spec = write_spec(tmp_path, spec_dict(tmp_path, corpus, fixture_vocab_path, budget={"steps": 100000}, checkpoint_every=100000))
    process = subprocess.Popen(_cli("pretrain", str(spec)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=os.environ.copy())
    metrics_file = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics_file.exists() and metrics_file.read_text().count("\n") >= 2):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2, stderr
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    [saved] = (tmp_path / "run" / "checkpoints").iterdir()
    stopped_at = int(saved.name.split("-")[1])
    resumed = subprocess.run(_cli("pretrain", str(spec), "--resume", "--stop-after-steps", "2"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"paused at step {stopped_at + 2}" in resumed.stdout.replace("\n", " ")


def test_torchrun_two_cpu_processes_agree_and_write_once(tmp_path, corpus, fixture_vocab_path):
    spec = write_spec(tmp_path, spec_dict(tmp_path, corpus, fixture_vocab_path, budget={"steps": 6}, checkpoint_every=3))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "eelbert_cli.cli", "pretrain", str(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    run = tmp_path / "run"
    results = json.loads((run / "pretrain_results.json").read_text())
    assert results["world_size"] == 2 and results["ranks_agree"] is True
    assert results["tokens"] == 6 * 2 * 4 * 16  # tokens count every rank
    rows = metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 7))  # one writer
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-00000003", "step-00000006"]
    AutoModelForMaskedLM.from_pretrained(run / "checkpoint")


def test_precision_and_compile_choices_on_cpu(vocabulary, capsys):
    from eelbert_cli.core.training.precision import autocast_dtype

    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16 and autocast_dtype("fp16", cpu) is torch.float16
    model = build_model(make_config(Shape(1, 16, 2, 32), HashConfig(), vocabulary), "masked-lm")
    objective = MaskedLMObjective(model, compile_encoder=True)
    captured = capsys.readouterr()
    assert "training eagerly" in captured.out + captured.err
    ids = torch.randint(5, len(vocabulary), (2, 8))
    labels = torch.full_like(ids, IGNORE_INDEX)
    labels[:, 3] = ids[:, 3]
    loss, _, count = objective(ids, labels)
    assert torch.isfinite(loss) and count == 2


def test_torchrun_minutes_budget_ranks_stop_together_with_one_clock(tmp_path, corpus, fixture_vocab_path):
    """A wall-clock budget is read from one clock on every rank: same last step, same LR, same weights."""
    spec = write_spec(tmp_path, spec_dict(tmp_path, corpus, fixture_vocab_path, budget={"minutes": 0.05}, checkpoint_every=100000))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "eelbert_cli.cli", "pretrain", str(spec)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "pretrain_results.json").read_text())
    assert results["ranks_agree"] is True and results["steps"] >= 1
    assert results["tokens"] == results["steps"] * 2 * 4 * 16


def _paused_then_resumed_equals_straight(tmp_path, corpus, vocab, **settings) -> dict:
    straight = validate_spec(spec_dict(tmp_path / "a", corpus, vocab, **settings))
    pretrain_run = pretrain(straight, progress=False)
    split = validate_spec(spec_dict(tmp_path / "b", corpus, vocab, **settings))
    pretrain(split, stop_after_steps=5, progress=False)
    pretrain(split, resume=True, progress=False)
    a = load_file(tmp_path / "a" / "run" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "b" / "run" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return pretrain_run.results


def test_resume_is_exact_with_gradient_accumulation_and_whole_word_masking(tmp_path, corpus, fixture_vocab_path):
    _paused_then_resumed_equals_straight(tmp_path, corpus, fixture_vocab_path, grad_accum=2, whole_word_masking=True)


def test_fp16_resume_is_exact(tmp_path, corpus, fixture_vocab_path):
    results = _paused_then_resumed_equals_straight(tmp_path, corpus, fixture_vocab_path, precision="fp16")
    assert results["precision"] == "float16"


def test_fp16_resume_continues_from_the_saved_loss_scale(tmp_path, corpus, fixture_vocab_path):
    spec = validate_spec(spec_dict(tmp_path, corpus, fixture_vocab_path, precision="fp16", checkpoint_every=2))
    pretrain(spec, stop_after_steps=2, progress=False)
    state_file = tmp_path / "run" / "checkpoints" / "step-00000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["grad_scaler"]["scale"] > 1024.0 and "_growth_tracker" in state["grad_scaler"]
    state["grad_scaler"]["scale"] = 1024.0  # as if the scale had backed off further: a resumed run must not reset it
    state_file.write_text(json.dumps(state))
    pretrain(spec, resume=True, progress=False)
    final = json.loads(sorted((tmp_path / "run" / "checkpoints").iterdir())[-1].joinpath("trainer_state.json").read_text())
    assert final["grad_scaler"]["scale"] <= 1024.0


def test_pretrain_dropout_applies_to_a_model_loaded_from_a_checkpoint(tmp_path, corpus, fixture_vocab_path):
    first = validate_spec(spec_dict(tmp_path / "a", corpus, fixture_vocab_path, budget={"steps": 2}))
    pretrain(first, progress=False)
    data = spec_dict(tmp_path / "b", corpus, fixture_vocab_path, budget={"steps": 2}, dropout=0.0)
    data["model"] = {"checkpoint": str(tmp_path / "a" / "run" / "checkpoint")}
    pretrain(validate_spec(data), progress=False)
    config = json.loads((tmp_path / "b" / "run" / "checkpoint" / "config.json").read_text())
    assert config["hidden_dropout_prob"] == 0.0 and config["attention_probs_dropout_prob"] == 0.0


@pytest.mark.parametrize("loop", ["host", "device"])
def test_the_hash_vector_head_pretrains_and_resumes_exactly(tmp_path, corpus, fixture_vocab_path, loop):
    """mlm_head hash-vector (the target without exact ids): the cosine loss falls, a paused run resumes
    bit for bit, and the encoder fine-tunes like any other (its head is pretraining-only)."""
    settings = {"budget": {"steps": 24}, "lr": 1e-2, "loop": loop, "dropout": 0.0}
    straight, split = (validate_spec({**spec_dict(tmp_path / name, corpus, fixture_vocab_path, **settings),
                                      "model": {**TINY_MODEL, "dropout": 0.0, "mlm_head": "hash-vector"}}) for name in "ab")
    pretrain(straight, progress=False)
    rows = metrics(tmp_path / "a" / "run")
    assert all(0.0 <= r["loss"] <= 2.0 for r in rows) and sum(r["loss"] for r in rows[-4:]) < sum(r["loss"] for r in rows[:4])
    pretrain(split, stop_after_steps=10, progress=False)
    pretrain(split, resume=True, progress=False)
    a = load_file(tmp_path / "a" / "run" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "b" / "run" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert a["cls.predictions.decoder.weight"].shape == (TINY_MODEL["hidden"], TINY_MODEL["hidden"])
    classifier = load_model(tmp_path / "a" / "run" / "checkpoint", "sequence-classification", num_labels=2)
    assert not any(name.startswith("cls.") for name in classifier.state_dict())


@pytest.mark.parametrize("loop", ["host", "device"])
def test_the_frequent_ids_head_takes_its_classes_from_the_corpus_and_resumes_exactly(tmp_path, corpus, fixture_vocab_path, loop):
    """mlm_head frequent-ids: the classes are the training rows' most frequent tokens (special tokens
    never), the loss falls, a paused run resumes bit for bit with the same classes."""
    from eelbert_cli.core.data.packing import PackedDataset
    from eelbert_cli.core.model.modeling import frequent_classes

    settings = {"budget": {"steps": 24}, "lr": 1e-2, "loop": loop, "dropout": 0.0}
    model = {**TINY_MODEL, "dropout": 0.0, "mlm_head": "frequent-ids", "mlm_classes": 8}
    straight, split = (validate_spec({**spec_dict(tmp_path / name, corpus, fixture_vocab_path, **settings), "model": model})
                       for name in "ab")
    outcome = pretrain(straight, progress=False)
    rows = metrics(tmp_path / "a" / "run")
    assert sum(r["loss"] for r in rows[-4:]) < sum(r["loss"] for r in rows[:4])
    pretrain(split, stop_after_steps=10, progress=False)
    pretrain(split, resume=True, progress=False)
    a = load_file(tmp_path / "a" / "run" / "checkpoint" / "model.safetensors")
    b = load_file(tmp_path / "b" / "run" / "checkpoint" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    counts = PackedDataset(outcome.results["packed_data"], "train").token_counts()
    assert torch.equal(a["cls.predictions.class_of_id"], frequent_classes(torch.from_numpy(counts), 8))
    vocabulary = fixture_vocab_path.read_text().splitlines()
    top = [vocabulary[i] for i in counts.argsort()[::-1][:7]]
    assert "the" in top and not {"[CLS]", "[SEP]", "[PAD]", "[MASK]"} & set(top)  # never masked, never a class
    assert a["cls.predictions.decoder.weight"].shape == (8, TINY_MODEL["hidden"])


def test_a_signal_after_the_loops_last_look_is_passed_on_not_swallowed(tmp_path, corpus, fixture_vocab_path, monkeypatch):
    """SIGTERM during the last step (after the loop's check) used to end the command with exit 0 and let
    `eelbert run` go on to its next stage; now the run completes its records, then the signal reaches
    the CLI's handler: exit 2."""
    from eelbert_cli.core.training import pretrain as pretraining

    real_run = pretraining.PretrainLoop.run

    def run_then_signal(self, stop_after_steps, bar):
        paused = real_run(self, stop_after_steps, bar)
        os.kill(os.getpid(), signal.SIGTERM)  # the loop has looked at the flag for the last time
        return paused

    monkeypatch.setattr(pretraining.PretrainLoop, "run", run_then_signal)
    result = runner.invoke(app, ["pretrain", str(write_spec(tmp_path, spec_dict(tmp_path, corpus, fixture_vocab_path)))])
    assert result.exit_code == 2 and "interrupted" in result.stderr
    assert (tmp_path / "run" / "pretrain_results.json").is_file() and (tmp_path / "run" / "checkpoint" / "model.safetensors").is_file()
