"""Experiments users run on a real or simulated bench (registered as labctl.experiments entry points)."""
