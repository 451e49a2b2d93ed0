import morphotx_src  # noqa: F401 (puts this repository's src/ on sys.path; see the module)
from morphotx.smk import setup

setup(snakemake)  # noqa: F821 (injected by Snakemake)
from morphotx.harmonise import harmonise
from morphotx.settings import section

smk = snakemake  # noqa: F821
p = smk.params
harmonise(smk.input.profiles, smk.output[0], smk.input.fmt, p.modality, section("harmonise", p.harmonise),
          section("moa", p.moa), moa_map=(smk.input.moa_map[0] if smk.input.moa_map else None))
