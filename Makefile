# All setup goes through here: `make demo` and `make test` are the two commands a new user needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: install test test-e2e test-web web-demo web-screenshot browser demo bench results suite suite-distill distill gdistill vocab curve clean

install: $(BIN)/eelbert

# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels.
$(BIN)/eelbert: setup.cfg setup.py pyproject.toml runtime/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/pip install --quiet -e '.[test,baselines]'
	touch $@

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

# The slow end-to-end checks that `make test` skips and CI runs: the runtime alone in a fresh venv, the
# JavaScript runtime against Python's answers (node --test), the demo page in headless Chromium.
test-e2e: install web/node_modules browser
	$(BIN)/python -m pytest -q -m e2e

web/node_modules: web/package.json web/package-lock.json
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm >/dev/null; }
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the page test (playwright-core drives it; no browser download).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# node --test in web/ against the Python runtime's answers on the shipped uno-eelbert exports.
test-web: install web/node_modules
	rm -rf runs/web-reference
	$(BIN)/python scripts/web_reference.py runs/web-reference
	cd web && EELBERT_WEB_REFERENCE=../runs/web-reference node --test

# The browser demo: uno-eelbert int8 in web/demo/, served on http://127.0.0.1:8000/ (Ctrl-C stops it).
web-demo: install web/node_modules
	cd web && node scripts/build-demo.mjs
	$(BIN)/eelbert export uno-eelbert-sentiment -o web/demo/model --quantize int8
	cd web && node scripts/serve.mjs demo 8000

# The screenshot in docs/results/web/ (headless Chromium on the built demo).
web-screenshot: install web/node_modules browser
	cd web && node scripts/build-demo.mjs
	$(BIN)/eelbert export uno-eelbert-sentiment -o web/demo/model --quantize int8
	cd web && node e2e/demo-page.mjs ../docs/results/web/demo.png

