"""Version of the refsim shower model.

Fidelity numbers measured against refsim quote it, and files written by refsim record it in
the attribute ``refsim_version``. History (docs/refsim.md):

* "1": GFlash with the file normalisation 0.033 used as the EM sampling fraction.
* "2": calibrated against real Geant4 CaloChallenge statistics: physical EM sampling fraction
  apart from the file normalisation, fitted c_S and e/mip, constant term, primary MIP track,
  early component, depth-dependent halo, ds1 dead material, earlier and longer pion showers.
* "3": "2" plus a ds2/ds3 soft-photon component (a share of the shower carried
  forward by photons near minimum attenuation, many small wide deposits) and spot numbers that
  follow the sampled signal; ds2/ds3 parameters refitted (``ds2-v3``) with real ds2 lit-voxel,
  empty-layer and ring numbers; ds1 EM parameters unchanged from "2".
* "4" (current): "3" with spots that share their layer's energy by Gamma(9) weights instead of
  equally (``caloforge.refsim.deposit.SPOT_SHAPE``), so voxel energies are no longer multiples
  of one spot energy; layer energies and every parameter unchanged.
"""

REFSIM_VERSION = "4"
