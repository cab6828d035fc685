"""The Delta-backed registry of definitions, repo loading and registry snapshots."""
