"""Release tooling: the offline bundle (``make bundle``, ``make verify-bundle``)."""
