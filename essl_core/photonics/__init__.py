"""Photonic crystals: a plane-wave band solver, unit-cell generators and the density of states (paper §3.5-3.6)."""
