import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.leaderboard import write_training_summary

smk = snakemake  # noqa: F821
write_training_summary(list(smk.input), smk.output.parquet, smk.output.tsv)
