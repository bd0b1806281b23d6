import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_cryomat.core import Cancelled
from napari_cryomat.core.measure import match_labels
from napari_cryomat.core.segment import (
    click_segment,
    interpolate_slices,
    iter_tiles,
    segment_particles,
    train_pixel_classifier,
)
from napari_cryomat.core.synthetic.particles import make_particles

PS = 2.0


@pytest.fixture(scope="module")
def sample():
    return make_particles()


@pytest.mark.parametrize("threshold", ["otsu", "li", "local"])
def test_segment_particles_recovers_truth(sample, threshold):
    image, truth, info = sample
    labels = segment_particles(image, pixel_size=PS, threshold=threshold)
    m = match_labels(labels, truth)
    assert m["f1"] >= 0.9
    assert m["mean_iou"] >= 0.8
    assert labels.dtype == np.int32 and labels.shape == image.shape


def test_watershed_splits_two_touching_disks():
    yy, xx = np.mgrid[:128, :200]
    a = np.hypot(yy - 64, xx - 70) < 30
    b = np.hypot(yy - 64, xx - 126) < 30  # centres 56 px apart: the disks overlap a little
    img = np.where(a | b, 0.2, 1.0).astype(np.float32)
    merged = segment_particles(img, pixel_size=1.0, split=False, min_size=10)
    split = segment_particles(img, pixel_size=1.0, split=True, split_distance=20, min_size=10)
    assert merged.max() == 1
    assert split.max() == 2


def test_min_size_in_square_angstrom():
    img = np.ones((100, 100), np.float32)
    img[10:20, 10:20] = 0  # 100 px = 400 Å² at 2 Å
    img[50:80, 50:80] = 0  # 900 px = 3600 Å²
    lab = segment_particles(img, pixel_size=2.0, smoothing=0, min_size=1000.0, split=False)
    assert lab.max() == 1
    assert np.count_nonzero(lab) == 900


def test_segment_particles_bright_polarity_and_3d():
    zz, yy, xx = np.mgrid[:40, :48, :48]
    vol = (np.hypot(np.hypot(zz - 20, yy - 24), xx - 24) < 10).astype(np.float32)
    lab = segment_particles(vol, pixel_size=3.0, polarity="bright", smoothing=0, min_size=100.0)
    assert lab.max() == 1
    assert abs(np.count_nonzero(lab) - 4 / 3 * np.pi * 10**3) / (4 / 3 * np.pi * 10**3) < 0.1


def test_segment_particles_bad_input():
    with pytest.raises(ValueError, match="threshold"):
        segment_particles(np.zeros((10, 10)), pixel_size=1.0, threshold="magic")
    with pytest.raises(ValueError, match="NaN"):
        segment_particles(np.full((10, 10), np.nan), pixel_size=1.0)


def test_progress_can_cancel(sample):
    def cb(f):
        if f > 0.2:
            raise Cancelled()

    with pytest.raises(Cancelled):
        segment_particles(sample[0], pixel_size=PS, progress=cb)


def _scribbles(truth, rng, n=400):
    scr = np.zeros_like(truth)
    for value, region in ((2, truth > 0), (1, truth == 0)):
        ys, xs = np.nonzero(region)
        idx = rng.choice(ys.size, n, replace=False)
        scr[ys[idx], xs[idx]] = value
    return scr


def test_pixel_classifier_learns_particles(sample, rng):
    image, truth, _ = sample
    scr = _scribbles(truth, rng)
    model = train_pixel_classifier(image, scr, n_estimators=20)
    pred = model.predict(image, tile_size=200)  # several tiles, with margins
    assert set(np.unique(pred)) <= {1, 2}
    acc = np.mean((pred == 2) == (truth > 0))
    assert acc > 0.95
    # tiling does not change the answer
    whole = model.predict(image, tile_size=1024)
    assert np.mean(whole == pred) > 0.999
    # the feature cache only saves time: same forest without it gives the same prediction
    assert model.cache.tiles
    plain = train_pixel_classifier(image, scr, n_estimators=20, cache=False)
    assert plain.cache is None
    assert np.array_equal(plain.predict(image, tile_size=200), pred)


