import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.models import embed_model

smk = snakemake  # noqa: F821
i = smk.input
embed_model(smk.params.model, smk.params.model_cfg, smk.params.train, i.checkpoint, i.cp, i.l1000, i.pairs, i.sets,
            outputs=dict(smk.output.items()), threads=smk.threads)
