"""Evaluation: metrics, the GLUE rules, and the stages that fine-tune and score.

    metrics.py   accuracy, F1, MCC, Pearson, Spearman; a task's one-number score
    glue.py      the GLUE score under its two named rules (leaderboard, BERT paper)
    grid.py      configs x seeds, selection on dev, the saved fine-tuned model
    stages.py    `finetune` and `glue` as a run directory sees them; results.json/.md
    evaluate.py  `evaluate`: one saved model on one split, or its predictions
"""
