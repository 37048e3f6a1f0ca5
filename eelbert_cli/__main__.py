"""``python -m eelbert_cli``: the same as the ``eelbert`` command (where the console script is not on PATH)."""

from eelbert_cli.cli import app

app(prog_name="eelbert")
