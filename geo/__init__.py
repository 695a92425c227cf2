"""The spatial core: coordinate systems, boundary sets, validation and the resolver.

``geo`` imports neither ``dispatch`` nor ``web``.
"""
