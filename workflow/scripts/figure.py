"""Every figure rule: rule ``figure_<name>`` draws with ``morphotx.report.figures.<name>``."""
import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.report import figures
from morphotx.smk import run

run(snakemake, getattr(figures, snakemake.rule.removeprefix("figure_")))  # noqa: F821 (injected by Snakemake)
