"""Drift model without Qt widgets: requests, the worker functions, the layers one Align leaves."""

import csv

import mrcfile
import numpy as np
import pytest
from napari.components import ViewerModel

from napari_cryomat.core._progress import Cancelled
from napari_cryomat.core.synthetic.movie import drifting_movie
from napari_cryomat.widgets.drift import AlignParams, DriftModel, LayerNames, run_alignment, save_run, sum_frames


@pytest.fixture(scope="module")
def movie():
    return drifting_movie((96, 96), 8, counts_per_pixel=2.0, pixel_size=1.5, seed=3)


@pytest.fixture
def viewer(movie):
    viewer = ViewerModel()
    viewer.add_image(movie.frames, name="movie", scale=(1.0, 1.5, 1.5), units=("pixel", "angstrom", "angstrom"))
    return viewer


@pytest.fixture
def model(viewer):
    return DriftModel(viewer)


PARAMS = AlignParams(pixel_size=1.5, bfactor=300, dose_per_frame=1.0)


def align(model, layer, params=PARAMS):
    """Request, compute (here on the test's thread) and accept one run; returns the run."""
    run = run_alignment(model.request(layer, params))
    model.accept(run)
    return run


def names(viewer):
    return [layer.name for layer in viewer.layers]


def test_layer_names_say_what_they_are_without_repeats():
    plain = LayerNames.for_source("movie")
    assert (plain.stack, plain.total, plain.dose_weighted) == ("movie aligned", "movie aligned sum",
                                                               "movie dose-weighted sum")
    assert plain.partial_sum(0, 8, 8) == "movie aligned sum"
    assert plain.partial_sum(2, 5, 8) == "movie aligned sum (frames 2-4)"
    again = LayerNames.for_source("movie aligned")
    assert (again.stack, again.total) == ("movie aligned 2×", "movie aligned 2× sum")
    assert LayerNames.for_source("movie aligned 2×").stack == "movie aligned 3×"
    for source in ("movie", "movie aligned", "movie aligned 2×", "x aligned sum", "aligned"):
        made = LayerNames.for_source(source)
        assert source not in (made.stack, made.total, made.dose_weighted)  # never overwrite the input
        assert "aligned aligned" not in made.stack


def test_defaults_from_layer_and_params_checks(viewer):
    layer = viewer.layers["movie"]
    assert DriftModel.defaults_for(layer) == {"pixel_size": pytest.approx(1.5)}
    layer.metadata["dose_per_frame_e_per_A2"] = 0.3
    assert DriftModel.defaults_for(layer)["dose_per_frame"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="pixel size"):
        AlignParams(pixel_size=0)
    text = AlignParams(pixel_size=1, group=3, patches=(2, 2), dose_per_frame=0.5).describe()
    assert "group frames 3" in text and "2×2 patches" in text and "0.5 e/Å²/frame" in text


def test_request_refuses_what_cannot_be_aligned(viewer, model):
    with pytest.raises(ValueError, match="choose a .*stack"):
        model.request(None, PARAMS)
    rgb = viewer.add_image(np.zeros((32, 32, 3), np.uint8), rgb=True, name="photo")
    with pytest.raises(ValueError, match="RGB"):
        model.request(rgb, PARAMS)
    flat = viewer.add_image(np.zeros((32, 32), np.float32), name="flat")
    with pytest.raises(ValueError, match="not a \\(T, Y, X\\) stack"):
        model.request(flat, PARAMS)


def test_one_align_makes_one_stack_and_one_sum_with_correct_shifts(viewer, model, movie):
    n_before = len(viewer.layers)
    runs = []
    model.run_changed.connect(runs.append)
    run = align(model, viewer.layers["movie"])
    assert runs == [run]
    # stack, sum, dose-weighted sum: nothing else (no running sum duplicating the sum)
    # (the sum on top, where a new frame range shows at once)
    assert names(viewer)[n_before:] == ["movie aligned", "movie dose-weighted sum", "movie aligned sum"]
    aligned = viewer.layers["movie aligned"]
    assert aligned.data.shape == movie.frames.shape
    assert tuple(aligned.scale) == pytest.approx((1.0, 1.5, 1.5))
    assert str(aligned.units[-1]) == "angstrom"
    total = viewer.layers["movie aligned sum"]
    assert tuple(total.scale) == pytest.approx((1.5, 1.5))
    np.testing.assert_allclose(total.data, aligned.data.sum(0), rtol=1e-5, atol=1e-3)
    assert total.contrast_limits[0] < np.median(total.data) < total.contrast_limits[1]
    assert np.sqrt(((run.drift.shifts - movie.shifts) ** 2).sum(1).mean()) < 0.45  # 96² px frames: few counts
    assert run.params is PARAMS and "FRC 0.143" in run.summary()
    assert aligned.visible and not viewer.layers["movie"].visible  # after is shown, before hidden
    # "before" shows the source alone (the sums lie above it); "after" brings back what it hid
    viewer.layers["movie dose-weighted sum"].visible = False  # the user hides one
    model.show_aligned(False)
    assert viewer.layers["movie"].visible and not any(layer.visible for layer in model.result_layers())
    model.show_aligned(True)
    assert not viewer.layers["movie"].visible
    assert [layer.visible for layer in model.result_layers()] == [True, False, True]


