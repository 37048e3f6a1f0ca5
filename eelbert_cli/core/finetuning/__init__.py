"""Fine-tuning: one run, the grid over configs and seeds, task distillation, and the stages.

    encoding.py           a task's text as token ids, length-grouped batches, predictions over a split
    run.py                one fine-tuning run: one model, task, config and seed, trained and scored
    task_distillation.py  a fine-tuned teacher's soft labels on the training set and extra text
    grid.py               configs x seeds, selection on dev, the saved fine-tuned model
    stages.py             `finetune` and `glue` as a run directory sees them; results.json/.md
"""
