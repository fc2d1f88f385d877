"""What several experiments share: the transmitter's set-up, simulated bench variants, the received power and
calibration helpers of weight-stationary cores, model-weight operands and precision plots.

Experiments import from here, never from one another, so each experiment module can change on its own.
"""
