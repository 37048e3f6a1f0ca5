"""Reporting: what models cost and how runs compare, from files alone.

    size.py     honest size accounting: the bytes of what a fine-tuned model ships
    tables.py   console tables of the single-run commands; size_report.json/.md
    runs.py     reading run directories into rows
    twins.py    pairing each run with its BERT twin, pretrained alike
    render.py   the comparison as screen tables, Markdown, CSV and JSON
    plots.py    score-vs-size and loss-curve PNGs
    report.py   `eelbert report`: all of the above into one output directory
"""
