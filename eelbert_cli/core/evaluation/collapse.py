"""Has a pretrained encoder collapsed? Mean cosine similarity between its output states.

A masked-LM stuck on the unigram plateau can predict the same distribution for every position by
mapping every input to one vector; fine-tuning then starts from a constant and predicts the majority
class. This measures it on a few fixed sentences (no data needed): the mean pairwise cosine of the
sentences' [CLS] states and of all their token states, 1.0 meaning every input looks the same.
Base model, no pooler: what the masked-LM itself made (the pooler is new at fine-tuning). The
command is ``python scripts/collapse_probe.py CHECKPOINT...``.
"""

from __future__ import annotations

SENTENCES = (
    "a gorgeous, witty, moving film", "a dull, lifeless, boring mess", "the plot makes no sense at all",
    "one of the best films of the year", "i would not watch it again", "what is the capital of france ?",
    "how many people live in tokyo ?", "the actors are wonderful",
)


def mean_off_diagonal_cosine(states) -> float:
    """Mean cosine similarity between distinct rows of a (rows, hidden) tensor."""
    import torch

    unit = torch.nn.functional.normalize(states, dim=-1)
    similarity = unit @ unit.T
    count = similarity.shape[0]
    return float((similarity.sum() - similarity.diagonal().sum()) / (count * count - count))


def collapse_probe(checkpoint: str) -> tuple[float, float]:
    """(mean cosine between sentences' [CLS] states, between all their token states)."""
    import torch
    from transformers.utils import logging as transformers_logging

    from eelbert_cli.core.data.resources import checkpoint_path
    from eelbert_cli.core.data.tokenization import load_tokenizer
    from eelbert_cli.core.model.modeling import load_model

    transformers_logging.set_verbosity_error()
    path = checkpoint_path(checkpoint)
    tokenizer = load_tokenizer(path)
    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")  # the tokenizer's own pad, not an assumed 0
    encodings = tokenizer.encode_batch(list(SENTENCES))
    input_ids = torch.tensor([e.ids for e in encodings])
    attention = torch.tensor([e.attention_mask for e in encodings])
    model = load_model(path, "base").eval()
    with torch.no_grad():
        states = model(input_ids=input_ids, attention_mask=attention).last_hidden_state
    return mean_off_diagonal_cosine(states[:, 0]), mean_off_diagonal_cosine(states[attention.bool()])
