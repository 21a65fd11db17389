"""The world model: stations, network, faults, broker, consumers and the coordinators.

Where the package was installed with a C compiler, these modules run compiled by mypyc; they run
from their sources when the compiled ones are out of date or ``SIM_PURE_PYTHON`` is set (see
:mod:`sim.model.native`).
"""

from sim.model.native import choose

COMPILED = choose()
"""Whether the model runs compiled."""
