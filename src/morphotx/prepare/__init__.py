"""The preparation stage (rules in ``workflow/rules/prepare.smk``): splits, preprocessing, pairs.

Modules: :mod:`.split` (compounds or wells to train / validation / test, folds),
:mod:`.preprocess` (feature selection, normalisation and sphering fitted on training compounds),
:mod:`.recipe_choice` (the Cell Painting recipe of a split, chosen on its validation compounds)
and :mod:`.pairing` (the two modalities paired by treatment).
"""
