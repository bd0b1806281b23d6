"""Console entry point ``cryomat``.

``cryomat demo [TOPIC]``
    Open napari with sample data and the plugin's widgets docked: one command for a teacher.
``cryomat align INPUT... -o OUTDIR``
    Batch drift correction of many movies (see :mod:`napari_cryomat.batch.align`).
``cryomat batch segment INPUT... -o OUTDIR``
    Segment, measure and classify every image of a folder on dask (see :mod:`napari_cryomat.batch`).
"""

from __future__ import annotations

import argparse
import sys

PLUGIN = "napari-cryomat"

# topic -> (sample keys to open, widget brought to the front)
DEMOS = {
    "tomogram": (["tomogram"], "Tomogram browser"),
    "drift": (["movie"], "Drift correction"),
    "fft": (["superlattice"], "Live FFT"),
    "eels": (["eels"], "Spectrum imaging"),
    "eds": (["eds"], "Spectrum imaging"),
    "segment": (["particles"], "Segmentation"),
    "track": (["growth"], "Objects and classes"),
    "tilt": (["tilt"], "Tilt series"),
    "dose": (["dose_series"], "Beam damage"),
    "denoise": (["particles"], "Denoise"),
}
WIDGETS = ["Tomogram browser", "Tilt series", "Drift correction", "Live FFT", "Spectrum imaging",
           "Segmentation", "Objects and classes", "Denoise", "Beam damage", "Batch results"]


def _segment_growth(viewer) -> None:
    """The track demo opens ready to act: the growth movie segmented frame by frame, so that
    Objects and classes can Measure and Track at once."""
    from napari_cryomat.core.segment import segment_series

    movie = viewer.layers["growth"]
    labels = segment_series(movie.data, pixel_size=float(movie.scale[-1]))
    viewer.add_labels(labels, name="growth crystals", scale=movie.scale, units=movie.units,
                      axis_labels=movie.axis_labels, opacity=0.5)


# topic -> what to prepare after the samples are open
PREPARE = {"track": _segment_growth}


def fit_window_to_screen(viewer, preferred=(1600, 1000)) -> tuple[int, int]:
    """Size the window to ``preferred`` or the screen's available area, whichever is smaller, so
    the sliders, status bar and dock tabs are on screen on a 1366x768 laptop too."""
    from qtpy.QtWidgets import QApplication

    window = viewer.window._qt_window
    screen = window.screen() if hasattr(window, "screen") else QApplication.primaryScreen()
    area = screen.availableGeometry()
    # the frame (title bar, borders) is outside the window's own size
    frame_w = max(0, window.frameGeometry().width() - window.geometry().width())
    frame_h = max(0, window.frameGeometry().height() - window.geometry().height())
    width = min(preferred[0], area.width() - frame_w)
    height = min(preferred[1], area.height() - frame_h)
    window.resize(width, height)
    window.move(area.x(), area.y())
    return width, height


def scroll_dock_tabs(window, titles: list[str]) -> None:
    """Whole names with scroll arrows on the tab bars holding the docks titled ``titles``: ten
    tools in a 420 px dock elide to "To…", "T…", "D…", which no one can read."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QTabBar

    for bar in window.findChildren(QTabBar):
        if any(bar.tabText(i) in titles for i in range(bar.count())):
            bar.setElideMode(Qt.TextElideMode.ElideNone)
            bar.setUsesScrollButtons(True)


def open_demo(topic: str = "tomogram", *, viewer=None):
    """Open ``topic``'s sample data in a napari viewer with every widget docked (tabbed).

    Returns the viewer. A widget that fails to load is reported and skipped, so a demo never
    dies because of one panel.
    """
    import napari
    from napari.utils.notifications import show_warning

    samples, front = DEMOS[topic]
    if viewer is None:
        viewer = napari.Viewer(title=f"napari-cryomat demo: {topic}")
    for key in samples:
        viewer.open_sample(PLUGIN, key)
    if topic in PREPARE:
        PREPARE[topic](viewer)
    # Dock with the window hidden: each tab added to a shown window comes to the front for a
    # moment, and a tool in front adds its helper layers (the Live FFT's ROI), which would then
    # stay, hidden, in every demo's layer list. Shown afterwards, only the front tool is shown.
    window = viewer.window._qt_window
    was_visible = window.isVisible()
    window.hide()
    docks = {}
    for name in WIDGETS:
        try:
            dock, _widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
            dock.setWindowTitle(name)  # the tab shows the tool's name, not "... (napari-cryomat)" ten times
            docks[name] = dock
        except Exception as exc:  # keep the demo usable if one widget cannot load
            show_warning(f"{name} could not be loaded: {exc}")
    if front in docks:
        docks[front].show()
        docks[front].raise_()
    if was_visible:
        viewer.window.show()
    fit_window_to_screen(viewer)
    scroll_dock_tabs(window, [dock.windowTitle() for dock in docks.values()])
    viewer.reset_view()  # the docks took room from the canvas: fit the data again
    return viewer


def _demo_main(args) -> int:
    import napari

    viewer = open_demo(args.topic)
    if args.screenshot:
        from qtpy.QtWidgets import QApplication

        for _ in range(20):
            QApplication.processEvents()
        viewer.window._qt_window.grab().save(args.screenshot)
        print(f"saved {args.screenshot}")
    if args.quit:
        viewer.close()
        return 0
    napari.run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cryomat", description="Cryo-EM of materials in napari.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="open napari with sample data and all widgets docked")
    demo.add_argument("topic", nargs="?", default="tomogram", choices=sorted(DEMOS),
                      help="which sample to open (default: tomogram)")
    demo.add_argument("--screenshot", metavar="PNG", help="save a picture of the window")
    demo.add_argument("--quit", action="store_true", help="close after opening (with --screenshot)")

    sub.add_parser("align", help="batch drift correction of movies (see cryomat align -h)",
                   add_help=False)
    batch = sub.add_parser("batch", help="batch work on many images (see cryomat batch segment -h)")
    batch.add_argument("task", choices=["segment"],
                       help="segment: segment, measure and classify every image (MRC, TIFF, DM, EMD) on dask")

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "align":
        from napari_cryomat.batch import align_main

        return align_main(argv[1:])
    if argv[:2] == ["batch", "segment"]:
        from napari_cryomat.batch import segment_main

        return segment_main(argv[2:])
    args = parser.parse_args(argv)
    return _demo_main(args)


if __name__ == "__main__":
    sys.exit(main())
