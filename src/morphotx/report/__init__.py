"""The report stage (rules in ``workflow/rules/report.smk``): leaderboard, headline, figures, manifest.

Modules: :mod:`.leaderboard` (the exploratory leaderboard and the training summary),
:mod:`.headline` (the headline tables, rule ``headline``), :mod:`.selection` (the configuration
of each entry chosen on validation compounds), :mod:`.statistics` (fold-level intervals, p-values,
minimum detectable effects, Holm), :mod:`.compound_bootstrap` (the paired bootstrap over test
compounds), :mod:`.headline_text` (the headline in sentences and Markdown),
:mod:`.print_headline` (``python -m morphotx.report.print_headline``), :mod:`.figures` (each
figure rule's function), :mod:`.plotting` (how every figure is saved and styled),
:mod:`.manifest` (what produced a results folder) and :mod:`.readme_numbers` (the README's result
block).
"""
