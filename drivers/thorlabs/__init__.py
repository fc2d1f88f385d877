"""Drivers for thorlabs instruments."""