def test_accept_writes_one_layer_per_step(viewer, model):
    # a view lets the event loop turn between steps: napari's add_layer costs ~0.1 s each
    request = model.request(viewer.layers["movie"], PARAMS)
    run = run_alignment(request)
    runs = []
    model.run_changed.connect(runs.append)
    written = []
    for name in model.accept_steps(run):
        written.append(name)
        assert names(viewer)[1:] == written  # exactly the layers yielded so far
        assert not runs  # the view hears of the run once its layers are all there
    assert written == ["movie aligned", "movie dose-weighted sum", "movie aligned sum"] and runs == [run]


def test_repeated_align_updates_the_same_layers(viewer, model):
    align(model, viewer.layers["movie"])
    layers = {name: viewer.layers[name] for name in names(viewer)}
    run = align(model, viewer.layers["movie"], AlignParams(pixel_size=1.5, bfactor=500, dose_per_frame=1.0))
    assert {name: viewer.layers[name] for name in names(viewer)} == layers  # same names, same objects
    np.testing.assert_array_equal(viewer.layers["movie aligned"].metadata["shifts_px"], run.drift.shifts)


def test_sum_of_a_frame_range_renames_the_sum_layer_and_back(viewer, model):
    run = align(model, viewer.layers["movie"])
    n_layers = len(viewer.layers)
    total = viewer.layers["movie aligned sum"]
    changed = []
    model.sum_changed.connect(lambda a, b: changed.append((a, b)))
    request = model.sum_request(2, 5)
    model.accept_sum(request, sum_frames(request))
    assert len(viewer.layers) == n_layers and changed == [(2, 5)]
    assert "movie aligned sum" not in names(viewer)
    part = viewer.layers["movie aligned sum (frames 2-4)"]
    assert part is total  # the same layer, renamed with its range
    np.testing.assert_allclose(part.data, run.aligned[2:5].sum(0), atol=1e-3)
    assert model.frame_range == (2, 5)
    assert model.sum_request(2, 5) is None  # already shown
    assert model.sum_request(5, 5) is None and model.sum_request(0, 9) is None  # empty, outside
    # a new Align shows all frames again, in the same layer
    align(model, viewer.layers["movie"])
    assert len(viewer.layers) == n_layers and viewer.layers["movie aligned sum"] is total
    assert model.frame_range == (0, run.n_frames)


def test_stale_results_are_dropped(viewer, model):
    layer = viewer.layers["movie"]
    old_request = model.request(layer, PARAMS)
    new_request = model.request(layer, PARAMS)
    model.accept(run_alignment(old_request))  # superseded by the newer request
    assert model.run is None and "movie aligned" not in names(viewer)
    model.accept(run_alignment(new_request))
    sum_request = model.sum_request(1, 3)
    align(model, layer)  # a new run replaces the one the sum was asked for
    model.accept_sum(sum_request, sum_frames(sum_request))
    assert "movie aligned sum" in names(viewer) and model.frame_range == (0, 8)


def test_core_value_error_reaches_the_caller_and_leaves_data(viewer, model):
    data = np.ones((4, 64, 64), np.float32)
    data[1, 3, 3] = np.nan
    layer = viewer.add_image(data.copy(), name="nan stack")
    with pytest.raises(ValueError, match="NaN"):
        run_alignment(model.request(layer, AlignParams(pixel_size=1.0)))
    np.testing.assert_array_equal(layer.data, data)


