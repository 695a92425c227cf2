"""The outer layer: the ``gridline`` command line (and, later, the Flask service)."""
