"""Physics of the simulated bench, in two kinds of module.

Pure device models (no World, no ports; parameters validated by ``validation``): ``fibre``
(FibreSpan), ``modulator`` (MachZehnderModel), ``amplifier`` (RFAmplifierModel), ``receiver``
(Receiver), ``edfa``, ``awgr``, ``microring``, ``filters``, ``converters``, ``laser``; with
``constants``, ``units`` (dBm <-> W) and ``grids`` (evaluating parts with memory on a time grid).
World graph nodes that wrap them for the bench files' passive parts: ``components`` (fibre,
modulator, photodiode, heater), ``network`` (EDFA, AWGR, mux, splitter, ring bank), ``electrical``
(RF amplifier). Instruments, which are sources or detectors with a front panel, model their own
physics in ``sim_backends.instruments``.
"""
