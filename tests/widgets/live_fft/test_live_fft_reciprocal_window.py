"""Live FFT's detected spectrum and spots as napari layers, driven as a user does in a napari window: they
open in their own window in 1/Å, so napari never warns of inconsistent units and the micrograph keeps its
Å; the spot markers are a stated fraction of the spectrum, readable on a laptop screen; closing that
window and detecting again opens it again. Closing it right after the micrograph's window drew (its GL context
current) leaves that window drawing: napari deleted the closing window's GL objects in the current context,
i.e. the micrograph's programs of the same names ("Error drawing visual <Image>" at its next draw)."""

import os

import numpy as np

from napari_cryomat.core.synthetic.lattice import superlattice_image
from napari_cryomat.widgets.live_fft import RECIPROCAL_TITLE, ROI_LAYER_NAME, SPOT_MARKER_FRACTION


def _label_boxes(viewer):
    """Screen rectangles (left, top, right, bottom) of the spot labels shown in ``viewer``'s canvas: the text
    starts at its spot (moved by the text's translation) and sits on it (napari's "upper_left" anchor; "lower_right": it ends at its spot and
    hangs below it), OpenSans advances measured by Pillow,
    one em = points/72 * dpi * sqrt(2) pixels as vispy draws it (digits 10 px apart at 9 pt and 100 dpi)."""
    import vispy
    from PIL import ImageFont

    font = ImageFont.truetype(os.path.join(os.path.dirname(vispy.__file__), "util/fonts/data/OpenSans-Regular.ttf"), 100)
    dpi = viewer.window._qt_viewer.canvas._scene_canvas.dpi
    boxes = []
    for layer in viewer.layers:
        if layer._type_string != "points":
            continue
        em = layer.text.size / 72 * dpi * np.sqrt(2)
        below_left = str(layer.text.anchor) == "lower_right"
        starts = (layer.data + layer.text.translation) * layer.scale + layer.translate  # spectrum pixels -> 1/Å
        for (gy, gx), text in zip(starts, layer.text.values):
            if text:
                x, y = gx * viewer.scene.camera.zoom, gy * viewer.scene.camera.zoom
                width, height = font.getlength(text) / 100 * em, 0.97 * em
                boxes.append((text, (x - width, y, x, y + height) if below_left else (x, y - height, x + width, y)))
    return boxes


def _assert_apart(boxes):
    for i, (text, (l0, t0, r0, b0)) in enumerate(boxes):
        for other, (l1, t1, r1, b1) in boxes[:i]:
            assert not (l0 < r1 and l1 < r0 and t0 < b1 and t1 < b0), f"labels {text!r} and {other!r} overlap"


def _detect(w, qtbot):
    w.lattice_panel.detect_button.click()
    qtbot.waitUntil(lambda: w.model.lattice is not None and not w.runner.busy, timeout=120000)


