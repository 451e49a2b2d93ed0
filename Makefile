# morphotx entry points. `make run` and `make test` create the venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: run run-all quick tune test test-fast test-rest lint dag report readme-numbers bench bench-controls bench-machines bench-quick bench-independent bench-lincs bench-lincs-full bench-eval bench-convert bench-classifiers bench-feature-select bench-cdrp-scale bench-cdrp-bio clean

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
	$(BIN)/snakemake --cores $(CORES) || { echo "A run stopped by a kill keeps Snakemake's lock: $(BIN)/snakemake --unlock, then make run again (it resumes)." >&2; exit 1; }
	@echo ""
	@echo "Models (checkpoint, history.csv, params.json): results/demo/models/<model>/fold<f>/seed<s>/"
	@echo "Embeddings: results/demo/embeddings/<model>/fold<f>/seed<s>/<view>_{uncollapsed,collapsed}.parquet"
	@echo "Figures: results/demo/figures/   Exploratory leaderboard (test scores of every configuration): results/demo/leaderboard/leaderboard.md"
	@echo "HTML report (opens with the headline):  make report"
	@echo ""
	@$(BIN)/python -m morphotx.report.print_headline results/demo/leaderboard/headline.parquet

## every model (16) and every classification variant, the same protocol (config/all_models.yaml;
## about 2-3 times `make run`'s time); results/demo_all/
run-all: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/all_models.yaml || { echo "A run stopped by a kill keeps Snakemake's lock: $(BIN)/snakemake --unlock, then make run-all again (it resumes)." >&2; exit 1; }
	@echo ""
	@$(BIN)/python -m morphotx.report.print_headline results/demo_all/leaderboard/headline.parquet

## a quick look (about a third of `make run`'s time): 5 of make run's 9 models, one partition
## (5 splits instead of 10; config/quick.yaml says what is left out); results/quick/, its report
quick: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --configfile config/quick.yaml || { echo "A run stopped by a kill keeps Snakemake's lock: $(BIN)/snakemake --unlock, then make quick again (it resumes)." >&2; exit 1; }
	$(BIN)/snakemake --cores $(CORES) --configfile config/quick.yaml --report results/quick/report.html all
	@echo ""
	@echo "Quick look (5 of make run's 9 models, 5 of its 10 splits): results/quick/   HTML report: results/quick/report.html"
	@echo ""
	@$(BIN)/python -m morphotx.report.print_headline results/quick/leaderboard/headline.parquet

## the whole test suite: test-fast's unit tests first, then test-rest (workflow, SLURM and slow
## tests); each test runs once (CI: make lint, then make test)
test: test-fast test-rest

## unit tests only (no Snakemake run, no test over ~10 s; real-fixture tests included, they are
## small): ~130 CPU-seconds in one process (2 min wall on 2 idle cores)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not workflow and not slow"

## the tests test-fast leaves out: the Snakefile end to end, SLURM, the slow unit tests
test-rest: $(STAMP)
	$(BIN)/python -m pytest -q -m "workflow or slow"

## ruff check (pyflakes, import order, pyupgrade, whitespace, numpy docstrings; pyproject.toml),
## snakefmt --check and snakemake --lint. `ruff format --check` is not run, by choice: the code
## keeps its hand layout (docs/development.md, "Lint": ruff format would rewrite 79 of 103 files);
## ruff check's W rules (trailing whitespace, blank lines at the end, tabs) stand in for it.
lint: $(STAMP)
	$(BIN)/ruff check src tests workflow/scripts benchmarks
	$(BIN)/snakefmt --check workflow/Snakefile workflow/rules/
	$(BIN)/snakemake --lint

## one self-contained HTML report (every figure with its caption, the leaderboard)
report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES)
	# the trials of `make tune` join the report when they exist
	$(BIN)/snakemake --report results/demo/report.html all $$(test -d results/demo/tune && echo tune_all)
	@echo "Report: results/demo/report.html"

## hyperparameter search (Optuna) of the models in tune.models; not used by the default run
tune: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) tune_all
	@echo "Trials and best configs: results/demo/tune/<model>/{trials.parquet,trials.tsv,best.yaml}"
	@echo "Train a tuned model: snakemake --cores $(CORES) --configfile results/demo/tune/<model>/best.yaml"

dag: $(STAMP)
	mkdir -p results && $(BIN)/snakemake --dag | tee results/dag.dot

## benchmarks (print figures; not part of `make test`)
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_demo.py

