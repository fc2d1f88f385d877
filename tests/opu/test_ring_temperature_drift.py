"""A weight-stationary core's drift check sees the rings' temperature, the drift that limits its products.

Silicon rings move ~80 pm/K; at Q 2e4 (linewidth 78 pm) 1 mK of chip temperature is 1/1000 of a linewidth,
yet it costs a 256-deep product ~2.4 bits: every ring's gain moves the same way, so the error adds up over
the inputs and tiles of an output. The simulated controller drifts the chip temperature on its program clock
(``thermal_drift_k``), so a calibration loses precision product after product and the drift check must say
when to recalibrate. Here the rings of core occ1 sit 1 mK warmer than at calibration.
"""

from __future__ import annotations

import yaml

import labctl
from labctl.opu import open_opu
from labctl.opu.stationary import calibration as stcal
from tests.shared_files import RING_CORE, ring_core_calibration

THERMO_OPTIC_M_PER_K = 80e-12  # the simulated rings' shift: 0.2 nm/mW heaters over 2500 K/W


def test_the_drift_check_asks_for_recalibration_after_the_rings_warmed_by_one_millikelvin(tmp_path_factory):
    cal_path = ring_core_calibration(tmp_path_factory, 0)
    banks = yaml.safe_load(RING_CORE.read_text())["components"]
    warmer = {f"bank1_{q}.resonance_wavelengths": [w + 1e-3 * THERMO_OPTIC_M_PER_K
                                                   for w in banks[f"bank1_{q}"]["resonance_wavelengths"]]
              for q in range(1, 17)}
    with labctl.open_bench(RING_CORE, seed=5, changes=warmer) as bench:
        core = open_opu(bench, cal_path, accept_stale=True)  # its rings differ from the file's: logged, accepted
        report = stcal.drift_check(core)
    assert report.recalibrate and report.ratio > 2.0, report
