"""The harmonised schema every stage after `harmonise` reads and writes.

One row per profile (a Cell Painting well or an L1000 sample). Columns are chosen by name or
prefix, never by position:

* metadata columns start with ``Metadata_``;
* every other column is a float32 feature (Cell Painting: CellProfiler names starting
  ``Cells_``, ``Cytoplasm_`` or ``Nuclei_``; L1000: affy probe ids ending ``_at`` before the
  probe→gene step, gene symbols after it).

Metadata columns written by `harmonise` (both modalities):

==========================  ======================================================================
``Metadata_profile_id``     unique id of the profile (``<plate>:<well>`` or the L1000 ``cid``)
``Metadata_Plate``          plate barcode
``Metadata_Well``           well
``Metadata_pert_id``        13-character Broad id (``BRD-K12345678``), ``DMSO`` for controls
``Metadata_is_control``     True for vehicle (DMSO) wells
``Metadata_dose_uM``        dose as recorded (NaN for controls)
``Metadata_dose_recode``    dose recoded to the nearest standard dose (NaN for controls)
``Metadata_pert_id_dose``   treatment key ``<pert_id>_<dose_recode:g>``; ``DMSO`` for controls
``Metadata_moa``            list of MoA strings (empty list: not annotated)
``Metadata_pert_iname``     compound name where the source has one
==========================  ======================================================================

Later stages add ``Metadata_split`` (``train`` / ``validation`` / ``test`` / ``control``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

META_PREFIX = "Metadata_"
CP_COMPARTMENTS = ("Cells_", "Cytoplasm_", "Nuclei_")
CONTROL = "DMSO"
SPLITS = ("train", "validation", "test")
MODALITIES = ("cp", "l1000")

PROFILE_ID = "Metadata_profile_id"
PLATE = "Metadata_Plate"
WELL = "Metadata_Well"
PERT = "Metadata_pert_id"
IS_CONTROL = "Metadata_is_control"
DOSE = "Metadata_dose_uM"
DOSE_RECODE = "Metadata_dose_recode"
TREATMENT = "Metadata_pert_id_dose"
MOA = "Metadata_moa"
INAME = "Metadata_pert_iname"
SPLIT = "Metadata_split"


def meta_columns(df: pd.DataFrame) -> list[str]:
    """The metadata columns of a table: names starting with ``Metadata_``, in table order."""
    return [c for c in df.columns if c.startswith(META_PREFIX)]


def feature_columns(df: pd.DataFrame) -> list[str]:
    """The feature columns of a table: every column not starting with ``Metadata_``, in table order."""
    return [c for c in df.columns if not c.startswith(META_PREFIX)]


def cp_feature_columns(columns: Sequence[str]) -> list[str]:
    """CellProfiler features: names starting with a compartment prefix."""
    return [c for c in columns if c.startswith(CP_COMPARTMENTS)]


def modalities(view: str) -> tuple[str, ...]:
    """The modalities behind an embedding view or a model input: both for ``both`` (the joint view)
    and ``concat`` (a VAE's concatenated input), else the one modality named (``cp`` / ``l1000``).
    """
    return MODALITIES if view in ("both", "concat") else (view,)


def moa_string(moas) -> str:
    """Canonical string of a MoA list: sorted, ``|``-joined; empty string when unannotated."""
    return "|".join(sorted(moas)) if moas is not None and len(moas) else ""
