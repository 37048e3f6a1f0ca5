"""The shared core the ``eelbert`` commands call; usable from Python without the CLI.

    model/        the hash embedding and BERT with its word table swapped for it
    data/         offline resources, tokenizers, corpora, packing, fine-tuning tasks
    training/     objectives, the pretraining loop, fine-tuning, checkpoints, runtime
    evaluation/   metrics, the GLUE rules, the finetune / glue / evaluate stages
    reporting/    size accounting, the run report, console tables and plots
    spec.py       the YAML experiment spec (pure validation)
    targets.py    from presets, specs and checkpoints to model configs
    pipeline.py   `eelbert run`: every stage of a spec, skipping what is finished
    manifest.py   the record written next to every run (resolved spec, versions)
    files.py      atomic writes; console.py: logging and progress; errors.py: EelbertError
"""
