"""The blind tilt-axis bound of benchmarks/tilt.py: the Cramér-Rao bound of the axis angle when the volume is
unknown too. It must not be smaller than the bound with the volume known, and must grow as the volume gets more
freedom (told where the material is, then the whole specimen ball): a volume absorbs part of an axis error."""

from napari_cryomat.core.synthetic.tilt import make_tilt_series


def test_blind_axis_bound_grows_with_the_volume_freedom(benchmark_module):
    bench = benchmark_module("tilt")
    s = make_tilt_series(shape=(64, 64, 64), n_tilts=31, max_shift=3, dose=1.0, seed=52)
    bound = bench.blind_axis_crb(s, binning=2)
    known, told, ball = bound["volume known"], bound["told the support"], bound["ball"]
    assert 0 < known < told < ball
    assert told > 1.3 * known  # the volume takes a good part of an axis error even told where the material is
    # the volume-known bound is the one oracle_axis computes from the same counts at 1x: binning only loses
    lam, grads, fisher = bench.shift_fisher(s, s.shifts)[:3]
    crb_1x = bench.oracle_axis(s, lam, grads, fisher, iterations=1)[0]
    assert crb_1x <= known * 1.05
