"""Every figure rule: rule ``figure_<name>`` draws with ``morphotx.report.figures.<name>``."""
from morphotx.report import figures
from morphotx.smk import run

run(snakemake, getattr(figures, snakemake.rule.removeprefix("figure_")))  # noqa: F821 (injected by Snakemake)
