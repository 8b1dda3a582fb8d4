"""CRM notes to attributes: an offline rule-based extractor and its scoring against known facts (no Dagster,
no simulator imports)."""

from mos_pipelines.notes.extract import EXTRACTOR, VERSION, Attribute, extract
from mos_pipelines.notes.scoring import ATTRIBUTES, score

__all__ = ["ATTRIBUTES", "EXTRACTOR", "VERSION", "Attribute", "extract", "score"]
