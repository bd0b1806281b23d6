"""The README's menu paths are the ones the application shows (walked in a real napari window)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MENU_PATH = re.compile(r"(?:File|Plugins|Layers) > [^*`\n]+")


def _menu_paths(viewer) -> set[str]:
    """Every leaf of the menu bar as "Top > Sub > Item" (napari builds submenus when shown)."""
    paths = set()

    def walk(menu, prefix):
        menu.aboutToShow.emit()
        for action in menu.actions():
            text = action.text().replace("&", "")
            if action.menu() is not None:
                walk(action.menu(), prefix + [text])
            elif text:
                paths.add(" > ".join(prefix + [text]))
                # plugin widgets are listed as "Name (Plugin display name)"
                paths.add(" > ".join(prefix + [re.sub(r" \(Cryo-EM of materials\)$", "", text)]))

    for action in viewer.window._qt_window.menuBar().actions():
        walk(action.menu(), [action.text().replace("&", "")])
    return paths


def test_readme_menu_paths_exist(make_napari_viewer):
    viewer = make_napari_viewer()
    paths = _menu_paths(viewer)
    prefixes = {" > ".join(p.split(" > ")[:k]) for p in paths for k in range(1, len(p.split(" > ")) + 1)}
    named = sorted(set(MENU_PATH.findall(README.read_text(encoding="utf-8"))))
    assert len(named) >= 10
    missing = [p.strip() for p in named if p.strip() not in prefixes and p.strip().rstrip(".") not in prefixes]
    assert missing == [], f"README names menus that do not exist: {missing}"
