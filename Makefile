# All setup goes through here: `make demo` and `make test` are the two commands a new user needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: install test demo bench results distill gdistill vocab curve clean

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

# The main job on the built-in offline default: the two shipped pretrained encoders (eelbert-tiny and
# uno-eelbert, 100M tokens of masked-LM each, experiments/curve/) fine-tuned on rotten-tomatoes beside
# their from-scratch twins and bert-tiny from scratch (1 seed, 2 epochs, the same vocabulary), the
# report with sizes, then the two task-distilled hash models that ship with the toolkit scored on the
# same dev split. ~3 minutes on 2 cores with the install; re-running skips what is finished.
DEMO_RUNS = eelbert-tiny-pretrained eelbert-tiny-scratch uno-eelbert-pretrained uno-eelbert-scratch bert-tiny-scratch
DEMO_SHIPPED = eelbert-tiny-sentiment uno-eelbert-sentiment
demo: install
	for spec in $(DEMO_RUNS); do $(BIN)/eelbert run experiments/demo/$$spec.yaml || exit 1; done
	$(BIN)/eelbert report $(foreach r,$(DEMO_RUNS),runs/demo-$(r)) -o runs/demo-report \
		$(foreach r,eelbert-tiny uno-eelbert,--baseline demo-$(r)-pretrained=demo-bert-tiny-scratch)
	@echo "The hash models that ship with eelbert, task-distilled from MiniLM (make distill; 1.9 MB and 1.1 MB of weights):"
	for model in $(DEMO_SHIPPED); do $(BIN)/eelbert evaluate $$model || exit 1; done

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_hash.py --json
	$(BIN)/python benchmarks/bench_pretrain.py --json
	$(BIN)/python benchmarks/bench_finetune.py --json
	$(BIN)/python benchmarks/bench_distill.py --json
	$(BIN)/python benchmarks/bench_inference.py --json

# The committed CPU-scale results (docs/results/): ~1 hour on 2 cores. Finished stages are skipped.
TINY_RUNS = tiny/bert-tiny tiny/eelbert-tiny tiny/uno-eelbert tiny/bert-tiny-scratch tiny/eelbert-tiny-scratch tiny/uno-eelbert-scratch
HASH_RUNS = hash/token-tiny hash/token-uno hash/learned-uno
results: install
	for spec in $(TINY_RUNS) $(HASH_RUNS); do $(BIN)/eelbert run experiments/$$spec.yaml || exit 1; done
	$(BIN)/eelbert report $(foreach r,$(TINY_RUNS),runs/$(subst /,-,$(r))) -o docs/results/tiny
	$(BIN)/eelbert report runs/tiny-bert-tiny runs/tiny-eelbert-tiny runs/tiny-uno-eelbert $(foreach r,$(HASH_RUNS),runs/$(subst /,-,$(r))) -o docs/results/hash

# Task distillation (docs/results/distill/): the MiniLM teacher, then bert-tiny, eelbert-tiny and
# uno-eelbert fine-tuned plain, distilled, distilled with 4 augmented copies, and with 8 copies
# (neighbour replacement); 3 seeds each. About 3 hours on 2 cores. Finished stages are skipped.
DISTILL_RUNS = eelbert-tiny-plain eelbert-tiny-kd-aug bert-tiny-plain bert-tiny-kd-aug uno-eelbert-plain uno-eelbert-kd-aug \
	eelbert-tiny-kd bert-tiny-kd uno-eelbert-kd eelbert-tiny-kd-aug8 uno-eelbert-kd-aug8 bert-tiny-kd-aug8
distill: install
	$(BIN)/eelbert run experiments/distill/teacher-minilm.yaml
	for run in $(DISTILL_RUNS); do $(BIN)/eelbert run experiments/distill/$$run.yaml || exit 1; done
	$(BIN)/eelbert report $(foreach m,eelbert-tiny bert-tiny uno-eelbert,$(foreach t,plain kd kd-aug kd-aug8,runs/distill-$(m)-$(t))) -o docs/results/distill

# General distillation (docs/results/gdistill/): MiniLM into each tiny model vs masked-LM alone, at
# one budget of 8 student-minutes each on news, then the shared fine-tuning (3 seeds). The first
# distilled run fills the teacher cache (a one-off ~6 min, a few GB in the user cache).
GDISTILL_RUNS = eelbert-tiny-distill eelbert-tiny-mlm-distill eelbert-tiny-mlm uno-eelbert-distill uno-eelbert-mlm bert-tiny-distill bert-tiny-mlm
gdistill: install
	for run in $(GDISTILL_RUNS); do $(BIN)/eelbert run experiments/gdistill/$$run.yaml || exit 1; done
	$(BIN)/eelbert report $(foreach r,$(GDISTILL_RUNS),runs/gdistill-$(r)) -o docs/results/gdistill

# The vocabulary choice (docs/results/vocab/): eelbert-tiny masked-LM for 8 minutes with an 8k
# WordPiece trained on news, against bert-base-uncased's (gdistill's masked-LM control).
vocab: install
	$(BIN)/eelbert run experiments/gdistill/eelbert-tiny-mlm.yaml
	$(BIN)/eelbert run experiments/vocab/eelbert-tiny-wordpiece-8k.yaml
	$(BIN)/eelbert report runs/gdistill-eelbert-tiny-mlm runs/vocab-eelbert-tiny-wordpiece-8k runs/distill-eelbert-tiny-plain -o docs/results/vocab

# The budget curve (docs/results/curve/): bert-tiny and eelbert-tiny at 0, 3M, 10M, 30M and 100M
# tokens of masked-LM on prose (8k vocabulary, one recipe), uno-eelbert and the token hash at 0 and
# 100M; each fine-tuned on rotten-tomatoes and trec (3 seeds). ~9 hours on 2 cores, resumable:
# re-running continues an interrupted pretraining from its latest checkpoint and skips what is done.
CURVE_RUNS = $(foreach m,eelbert-tiny bert-tiny,$(m)-0 $(m)-3m $(m)-10m $(m)-30m $(m)-100m) \
	uno-eelbert-0 uno-eelbert-100m eelbert-tiny-token-hash-0 eelbert-tiny-token-hash-100m
# Then two fine-tuning probes on the 0 and 100M points (docs/results/curve/lr, .../pooling): ~40 min.
PROBE_RUNS = bert-tiny-0 bert-tiny-100m eelbert-tiny-0 eelbert-tiny-100m
curve: install
	for run in $(CURVE_RUNS); do $(BIN)/eelbert run experiments/curve/$$run.yaml || exit 1; done
	$(BIN)/eelbert report $(foreach r,$(CURVE_RUNS),runs/curve-$(r)) -o docs/results/curve --keep-records
	for probe in lr pooling; do \
	  for run in $(PROBE_RUNS); do $(BIN)/eelbert run experiments/curve/$$probe/$$run.yaml || exit 1; done; \
	  $(BIN)/eelbert report $(foreach r,$(PROBE_RUNS),runs/curve-$$probe-$(r)) -o docs/results/curve/$$probe --keep-records \
	    --baseline curve-$$probe-eelbert-tiny-100m=curve-$$probe-bert-tiny-100m || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
