"""PyVISA looks up back end ``@labsim`` as the module ``pyvisa_labsim``: point it at the simulator."""

from sim_backends.highlevel import LabSimVisaLibrary as WRAPPER_CLASS

__all__ = ["WRAPPER_CLASS"]
