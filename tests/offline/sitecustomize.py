"""Imported at start-up by every Python that has this folder on PYTHONPATH (the notebook kernels of the tests): with
LABKIT_OFFLINE=1 it installs the outbound-network guard before anything else runs (see labkit_offline_guard)."""

import os

if os.environ.get("LABKIT_OFFLINE") == "1":
    import labkit_offline_guard

    labkit_offline_guard.install(log=os.environ.get("LABKIT_OFFLINE_LOG"))
