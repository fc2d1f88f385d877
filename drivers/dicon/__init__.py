"""Drivers for dicon instruments."""
