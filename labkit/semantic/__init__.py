"""Seed 001: preserving semantic neighbourhoods for cross-modal retrieval (Thomas & Kovashka, 2020).

Modules: :mod:`.losses` (eq. 1–4, 6–8, STRUC), :mod:`.neighbours` (Ω text spaces, k-NN, Ψ of eq. 5),
:mod:`.metrics` (N-way retrieval, neighbourhood preservation), :mod:`.model` (the CPU two-stream model),
:mod:`.study` (the Table 1/3/4 runs of notebook 04).
"""

from .losses import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .model import *  # noqa: F401,F403
from .neighbours import *  # noqa: F401,F403
