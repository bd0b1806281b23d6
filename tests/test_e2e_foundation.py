"""End to end, in a real napari window (Xvfb + Mesa): samples, File > Open, bad files, the demo."""

import mrcfile
import numpy as np
import pytest

pytestmark = pytest.mark.e2e


def _has_content(rgba: np.ndarray) -> float:
    gray = rgba[..., :3].astype(float).mean(axis=-1)
    return float(gray.std())


def test_sample_tomogram_renders(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "tomogram")
    layer = viewer.layers[0]
    assert layer.data.shape == (80, 256, 256)
    assert tuple(layer.scale) == (8.0, 8.0, 8.0)
    assert str(layer.units[0]) == "angstrom"
    assert viewer.dims.axis_labels == ("z", "y", "x")  # the slider says z, as for a tomogram read from MRC
    viewer.reset_view()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert _has_content(shot) > 10  # noise, particles and the membrane: not a flat picture
    # the membrane bilayer is the brightest long structure: a bright row band in the lower part
    rows = shot[..., :3].mean(axis=(1, 2))
    assert rows.max() > rows.mean()


def test_open_mrc_through_napari(make_napari_viewer, tmp_path):
    vol = np.zeros((5, 40, 50), np.float32)
    vol[:, 5, :] = 1.0  # a bright line at file row 5 (row 5 from the bottom in 3dmod)
    path = tmp_path / "lines.rec"
    with mrcfile.new(str(path)) as m:
        m.set_data(vol)
        m.voxel_size = (2.0, 2.0, 3.0)
    viewer = make_napari_viewer(show=True)
    viewer.open(str(path), plugin="napari-cryomat")
    layer = viewer.layers["lines"]
    assert tuple(layer.scale) == (3.0, 2.0, 2.0)
    assert viewer.dims.axis_labels == ("z", "y", "x")  # not napari's "-3"
    assert np.asarray(layer.data[2, 40 - 1 - 5]).min() == 1.0
    shot = viewer.screenshot(canvas_only=True, flash=False)
    assert _has_content(shot) > 1


def test_bad_file_leaves_viewer_untouched(make_napari_viewer, tmp_path, monkeypatch):
    bad = tmp_path / "broken.mrc"
    bad.write_bytes(b"\x00" * 10)
    shown = []
    monkeypatch.setattr("napari.utils.notifications.show_error", shown.append)
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-cryomat", "tomogram")
    n_before = len(viewer.layers)
    viewer.open(str(bad), plugin="napari-cryomat")
    assert len(viewer.layers) == n_before
    assert shown and "broken.mrc" in shown[0]
    assert bad.read_bytes() == b"\x00" * 10
