"""The data stage (rules in ``workflow/rules/data.smk``): inputs to the harmonised schema.

Modules: :mod:`.demo` (the embedded LINCS-shaped demo) and :mod:`.cdrp_demo` (a CDRP-shaped one,
for tests and benchmarks), :mod:`.download` (fetch and verify the public files), :mod:`.convert`
(one input file to typed Parquet), :mod:`.formats` (the dataset format files), :mod:`.harmonise`
(one modality's file to the harmonised schema) and :mod:`.probes` (L1000 probes to genes).
"""
