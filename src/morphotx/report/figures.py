"""The study's figures by rule: rule ``figure_<name>`` draws with ``morphotx.report.figures.<name>``.

One function per figure; each takes table paths and writes one figure (or a directory of figures,
one per model) atomically, each as a 300 dpi PNG plus a PDF vector copy and a screen rendition
(``<name>.screen.png``, 100 dpi: the one the HTML report embeds) beside it
(:func:`~.plotting.save_figure`). An empty input draws a panel that says what is missing instead of
failing. The figures of the evaluation's scores are drawn in :mod:`.score_figures`, those of the
models themselves in :mod:`.model_figures`; this module names them for the rules.
"""

from .model_figures import (
    arithmetic_distances,
    arithmetic_modalities,
    cache_umap_jit,
    cross_modality,
    embedding_maps,
    loss_curves,
    reconstruction_distributions,
    reconstruction_r2,
    shuffled_control_curves,
    traversal_heatmaps,
)
from .score_figures import (
    enrichment,
    headline,
    knn_vs_k,
    leaderboard,
    map_distributions,
    moaprofiler_summary,
    per_moa_f1,
)

# the figure rules' functions (the workflow's figure_<name> rules and workflow/scripts/figure.py)
__all__ = ["arithmetic_distances", "arithmetic_modalities", "embedding_maps", "enrichment", "headline", "knn_vs_k",
           "leaderboard", "loss_curves", "map_distributions", "moaprofiler_summary", "per_moa_f1",
           "reconstruction_distributions", "reconstruction_r2", "shuffled_control_curves", "traversal_heatmaps",
           "cache_umap_jit", "cross_modality"]
