"""Physical constants (CODATA 2018 exact values where defined)."""

C = 299_792_458.0  # speed of light, m/s
Q = 1.602_176_634e-19  # elementary charge, C
H = 6.626_070_15e-34  # Planck constant, J s
K_B = 1.380_649e-23  # Boltzmann constant, J/K
