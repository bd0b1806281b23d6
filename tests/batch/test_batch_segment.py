"""`cryomat batch segment` on a generated folder: tables and labels against the truth, on a local
dask.distributed cluster; bad input (corrupt file, no calibration, mixed pixel sizes, unwritable
output, bad model) reported while the other files finish; a rerun skips what is done."""

import json

import mrcfile
import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_cryomat.batch import load_results, segment_folder
from napari_cryomat.batch.results import ThumbnailMaker
from napari_cryomat.cli import main
from napari_cryomat.core.synthetic.particles import make_particles
from napari_cryomat.io.tiff import read_tiff


def _particles(rng, pixel_size):
    seed = int(rng.integers(1 << 30))
    size = int(rng.choice([224, 256]))
    img, truth, _ = make_particles(shape=(size, size), pixel_size=pixel_size, n_particles=int(rng.integers(5, 9)),
                                   seed=seed)
    return img, truth


def _write_folder(folder, rng):
    """Random images with known particles in three formats and calibrations, plus a corrupt file.
    Returns {name: (truth (T, Y, X), pixel size Å, calibrated in the file?)}."""
    folder.mkdir()
    truth = {}
    for k, px in enumerate(rng.permutation([1.5, 2.0, 2.0])):  # mixed pixel sizes
        img, lab = _particles(rng, float(px))
        with mrcfile.new(str(folder / f"mrc{k}.mrc"), data=img[::-1].copy()) as mrc:  # MRC rows go bottom-up
            mrc.voxel_size = float(px)
        truth[f"mrc{k}"] = (lab[None], float(px), True)
    frames = [_particles(rng, 2.0) for _ in range(3)]  # a stack, segmented frame by frame
    shape = min(f[0].shape for f in frames)
    stack = np.stack([f[0][: shape[0], : shape[1]] for f in frames])
    # ImageJ calibration as Fiji writes it: pixels per nm in the resolution tags
    tifffile.imwrite(folder / "stack.tif", stack, imagej=True, resolution=(5.0, 5.0), metadata={"unit": "nm"})
    truth["stack"] = (np.stack([f[1][: shape[0], : shape[1]] for f in frames]), 2.0, True)
    img, lab = _particles(rng, 2.0)
    if _write_hspy(folder / "vendor.hspy", img, 2.0):  # a vendor format, read through rosettasciio
        truth["vendor"] = (lab[None], 2.0, True)
    img, lab = _particles(rng, 2.0)
    tifffile.imwrite(folder / "plain.tif", img)  # no calibration at all: needs --pixel-size
    truth["plain"] = (lab[None], 2.0, False)
    (folder / "corrupt.mrc").write_bytes(b"MRC?" + bytes(rng.integers(0, 255, 3000, dtype=np.uint8)))
    return truth


def _write_hspy(path, img, pixel_size):
    """A HyperSpy file (what the vendor reader path opens) with the pixel size in nm; False without rosettasciio."""
    try:
        from rsciio.hspy import file_writer
    except ImportError:
        return False
    axes = [{"name": n, "size": s, "scale": pixel_size / 10, "offset": 0.0, "units": "nm", "navigate": False}
            for n, s in zip("yx", img.shape)]
    file_writer(str(path), {"data": img, "axes": axes, "metadata": {"General": {"title": "haadf"}, "Signal": {}},
                            "original_metadata": {}, "tmp_parameters": {}, "attributes": {"_lazy": False},
                            "package_info": {"name": "hyperspy", "version": "2.0"}, "learning_results": {},
                            "models": {}})
    return True