def test_pixel_classifier_3d_and_probability():
    rng = np.random.default_rng(1)
    zz, yy, xx = np.mgrid[:32, :40, :40]
    truth = (np.hypot(np.hypot(zz - 16, yy - 20), xx - 20) < 9).astype(np.int32)
    vol = (1 - 0.5 * truth + rng.normal(0, 0.1, truth.shape)).astype(np.float32)
    scr = np.zeros_like(truth)
    scr[16, 18:23, 18:23] = 2
    scr[2, 2:10, 2:10] = 1
    model = train_pixel_classifier(vol, scr, n_estimators=10, sigma_max=4.0, num_sigma=3)
    pred, prob = model.predict(vol, tile_size=20, return_probability=True)
    assert np.mean((pred == 2) == (truth > 0)) > 0.95
    assert prob.dtype == np.float32 and prob.min() >= 0.5 - 1e-6


def test_pixel_classifier_writes_into_out_array(sample, rng, tmp_path):
    image, truth, _ = sample
    model = train_pixel_classifier(image, _scribbles(truth, rng), n_estimators=5)
    out = np.lib.format.open_memmap(tmp_path / "pred.npy", mode="w+", dtype=np.uint8, shape=image.shape)
    res = model.predict(image, out=out)
    assert res is out and out.max() == 2


def test_pixel_classifier_bad_scribbles(sample):
    image = sample[0]
    with pytest.raises(ValueError, match="empty"):
        train_pixel_classifier(image, np.zeros(image.shape, int))
    one = np.zeros(image.shape, int)
    one[5:10, 5:10] = 1
    with pytest.raises(ValueError, match="another class"):
        train_pixel_classifier(image, one)
    with pytest.raises(ValueError, match="shape"):
        train_pixel_classifier(image, np.zeros((10, 10), int))


def test_iter_tiles_cover_exactly_once():
    seen = np.zeros((50, 37), int)
    for core, padded, inner in iter_tiles(seen.shape, 16, 5):
        seen[core] += 1
        assert all(c.start - p.start == i.start for c, p, i in zip(core, padded, inner))
    assert np.all(seen == 1)


@pytest.mark.parametrize("method", ["flood", "watershed", "random_walker"])
def test_click_segment_recovers_one_particle(sample, method):
    image, truth, info = sample
    k = int(np.argmax(info["area_A2"]))  # the biggest particle
    cy, cx = info["center_px"][k]
    mask = click_segment(image, [(cy, cx)], pixel_size=PS, method=method, max_radius=200.0)
    true = truth == k + 1
    iou = np.sum(mask & true) / np.sum(mask | true)
    assert iou > 0.7


def test_second_click_refines(sample):
    image, truth, info = sample
    # a touching pair: flood from one particle leaks into its neighbour; a background click on the
    # neighbour lowers the tolerance and cuts it off (or at least does not make it bigger)
    k = int(np.argmax(info["area_A2"]))
    cy, cx = info["center_px"][k]
    first = click_segment(image, [(cy, cx)], pixel_size=PS, tolerance=0.5)
    assert first.sum() > 3 * np.sum(truth == k + 1)  # tolerance too loose: floods the support
    background = np.argwhere(truth == 0)
    target = np.array([cy, cx + info["radius_A"][k] / PS + 10])
    bg = background[np.argmin(np.hypot(*(background - target).T))]
    refined = click_segment(image, [(cy, cx)], background_points=[bg], pixel_size=PS, tolerance=0.5)
    true = truth == k + 1
    assert np.sum(refined & true) / np.sum(refined | true) > 0.6
    # a second object click adds a second part
    k2 = (k + 1) % truth.max()
    both = click_segment(image, [(cy, cx), info["center_px"][k2]], pixel_size=PS, max_radius=1000.0)
    assert both[tuple(int(v) for v in info["center_px"][k2])]


