"""Physical models of the passive parts of a bench (fibre, modulator, photodiode, heater load).

Instruments that are sources or detectors model their own physics in ``sim_backends.instruments``;
the parts here have no front panel and are configured only in the bench file.
"""
