"""Console entry point ``cryomat``.

``cryomat demo [TOPIC]``
    Open napari with sample data and the plugin's widgets docked: one command for a teacher.
``cryomat align INPUT... -o OUTDIR``
    Batch drift correction of many movies (see :mod:`napari_cryomat.batch`).
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
}
WIDGETS = ["Tomogram browser", "Drift correction", "Live FFT", "Spectrum imaging",
           "Segmentation", "Objects and classes"]


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
        viewer.window.resize(1600, 1000)  # room for the canvas beside the docks
    for key in samples:
        viewer.open_sample(PLUGIN, key)
    docks = {}
    for name in WIDGETS:
        try:
            dock, _widget = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
            docks[name] = dock
        except Exception as exc:  # keep the demo usable if one widget cannot load
            show_warning(f"{name} could not be loaded: {exc}")
    if front in docks:
        docks[front].show()
        docks[front].raise_()
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

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "align":
        from napari_cryomat.batch import align_main

        return align_main(argv[1:])
    args = parser.parse_args(argv)
    return _demo_main(args)


if __name__ == "__main__":
    sys.exit(main())
