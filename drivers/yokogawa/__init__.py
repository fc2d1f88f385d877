"""Drivers for Yokogawa instruments."""
