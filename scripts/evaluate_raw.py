import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.evaluate import OUTPUTS, evaluate_raw

smk = snakemake  # noqa: F821
i = smk.input
evaluate_raw(int(smk.wildcards.seed), i.cp, i.l1000, i.cp_collapsed, i.l1000_collapsed,
             {k: smk.output[k] for k in OUTPUTS}, smk.params.cfg,
             fold=int(smk.wildcards.fold))
