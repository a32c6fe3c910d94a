"""Format versions of everything archsearch writes, in one place.

Bump one when its format changes so that an older archsearch can no longer read what a newer one
wrote; readers refuse a version they do not know with a one-line error instead of misreading it.
"""

RUN_SCHEMA_VERSION = 1
"""The run directory: ``run.json``, journal records, strategy state, Parquet tables, kept weights."""

GENOME_SCHEMA_VERSION = 1
"""A genome's JSON (``Genome.to_dict``)."""

EXPORT_SCHEMA_VERSION = 1
"""An exported model folder's ``model.json``."""
