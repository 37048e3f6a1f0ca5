"""Packages only (metadata and dependencies are in setup.cfg): the toolkit ships the runtime's package
from ``runtime/`` too, so one implementation of the hash serves both distributions and `pip install .`
works from a plain checkout."""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["eelbert_cli", "eelbert_cli.*"]), "eelbert_runtime"],
    package_dir={"eelbert_runtime": "runtime/eelbert_runtime"},
)
