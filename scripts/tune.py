import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.tune import tune_model

smk = snakemake  # noqa: F821
i, o, p = smk.input, smk.output, smk.params
tune_model(smk.wildcards.model, p.model_cfg, p.train, p.space, p.n_trials, p.seed, i.cp, i.l1000, i.pairs, i.sets,
           o.trials, o.best, threads=smk.threads, max_epochs=p.max_epochs, trials_tsv=o.tsv)
