"""Energy accounting: power terms with provenance, a ledger that turns them into J/op, and reports."""

from labctl.energy.provenance import Datasheet, EnergyError, Measured, Model, PowerTerm, Provenance

__all__ = ["Datasheet", "EnergyError", "Measured", "Model", "PowerTerm", "Provenance"]