def test_interpolate_slices_morphs_circles():
    lab = np.zeros((11, 64, 64), np.int32)
    yy, xx = np.mgrid[:64, :64]
    lab[0][np.hypot(yy - 32, xx - 32) < 10] = 3
    lab[10][np.hypot(yy - 32, xx - 32) < 20] = 3
    lab[5, 0, 0] = 7  # other painting is never overwritten
    out = interpolate_slices(lab, axis=0)
    assert lab[5].sum() == 7  # input untouched
    r5 = np.sqrt(np.count_nonzero(out[5] == 3) / np.pi)
    assert abs(r5 - 15) < 1.0
    assert out[5, 0, 0] == 7
    radii = [np.sqrt(np.count_nonzero(out[k] == 3) / np.pi) for k in range(11)]
    assert np.all(np.diff(radii) > 0)
    with pytest.raises(ValueError):
        interpolate_slices(lab[0])


class _FakePredictor:
    """Stands in for segment_anything.SamPredictor: records the calls, returns a disk at the click."""

    instances = []

    def __init__(self, sam):
        self.sam = sam
        self.images = []
        self.calls = []
        _FakePredictor.instances.append(self)

    def set_image(self, rgb):
        assert rgb.dtype == np.uint8 and rgb.shape[-1] == 3
        self.images.append(rgb)

    def predict(self, point_coords, point_labels, multimask_output):
        self.calls.append((np.asarray(point_coords), np.asarray(point_labels), multimask_output))
        h, w = self.images[-1].shape[:2]
        yy, xx = np.mgrid[:h, :w]
        x, y = point_coords[0]
        return (np.hypot(yy - y, xx - x) < 5)[None], np.array([0.9]), None


@pytest.fixture
def fake_sam(monkeypatch):
    import sys
    import types

    loaded = []

    class _Sam:
        def to(self, device):
            self.device = device

    def build(checkpoint):
        loaded.append(checkpoint)
        return _Sam()

    mod = types.ModuleType("segment_anything")
    mod.SamPredictor = _FakePredictor
    mod.sam_model_registry = {"vit_b": build}
    monkeypatch.setitem(sys.modules, "segment_anything", mod)
    monkeypatch.setitem(sys.modules, "micro_sam", None)  # force the segment_anything path
    monkeypatch.setitem(sys.modules, "micro_sam.util", None)
    _FakePredictor.instances.clear()
    return loaded


def test_sam_segmenter_glue_uses_local_weights_only(fake_sam, tmp_path):
    from napari_cryomat.core.segment import SamSegmenter

    with pytest.raises(ValueError, match="never downloads"):
        SamSegmenter(tmp_path / "missing.pth")
    weights = tmp_path / "sam_vit_b.pth"
    weights.write_bytes(b"weights")
    sam = SamSegmenter(weights, model_type="vit_b", device="cpu")
    assert fake_sam == [str(weights)]
    img = np.random.default_rng(0).random((40, 60)).astype(np.float32)
    m1 = sam.segment(img, [(10, 30)], background_points=[(35, 5)])
    m2 = sam.segment(img, [(10, 30), (12, 31)])
    pred = _FakePredictor.instances[-1]
    assert len(pred.images) == 1  # the embedding is computed once per image
    coords, labels, multi = pred.calls[0]
    assert coords.tolist() == [[30, 10], [5, 35]] and labels.tolist() == [1, 0] and multi is False
    assert m1.shape == img.shape and m1[10, 30] and not m1[35, 5]
    assert m2.sum() == m1.sum()
    with pytest.raises(ValueError, match="Unknown model"):
        SamSegmenter(weights, model_type="vit_x")


