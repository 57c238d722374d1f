"""Photonic crystals: a plane-wave band solver, unit-cell generators and the density of states
(the paper's photonics experiment)."""
