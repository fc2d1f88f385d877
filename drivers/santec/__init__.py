"""Drivers for santec instruments."""
