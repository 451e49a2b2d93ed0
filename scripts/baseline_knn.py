import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.baseline import run_baselines

smk = snakemake  # noqa: F821
o = smk.output
run_baselines(smk.input.cp, smk.input.l1000, o.summary, o.summary_md, o.per_moa, o.per_moa_md, **dict(smk.params.items()))
