"""Drivers for instruments that run labctl's own firmware (e.g. the OCC-16 optical core controller)."""
