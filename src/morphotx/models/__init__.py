"""Model families of the study and its seeds, one trainer, embedding extraction.

Entry points used by the Snakemake rules: :func:`train_model` and :func:`embed_model`. They are
imported lazily so that reading the config (``resolve``, ``views``) does not import torch.
"""

from .config import FAMILIES, primary_view, resolve, views

__all__ = ["FAMILIES", "primary_view", "resolve", "views", "train_model", "embed_model",
           "embed_profiles", "embed_file", "load_checkpoint"]


def __getattr__(name):
    if name in ("embed_model", "embed_profiles"):
        from . import embed

        return getattr(embed, name)
    if name == "embed_file":
        from . import batch_embed

        return batch_embed.embed_file
    if name in ("train_model", "load_checkpoint"):
        from . import train

        return getattr(train, name)
    raise AttributeError(name)
