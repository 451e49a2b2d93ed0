import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.reconstruction import run_reconstruction

smk = snakemake  # noqa: F821
i, o, p = smk.input, smk.output, smk.params
run_reconstruction(smk.wildcards.model, p.model_cfg, p.train, i.checkpoint, i.cp, i.l1000, i.pairs, i.sets,
                   o.reconstruction, samples_out=o.samples, history=i.history, history_out=o.curves,
                   control=p.shuffled_control, seed=p.seed, fold=p.fold, threads=smk.threads)
