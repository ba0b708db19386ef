"""conda/mamba CLI stand-in (a test double) for the integration tests."""
