import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.pairing import pair_files

smk = snakemake  # noqa: F821
o = smk.output
pair_files(smk.input.cp, smk.input.l1000, o.pairs, o.sets, o.cp_collapsed, o.l1000_collapsed, **dict(smk.params.items()))
