"""Measuring story quality: reference sets, runs of model outputs, and scoring them.

``references`` reads a reference set (the StoryReasoning split's parquet files, or a folder of
reference texts), ``runs`` reads and writes a run folder of model outputs and scores it with
``desktop_app.evaluation.metrics``. No Qt; the ``eval`` extra provides pyarrow, nltk and rouge-score.
"""

from __future__ import annotations
