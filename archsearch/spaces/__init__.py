"""Space families instantiated by the YAML files in ``search_spaces/``."""

from archsearch.spaces.block_graph import BlockGraphSpace

__all__ = ["BlockGraphSpace"]
