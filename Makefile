# All setup goes through here: `make demo` and `make test` are the two commands a new user needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: install test demo bench clean

install: $(BIN)/eelbert

# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels.
$(BIN)/eelbert: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

test: install
	$(BIN)/python -m pytest -q

# The main job on the built-in offline default: what the paper's models cost, and what the hash sees.
demo: install
	$(BIN)/eelbert size-report bert-tiny eelbert-tiny uno-eelbert
	$(BIN)/eelbert inspect-embedding playing unbelievable eelbert --top-k 5

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_hash.py --json
	$(BIN)/python benchmarks/bench_pretrain.py --json
	$(BIN)/python benchmarks/bench_finetune.py --json

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
