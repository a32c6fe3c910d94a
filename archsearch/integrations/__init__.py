"""Bridges to other tools: ``archsearch.integrations.tune`` lets Ray Tune drive archsearch's strategies."""
