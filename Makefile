# morphotx entry points. `make run` and `make test` create the venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: run test test-fast lint dag report bench bench-lincs bench-eval bench-convert clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

## run the default target (the embedded demo) and print where the results are
run: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --printshellcmds
	@echo ""
	@echo "Baseline scores: results/demo/baseline/knn_summary.md"
	@cat results/demo/baseline/knn_summary.md
	@echo ""
	@echo "Models (checkpoint, history.csv, params.json): results/demo/models/<model>/seed<seed>/"
	@echo "Embeddings: results/demo/embeddings/<model>/seed<seed>/<view>_{uncollapsed,collapsed}.parquet"
	@echo "Figures: results/demo/figures/"
	@echo ""
	@echo "Leaderboard (top 15 rows of results/demo/leaderboard/leaderboard.md; full: leaderboard.parquet):"
	@head -n 20 results/demo/leaderboard/leaderboard.md | tail -n 17 | cut -c1-250
	@echo ""
	@echo "HTML report with every figure and the leaderboard:  make report   (= snakemake --report results/demo/report.html)"

## the test suite (unit, workflow and real-fixture tests)
test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/rules/

## one self-contained HTML report (every figure with its caption, the leaderboard)
report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/demo/report.html
	@echo "Report: results/demo/report.html"

dag: $(STAMP)
	mkdir -p results && $(BIN)/snakemake --dag | tee results/dag.dot

## benchmarks (print figures; not part of `make test`)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_demo.py

bench-lincs: $(STAMP)
	$(BIN)/python benchmarks/bench_lincs_scale.py
	$(BIN)/python benchmarks/bench_eval_scale.py
	$(BIN)/python benchmarks/bench_convert.py

## CSV.gz -> Parquet conversion at the real LINCS Cell Painting size (throughput, peak RSS)
bench-convert: $(STAMP)
	$(BIN)/python benchmarks/bench_convert.py

## the quadratic evaluation steps at LINCS scale (pairwise PCC, enrichment, kNN curves, mAP)
bench-eval: $(STAMP)
	$(BIN)/python benchmarks/bench_eval_scale.py

clean:
	rm -rf results .snakemake
