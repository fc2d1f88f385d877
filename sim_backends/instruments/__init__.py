"""Simulated instrument models, one module per real model."""
