"""`eelbert-runtime EXPORT_DIR TEXT...` (or texts on stdin, one a line): one JSON line per text."""

from __future__ import annotations

import json
import sys

from eelbert_runtime.export import ExportedModel, ExportError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if args else 2
    texts = args[1:] or [line.rstrip("\r\n") for line in sys.stdin]
    try:
        model = ExportedModel.load(args[0])
    except ExportError as error:
        print(f"eelbert-runtime: {error}", file=sys.stderr)
        return 2
    for text, prediction in zip(texts, model.predict(texts), strict=True):
        print(json.dumps({"text": text, "label": prediction.label, "probabilities": prediction.probabilities}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