def test_volume_too_big_for_memory_asks_for_tiles_on_disk(sample, rng, monkeypatch, tmp_path):
    image, truth, _ = sample
    model = train_pixel_classifier(image, _scribbles(truth, rng), n_estimators=5, cache=False)
    import napari_cryomat.core._classifier as classifier_mod

    # pretend only 64 kB of memory is free
    monkeypatch.setattr(classifier_mod.os, "sysconf", lambda name: 16 if name == "SC_AVPHYS_PAGES" else 4096)
    with pytest.raises(ValueError, match="memmap"):
        model.predict(image)
    out = np.lib.format.open_memmap(tmp_path / "p.npy", mode="w+", dtype=np.uint8, shape=image.shape)
    assert model.predict(image, out=out, tile_size=128) is out  # tile by tile into the file
    assert np.mean((out == 2) == (truth > 0)) > 0.9


# ------------------------------------------------------------------------------------------------
# automatic settings (issue #14): seeded, randomised images of both generators, none the sample
# ------------------------------------------------------------------------------------------------
def _unseen_images():
    from napari_cryomat.core.synthetic.particles import make_particle_field, make_particles_varied

    rng = np.random.default_rng(14)
    for k in range(6):
        d = float(rng.uniform(10, 40))
        polarity = ("dark", "bright")[k % 2]
        dose, gradient = float(rng.uniform(50, 1000)), float(rng.uniform(0, 0.3))
        if k < 3:
            img, truth, _ = make_particles_varied(diameter=d, polarity=polarity, dose=dose, gradient=gradient,
                                                  seed=100 + k)
        else:
            img, truth, _ = make_particle_field(diameter=d, shape_kind=("round", "ellipse", "blob")[k - 3],
                                                polarity=polarity, dose=dose, gradient=gradient, undulation=0.05,
                                                seed=100 + k)
        yield d, polarity, img, truth


def test_defaults_find_particles_of_any_size_and_polarity():
    from skimage.filters import threshold_otsu

    ours, plain = [], []
    for d, polarity, img, truth in _unseen_images():
        labels, settings = segment_particles(img, pixel_size=1.0, return_settings=True)
        assert settings.polarity == polarity
        assert abs(settings.diameter - d) / d < 0.25  # the estimated particle size
        assert set(settings.estimated) == {"polarity", "diameter", "smoothing", "threshold", "local_block",
                                           "min_size", "split_distance"}
        ours.append(match_labels(labels, truth)["f1"])
        t = threshold_otsu(img)
        plain.append(match_labels(ndi.label(img < t if polarity == "dark" else img > t)[0], truth)["f1"])
    assert min(ours) >= 0.88, ours
    assert np.mean(ours) > np.mean(plain) + 0.3


def test_local_threshold_chosen_for_an_uneven_support_only():
    from napari_cryomat.core.segment import estimate_particle_settings
    from napari_cryomat.core.synthetic.particles import make_particle_field

    flat, _, _ = make_particle_field(diameter=16, dose=2000, gradient=0.0, undulation=0.0, seed=3)
    uneven, truth, _ = make_particle_field(diameter=16, dose=2000, gradient=0.6, undulation=0.1, seed=3)
    assert estimate_particle_settings(flat, pixel_size=1.0).threshold == "otsu"
    s = estimate_particle_settings(uneven, pixel_size=1.0)
    assert s.threshold == "local" and s.background_variation > 1 / 6
    assert match_labels(segment_particles(uneven, pixel_size=1.0), truth)["f1"] > 0.95


def test_given_settings_are_kept_and_reproduce_the_labels(sample):
    from napari_cryomat.core.segment import estimate_particle_settings

    image, truth, _ = sample
    s = estimate_particle_settings(image, pixel_size=PS, polarity="dark", min_size=500.0)
    assert s.polarity == "dark" and s.min_size == 500.0
    assert "polarity" not in s.estimated and "min_size" not in s.estimated and "diameter" in s.estimated
    # the sample's particles are 48-88 Å across
    assert 40 < s.diameter < 100
    labels, used = segment_particles(image, pixel_size=PS, return_settings=True)
    again = segment_particles(image, pixel_size=PS, **used.options())
    assert np.array_equal(labels, again)
    override = used.with_overrides(split_distance=0.0, polarity="bright")
    assert override.polarity == "bright" and "split_distance" not in override.estimated
    assert "bright" in override.describe() and "Å" in override.describe()
    with pytest.raises(ValueError, match="diameter"):
        used.with_overrides(diameter=-3)
    with pytest.raises(ValueError, match="Unknown setting"):
        used.with_overrides(colour="red")


