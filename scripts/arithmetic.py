import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.arithmetic import run_arithmetic
from morphotx.settings import section

smk = snakemake  # noqa: F821
i, o, p = smk.input, smk.output, smk.params
run_arithmetic(smk.wildcards.model, p.model_cfg, p.train, i.checkpoint, i.cp, i.l1000, i.pairs, i.sets, i.cp_collapsed,
               i.l1000_collapsed, o.distances, o.zscores, o.traversal, section("arithmetic", p.arithmetic),
               seed=p.seed, threads=smk.threads)
