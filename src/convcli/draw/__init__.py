"""Pictures: network diagrams (``convcli draw``) and animated window arithmetic (``shape-calc --animate``)."""
