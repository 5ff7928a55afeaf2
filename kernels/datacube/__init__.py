"""Pure numeric steps of the AI-ready datacube: match, filter, resample, gap-fill, patch, split."""

from gravitas.kernels.datacube.filter import DropReport, check_properties, filter_pairs
from gravitas.kernels.datacube.gapfill import (
    NormStats,
    aggregate_time,
    apply_normalisation,
    band_statistics,
    fill_spatial,
    fill_temporal,
    gap_fill,
)
from gravitas.kernels.datacube.match import (
    Match,
    ScenePair,
    SceneRecord,
    match_scenes,
    nearest_steps,
)
from gravitas.kernels.datacube.patches import (
    PatchSet,
    cut_patches,
    extract_patches,
    label_patches,
    patch_origins,
    valid_fractions,
)
from gravitas.kernels.datacube.resample import (
    align_window,
    coarsen,
    crop_pad,
    refine,
    shift_window,
    to_level,
)
from gravitas.kernels.datacube.split import (
    SplitResult,
    balance_classes,
    group_split,
    spatial_groups,
    stratified_split,
)

__all__ = [
    "DropReport",
    "Match",
    "NormStats",
    "PatchSet",
    "ScenePair",
    "SceneRecord",
    "SplitResult",
    "aggregate_time",
    "align_window",
    "apply_normalisation",
    "balance_classes",
    "band_statistics",
    "check_properties",
    "coarsen",
    "crop_pad",
    "cut_patches",
    "extract_patches",
    "fill_spatial",
    "fill_temporal",
    "filter_pairs",
    "gap_fill",
    "group_split",
    "label_patches",
    "match_scenes",
    "nearest_steps",
    "patch_origins",
    "refine",
    "shift_window",
    "spatial_groups",
    "stratified_split",
    "to_level",
    "valid_fractions",
]
