"""The Batch results dock in a real napari window: open an output folder of the batch, browse the
gallery per shape class, click an object: its image and labels open with the object selected and
centred (the right frame of a stack)."""

import os

import mrcfile
import numpy as np
import pytest
import tifffile
from qtpy.QtCore import Qt

from napari_cryomat.batch import segment_folder
from napari_cryomat.core.synthetic.particles import make_particles
from napari_cryomat.widgets._base import camera_of
from napari_cryomat.widgets.batch_results import BatchResultsWidget
from napari_cryomat.widgets.batch_results.gallery import ROW_ROLE

pytestmark = pytest.mark.e2e
SHOTS = "/work/notes/shots"


@pytest.fixture(scope="module")
def batch_folder(tmp_path_factory):
    """A batch output of two random MRC images and a 3-frame TIFF stack, plus a file that fails."""
    rng = np.random.default_rng(5)
    folder = tmp_path_factory.mktemp("in")
    for k in range(2):
        img, _, _ = make_particles(shape=(240, 240), n_particles=int(rng.integers(5, 9)), seed=int(rng.integers(1e9)))
        with mrcfile.new(str(folder / f"grid{k}.mrc"), data=img[::-1].copy()) as mrc:
            mrc.voxel_size = 2.0
    stack = np.stack([make_particles(shape=(200, 200), n_particles=6, seed=int(rng.integers(1e9)))[0]
                      for _ in range(3)])
    tifffile.imwrite(folder / "movie.tif", stack, photometric="minisblack",
                     metadata={"voxel_size_angstrom": [2.0, 2.0, 2.0]})
    (folder / "broken.tif").write_bytes(b"II*\x00" + bytes(200))
    out = tmp_path_factory.mktemp("out")
    return segment_folder([folder], out, scheduler="serial")


def _open(widget, qtbot, folder):
    widget.folder_edit.setText(str(folder))
    qtbot.mouseClick(widget.open_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: widget.model.results is not None and widget.idle, timeout=30000)


def test_gallery_click_opens_the_object_selected_and_centred(make_napari_viewer, qtbot, batch_folder, messages):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    widget = BatchResultsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Batch results")
    # before a folder is open the tables and the gallery say what fills them, not blank boxes
    notes = [widget.table_notes["files"], widget.table_notes["objects"], widget.gallery.empty_note]
    assert all(note.shown and note.text.startswith("Open") for note in notes)
    combo = widget.gallery.class_combo  # greyed, saying what fills it, not a blank box
    assert not combo.isEnabled() and combo.placeholderText() == "no classes yet" and combo.toolTip().startswith("Open")
    _open(widget, qtbot, batch_folder.outdir)
    assert combo.isEnabled() and combo.count() > 0 and combo.currentIndex() == 0
    objects = batch_folder.objects
    assert not widget.table_notes["files"].shown and not widget.table_notes["objects"].shown
    assert widget.files_table.source.rowCount() == 4  # the failed file is listed too
    assert widget.sections["files"].expanded  # because one failed
    assert widget.objects_table.source.rowCount() == len(objects)
    classes = sorted(objects["shape_class"].unique())
    assert widget.gallery.class_combo.count() == len(classes)
    # each class says what its objects look like, not only "class 1 (52 objects)"
    for i in range(widget.gallery.class_combo.count()):
        class_id = widget.gallery.class_combo.itemData(i)
        members = objects[objects["shape_class"] == class_id]
        text = widget.gallery.class_combo.itemText(i)
        assert f"Ø {members['equivalent_diameter'].mean():.0f} Å" in text, text
        assert text.rsplit(", ", 1)[1] in ("round", "oval", "elongated", "irregular"), text
    current = objects[objects["shape_class"] == widget.gallery.current_class()]
    assert f"aspect ratio {current['aspect_ratio'].mean():.2f}" in widget.gallery.description.text()
    qtbot.waitUntil(lambda: widget.gallery.grid.count() > 0, timeout=30000)
    assert not widget.gallery.empty_note.shown
    first_class = widget.gallery.current_class()
    assert widget.gallery.grid.count() == min(60, int((objects["shape_class"] == first_class).sum()))

    # click the last thumbnail, as a user does
    item = widget.gallery.items()[-1]
    row = int(item.data(ROW_ROLE))
    assert objects.loc[row, "shape_class"] == first_class
    widget.gallery.grid.scrollToItem(item)
    rect = widget.gallery.grid.visualItemRect(item)
    qtbot.mouseClick(widget.gallery.grid.viewport(), Qt.LeftButton, pos=rect.center())
    obj = objects.loc[row]
    qtbot.waitUntil(lambda: widget.model.shown_row == row, timeout=30000)
    labels = viewer.layers[f"{obj['name']} labels"]
    assert labels.selected_label == obj["label"]
    assert viewer.layers.selection.active is labels
    centre = np.array(camera_of(viewer).center[-2:])
    assert np.allclose(centre, [obj["centroid_y"], obj["centroid_x"]], atol=1e-6)  # Å, pixel size 2 in both
    frame = int(obj["frame"])
    index = tuple(np.round(centre / 2.0).astype(int))
    plane = labels.data[frame] if labels.data.ndim == 3 else labels.data
    assert np.count_nonzero(plane == obj["label"]) * 4.0 == pytest.approx(obj["area"])  # the object's own pixels
    assert plane[index] == obj["label"] or obj["solidity"] < 0.9  # its centroid lies on it (convex ones)

    # pick an object of the stack's last frame in the table: the previous file goes, frame 2 is shown
    movie = objects[(objects["name"] == "movie") & (objects["frame"] == 2)]
    target = int(movie.index[0])
    widget.objects_table.select_rows([target])
    qtbot.waitUntil(lambda: widget.model.shown_row == target, timeout=30000)
    assert f"{obj['name']} labels" not in viewer.layers or obj["name"] == "movie"
    assert viewer.layers["movie labels"].selected_label == movie.loc[target, "label"]
    assert viewer.dims.point[0] == pytest.approx(2 * viewer.layers["movie"].scale[0])
    assert not messages["error"]
    for _ in range(10):
        qtbot.wait(20)
    if os.path.isdir(SHOTS):
        viewer.window._qt_window.grab().save(f"{SHOTS}/batch_results_dock.png")
    shot = viewer.screenshot(canvas_only=True)
    assert shot[..., :3].std() > 5


