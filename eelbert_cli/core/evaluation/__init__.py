"""Evaluation: a saved fine-tuned model (or its export) scored on a split, or predicting new text.

    evaluate.py  `evaluate`: one saved model on one split, or its predictions
    predict.py   `predict`: labels for new examples from a checkpoint or an exported model
"""
