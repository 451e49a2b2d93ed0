"""The evaluation stage (rules in ``workflow/rules/evaluate.smk``): scores of embeddings and baselines.

Modules: :mod:`.jobs` (the rules ``evaluate_model`` and ``evaluate_raw``), :mod:`.tables` (the
tables an evaluation job reads and the variants it builds), :mod:`.classify` (the MoA
classifiers), :mod:`.knn` (kNN with k chosen on training or validation compounds),
:mod:`.scores` (every prediction's scores; F1 / precision / recall in NumPy), :mod:`.embedding_metrics` (the rows of the
``embedding_metrics`` table), :mod:`.moaprofiler` and :mod:`.retrieval` (the metrics themselves),
:mod:`.fusion` (late fusion of two modalities' classifiers), :mod:`.tasks` (the evaluation's
work units and the forked worker pool that runs them), :mod:`.arithmetic` and
:mod:`.reconstruction` (the generative models' rules ``arithmetic`` and ``reconstruction``).
"""
