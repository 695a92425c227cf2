"""The domain: reports, work orders and their lifecycle (built on :mod:`geo`)."""