def _check_against_truth(out, objects, name, truth, px):
    labels_file = out / f"{name}_labels.tif"
    [(data, kwargs, kind)] = read_tiff(labels_file)
    assert kind == "labels"
    assert kwargs["scale"][-1] == pytest.approx(px) and kwargs["units"][-1] == "angstrom"
    with tifffile.TiffFile(labels_file) as tif:  # resolution tags for other software: pixels per cm
        xres = tif.pages[0].tags["XResolution"].value
        assert xres[0] / xres[1] == pytest.approx(1e8 / px, rel=1e-6)
    labels = np.asarray(data).reshape(truth.shape)
    mine = objects[objects["name"] == name]
    rel_errors = []
    for t in range(truth.shape[0]):
        rows = mine[mine["frame"] == t]
        n_true = int(truth[t].max())
        assert abs(len(rows) - n_true) <= max(1, n_true // 6), (name, t, len(rows), n_true)
        assert set(rows["label"]) == set(np.unique(labels[t][labels[t] > 0]))
        for _, row in rows.iterrows():
            overlap = truth[t][labels[t] == row["label"]]
            best = np.bincount(overlap[overlap > 0]).argmax() if (overlap > 0).any() else 0
            if best:
                true_area = np.count_nonzero(truth[t] == best) * px**2
                rel_errors.append(row["area"] / true_area - 1)
        assert (rows["pixel_size_A"] == px).all()
    return rel_errors


def test_batch_segment_on_a_local_cluster_matches_truth_and_reruns(tmp_path, capsys):
    rng = np.random.default_rng(14)
    truth = _write_folder(tmp_path / "in", rng)
    out = tmp_path / "out"
    code = main(["batch", "segment", str(tmp_path / "in"), "-o", str(out), "--pixel-size", "2", "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 1  # one file failed, the others finished
    assert "FAILED" in err and "corrupt.mrc" in err
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["name"]) == set(truth) | {"corrupt"}
    failed = summary[summary["status"] != "ok"]
    assert list(failed["name"]) == ["corrupt"] and "corrupt.mrc" in failed["error"].iloc[0]
    objects = pd.read_parquet(out / "objects.parquet")
    assert len(pd.read_csv(out / "objects.csv")) == len(objects)
    for column in ("file", "frame", "label", "area", "equivalent_diameter", "circularity", "shape_class"):
        assert column in objects
    rel_errors = []
    for name, (lab, px, calibrated) in truth.items():
        row = summary[summary["name"] == name].iloc[0]
        assert row["pixel_size_source"] == ("file" if calibrated else "--pixel-size")
        assert row["frames"] == lab.shape[0]
        rel_errors += _check_against_truth(out, objects, name, lab, px)
    rel_errors = np.abs(rel_errors)
    assert np.median(rel_errors) < 0.08 and np.mean(rel_errors < 0.2) > 0.9, rel_errors
    assert objects["shape_class"].min() >= 1  # every object classified across the whole set
    run = json.loads((out / "batch.json").read_text())
    assert any("pixel sizes differ" in note for note in run["notes"])  # mixed 1.5 and 2 Å said so
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "<svg" in page
    assert "<script" not in page and 'src="http' not in page and "<link" not in page  # self-contained

    # rerun: the corrupt file is replaced by a good image; only that file runs (threads this time)
    stamps = {n: (out / f"{n}_labels.tif").stat().st_mtime_ns for n in truth}
    img, lab = _particles(rng, 2.0)
    (tmp_path / "in" / "corrupt.mrc").unlink()
    with mrcfile.new(str(tmp_path / "in" / "corrupt.mrc"), data=img[::-1].copy()) as mrc:
        mrc.voxel_size = 2.0
    result = segment_folder([tmp_path / "in"], out, pixel_size=2.0, workers=1, processes=False)
    assert result.n_ok == len(truth) + 1
    runs = dict(zip(result.summary["name"], result.summary["run"]))
    assert runs.pop("corrupt") == "this run" and set(runs.values()) == {"done before"}
    assert all((out / f"{n}_labels.tif").stat().st_mtime_ns == s for n, s in stamps.items())
    _check_against_truth(out, result.objects, "corrupt", lab[None], 2.0)
    assert len(load_results(out).objects) == len(result.objects) > len(objects)


def test_batch_without_pixel_size_names_the_file_and_finishes_the_others(tmp_path):
    rng = np.random.default_rng(3)
    truth = _write_folder(tmp_path / "in", rng)
    result = segment_folder([tmp_path / "in"], tmp_path / "out", scheduler="serial")
    errors = dict(zip(result.summary["name"], result.summary["error"]))
    assert "plain.tif" in errors["plain"] and "--pixel-size" in errors["plain"]
    assert result.n_ok == len(truth) - 1
    assert any("no pixel size" in note for note in result.notes)


def test_batch_refuses_to_start_with_an_unwritable_folder_or_a_bad_model(tmp_path, capsys):
    image = tmp_path / "a.tif"
    tifffile.imwrite(image, np.zeros((32, 32), np.float32))
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["batch", "segment", str(image), "-o", str(blocker / "out"), "--scheduler", "serial"]) == 2
    assert "cannot write to the output folder" in capsys.readouterr().err
    model = tmp_path / "model.skops"
    model.write_bytes(b"\x00" * 64)  # not a model saved by this version
    assert main(["batch", "segment", str(image), "-o", str(tmp_path / "o"), "--method", "classifier",
                 "--model", str(model), "--scheduler", "serial"]) == 2
    assert "model" in capsys.readouterr().err
    assert main(["batch", "segment", str(image), "-o", str(tmp_path / "o"), "--param", "no_such=1"]) == 2
    assert "no_such" in capsys.readouterr().err
    assert not list((tmp_path / "o").glob("*_labels.tif"))  # nothing ran


def test_batch_with_a_pixel_classifier_measures_the_particle_class(tmp_path, monkeypatch):
    from napari_cryomat.batch import segment as batch_segment
    from napari_cryomat.core.segment import PixelClassifier, train_pixel_classifier

    rng = np.random.default_rng(7)
    img, truth = _particles(rng, 2.0)
    scribbles = np.zeros(truth.shape, np.uint8)  # sparse strokes: support 1, particles 2
    pick = rng.random(truth.shape) < 0.05
    scribbles[pick & (truth == 0)] = 1
    scribbles[pick & (truth > 0)] = 2
    model = train_pixel_classifier(img, scribbles)
    model_file = tmp_path / "model.skops"
    if hasattr(PixelClassifier, "save") and hasattr(PixelClassifier, "load"):
        model.save(str(model_file))
    else:  # until the classifier can be saved: the batch gets the trained one from its loader
        model_file.write_bytes(b"stand-in")
        monkeypatch.setattr(batch_segment, "load_classifier", lambda path: model)
    folder = tmp_path / "in"
    folder.mkdir()
    truths = {"im0": truth}
    img1, truths["im1"] = _particles(rng, 2.0)
    for name, im in (("im0", img), ("im1", img1)):
        tifffile.imwrite(folder / f"{name}.tif", im, metadata={"voxel_size_angstrom": [2.0, 2.0]})
    result = segment_folder([folder], tmp_path / "out", method="classifier", model=model_file, scheduler="serial")
    assert result.n_ok == 2
    objects = result.objects
    assert set(objects["pixel_class"]) == {2}  # the support (largest class) is background
    for name, lab in truths.items():
        rows = objects[(objects["name"] == name) & (objects["area"] > 200)]  # speckle aside
        assert abs(len(rows) - _touching_groups(lab)) <= 1
        assert rows["area"].sum() == pytest.approx(np.count_nonzero(lab) * 4.0, rel=0.1)


def _touching_groups(truth):
    """A class map does not split touching particles: count connected groups of particles."""
    from scipy import ndimage as ndi

    return int(ndi.label(truth > 0, structure=np.ones((3, 3)))[1])


def test_local_cluster_workers_keep_glibcs_adaptive_malloc(monkeypatch):
    # dask's default MALLOC_TRIM_THRESHOLD_ made every large array a fresh page fault: about 1 CPU-s more
    # per 2048² image in a worker than in a plain loop (benchmarks/batch.py)
    import os

    from napari_cryomat.batch.engine import _local_cluster

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    client, cluster = _local_cluster(1, 1, True)
    try:
        seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
    finally:
        client.close()
        cluster.close()
    assert list(seen.values()) == [None]


def test_a_file_with_nothing_to_segment_says_what_it_holds(tmp_path):
    # the message named only the layer kind ("it holds: image") for a diffraction pattern, a 3 x 3 image, a
    # spectrum image: the user could not tell what was wrong with the file
    from napari_cryomat.batch._images import BatchInputError, _unsuitable, image_layer

    small = tmp_path / "tiny.tif"
    tifffile.imwrite(small, np.ones((3, 3), np.float32))
    with pytest.raises(BatchInputError, match=r"tiny.tif: holds no 2D image .*'tiny' is 3 x 3 px \(at least 8 x 8"):
        image_layer(small)
    layers = [(np.ones((64, 64)), {"name": "CBED", "units": ("1/angstrom", "1/angstrom")}, "image"),
              (np.ones((64, 64, 32)), {"name": "EDS", "metadata": {"spectrum_image": {}}}, "image")]
    reasons = [_unsuitable(layer) for layer in layers]
    assert reasons == ["'CBED' is a diffraction pattern or an FFT (axes in 1/angstrom)",
                       "'EDS' is a spectrum or spectrum image"]


def test_a_size_read_at_the_pixel_scale_is_flagged_per_file_and_in_the_notes(tmp_path):
    # an atomic-resolution HAADF image (columns 3 px across, 0.2 Å/px) segmented as "particles" reads Ø 0.8 Å, 4 px:
    # what a micrograph's noise looks like too (epu2.9_example.mrc read 347,413 "particles" of 3 Å); the batch
    # summary said nothing of it
    rng = np.random.default_rng(5)
    folder = tmp_path / "in"
    folder.mkdir()
    yy, xx = np.mgrid[:256, :256].astype(np.float32)
    columns = sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0)
                  for cy in np.arange(3, 256, 6.0) for cx in np.arange(3, 256, 6.0))
    tifffile.imwrite(folder / "atoms.tif", rng.poisson(50 + 100 * columns).astype(np.float32))
    img, _ = _particles(rng, 2.0)
    tifffile.imwrite(folder / "particles.tif", img)
    result = segment_folder([folder], tmp_path / "out", pixel_size=0.2, workers=1, processes=False)
    summary = result.summary.set_index("name")
    assert "Ø" in summary.loc["atoms", "caution"] and "diameter=" in summary.loc["atoms", "caution"]
    assert summary.loc["particles", "caution"] == ""
    assert "particles, Ø" in summary.loc["particles", "assumed"]
    [note, left_out] = [n for n in result.notes if "pixel noise's scale" in n]
    assert note.startswith("1 file(s)") and "atoms" in note
    # the columns are left out of the shape classes: the particles make them
    objects = result.objects
    atoms = objects["name"] == "atoms"
    assert (objects.loc[atoms, "shape_class"] == 0).all() and (objects.loc[~atoms, "shape_class"] > 0).all()
    assert f"the {int(atoms.sum())} objects" in left_out


