"""Drivers for keysight instruments."""
