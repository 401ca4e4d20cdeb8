# Every target CI runs is here; `.ci/run` calls `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STORE ?= sqlite:///demo.db
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# llama-cpp-python builds from source: a portable build (no -march=native), both cores, no examples.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2
LLM ?=

.PHONY: install demo test lint typecheck browser spark bench bench-serve clean peers evaluate

# torch goes first, pinned to the local CPU wheel: any other torch request pulls gigabytes of CUDA.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# The evaluation harness's RecBole peers (SASRec, GRU4Rec) run in their own venv: RecBole 1.2.1 needs numpy<2,
# pandas<3 and setuptools<81, which liverec's stack has outgrown. torch goes first, as above.
.venv-peers/.installed: peers/requirements.txt
	python3 -m venv .venv-peers
	.venv-peers/bin/python -m pip install --quiet torch==2.13.0
	.venv-peers/bin/python -m pip install --quiet -r peers/requirements.txt
	touch $@

# RecTools' SASRec (the `rectools` peer, configured as eSASRec) has its own venv too: rectools 0.19 caps
# numpy below 2 and pins lightning and pandas majors that liverec's stack has outgrown. torch goes first.
.venv-rectools/.installed: peers/rectools-requirements.txt
	python3 -m venv .venv-rectools
	.venv-rectools/bin/python -m pip install --quiet torch==2.13.0
	.venv-rectools/bin/python -m pip install --quiet -r peers/rectools-requirements.txt
	touch $@

peers: .venv-peers/.installed .venv-rectools/.installed

# The acceptance runs on the research data in ../shared/data (never copied here); reports go to results/.
# MovieLens's histories are long (per epoch on 2 cores: SASRec ~2 min on ML-100k, GRU4Rec ~10), so
# there the RecBole peers get a training budget and the report marks them under-trained (†). On ML-1M
# one GRU4Rec epoch alone would take ~50 min and RecBole's SASRec ~20, so ML-1M has RecTools' SASRec, which
# trains per sequence and converges without a budget (docs/evaluation.md).
DATA ?= ../shared/data
ALL_SYSTEMS := liverec,sasrec,gru4rec,rectools,als,pop
# What each part of liverec is worth: the full system, paired in the report against each one taken away.
ABLATIONS := liverec,liverec-no-sequence,liverec-linear,liverec-one-interest,liverec-no-text
evaluate: install peers
	$(BIN)/liverec evaluate --data $(DATA)/amazon-scientific --format unisrec --protocol loo \
		--systems $(ALL_SYSTEMS) --out results/scientific
	$(BIN)/liverec evaluate --data $(DATA)/amazon-scientific --format unisrec --protocol loo \
		--systems $(ABLATIONS) --out results/scientific-ablations
	$(BIN)/liverec evaluate --data $(DATA)/movielens-100k --format movielens --protocol loo,replay \
		--systems $(ALL_SYSTEMS) --peer-minutes 30 --out results/ml100k
	$(BIN)/liverec evaluate --data $(DATA)/movielens-1m --format movielens --protocol loo \
		--systems liverec,rectools,als,pop --out results/ml1m

demo: install
	$(BIN)/liverec demo --store $(STORE) $(if $(LLM),--llm $(LLM))

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy

# Browser tests drive Debian's Chromium headless; installed here when missing and we may (root, as
# in CI). Without it they skip, saying why.
# Debian's Chromium for the browser tests, and a CJK font so Chinese renders in their screenshots.
BROWSER_PACKAGES := chromium fonts-wqy-microhei
browser:
	@{ command -v chromium >/dev/null && fc-list | grep -qi wqy; } || { [ "$$(id -u)" = 0 ] \
		&& { apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null); }; } \
		|| echo "chromium or a CJK font is not installed and cannot be here: browser tests skip or show boxes"

# Spark's JDBC reads of a PostgreSQL store use Debian's PostgreSQL JDBC driver (/usr/share/java/postgresql.jar),
# installed here when missing and we may (root, as in CI). Without it the JDBC test skips, saying why.
spark:
	@test -e /usr/share/java/postgresql.jar || { [ "$$(id -u)" = 0 ] \
		&& { apt-get install -y -qq libpostgresql-jdbc-java >/dev/null \
		|| (apt-get update -qq && apt-get install -y -qq libpostgresql-jdbc-java >/dev/null); }; } \
		|| echo "the PostgreSQL JDBC driver is not installed and cannot be here: the Spark JDBC test skips"

test: install lint typecheck browser spark
	$(BIN)/pytest -q -p no:cacheprovider --durations=25  # the 25 slowest, so every CI log shows where the time goes

bench: install
	$(PY) benchmarks/realtime.py

bench-serve: install
	$(PY) benchmarks/serve_load.py

# Cost curves on synthetic worlds (issue 16); worlds are built once into ~/.cache/liverec-scale and reused.
# SCALE_ITEMS=10000,100000,1000000 SCALE_EVENTS=1000000,10000000 for the full sweep (hours on 2 cores).
SCALE_ITEMS ?= 10000,100000
SCALE_EVENTS ?= 1000000
.PHONY: bench-scale
bench-scale: install
	$(PY) benchmarks/scale.py --items $(SCALE_ITEMS) --events $(SCALE_EVENTS)

# The streaming benchmark's peer, rtrec 0.2.7, runs in its own venv (peers/rtrec-requirements.txt says why).
# rtrec needs no torch, so none is installed there.
.venv-rtrec/.installed: peers/rtrec-requirements.txt
	python3 -m venv .venv-rtrec
	.venv-rtrec/bin/python -m pip install --quiet -r peers/rtrec-requirements.txt
	touch $@

.PHONY: bench-streaming
bench-streaming: install .venv-rtrec/.installed
	$(PY) benchmarks/streaming.py --data $(DATA)/movielens-100k

clean:
	rm -rf $(VENV) .venv-peers .venv-rectools demo.db demo.db-* demo.db.* .pytest_cache .mypy_cache .ruff_cache