def test_relative_inputs_are_kept_as_absolute_paths(tmp_path, monkeypatch):
    """Run from the data's folder with relative paths (as on a cluster's login node): the tables name each file
    by its absolute path, so a dask worker in another working folder and the results dock, opened from
    anywhere, find the images."""
    rng = np.random.default_rng(28)
    (tmp_path / "run" / "in").mkdir(parents=True)
    img, _ = _particles(rng, 2.0)
    with mrcfile.new(str(tmp_path / "run" / "in" / "a.mrc"), data=img[::-1].copy()) as mrc:
        mrc.voxel_size = 2.0
    monkeypatch.chdir(tmp_path / "run")
    result = segment_folder(["in"], "out", scheduler="serial", report=False)
    assert result.n_ok == 1
    monkeypatch.chdir(tmp_path)  # the user looks at the results from elsewhere
    results = load_results(tmp_path / "run" / "out")
    expected = str(tmp_path / "run" / "in" / "a.mrc")
    assert list(results.summary["file"]) == [expected] and set(results.objects["file"]) == {expected}
    thumbnail = ThumbnailMaker(tmp_path / "run" / "out").thumbnail(results.objects.iloc[0])  # opens the image
    assert thumbnail.ndim == 3 and thumbnail.shape[2] == 3 and thumbnail.std() > 0