def test_class_words_follow_the_shape_means():
    import pandas as pd

    from napari_cryomat.widgets.batch_results._model import describe_class

    def objects(aspect, solidity, circularity, diameter=100.0):
        return pd.DataFrame({"aspect_ratio": [aspect] * 3, "solidity": [solidity] * 3,
                             "circularity": [circularity] * 3, "equivalent_diameter": [diameter - 5, diameter, diameter + 5]})

    assert describe_class(objects(1.05, 0.96, 0.9))[0] == "Ø 100 Å, round"
    assert describe_class(objects(1.3, 0.95, 0.85))[0] == "Ø 100 Å, oval"
    assert describe_class(objects(2.4, 0.9, 0.5))[0] == "Ø 100 Å, elongated"
    assert describe_class(objects(1.2, 0.7, 0.5))[0] == "Ø 100 Å, irregular"
    assert describe_class(objects(1.05, 0.96, 0.9))[1] == (
        "equivalent diameter 100 ± 4 Å · aspect ratio 1.05 · circularity 0.90 · solidity 0.96")


def test_a_folder_that_is_not_a_batch_output_is_refused(make_napari_viewer, qtbot, tmp_path, messages):
    viewer = make_napari_viewer()
    widget = BatchResultsWidget(viewer)
    widget.folder_edit.setText(str(tmp_path))
    qtbot.mouseClick(widget.open_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not widget.runner.busy, timeout=10000)
    assert widget.model.results is None and len(viewer.layers) == 0
    assert any("objects.parquet" in m for m in messages["error"])


def test_report_colours_are_the_plugin_palette():
    from napari_cryomat.batch.report import CLASS_PALETTE
    from napari_cryomat.widgets._base.layers import CLASS_PALETTE as PLUGIN_PALETTE

    assert CLASS_PALETTE == PLUGIN_PALETTE


def test_objects_left_out_of_the_classes_are_not_a_class_and_come_last(make_napari_viewer, qtbot, batch_folder,
                                                                       tmp_path):
    """The gui22 review's batch (a cautioned file's 331 007 specks left out of the classes, class 0): the dock said
    "331273 objects in 3 shape classes" where the run said 2, and the gallery opened on the specks."""
    import shutil

    import pandas as pd

    out = tmp_path / "out"
    shutil.copytree(batch_folder.outdir, out)
    objects = pd.read_parquet(out / "objects.parquet")
    left_out = objects["name"] == "grid0"  # as a file whose particles' size was read at the pixel noise's scale
    objects.loc[left_out, "shape_class"] = 0
    objects.to_parquet(out / "objects.parquet")
    n_classes = objects.loc[~left_out, "shape_class"].nunique()
    viewer = make_napari_viewer(show=True)
    widget = BatchResultsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Batch results")
    _open(widget, qtbot, out)
    assert f"{len(objects)} objects in {n_classes} shape classes, {int(left_out.sum())} not classified." in \
        widget.info.text()
    combo = widget.gallery.class_combo
    assert [combo.itemData(i) for i in range(combo.count())] == list(range(1, n_classes + 1)) + [0]
    assert widget.gallery.current_class() == 1 and combo.itemText(combo.count() - 1).startswith("not classified")


def test_the_class_chooser_shows_each_class_whole_and_its_count_under_it(make_napari_viewer, qtbot, batch_folder):
    """The gui22 review and its 3-file batch: "class 1 (138 objects): Ø 65 Å, oval" was cut to "…, ova" in the dock
    at 1366x768. The chooser holds "class 1: Ø 65 Å, oval"; "138 objects · equivalent diameter …" stands under it."""
    from qtpy.QtWidgets import QStyle, QStyleOptionComboBox

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    widget = BatchResultsWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Batch results")
    _open(widget, qtbot, batch_folder.outdir)
    qtbot.wait(100)
    combo = widget.gallery.class_combo
    option = QStyleOptionComboBox()
    combo.initStyleOption(option)
    field = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                         QStyle.SubControl.SC_ComboBoxEditField, combo)
    for i in range(combo.count()):
        assert combo.fontMetrics().horizontalAdvance(combo.itemText(i)) <= field.width(), (combo.itemText(i), field)
    class_id = widget.gallery.current_class()
    n = int((batch_folder.objects["shape_class"] == class_id).sum())
    assert widget.gallery.description.text().startswith(f"{n} objects · equivalent diameter ")
