"""Scoring: task metrics and the GLUE rules, pure numpy, below every room that trains or evaluates.

    metrics.py   accuracy, F1, macro-F1, MCC, Pearson, Spearman; per-class tables and confusion; a task's one-number score; std over seeds
    glue.py      the GLUE score under its two named rules (leaderboard, BERT paper)
    suite.py     the average of another named task group (the offline suite): one named metric per task
"""
