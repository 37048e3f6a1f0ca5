"""What the JavaScript runtime (web/) is tested against: Python's answers on the same exports.

    python scripts/web_reference.py OUT_DIR [--model uno-eelbert-sentiment]

Exports the model fp32 and int8 into OUT_DIR/fp32 and OUT_DIR/int8 and writes OUT_DIR/reference.json:
the sentences of web/test/sentences.txt (split at "\\n" only) with their token ids from the Python
runtime (singly, and as consecutive pairs cut at a short length), their fp32 and int8 logits, and the
full hash vectors (float32, base64) of the first vocabulary tokens, every token of the sentences and a
set of Unicode strings; plus a small .npy the JS reader must parse. `make test-web` runs it, then
`node --test` in web/ with EELBERT_WEB_REFERENCE=OUT_DIR.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SENTENCES = REPO / "web" / "test" / "sentences.txt"
EXTRA_STRINGS = ["[CLS]", "[unused7]", "play", "##ing", "é", "ß", "İ", "北", "🎬", "a" * 40, "##", "#", "^", "$", "naïve", "x y"]
FIRST_TOKENS = 3000
PAIR_LENGTH = 24


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", default="uno-eelbert-sentiment")
    args = parser.parse_args()
    from typer.testing import CliRunner

    from eelbert_cli.cli import app
    from eelbert_cli.core.export.runtime import ExportedModel
    from eelbert_runtime.export import load_tokenizer
    from eelbert_runtime.hashing import HashSettings, hash_vectors_numpy

    args.out.mkdir(parents=True, exist_ok=True)
    for name, extra in (("fp32", []), ("int8", ["--quantize", "int8"])):
        result = CliRunner().invoke(app, ["export", args.model, "-o", str(args.out / name), *extra])
        if result.exit_code != 0:
            sys.exit(f"export {name} failed: {result.stderr}")
    sentences = SENTENCES.read_text(encoding="utf-8").split("\n")
    sentences = [s for s in sentences if s]
    models = {name: ExportedModel.load(args.out / name) for name in ("fp32", "int8")}
    document = models["fp32"].document
    tokenizer = models["fp32"].tokenizer
    singles = [{"ids": e.ids, "type_ids": e.type_ids} for e in tokenizer.encode_batch(sentences)]
    short = load_tokenizer(args.out / "fp32", {**document, "max_seq_len": PAIR_LENGTH})
    pairs = list(zip(sentences, sentences[1:] + sentences[:1], strict=True))
    encoded_pairs = short.encode_batch(pairs)
    paired = [{"text": a, "pair": b, "ids": e.ids, "type_ids": e.type_ids} for (a, b), e in zip(pairs, encoded_pairs, strict=True)]
    vocabulary = (args.out / "fp32" / document["tokenizer"]).read_text(encoding="utf-8").split("\n")[:-1]
    seen = {token for single in singles for token in (vocabulary[i] for i in single["ids"])}
    strings = list(dict.fromkeys([*vocabulary[:FIRST_TOKENS], *sorted(seen), *EXTRA_STRINGS]))
    vectors = hash_vectors_numpy(strings, document["hidden"], HashSettings.from_mapping(document["hash"]))
    table = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    np.save(args.out / "table.npy", table)
    reference = {
        "model": args.model,
        "sentences": sentences,
        "singles": singles,
        "pair_length": PAIR_LENGTH,
        "pairs": paired,
        "logits": {name: model.logits(sentences).tolist() for name, model in models.items()},
        "hash": {"strings": strings, "dim": document["hidden"], "settings": document["hash"],
                 "vectors_f32_base64": base64.b64encode(vectors.astype("<f4").tobytes()).decode("ascii")},
        "npy": {"file": "table.npy", "values": table.ravel().tolist(), "shape": list(table.shape)},
    }
    (args.out / "reference.json").write_text(json.dumps(reference), encoding="utf-8")
    print(f"{args.out}: {len(sentences)} sentences, {len(paired)} pairs, {len(strings)} hash strings")


if __name__ == "__main__":
    main()
