"""The detectability oracle of the randomised EDS series (benchmarks/_eds_oracle.py): swap_significance."""

from napari_cryomat.core.synthetic.eds import random_eds_spectrum


def _replay(benchmark_module, seed):
    oracle = benchmark_module("_eds_oracle")
    return oracle, oracle.replay("new", seed, random_eds_spectrum)


def test_an_element_a_stand_in_explains_is_not_decidable(benchmark_module):
    # new-generator seed 4013 (Al, Hf, Ni): dropped, Al costs the fit 16.7σ, yet Br in its place (Br Lα 1.480 keV on
    # Al Kα 1.487, Br K too weak to tell at 20 kV) explains the spectrum as well as the truth: no method that does not
    # know the composition can claim Al at 5σ without risking Br
    oracle, rp = _replay(benchmark_module, 4013)
    assert oracle.oracle_significance(rp, only="Al")["Al"] > 10
    sigma, stand_in = oracle.swap_significance(rp, "Al")
    assert sigma < 1 and stand_in == "Br"


def test_an_element_no_stand_in_explains_is_decidable(benchmark_module):
    # new-generator seed 16: O (missed by identification, its Kα on Cr Ll/Lη) beats its best stand-in (V) by 13σ
    oracle, rp = _replay(benchmark_module, 16)
    sigma, stand_in = oracle.swap_significance(rp, "O")
    assert sigma > 10 and stand_in == "V"


def test_a_foreign_element_is_fitted_to_its_best(benchmark_module):
    # new-generator seed 27: Pt Mα/Mβ on Zr Lα/Lβ1 (2.04/2.12 keV). Started at an arbitrary amount, Pt's fit in Zr's
    # place stopped 2ΔlogL 89 above its minimum (Zr decidable at 9σ); from its NNLS amount too, 9.0: Zr and Pt are 3σ
    # apart, a coin flip for any method
    oracle, rp = _replay(benchmark_module, 27)
    sigma, stand_in = oracle.swap_significance(rp, "Zr")
    assert 2.0 < sigma < 4.0 and stand_in == "Pt"
