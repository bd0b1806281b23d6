"""`cryomat align` batch: outputs written, shifts correct, a bad file reported and skipped."""

import csv

import mrcfile
import numpy as np
import tifffile

from napari_cryomat.batch import align_main
from napari_cryomat.core.synthetic.movie import drifting_movie


def _write_movie(path, seed):
    m = drifting_movie((96, 96), 6, counts_per_pixel=3.0, seed=seed)
    if str(path).endswith(".mrc"):
        with mrcfile.new(str(path), data=m.frames.astype(np.float32), overwrite=True) as mrc:
            mrc.voxel_size = 1.5
    else:
        tifffile.imwrite(str(path), m.frames.astype(np.float32))
    return m


def test_align_batch_writes_outputs_and_skips_bad_file(tmp_path, capsys):
    m1 = _write_movie(tmp_path / "a.mrc", 1)
    _write_movie(tmp_path / "b.tif", 2)
    (tmp_path / "bad.mrc").write_bytes(b"not an mrc file at all")
    out = tmp_path / "out"
    code = align_main([str(tmp_path / "a.mrc"), str(tmp_path / "bad.mrc"), str(tmp_path / "b.tif"),
                       "-o", str(out), "--dose", "1.2", "-j", "1"])
    assert code == 1  # one file failed, the others finished
    err = capsys.readouterr().err
    assert "FAILED" in err and "bad.mrc" in err
    for stem in ("a", "b"):
        assert (out / f"{stem}_sum.mrc").is_file()
        assert (out / f"{stem}_dw.mrc").is_file()
        assert (out / f"{stem}_shifts.csv").is_file()
    with mrcfile.open(str(out / "a_sum.mrc")) as mrc:
        assert mrc.data.shape == (96, 96)
        assert float(mrc.voxel_size.x) == 1.5  # pixel size from the input header kept
    rows = list(csv.DictReader(open(out / "a_shifts.csv")))
    shifts = np.array([[float(r["dy_px"]), float(r["dx_px"])] for r in rows])
    assert len(rows) == 6
    assert np.allclose(shifts[0], 0)
    assert np.sqrt(((shifts - m1.shifts) ** 2).sum(1).mean()) < 0.3
    assert np.allclose([float(r["dy_A"]) for r in rows], 1.5 * shifts[:, 0], atol=1e-3)


def test_align_batch_all_ok_and_missing_file(tmp_path, capsys):
    _write_movie(tmp_path / "a.mrc", 3)
    out = tmp_path / "o"
    assert align_main([str(tmp_path / "a.mrc"), "-o", str(out)]) == 0
    assert align_main([str(tmp_path / "nope.mrc"), "-o", str(out)]) == 1
    assert "no such file" in capsys.readouterr().err