# Targets find their specs: an experiment folder's leaf specs (its _-files are bases), in natural
# order (3m before 10m), and teacher-*.yaml first, so a run that others read (a teacher, a pretraining)
# comes before them; a subfolder (curve/lr) runs after its parent. Every run lands in
# runs/FOLDER-NAME (curve/lr/bert-tiny-0.yaml: runs/curve-lr-bert-tiny-0). Adding a spec to a
# folder adds it to its target and its report.
leaves = $(shell ls -1 experiments/$(1)/*.yaml | grep -v '/_[^/]*$$' | LC_ALL=C sort -V)
teachers = $(foreach s,$(call leaves,$(1)),$(if $(findstring /teacher-,$(s)),$(s)))
students = $(foreach s,$(call leaves,$(1)),$(if $(findstring /teacher-,$(s)),,$(s)))
specs = $(call teachers,$(1)) $(call students,$(1))
runs-of = $(foreach s,$(1),runs/$(subst /,-,$(patsubst experiments/%.yaml,%,$(s))))
run-all = for spec in $(1); do $(BIN)/eelbert run $$spec || exit 1; done

# The main job on the built-in offline default: the two shipped pretrained encoders (eelbert-tiny and
# uno-eelbert, 100M tokens of masked-LM each, experiments/curve/) fine-tuned on rotten-tomatoes beside
# their from-scratch twins and bert-tiny from scratch (1 seed, 2 epochs, the same vocabulary), the
# report with sizes, then the two task-distilled hash models that ship with the toolkit scored on the
# same dev split. ~3 minutes on 2 cores with the install; re-running skips what is finished.
DEMO_SPECS = $(call specs,demo)
DEMO_SHIPPED = eelbert-tiny-sentiment uno-eelbert-sentiment
demo: install
	$(call run-all,$(DEMO_SPECS))
	$(BIN)/eelbert report $(call runs-of,$(DEMO_SPECS)) -o runs/demo-report \
		$(foreach r,eelbert-tiny uno-eelbert,--baseline demo-$(r)-pretrained=demo-bert-tiny-scratch)
	@echo "The hash models that ship with eelbert, the pretrained encoders task-distilled from MiniLM (make suite-distill; 1.9 MB and 1.1 MB of weights):"
	for model in $(DEMO_SHIPPED); do $(BIN)/eelbert evaluate $$model || exit 1; done

# The offline suite (experiments/suite/, docs/results/suite/): the tiny transformers fine-tuned on its
# five tasks, the baselines a user would pick instead on the same splits, then the table and the
# score-vs-bytes plot. ~35 minutes on 2 cores. Every run is redone (eelbert glue and baseline re-run).
SUITE_MODELS = bert-tiny-scratch eelbert-tiny-scratch uno-eelbert-scratch eelbert-tiny-pretrained uno-eelbert-pretrained
SUITE_BASELINES = tfidf fasttext fasttext-ftz model2vec model2vec-small
suite: install
	for m in $(SUITE_MODELS); do $(BIN)/eelbert glue experiments/suite/$$m.yaml || exit 1; done
	for b in $(SUITE_BASELINES); do $(BIN)/eelbert baseline experiments/suite/baseline-$$b.yaml || exit 1; done
	$(BIN)/python scripts/suite_report.py $(foreach m,$(SUITE_MODELS),runs/suite-$(m)) \
		$(foreach b,$(SUITE_BASELINES),runs/suite-baseline-$(b)) --keep docs/results/suite/suite.json -o docs/results/suite

# Task distillation across the suite (issue 24): MiniLM teachers per task, then the shipped pretrained hash
# encoders distilled from them (8 augmented copies), their saved models as int8 exports, and their rows in
# the suite table (rows of other runs kept). ~75 min on 2 idle cores; `eelbert run` skips what is finished.
SUITE_DISTILLED = eelbert-tiny-distilled uno-eelbert-distilled bert-tiny-distilled
# int8 rows for the hash models (bert-tiny's export keeps its word table fp32: no device row)
SUITE_INT8 = eelbert-tiny-distilled uno-eelbert-distilled
suite-distill: install
	for m in teacher-minilm $(SUITE_DISTILLED); do $(BIN)/eelbert run experiments/suite/$$m.yaml || exit 1; done
	for m in $(SUITE_INT8); do $(BIN)/python scripts/suite_int8.py runs/suite-$$m || exit 1; done
	$(BIN)/python scripts/suite_report.py $(foreach m,$(SUITE_DISTILLED),runs/suite-$(m)) $(foreach m,$(SUITE_INT8),runs/suite-$(m)-int8) \
		--keep docs/results/suite/suite.json -o docs/results/suite

bench: install
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/python benchmarks/bench_hash.py --json
	$(BIN)/python benchmarks/bench_pretrain.py --json
	$(BIN)/python benchmarks/bench_finetune.py --json
	$(BIN)/python benchmarks/bench_distill.py --json
	$(BIN)/python benchmarks/bench_inference.py --json

# The committed CPU-scale results (docs/results/): ~1 hour on 2 cores. Finished stages are skipped.
TINY_SPECS = $(call specs,tiny)
HASH_SPECS = $(call specs,hash)
results: install
	$(call run-all,$(TINY_SPECS) $(HASH_SPECS))
	$(BIN)/eelbert report $(call runs-of,$(TINY_SPECS)) -o docs/results/tiny
	$(BIN)/eelbert report $(filter-out %-scratch,$(call runs-of,$(TINY_SPECS))) $(call runs-of,$(HASH_SPECS)) -o docs/results/hash

# Task distillation (docs/results/distill/): the MiniLM teacher (teacher-minilm.yaml, first), then
# bert-tiny, eelbert-tiny and uno-eelbert fine-tuned plain, distilled, distilled with 4 augmented
# copies, and with 8 copies (neighbour replacement); 3 seeds each. About 3 hours on 2 cores.
DISTILL_SPECS = $(call specs,distill)
distill: install
	$(call run-all,$(DISTILL_SPECS))
	$(BIN)/eelbert report $(call runs-of,$(call students,distill)) -o docs/results/distill

# General distillation (docs/results/gdistill/): MiniLM into each tiny model vs masked-LM alone, at
# one budget of 8 student-minutes each on news, then the shared fine-tuning (3 seeds). The first
# distilled run fills the teacher cache (a one-off ~6 min, a few GB in the user cache).
GDISTILL_SPECS = $(call specs,gdistill)
gdistill: install
	$(call run-all,$(GDISTILL_SPECS))
	$(BIN)/eelbert report $(call runs-of,$(GDISTILL_SPECS)) -o docs/results/gdistill

# The vocabulary choice (docs/results/vocab/): eelbert-tiny masked-LM for 8 minutes with an 8k
# WordPiece trained on news, against bert-base-uncased's (gdistill's masked-LM control) and no
# pretraining (distill's plain eelbert-tiny). The two controls run here too (skipped when done).
VOCAB_SPECS = experiments/gdistill/eelbert-tiny-mlm.yaml $(call specs,vocab) experiments/distill/eelbert-tiny-plain.yaml
vocab: install
	$(call run-all,$(VOCAB_SPECS))
	$(BIN)/eelbert report $(call runs-of,$(VOCAB_SPECS)) -o docs/results/vocab

# The budget curve (docs/results/curve/): bert-tiny and eelbert-tiny at 0, 3M, 10M, 30M and 100M
# tokens of masked-LM on prose (8k vocabulary, one recipe), uno-eelbert and the token hash at 0 and
# 100M; each fine-tuned on rotten-tomatoes and trec (3 seeds). ~9 hours on 2 cores, resumable:
# re-running continues an interrupted pretraining from its latest checkpoint and skips what is done.
# Then two fine-tuning probes on the 0 and 100M points (docs/results/curve/lr, .../pooling; their
# 100M specs read the curve's checkpoints): ~40 min.
CURVE_SPECS = $(call specs,curve)
curve: install
	$(call run-all,$(CURVE_SPECS))
	$(BIN)/eelbert report $(call runs-of,$(CURVE_SPECS)) -o docs/results/curve --keep-records
	$(foreach probe,lr pooling,$(call curve-probe,$(probe)))

define curve-probe
$(call run-all,$(call specs,curve/$(1)))
	$(BIN)/eelbert report $(call runs-of,$(call specs,curve/$(1))) -o docs/results/curve/$(1) --keep-records \
	  --baseline curve-$(1)-eelbert-tiny-100m=curve-$(1)-bert-tiny-100m
	
endef

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
