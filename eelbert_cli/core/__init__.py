"""The shared core the ``eelbert`` commands call; usable from Python without the CLI.

Its rooms, from the ground up. A module imports only from its own room or from a room listed
above it here (``cli.py`` stands over them all); no imports run in a circle. tests/test_layout.py
reads every module's imports and holds the code to this list.

    errors.py      EelbertError, and the log an internal error leaves
    console.py     logging, progress bars, what the toolkit tells its user
    files.py       atomic writes, run-directory locks, safe names
    model/         the hash embedding and BERT with its word table swapped for it
    data/          offline resources, tokenizers, corpora, packing, fine-tuning tasks
    scoring/       task metrics and the GLUE rules (numbers in, numbers out)
    export/        ONNX export and the torch-free runtime that loads it
    spec.py        the YAML experiment spec (pure validation)
    manifest.py    the record written next to every run (resolved spec, versions)
    targets.py     from presets, specs and checkpoints to model configs and fine-tuning sources
    training/      pretraining: objectives, masking, the loop, checkpoints, runtime, optimiser
    finetuning/    one fine-tuning run, the grid, task distillation, the finetune / glue stages
    evaluation/    a saved fine-tuned model scored on a split, or predicting new text
    baselines/     TF-IDF, fastText and model2vec trained and scored on the same splits (no transformer)
    reporting/     size accounting, the run report, console tables and plots
    pipeline.py    `eelbert run`: every stage of a spec, skipping what is finished
"""