## controls of the headline statistic where the answer is known: MoA labels permuted (false-positive
## rate) and a planted gain (detection rate vs screen size); results/controls/controls.{md,tsv}
bench-controls: $(STAMP)
	$(BIN)/python benchmarks/bench_controls.py --out results/controls --cores $(CORES) $(ARGS)

## the README's result block from a finished run (make run) and the controls (make bench-controls)
readme-numbers: $(STAMP)
	$(BIN)/python -m morphotx.report.readme_numbers README.md docs/evaluation.md $(foreach r,demo quick demo_all,$(if $(wildcard results/$(r)/leaderboard/headline_choices.parquet),--run results/$(r))) $(if $(wildcard results/controls/controls.md),--controls results/controls) $(if $(wildcard results/machines/summary.md),--machines results/machines)

## how far the headline moves on another machine: OTHER=<that machine's results/demo, copied here>
## against results/demo; results/machines/{compare.tsv,summary.md} (NOTE="how OTHER was made")
bench-machines: $(STAMP)
	$(BIN)/python benchmarks/compare_runs.py results/demo $(OTHER) --out results/machines --note "$(NOTE)"

## the quick look (`make quick`'s target) from nothing: per-rule wall, CPU and RSS, total wall and CPU
bench-quick: $(STAMP)
	$(BIN)/python benchmarks/bench_demo.py --config config/quick.yaml

## the headline on an independent data set (another generator, not morphotx.data.demo; see docs/benchmarks.md)
bench-independent: $(STAMP)
	$(BIN)/python benchmarks/independent_data.py --out results/independent --run --cores $(CORES) $(ARGS)

## harmonise -> pair at LINCS size, then feature selection vs pycytominer.feature_select on that table
bench-lincs: $(STAMP)
	$(BIN)/python benchmarks/bench_lincs_scale.py
	$(BIN)/python benchmarks/bench_eval_scale.py
	$(BIN)/python benchmarks/bench_convert.py

## the LINCS-size demo end to end (training, evaluation, leaderboard, headline), 1 fold, 1 seed;
## per-rule wall time and peak RSS. ARGS="--device cuda --cores 16" on a GPU machine;
## ARGS="--target evaluation --keep DIR" scores a run kept in DIR again (its evaluation only)
bench-lincs-full: $(STAMP)
	$(BIN)/python benchmarks/bench_lincs_full.py --cores $(CORES) $(ARGS)

## the evaluation's MLP: scikit-learn vs morphotx's float32 NumPy version (CPU seconds, macro-F1)
bench-classifiers: $(STAMP)
	$(BIN)/python benchmarks/bench_classifiers.py

## CSV.gz -> Parquet conversion at the real LINCS Cell Painting size (throughput, peak RSS)
bench-convert: $(STAMP)
	$(BIN)/python benchmarks/bench_convert.py

## the quadratic evaluation steps at LINCS scale (pairwise PCC, enrichment, kNN curves, mAP)
bench-eval: $(STAMP)
	$(BIN)/python benchmarks/bench_eval_scale.py

## morphotx's feature selection vs pycytominer.feature_select standalone, same LINCS-size table
## (bench-lincs prints it too; WORK=DIR reuses a directory kept by bench_lincs_scale.py --keep DIR)
bench-feature-select: $(STAMP)
	$(BIN)/python benchmarks/bench_feature_select.py $(if $(WORK),--work $(WORK))

## CDRP-shaped files (morphotx.data.cdrp_demo) at growing sizes: convert -> harmonise -> preprocess -> pair
## -> CP-only embedding of every compound, each stage's wall time, CPU time and peak RSS
## (ARGS="--scales 0.02 0.05 0.1 1 --keep DIR": DIR's generated files are reused; --stages picks stages)
bench-cdrp-scale: $(STAMP)
	$(BIN)/python benchmarks/bench_cdrp_scale.py $(ARGS)

## the headline at CDRP-bio size on CDRP-shaped files (morphotx.data.cdrp_demo; config/cdrp_bio_sim.yaml):
## raw baselines and two cheap learned models on CPU, J = 5 splits; results/cdrp_bio_sim{,_data,_bench}/
## (ARGS="--scale 0.1 --name cdrp_bio_small": a tenth; "--raw-only"; "--report-only --doc docs/benchmarks.md"
## writes the run's block where docs/benchmarks.md has its markers (each block names its command);
## J = 10: "--name cdrp_bio_sim10_scratch --repeats 2 --data results/cdrp_bio_sim_data")
bench-cdrp-bio: $(STAMP)
	$(BIN)/python benchmarks/bench_cdrp_bio.py --cores $(CORES) $(ARGS)

clean:
	rm -rf results .snakemake