def test_pixel_features_hessian_of_a_parabola():
    from napari_cryomat.core.segment import pixel_features

    yy, xx = np.mgrid[:64, :64].astype(np.float32)
    image = 0.5 * (xx - 32) ** 2 + 3.0 * yy  # Hessian: d2/dx2 = 1, d2/dy2 = 0, gradient (3, x - 32)
    f = pixel_features(image, sigma_min=1.0, sigma_max=2.0, num_sigma=2)
    assert f.shape == (64, 64, 8)
    inner = (slice(16, 48), slice(16, 48))
    big, small = f[..., 2][inner], f[..., 3][inner]  # eigenvalues at sigma 1
    assert np.allclose(big, 1.0, atol=0.02) and np.allclose(small, 0.0, atol=0.02)
    assert np.allclose(f[..., 1][32, 32], 3.0, atol=0.05)  # gradient magnitude where x = 32


def test_classifier_saved_and_loaded_predicts_the_same(sample, rng, tmp_path, monkeypatch):
    from napari_cryomat.core import _classifier
    from napari_cryomat.core.segment import PixelClassifier

    image, truth, _ = sample
    model = train_pixel_classifier(image, _scribbles(truth, rng), n_estimators=5)
    path = model.save(tmp_path / "particles.skops")
    loaded = PixelClassifier.load(path)
    assert np.array_equal(loaded.predict(image), model.predict(image))
    assert list(loaded.classes) == list(model.classes)
    # a model from a version computing other features is refused, saying what to do
    monkeypatch.setattr(_classifier, "FEATURES_VERSION", _classifier.FEATURES_VERSION + 1)
    with pytest.raises(ValueError, match="Retrain"):
        PixelClassifier.load(path)
    monkeypatch.undo()
    (tmp_path / "notes.skops").write_text("not a model")
    with pytest.raises(ValueError, match="not a saved pixel classifier"):
        PixelClassifier.load(tmp_path / "notes.skops")
    import skops.io as sio

    sio.dump({"format": "something else"}, tmp_path / "other.skops")
    with pytest.raises(ValueError, match="not a napari-cryomat pixel classifier"):
        PixelClassifier.load(tmp_path / "other.skops")
    with pytest.raises(ValueError, match="folder"):
        model.save(tmp_path / "missing" / "m.skops")


def test_faint_particles_are_cut_half_way_to_their_contrast():
    """At 20 counts/px the particles' contrast is about the pixel noise: Otsu's split of the overlapping
    histograms drifts, the half-way level of the flattened image keeps the particles' true area."""
    from napari_cryomat.core.synthetic.particles import make_particle_field

    for seed in (11, 12):
        img, truth, _ = make_particle_field(diameter=12, dose=20, contrast=0.35, size=(192, 192), seed=seed)
        labels, settings = segment_particles(img, pixel_size=1.0, return_settings=True)
        assert settings.threshold == "local"
        assert abs(settings.contrast) < 2 * settings.noise
        assert 0.75 < np.count_nonzero(labels) / np.count_nonzero(truth) < 1.25
        assert match_labels(labels, truth)["f1"] >= 0.9


