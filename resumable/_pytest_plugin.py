"""The pytest plugin that installing resumable registers: fixtures for testing jobs."""
