"""Pick tables: CSV and RELION STAR round trips in the file's voxel indices."""

import numpy as np
import pytest
import starfile

from napari_cryomat.core import picks


@pytest.fixture
def pts():
    return np.array([[3.0, 10.5, 20.25], [0.0, 0.0, 0.0], [63.0, 127.0, 5.0]])  # z, y, x


def test_csv_round_trip_and_columns(tmp_path, pts):
    path = picks.write_picks_csv(tmp_path / "p.csv", pts, voxel_size=(4.0, 2.0, 2.0))
    lines = path.read_text().splitlines()
    assert lines[0] == "x,y,z,x_angstrom,y_angstrom,z_angstrom"
    assert [float(v) for v in lines[1].split(",")] == [20.25, 10.5, 3.0, 40.5, 21.0, 12.0]
    np.testing.assert_array_equal(picks.read_picks_csv(path), pts)


def test_csv_variants(tmp_path):
    (tmp_path / "imod.txt").write_text("  10 20 3\n 11 21 4\n")  # model2point style: x y z
    np.testing.assert_array_equal(picks.read_picks_csv(tmp_path / "imod.txt"), [[3, 20, 10], [4, 21, 11]])
    (tmp_path / "h.csv").write_text("id,Z,X,Y\n1,5,6,7\n")
    np.testing.assert_array_equal(picks.read_picks_csv(tmp_path / "h.csv"), [[5, 7, 6]])
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="'x' column"):
        picks.read_picks_csv(tmp_path / "bad.csv")
    (tmp_path / "empty.csv").write_text("x,y,z\n")
    assert picks.read_picks_csv(tmp_path / "empty.csv").shape == (0, 3)


def test_star_round_trip_relion_columns(tmp_path, pts):
    path = picks.write_picks_star(tmp_path / "p.star", pts, tomo_name="TS_01", voxel_size=(4.0, 4.0, 4.0))
    df = starfile.read(path)
    assert list(df.columns[:4]) == ["rlnTomoName", "rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"]
    np.testing.assert_allclose(df["rlnCoordinateX"], pts[:, 2])
    np.testing.assert_allclose(df["rlnCoordinateZ"], pts[:, 0])
    assert "data_particles" in path.read_text()
    np.testing.assert_allclose(picks.read_picks_star(path), pts)


def test_star_2d_table_and_errors(tmp_path):
    import pandas as pd

    starfile.write({"coords": pd.DataFrame({"rlnCoordinateX": [1.0], "rlnCoordinateY": [2.0]})}, tmp_path / "a.star")
    np.testing.assert_array_equal(picks.read_picks_star(tmp_path / "a.star"), [[0, 2, 1]])
    starfile.write({"x": pd.DataFrame({"rlnAngleRot": [1.0]})}, tmp_path / "b.star")
    with pytest.raises(ValueError, match="rlnCoordinate"):
        picks.read_picks_star(tmp_path / "b.star")
    with pytest.raises(ValueError, match="no such file"):
        picks.read_picks(tmp_path / "missing.star")


def test_dispatch_by_extension(tmp_path, pts):
    picks.write_picks(tmp_path / "a.star", pts, tomo_name="t")
    picks.write_picks(tmp_path / "a.csv", pts, tomo_name="ignored")
    np.testing.assert_allclose(picks.read_picks(tmp_path / "a.star"), pts)
    np.testing.assert_allclose(picks.read_picks(tmp_path / "a.csv"), pts)


def test_bad_points_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        picks.write_picks_csv(tmp_path / "x.csv", np.zeros((2, 2)))