def test_background_of_a_tilted_support_is_the_tilt():
    from napari_cryomat.core._particle_settings import masked_background

    yy, xx = np.mgrid[0:300, 0:260].astype(np.float32)
    ramp = 100 + 0.2 * yy - 0.1 * xx
    holes = np.zeros(ramp.shape, bool)
    holes[100:140, 80:120] = True  # a particle left out of the estimate
    bg = masked_background(np.where(holes, 0, ramp), holes, sigma=40.0)
    inner = (slice(60, -60), slice(60, -60))  # a Gaussian of a ramp is the ramp away from the edges
    # within 2 % of the 50 counts the support rises across this region, under the particle too
    assert np.abs(bg - ramp)[inner].max() < 1.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_empty_field_gives_no_particles(seed):
    """A blank frame (Poisson noise at 5-500 counts/px on a tilted support, random size) has no blob that
    stands clear of the noise: no particles, and the settings say why; thresholding it used to cut the noise
    into thousands of objects. With the diameter given, it is segmented as asked."""
    rng = np.random.default_rng(seed)
    ny, nx = (int(v) for v in rng.integers(96, 400, 2))
    dose = float(np.exp(rng.uniform(np.log(5), np.log(500))))
    tilt = 1 + rng.uniform(0, 0.3) * np.linspace(0, 1, nx)[None, :]
    image = rng.poisson(dose * tilt, (ny, nx)).astype(np.float32)
    labels, settings = segment_particles(image, pixel_size=2.0, return_settings=True)
    assert labels.max() == 0 and settings.n_blobs == 0
    assert "left empty" in settings.describe()
    forced = segment_particles(image, pixel_size=2.0, diameter=20.0)
    assert forced.max() > 0  # the empty-field rule does not override a given diameter


def test_contrast_is_read_relative_to_an_uneven_illumination():
    """A particle takes away (or adds) a fraction of the beam: on a support lit from 0.6 to 1.4 of its mean,
    its contrast in counts follows the support. The flattened image reads it relative to the support (the
    same everywhere), and an image centred on zero (normalised) is only shifted."""
    from napari_cryomat.core._particle_settings import take_background

    rng = np.random.default_rng(3)
    support = 100 * np.linspace(0.6, 1.4, 200)[None, :] * np.ones((50, 1))
    inside = rng.random(support.shape) < 0.1
    image = support * (1 + 0.3 * inside)
    flat = take_background(image, support)
    np.testing.assert_allclose(flat[inside], 0.3 * np.median(support), rtol=1e-4)
    np.testing.assert_allclose(flat[~inside], 0.0, atol=1e-9)
    offset = float(image.mean())
    np.testing.assert_allclose(take_background(image - offset, support - offset), image - support, atol=1e-9)


def test_particles_on_a_steep_illumination_ramp():
    """Small particles at 30-40 counts/px under a +-35 % ramp, both polarities, seeded draws: one half-way
    level in counts for the whole image missed the particles on the dim side (F1 0.51-0.96, mean 0.82 before
    the contrast was read relative to the support; now 0.91-0.99)."""
    from napari_cryomat.core.synthetic.particles import make_particle_field

    f1 = []
    for d, contrast, dose in ((8, 0.3, 40), (12, 0.25, 30)):
        for seed in range(4):
            img, truth, _ = make_particle_field(diameter=d, contrast=contrast, dose=dose, gradient=0.35,
                                                size=(256, 256), polarity=("dark", "bright")[seed % 2],
                                                seed=100 + seed)
            f1.append(match_labels(segment_particles(img, pixel_size=1.0), truth)["f1"])
    assert np.mean(f1) >= 0.92 and min(f1) >= 0.85, np.round(f1, 3)


def test_particle_field_reaches_the_coverage_asked():
    """make_particle_field stopped after 4000 placement tries: a 512² field of Ø10 covered 0.22 of the 0.25 asked
    (a 2048² field of Ø12: 0.08). The tries now scale with the particles asked for; 4000 gives the old draws."""
    from napari_cryomat.core.synthetic.particles import make_particle_field

    _, truth, info = make_particle_field(diameter=10, size=(512, 512), seed=12)
    assert info["coverage"] >= 0.245
    assert np.count_nonzero(truth) / truth.size == pytest.approx(info["coverage"])
    _, _, old = make_particle_field(diameter=10, size=(512, 512), seed=12, max_tries=4000)
    assert old["coverage"] < 0.23
    with pytest.raises(ValueError, match="max_tries"):
        make_particle_field(diameter=10, max_tries=0)
