"""Fine-tuning speed: ours vs transformers' Trainer, same model, data, batch size and machine.

Both fine-tune on the built-in rotten-tomatoes task (train split, one epoch) and then evaluate on
its validation split; both pad each batch dynamically. Ours also groups batches by length.

    python benchmarks/bench_finetune.py --json      # needs the bench extra: pip install -e '.[bench]'
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from eelbert_cli.core.data.tasks import load_task
from eelbert_cli.core.data.tokenization import load_tokenizer, vocabulary_of
from eelbert_cli.core.finetuning.encoding import encode_split
from eelbert_cli.core.finetuning.run import RunConfig, train_run
from eelbert_cli.core.model.config import preset_config
from eelbert_cli.core.spec import FinetuneSpec
from eelbert_cli.core.targets import ModelSource


def trainer_rates(source: ModelSource, task, encoded: dict, config: RunConfig, seed: int) -> tuple[float, float]:
    """transformers' Trainer with its own defaults for batching (random order, dynamic padding)."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, PreTrainedTokenizerFast, Trainer, TrainingArguments

    def dataset(split):
        data = encoded[split]
        return Dataset.from_dict({"input_ids": data.input_ids, "token_type_ids": data.token_type_ids, "labels": data.labels.tolist()})

    torch.manual_seed(seed)
    model = source.build(task, FinetuneSpec(dropout=0.1))
    with tempfile.TemporaryDirectory() as directory:
        arguments = TrainingArguments(
            output_dir=directory, per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=256,
            learning_rate=config.lr, num_train_epochs=config.epochs, warmup_steps=0.1, weight_decay=0.01,
            max_grad_norm=1.0, report_to=[], save_strategy="no", logging_strategy="no", seed=seed,
            use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, disable_tqdm=True,
        )
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=load_tokenizer(), pad_token="[PAD]")
        trainer = Trainer(model=model, args=arguments, train_dataset=dataset("train"), eval_dataset=dataset("validation"),
                          data_collator=DataCollatorWithPadding(tokenizer))
        train = trainer.train().metrics["train_samples_per_second"]
        started = time.perf_counter()
        trainer.evaluate()
        evaluate = len(encoded["validation"]) / (time.perf_counter() - started)
    return train, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-seq-len", type=int, default=128)
    parser.add_argument("--presets", nargs="+", default=["bert-tiny", "eelbert-tiny"])
    args = parser.parse_args()

    tokenizer = load_tokenizer()
    vocabulary = vocabulary_of(tokenizer)
    data = load_task("rotten-tomatoes")
    encoded = {name: encode_split(tokenizer, data.splits[name], args.max_seq_len) for name in ("train", "validation")}
    settings = FinetuneSpec(max_seq_len=args.max_seq_len)
    config = RunConfig(lr=3e-4, epochs=1, batch_size=args.batch)
    result: dict = {"task": "rotten-tomatoes", "train_examples": len(encoded["train"]), "eval_examples": len(encoded["validation"]),
                    "batch": args.batch, "torch_threads": torch.get_num_threads(), "models": {}}
    for preset in args.presets:
        source = ModelSource(preset, config=preset_config(preset, vocabulary))
        ours = train_run(source, data.task, encoded, config, 0, settings, tokenizer.token_to_id("[PAD]"))
        theirs_train, theirs_eval = trainer_rates(source, data.task, encoded, config, 0)
        result["models"][preset] = {
            "train_examples_per_second_ours": round(ours.train_examples_per_second, 1),
            "train_examples_per_second_trainer": round(theirs_train, 1),
            "eval_examples_per_second_ours": round(ours.eval_examples_per_second, 1),
            "eval_examples_per_second_trainer": round(theirs_eval, 1),
            "ratio": round(ours.train_examples_per_second / theirs_train, 2),
            "eval_ratio": round(ours.eval_examples_per_second / theirs_eval, 2),
            "dev_accuracy_ours": round(ours.metrics["validation"]["accuracy"], 2),
        }
    result["note"] = "ratio = ours / Trainer (train examples/s); eval_ratio likewise for evaluation"
    print(json.dumps(result, indent=2) if args.json else result)


if __name__ == "__main__":
    main()