def test_spots_open_in_their_own_window_in_inverse_angstrom(make_napari_viewer, qtbot):
    from napari.utils.notifications import notification_manager

    rng = np.random.default_rng(27_0101)  # a fixed draw: a red run replays
    seed = int(rng.integers(1 << 16))
    size = int(rng.integers(2, 4)) * 128
    img, truth = superlattice_image((size, size), rotation=float(rng.uniform(0, 60)), seed=seed)
    p = truth["pixel_size"]
    messages = []
    notification_manager.notification_ready.connect(lambda n: messages.append(str(n.message)))

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    viewer.add_image(img, name="crystal", scale=(p, p), units=("angstrom", "angstrom"))
    _, w = viewer.window.add_plugin_dock_widget("napari-cryomat", "Live FFT")
    qtbot.waitUntil(lambda: ROI_LAYER_NAME in viewer.layers, timeout=5000)
    w.whole_roi_button.click()
    w.lattice_panel.as_layers.setChecked(True)
    _detect(w, qtbot)

    reciprocal = w.model.reciprocal_viewer()
    assert reciprocal is not viewer and reciprocal.title == RECIPROCAL_TITLE
    assert reciprocal.window._qt_window.isVisible()
    names = [layer.name for layer in reciprocal.layers]
    assert names == ["FFT of crystal", "FFT lattice spots of crystal", "FFT superlattice spots of crystal"], seed
    assert [layer.name for layer in viewer.layers] == ["crystal", ROI_LAYER_NAME]  # the micrograph's window
    viewer.screenshot(canvas_only=True, flash=False)  # napari checks the units when it draws
    reciprocal.screenshot(canvas_only=True, flash=False)
    qtbot.wait(100)
    assert not [m for m in messages if "units" in m.lower()], messages
    assert [str(u) for u in viewer.layers.extent.units] == ["angstrom"] * 2
    assert [str(u) for u in reciprocal.layers.extent.units] == ["1 / angstrom"] * 2

    # markers: SPOT_MARKER_FRACTION of the spectrum's side (1/p), i.e. that fraction of the canvas when the
    # spectrum fills it: rings of well over 8 screen pixels, not dots
    spots = reciprocal.layers["FFT lattice spots of crystal"]
    side = 1.0 / p
    assert np.allclose(spots.size * spots.scale[-1], SPOT_MARKER_FRACTION * side, atol=0.5 * spots.scale[-1]), seed
    canvas = min(reciprocal.window._qt_viewer.canvas.size)
    on_screen = spots.size[0] * spots.scale[-1] * reciprocal.scene.camera.zoom
    assert on_screen >= 0.9 * SPOT_MARKER_FRACTION * canvas and on_screen >= 10, (on_screen, canvas)
    # napari's "point size" slider (whole numbers from 1) shows the markers' size, and a step of it is one
    # spectrum pixel, not a jump to 1/Å
    reciprocal.layers.selection.active = spots
    slider = reciprocal.window._qt_viewer.controls.widgets[spots]._current_size_slider_control.size_slider
    assert slider.value() == spots.size[0] > 1, (slider.value(), spots.size[0])

    # labels at the whole-spectrum view: the basis spots named with their spacing, no two labels overlapping;
    # zoomed in, every lattice spot gets its index, still apart
    boxes = _label_boxes(reciprocal)
    _assert_apart(boxes)
    assert sum("Å (1,0)" in t or "Å (0,1)" in t for t, _ in boxes) == 2, [t for t, _ in boxes]
    reciprocal.scene.camera.zoom *= 8
    boxes = _label_boxes(reciprocal)
    _assert_apart(boxes)
    assert len([t for t in spots.text.values if t]) == len(spots.data), seed
    reciprocal.reset_view()

    # the user closes the reciprocal window, then detects again: a new one opens with the layers
    from napari.settings import get_settings

    saved = get_settings().application.window_size
    reciprocal.window._qt_window.resize(700, 450)
    viewer.screenshot(canvas_only=True, flash=False)  # the micrograph's window drew last: its GL context is current
    reciprocal.window._qt_window.close()
    qtbot.waitUntil(lambda: not hasattr(reciprocal.window, "_qt_window"), timeout=5000)  # closed, napari's way
    assert len(reciprocal.layers) == 0
    assert get_settings().application.window_size == saved  # the next session's main window keeps its size
    _detect(w, qtbot)
    again = w.model.reciprocal_viewer()
    assert again is not reciprocal and "FFT lattice spots of crystal" in again.layers
    assert again.window._qt_window.isVisible()
    # the tool closes: its reciprocal window goes too, and the micrograph's window still draws
    viewer.screenshot(canvas_only=True, flash=False)
    w.model.close()
    assert not hasattr(again.window, "_qt_window")
    viewer.layers["crystal"].contrast_limits = (float(img.min()), float(img.max()))
    viewer.screenshot(canvas_only=True, flash=False)
