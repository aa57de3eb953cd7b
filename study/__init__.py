"""Shared logic of the multilingual embedding study; the top-level scripts stay thin.

One module a concern: config, data, embedders, artifacts, probes, metrics, plots, report.
"""
from study.errors import StudyError

__all__ = ["StudyError"]
