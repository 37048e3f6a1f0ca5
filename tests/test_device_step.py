"""The device loop (core/training/device_step.py): batches as a pure function of the step, no host
sync inside a step, no graph break when compiled, exact resume, and warmup-stable-decay snapshots
that leave the main run bit-identical. CUDA graphs themselves need a GPU (scripts/gpu-run.sh)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.utils._python_dispatch import TorchDispatchMode

from eelbert_cli.core.errors import EelbertError
from eelbert_cli.core.model.config import make_config
from eelbert_cli.core.model.hashing import HashConfig
from eelbert_cli.core.model.modeling import build_model, load_model
from eelbert_cli.core.model.presets import Shape
from eelbert_cli.core.spec import validate_spec
from eelbert_cli.core.training.device_step import DeviceBatches, DeviceMaskedLMStep, counter_uniform
from eelbert_cli.core.training.optim import lr_multiplier, wsd_multiplier
from eelbert_cli.core.training.order import BatchOrder
from eelbert_cli.core.training.pretrain import pretrain
from tests.conftest import metrics, spec_dict

pytestmark = pytest.mark.usefixtures("private_cache")


def packed_rows(vocabulary: list[str], rows: int = 40, length: int = 32) -> np.ndarray:
    """Rows shaped like packed data: [CLS] words... [SEP], word ids drawn from the non-special vocabulary."""
    rng = np.random.default_rng(0)
    tokens = rng.integers(5, len(vocabulary), size=(rows, length)).astype(np.uint16)
    tokens[:, 0], tokens[:, -1] = vocabulary.index("[CLS]"), vocabulary.index("[SEP]")
    return tokens


def tiny_model(vocabulary: list[str], mlm_head: str | None = None):
    config = make_config(Shape(1, 32, 2, 64), HashConfig(), vocabulary, mlm_head=mlm_head, hidden_dropout_prob=0.0,
                         attention_probs_dropout_prob=0.0, mlm_classes=16 if mlm_head == "frequent-ids" else None)
    torch.manual_seed(0)
    return build_model(config, "masked-lm")


class HostSyncs(TorchDispatchMode):
    """Records the ATen ops that make the host wait for a device: reading a value back, and the ops
    whose output shape depends on the data (nonzero, boolean masks)."""

    READS = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.masked_select.default", "aten.item.default"}

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        boolean_index = name.startswith("aten.index") and any(
            isinstance(arg, (list, tuple)) and any(getattr(t, "dtype", None) == torch.bool for t in arg if t is not None) for arg in args
        )
        if name in self.READS or boolean_index:
            self.ops.append(name)
        return func(*args, **(kwargs or {}))


def test_counter_uniform_is_uniform_and_the_same_for_the_same_counters():
    positions = torch.arange(200_000)
    draws = counter_uniform(torch.tensor(12345), positions, 0)
    assert draws.min() >= 0 and draws.max() < 1 and abs(draws.mean().item() - 0.5) < 0.005
    assert torch.histc(draws, bins=10, min=0, max=1).div(len(draws)).sub(0.1).abs().max() < 0.005
    assert torch.equal(draws, counter_uniform(torch.tensor(12345), positions, 0))
    assert not torch.equal(draws, counter_uniform(torch.tensor(12345), positions, 1))  # streams differ
    assert not torch.equal(draws, counter_uniform(torch.tensor(12346), positions, 0))  # keys differ


def test_device_batches_are_a_pure_function_of_the_step_and_follow_batch_order(vocabulary, masking):
    tokens = packed_rows(vocabulary)
    batches = DeviceBatches(tokens, batch_size=16, seed=3, mask_rate=0.15, masking=masking, device=torch.device("cpu"))
    order = BatchOrder(len(tokens), 16, 1, 1, 3)
    for step in (0, 2, 7, 2):  # 40 rows, 16 a step: steps 2 and 7 straddle an epoch boundary; 2 again after 7
        batches.set_step(step)
        corrupted, chosen, labels = batches.make()
        original = torch.from_numpy(tokens[order.rows(step, 0, 0)].astype(np.int64))
        flat = original.view(-1)
        assert len(chosen) == batches.masked_count == round(0.15 * 16 * 30)
        assert torch.equal(labels, flat[chosen])  # the labels are the rows BatchOrder picks, at the chosen positions
        kept = torch.ones_like(flat, dtype=torch.bool)
        kept[chosen] = False
        assert torch.equal(corrupted.view(-1)[kept], flat[kept])
        assert not masking.special[flat[chosen]].any()  # [CLS]/[SEP] are never predicted
        again = batches.make()
        assert all(torch.equal(a, b) for a, b in zip((corrupted, chosen, labels), again, strict=True))


def test_device_batches_corrupt_80_10_10(vocabulary, masking):
    batches = DeviceBatches(packed_rows(vocabulary, rows=400, length=64), 200, 0, 0.15, masking, torch.device("cpu"))
    masked = random = kept = 0
    for step in range(4):
        batches.set_step(step)
        corrupted, chosen, labels = batches.make()
        inputs = corrupted.view(-1)[chosen]
        masked += (inputs == masking.mask_id).sum().item()
        kept += (inputs == labels).sum().item()
        random += ((inputs != masking.mask_id) & (inputs != labels)).sum().item()
    total = masked + random + kept
    assert abs(masked / total - 0.8) < 0.02 and abs(kept / total - 0.1) < 0.015 and abs(random / total - 0.1) < 0.015


@pytest.mark.parametrize("mlm_head", ["untied", "hash-vector", "frequent-ids"])
def test_a_device_step_makes_no_host_sync(vocabulary, masking, mlm_head):
    model = tiny_model(vocabulary, mlm_head).train()
    batches = DeviceBatches(packed_rows(vocabulary), 8, 0, 0.15, masking, torch.device("cpu"))
    step = DeviceMaskedLMStep(model, batches, dtype=None)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)  # fused: the GPU track's optimizer
    batches.set_step(1)  # host side, before the step: may upload an epoch's order
    with HostSyncs() as syncs:
        step.run(capture=False)
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1.0, foreach=True)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    assert syncs.ops == []
    loss, correct, count = step.take_sums()
    assert loss > 0 and count == batches.masked_count and 0 <= correct <= count


def test_passes_before_a_capture_leave_no_gradient_or_log_sum(vocabulary, masking):
    """The warm-up passes before a CUDA graph capture are not training steps: what they computed must
    not reach the optimizer or the log (every real step, the first included, is then a replay)."""
    model = tiny_model(vocabulary).train()
    batches = DeviceBatches(packed_rows(vocabulary), 8, 0, 0.15, masking, torch.device("cpu"))
    step = DeviceMaskedLMStep(model, batches, dtype=None)
    batches.set_step(0)
    step.run(capture=True)  # on the CPU: no capture, one eager pass
    assert step.graph is None and any(p.grad is not None for p in model.parameters()) and step.count_sum.item() > 0
    step.discard_pass_results()
    assert all(p.grad is None for p in model.parameters())
    assert step.take_sums() == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("mlm_head", ["untied", "hash-vector", "frequent-ids"])
def test_the_device_step_compiles_without_a_graph_break(vocabulary, masking, mlm_head):
    model = tiny_model(vocabulary, mlm_head).train()
    batches = DeviceBatches(packed_rows(vocabulary), 8, 0, 0.15, masking, torch.device("cpu"))
    step = DeviceMaskedLMStep(model, batches, dtype=None)
    batches.set_step(0)
    eager = step.loss()
    torch._dynamo.reset()
    compiled = torch.compile(step.loss, fullgraph=True, backend="aot_eager", dynamic=False)  # fullgraph: a break is an error
    result = compiled()
    assert torch.allclose(result[0], eager[0], atol=1e-5) and torch.equal(result[1], eager[1]) and torch.equal(result[2], eager[2])
    result[0].backward()
    assert all(p.grad is not None for p in model.cls.parameters())


def test_wsd_schedule_holds_the_peak_then_cools_down_for_its_fraction():
    assert wsd_multiplier(0.5, 0.2) == 1.0 and wsd_multiplier(1 / 1.2, 0.2) == 1.0
    assert wsd_multiplier(1.0, 0.2) == 0.0 and wsd_multiplier(1.0, 0.2, 0.1) == pytest.approx(0.1)
    assert wsd_multiplier((1 / 1.2 + 1) / 2, 0.2) == pytest.approx(0.5)
    assert lr_multiplier(0.01, 0.02, "wsd") == pytest.approx(0.5)  # warmup first


def device_spec(tmp_path: Path, corpus: Path, vocab: Path, **pretrain_settings):
    data = spec_dict(tmp_path, corpus, vocab, loop="device", dropout=0.0, **pretrain_settings)
    return validate_spec(data)


def test_device_loop_learns_and_resumes_exactly(tmp_path, corpus, fixture_vocab_path):
    straight = device_spec(tmp_path / "a", corpus, fixture_vocab_path, budget={"steps": 30}, lr=5e-3, checkpoint_every=100, log_every=10)
    outcome = pretrain(straight, progress=False)
    rows = metrics(straight.run_dir)
    assert outcome.results["loop"] == "device" and outcome.results["cuda_graph"] is False
    assert rows[-1]["loss"] < rows[0]["loss"] - 0.5  # it learns
    assert 0 < rows[-1]["masked_accuracy"] <= 1 and len(rows) == 3

    split = device_spec(tmp_path / "b", corpus, fixture_vocab_path, budget={"steps": 30}, lr=5e-3, checkpoint_every=100, log_every=10)
    assert pretrain(split, stop_after_steps=13, progress=False).paused_at_step == 13
    pretrain(split, resume=True, progress=False)
    a = load_file(straight.run_dir / "checkpoint" / "model.safetensors")
    b = load_file(split.run_dir / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_snapshots_branch_off_and_leave_the_main_run_bit_identical(tmp_path, corpus, fixture_vocab_path):
    settings = {"budget": {"tokens": 40 * 4 * 16}, "schedule": "wsd", "warmup": 0.05, "checkpoint_every": 100}
    plain = device_spec(tmp_path / "a", corpus, fixture_vocab_path, **settings)
    pretrain(plain, progress=False)
    branched = device_spec(tmp_path / "b", corpus, fixture_vocab_path, snapshots=[12 * 64, 24 * 64], **settings)
    pretrain(branched, progress=False)
    a = load_file(plain.run_dir / "checkpoint" / "model.safetensors")
    b = load_file(branched.run_dir / "checkpoint" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # the branches were undone exactly
    branched_losses = [r["loss"] for r in metrics(branched.run_dir) if "loss" in r and "snapshot" not in r]
    assert [r["loss"] for r in metrics(plain.run_dir)] == branched_losses

    records = {p.parent.name: json.loads(p.read_text()) for p in (branched.run_dir / "snapshots").glob("*/snapshot.json")}
    assert set(records) == {"tokens-768", "tokens-1536"}
    first = records["tokens-768"]
    assert (first["stable_steps"], first["cooldown_steps"], first["steps"]) == (10, 2, 12) and first["tokens"] == 768
    assert first["heldout_loss"] > 0 and np.isfinite(first["cooldown_train_loss"])
    snapshot = load_model(branched.run_dir / "snapshots" / "tokens-768", "masked-lm")
    final = load_model(branched.run_dir / "checkpoint", "masked-lm")
    assert not torch.equal(snapshot.bert.encoder.layer[0].output.dense.weight, final.bert.encoder.layer[0].output.dense.weight)


def test_host_and_device_loops_are_chosen_by_what_applies(tmp_path, corpus, fixture_vocab_path):
    spec = device_spec(tmp_path, corpus, fixture_vocab_path, grad_accum=2)
    with pytest.raises(EelbertError, match="loop is 'device' but grad_accum is above 1"):
        pretrain(spec, progress=False)
    auto = validate_spec(spec_dict(tmp_path / "c", corpus, fixture_vocab_path, budget={"steps": 2}))
    assert pretrain(auto, progress=False).results["loop"] == "host"  # auto on a CPU: the host loop


def test_snapshots_need_a_wsd_schedule_and_a_token_budget(tmp_path, corpus, fixture_vocab_path):
    with pytest.raises(EelbertError, match="schedule: wsd"):
        validate_spec(spec_dict(tmp_path, corpus, fixture_vocab_path, snapshots=[100], budget={"tokens": 1000}))
    with pytest.raises(EelbertError, match="budget as"):
        validate_spec(spec_dict(tmp_path, corpus, fixture_vocab_path, snapshots=[100], schedule="wsd"))
    with pytest.raises(EelbertError, match="between 0 and the budget"):
        validate_spec(spec_dict(tmp_path, corpus, fixture_vocab_path, snapshots=[1000], schedule="wsd", budget={"tokens": 1000}))


def test_deterministic_kernels_apply_during_the_run_only(tmp_path, corpus, fixture_vocab_path, monkeypatch):
    seen = []
    real_step = DeviceMaskedLMStep.run

    def recording_step(self, capture):
        seen.append(torch.are_deterministic_algorithms_enabled())
        return real_step(self, capture)

    monkeypatch.setattr(DeviceMaskedLMStep, "run", recording_step)
    before = torch.are_deterministic_algorithms_enabled()
    spec = device_spec(tmp_path, corpus, fixture_vocab_path, budget={"steps": 3}, deterministic=True)
    pretrain(spec, progress=False)
    assert seen == [True, True, True] and torch.are_deterministic_algorithms_enabled() == before