def test_save_writes_bottom_up_rows_and_dy_along_file_rows(viewer, model, movie, tmp_path):
    with pytest.raises(ValueError, match="run the alignment first"):
        model.save(tmp_path / "none.mrc")
    run = align(model, viewer.layers["movie"])
    mrc_path, csv_path = model.save(tmp_path / "al")
    assert mrc_path.name == "al.mrc" and csv_path.name == "al_shifts.csv"
    with mrcfile.open(str(mrc_path)) as mrc:
        assert mrc.data.shape == movie.frames.shape
        assert float(mrc.voxel_size.x) == pytest.approx(1.5)
    # MRC rows are bottom-up: reopened through the plugin, the stack looks as it did on screen
    from napari_cryomat.io.mrc import read_mrc

    [(reopened, _, _)] = read_mrc(mrc_path)
    np.testing.assert_allclose(np.asarray(reopened), np.asarray(viewer.layers["movie aligned"].data), atol=1e-4)
    shifts = run.drift.shifts
    rows = list(csv.DictReader(open(csv_path)))
    assert len(rows) == 8 and float(rows[3]["dx_A"]) == pytest.approx(1.5 * shifts[3, 1], abs=1e-3)
    # dy is along the file's rows (bottom-up): the opposite sign of the displayed shift
    assert float(rows[3]["dy_A"]) == pytest.approx(-1.5 * shifts[3, 0], abs=1e-3)


def test_cancelled_save_leaves_no_file(viewer, model, tmp_path):
    run = align(model, viewer.layers["movie"])

    def cancel_halfway(fraction):
        if fraction > 0.4:
            raise Cancelled()

    with pytest.raises(Cancelled):
        save_run(run, tmp_path / "half.mrc", progress=cancel_halfway)
    assert list(tmp_path.iterdir()) == []


def test_lazy_stack_stays_lazy_and_sums_in_the_worker(movie, tmp_path):
    da = pytest.importorskip("dask.array")
    viewer = ViewerModel()
    layer = viewer.add_image(da.from_array(movie.frames, chunks=(1, 96, 96)), name="lazy movie",
                             scale=(1.0, 1.5, 1.5), units=("pixel", "angstrom", "angstrom"))
    model = DriftModel(viewer)
    run = align(model, layer, AlignParams(pixel_size=1.5, bfactor=300))
    assert hasattr(run.aligned, "compute")  # the aligned stack layer computes frames as shown
    assert isinstance(run.total, np.ndarray) and names(viewer)[1:] == ["lazy movie aligned", "lazy movie aligned sum"]
    request = model.sum_request(1, 4)
    image, limits = sum_frames(request)
    assert isinstance(image, np.ndarray) and limits[0] < limits[1]
    np.testing.assert_allclose(image, np.asarray(run.aligned[1:4]).sum(0), rtol=1e-5, atol=1e-3)
    mrc_path, _ = model.save(tmp_path / "lazy.mrc")
    with mrcfile.open(str(mrc_path)) as mrc:
        assert mrc.data.shape == movie.frames.shape


def test_image_frames_beside_spectrum_image_frames_align_on_their_own_axes(movie):
    """A Velox SI in frames opens its HAADF frames as (T, 1, Y, X) (napari aligns trailing axes: a (T, Y, X) stack
    would put its time on the SI's energy axis). Drift correction aligns them as the (T, Y, X) stack they are, and
    the aligned stack keeps the singleton, so the energy slider still steps through the SI's channels only."""
    viewer = ViewerModel()
    n, ny, nx = movie.frames.shape
    viewer.add_image(np.zeros((n, 64, ny, nx), np.float32), name="EDS frames", scale=(0.5, 10.0, 1.5, 1.5),
                     translate=(0.0, -500.0, 0.0, 0.0))
    # the singleton spans the 64 channels, centred on them, as the reader makes it (it shows at every energy)
    viewer.add_image(movie.frames[:, None], name="HAADF frames", scale=(0.5, 640.0, 1.5, 1.5),
                     translate=(0.0, -500.0 + 31.5 * 10.0, -74.0, 222.0), units=("s", "eV", "angstrom", "angstrom"))
    model = DriftModel(viewer)
    run = align(model, viewer.layers["HAADF frames"])
    assert run.aligned.shape == movie.frames.shape  # aligned as (T, Y, X), not as a series of 1-slice volumes
    assert np.sqrt(((run.drift.shifts - movie.shifts) ** 2).sum(1).mean()) < 0.45
    aligned = viewer.layers["HAADF frames aligned"]
    assert aligned.data.shape == (n, 1, ny, nx)
    assert tuple(aligned.scale) == pytest.approx((0.5, 640.0, 1.5, 1.5))
    assert tuple(aligned.translate) == pytest.approx(tuple(viewer.layers["HAADF frames"].translate))
    assert [str(u) for u in aligned.units] == ["second", "electron_volt", "angstrom", "angstrom"]
    assert viewer.dims.nsteps[:2] == (n, 64)  # time steps by frame, energy by channel
    # every result lies over its source (a Velox image starts at its stage offset), not at the origin
    for name in ("HAADF frames aligned sum", "HAADF frames dose-weighted sum"):
        assert tuple(viewer.layers[name].translate) == pytest.approx((-74.0, 222.0))
