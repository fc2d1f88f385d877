"""Energy accounting: power terms with provenance, a ledger that turns them into J/op, and reports (docs/energy.md)."""

from labctl.energy.ledger import OPS_PER_MAC, VIEWS, EnergyLedger, OpsRecord, ViewSummary
from labctl.energy.provenance import Datasheet, EnergyError, Measured, Model, PowerTerm, Provenance
from labctl.energy.report import EnergyReport

__all__ = ["Datasheet", "EnergyError", "EnergyLedger", "EnergyReport", "Measured", "Model", "OPS_PER_MAC",
           "OpsRecord", "PowerTerm", "Provenance", "VIEWS", "ViewSummary"]
