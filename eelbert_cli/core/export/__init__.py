"""Shipping a fine-tuned model to where memory is scarce.

    onnx_export.py  `eelbert export`: the encoder + task head as a standard-ops ONNX graph that takes
                    word vectors (no vocabulary-sized tensor inside), optional int8 weights, and
                    export.json — all a device needs besides the tokenizer (needs torch)
    runtime.py      the runtime: numpy + tokenizers + onnxruntime, never torch or transformers; it
                    rebuilds the hash table from the config (model/hashing.py, numpy only)

The runtime must stay importable without torch: tests assert it.
"""
