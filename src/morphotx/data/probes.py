"""Map L1000 affy probe columns (``200814_at``) to gene symbols.

Rules (all counts and names go to the log):

* A probe absent from the map, or mapped to an empty symbol, is *unmapped*: dropped by default
  (``unmapped: drop``) or kept under its probe id (``unmapped: keep``).
* A probe listed several times in the map with different symbols is an error naming the probes
  (``conflicts: error``, default); ``conflicts: first`` takes the first row's symbol (file order)
  and logs a warning.
* Unmapped probes are a warning with their count and examples; more than ``max_unmapped`` of the
  profiles' probes (default 10 %) stops the step: the map is probably the wrong one.
* Several probes of one gene (*duplicated genes*) are merged: ``duplicates: mean`` averages them
  (default), ``first`` keeps the first probe in column order.

Note on the Rosetta table (``l1000_probe_gene_idmap.xlsx``): its ``symbol`` column holds current
HGNC symbols, which differ from CMap's ``pr_gene_symbol`` for 51 of the 978 landmarks (mostly
renames such as KIAA0100 → BLTP2); its ``query`` column matches CMap for 958. A few rows look
like real mis-maps (201695_s_at PNP → KLK8, 203213_at CDK1 → POLD1, 205130_at MOK → AGER): use
``symbol_column: query`` or a GCT's own ``pr_gene_symbol`` when CMap naming matters.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .. import schema as S
from ..io import MorphotxInputError, read_gct, read_table, require_columns, save_parquet
from ..settings import ProbeMapSettings

log = logging.getLogger(__name__)


def load_probe_map(path: str | Path, probe_column: str = "probe_id", symbol_column: str = "symbol",
                   conflicts: str = "error") -> pd.Series:
    """Probe id → symbol as a Series. GCT files are read through their row metadata
    (``id`` → ``pr_gene_symbol``). A probe with several symbols is an error unless ``conflicts``
    is ``first``.
    """
    path = Path(path)
    if ".gct" in path.name.lower():
        _, rows, _ = read_gct(path)
        col = symbol_column if symbol_column in rows.columns else "pr_gene_symbol"
        table = rows[[col]].reset_index().rename(columns={"rid": probe_column, col: symbol_column})
    else:
        table = read_table(path)
    require_columns(table, (probe_column, symbol_column), path, "probe map",
                    "probe_map.probe_column / probe_map.symbol_column")
    table = table[[probe_column, symbol_column]].astype("string")
    table[symbol_column] = table[symbol_column].str.strip()
    if conflicts not in ("error", "first"):
        raise ValueError(f"probe_map.conflicts must be 'error' or 'first', got {conflicts!r}")
    multi = table.groupby(probe_column)[symbol_column].nunique()
    multi = multi[multi > 1]
    if len(multi):
        examples = {p: sorted(table.loc[table[probe_column] == p, symbol_column].dropna().unique())
                    for p in multi.index[:5]}
        if conflicts == "error":
            raise MorphotxInputError(
                f"{path}: {len(multi)} probe(s) listed with different symbols in column '{symbol_column}' "
                f"(e.g. {examples}); fix the map, or set probe_map.conflicts: first to take the first row's symbol.")
        log.warning("%s: %d probe(s) listed with several symbols; the first row wins (e.g. %s)", path.name,
                    len(multi), examples)
    table = table.drop_duplicates(probe_column, keep="first")
    return table.set_index(probe_column)[symbol_column]


def map_probes_frame(profiles: pd.DataFrame, mapping: pd.Series, duplicates: str = "mean", unmapped: str = "drop"):
    """Rename probe feature columns to symbols. Returns ``(profiles, report)``."""
    if duplicates not in ("mean", "first"):
        raise ValueError(f"probe_map.duplicates must be 'mean' or 'first', got {duplicates!r}")
    if unmapped not in ("drop", "keep"):
        raise ValueError(f"probe_map.unmapped must be 'drop' or 'keep', got {unmapped!r}")
    probes = S.feature_columns(profiles)
    sym = mapping.reindex(probes)
    is_unmapped = sym.isna() | (sym == "")
    report = {"n_probes": len(probes), "unmapped": sorted(sym.index[is_unmapped])}
    if unmapped == "keep":
        sym = sym.where(~is_unmapped, pd.Series(sym.index, index=sym.index))
    else:
        sym = sym[~is_unmapped]
    groups = pd.Series(sym.index, index=sym.index).groupby(sym.to_numpy(), sort=False)
    dup = {g: list(v) for g, v in groups if len(v) > 1}
    report["duplicated_genes"] = dup
    meta = profiles[S.meta_columns(profiles)]
    cols = {}
    for gene, members in groups:
        members = list(members)
        if len(members) == 1 or duplicates == "first":
            cols[gene] = profiles[members[0]].to_numpy(dtype="float32")
        else:
            cols[gene] = profiles[members].to_numpy(dtype="float32").mean(axis=1)
    feats = pd.DataFrame(cols, index=profiles.index)
    report["n_genes"] = feats.shape[1]
    return pd.concat([meta, feats], axis=1), report


def map_probes(profiles, output, probe_map, settings: ProbeMapSettings = ProbeMapSettings()) -> dict:
    """Map the probe columns of ``profiles`` to genes with the map at ``probe_map``; write Parquet
    to ``output``. Unmapped probes are a warning; more than ``settings.max_unmapped`` of them (a
    fraction) is an error.

    Parameters
    ----------
    profiles : str or Path
        The harmonised L1000 table (Parquet), one column per probe.
    output : str or Path
        The Parquet file written: the metadata columns, then one float32 column per gene.
    probe_map : str or Path
        The probe map (TSV, CSV, XLSX or a GCT's row metadata; :func:`load_probe_map`).
    settings : ProbeMapSettings, default ProbeMapSettings()
        The ``probe_map`` config section: the map's probe and symbol columns (``probe_id``,
        ``symbol``), genes with several probes (``mean``), unmapped probes (``drop``), probes with
        conflicting symbols (``error``) and the largest fraction of unmapped probes (0.1).

    Returns
    -------
    dict
        The mapping report: ``n_probes``, ``n_genes``, ``unmapped`` (probes) and
        ``duplicated_genes`` (gene to its probes).

    Raises
    ------
    MorphotxInputError
        No probe column is in the map, or more than ``max_unmapped`` of them are unmapped.
    """
    probe_column, symbol_column = settings.probe_column, settings.symbol_column
    duplicates, unmapped, max_unmapped = settings.duplicates, settings.unmapped, settings.max_unmapped
    table = read_table(profiles)
    mapping = load_probe_map(probe_map, probe_column, symbol_column, settings.conflicts)
    mapped, report = map_probes_frame(table, mapping, duplicates, unmapped)
    if report["n_genes"] == 0:
        raise MorphotxInputError(
            f"{probe_map}: none of the {report['n_probes']} probe columns of {profiles} is in the probe map "
            f"(column '{probe_column}'); is it the right map?")
    n_un, n = len(report["unmapped"]), report["n_probes"]
    if n and n_un / n > max_unmapped:
        raise MorphotxInputError(
            f"{probe_map}: {n_un} of {n} probes of {profiles} ({n_un / n:.0%}) have no symbol in column "
            f"'{symbol_column}' (e.g. {report['unmapped'][:5]}); above probe_map.max_unmapped = {max_unmapped}. "
            "Is it the right map or column? Raise probe_map.max_unmapped to accept it.")
    if n_un:
        log.warning("probe map %s: %d of %d probes have no symbol (%s: %s)", Path(probe_map).name, n_un, n,
                    unmapped, report["unmapped"][:10])
    log.info("probe map %s: %d probes -> %d genes; %d unmapped (%s: %s); %d genes with several probes (%s: %s)",
             Path(probe_map).name, report["n_probes"], report["n_genes"], len(report["unmapped"]), unmapped,
             report["unmapped"][:10], len(report["duplicated_genes"]), duplicates,
             dict(list(report["duplicated_genes"].items())[:5]))
    save_parquet(mapped, output)
    return report
