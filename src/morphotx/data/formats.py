"""Dataset format files (``resources/datasets/*.yaml``) and the columns they describe.

A format file maps a dataset's source columns to the harmonised schema, lists the required
columns, how features are recognised (name prefixes or suffixes) and which other columns are
known metadata. Both the conversion (:mod:`morphotx.data.convert`, which checks a file's header before
streaming it) and the harmonisation (:mod:`morphotx.data.harmonise`) read them through this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import yaml

from ..io import MorphotxInputError, read_header

log = logging.getLogger(__name__)


def load_format(path: str | Path, modality: str) -> dict:
    """One modality's section of a dataset format file (``resources/datasets/*.yaml``).

    Raises
    ------
    MorphotxInputError
        If the file has no section named ``modality``.
    """
    with open(path) as fh:
        fmt = yaml.safe_load(fh)
    if modality not in fmt:
        raise MorphotxInputError(f"{path}: no section '{modality}'; add one (see resources/datasets/lincs_pilot1.yaml).")
    return fmt[modality]


def read_columns(path: str | Path) -> list[str]:
    """Column names of a Parquet file (its schema) or a delimited text file (its header line)."""
    path = Path(path)
    if path.name.lower().endswith(".parquet"):
        if not path.exists() or path.stat().st_size == 0:
            raise MorphotxInputError(f"{path}: file is missing or empty (0 bytes). Re-create it.")
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return read_header(path)


def first_present(name: str | list[str], header: Sequence[str]) -> str:
    """``name`` or, for a list of alternatives (e.g. ``[pert_type_x, pert_type]``), the first in ``header``."""
    names = [name] if isinstance(name, str) else list(name)
    return next((n for n in names if n in header), names[0])


def source_columns(header: Sequence[str], columns: dict[str, str]) -> dict[str, str]:
    """The format's column map restricted to ``header``; when several source columns map to one
    harmonised column (alternative spellings, e.g. ``pert_type_x`` in the Rosetta CSV and
    ``pert_type`` in a CMap GCT) the first one present wins.
    """
    out: dict[str, str] = {}
    for src, dst in columns.items():
        if src in header and dst not in out.values():
            out[src] = dst
    return out


def control_rules(fmt: dict) -> list[dict]:
    """The format's control rules: ``control`` is one rule ``{column, values}`` or a list of them
    (a row is a control when any rule whose column the file has matches; e.g. CDRP:
    ``Metadata_ASSAY_WELL_ROLE == mock`` or ``Metadata_broad_sample == DMSO``). A rule's ``column``
    may itself be a list of alternative spellings (the first present is read).
    """
    rules = fmt["control"]
    return [rules] if isinstance(rules, dict) else list(rules)


def _alternatives(name: str | list[str]) -> list[str]:
    return [name] if isinstance(name, str) else list(name)


def check_columns(header: Sequence[str], fmt: dict, path: str | Path, format_path: str | Path,
                  modality: str) -> list[str]:
    """Check ``header`` against a format section (required columns, a control column, the treatment
    column where the format names one, at least one feature) and return the feature columns. A
    required entry may be a list of alternative names. Raises one error naming the file, the missing
    columns and the fix: this is where schema drift (a renamed column) is caught.
    """
    missing = []
    for req in fmt.get("required", []):
        names = _alternatives(req)
        if not any(n in header for n in names):
            missing.append(req if isinstance(req, str) else " or ".join(names))
    ctl_cols = [c for rule in control_rules(fmt) for c in _alternatives(rule["column"])]
    if not any(c in header for c in ctl_cols):
        missing.append(" or ".join(ctl_cols) + " (control wells)")
    if fmt.get("treatment") and fmt["treatment"] not in header and fmt["treatment"] not in fmt.get("required", []):
        missing.append(f"{fmt['treatment']} (treatment key)")
    if missing:
        near = sorted(c for c in header if not _select_features([c], fmt["features"]))[:15]
        raise MorphotxInputError(
            f"{path}: required column(s) {missing} missing for {modality} (format {format_path}). The file's "
            f"metadata columns are {near}. Check that the right file is configured, or map the file's column "
            "name in the format file.")
    features = _select_features(list(header), fmt["features"])
    if not features:
        spec = fmt.get("metadata", {})
        known = set(fmt["columns"]) | set(spec.get("names", ()))
        other = [c for c in header if c not in known and not c.startswith(tuple(spec.get("prefixes", ())))]
        raise MorphotxInputError(
            f"{path}: no feature columns match {fmt['features']} (format {format_path}); the file's other "
            f"columns are {other[:8]}{' …' if len(other) > 8 else ''} ({len(other)}). Is this the right "
            f"modality/file? {modality} features must be named as the format says"
            + (" (L1000: the Affymetrix probe ids, e.g. 200814_at; gene symbols are mapped from them by the probe "
               "map)" if modality == "l1000" else "") + ".")
    _check_case_duplicates(features, path)
    return features


def _check_case_duplicates(features: Sequence[str], path) -> None:
    """An error naming the feature columns whose names differ only in letter case: the same
    measurement exported twice, which would otherwise count as two features.
    """
    groups: dict[str, list[str]] = {}
    for c in dict.fromkeys(features):  # exact repeats are the duplicated-name check's (io.check_unique)
        groups.setdefault(c.casefold(), []).append(c)
    clash = [g for g in groups.values() if len(g) > 1]
    if clash:
        raise MorphotxInputError(
            f"{path}: {len(clash)} feature name(s) occur more than once when letter case is ignored "
            f"(e.g. {clash[:5]}); a feature exported twice would count as two features. Remove the duplicate "
            "column(s), or rename them if they are different measurements.")


def unknown_columns(header: Sequence[str], features: Sequence[str], fmt: dict) -> list[str]:
    """Columns of ``header`` that are neither features, nor mapped by the format's ``columns``, nor
    declared by its ``metadata`` (``prefixes`` / ``names``): kept as metadata, but a renamed feature
    prefix (schema drift, e.g. ``Cells_`` → ``Cell_``) lands here.
    """
    spec = fmt.get("metadata", {})
    prefixes, names = tuple(spec.get("prefixes", ())), set(spec.get("names", ()))
    known = set(features) | set(fmt["columns"]) | names
    return [c for c in header if c not in known and not (prefixes and c.startswith(prefixes))]


def _check_unknown(unknown: list[str], n_features: int, path: Path, format_path, max_unknown: float) -> None:
    if not unknown:
        return
    msg = (f"{path}: {len(unknown)} column(s) match no feature rule and no known metadata column of the format "
           f"{format_path} (e.g. {unknown[:8]}); they are kept as metadata, not used as features")
    if len(unknown) > max_unknown * n_features:
        raise MorphotxInputError(
            f"{msg}. That is more than harmonise.max_unknown_columns = {max_unknown:g} × the {n_features} feature "
            "columns: were features renamed (e.g. a changed prefix)? Fix the names, add the prefix to the format's "
            "features, declare the columns under its metadata, or raise harmonise.max_unknown_columns.")
    log.warning("%s.", msg)


def _select_features(columns: list[str], spec: dict) -> list[str]:
    prefixes = tuple(spec.get("prefixes", ()))
    suffixes = tuple(spec.get("suffixes", ()))
    return [c for c in columns if (prefixes and c.startswith(prefixes)) or (suffixes and c.endswith(suffixes))]
