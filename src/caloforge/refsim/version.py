"""Version of the refsim shower model.

Fidelity numbers measured against refsim quote it, and files written by refsim record it in
the attribute ``refsim_version``. History (docs/refsim.md):

* "1": GFlash with the file normalisation 0.033 used as the EM sampling fraction.
"""

REFSIM_VERSION = "1"
