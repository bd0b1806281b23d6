"""What every tool's widgets share, in one place.

- :mod:`.tasks`: :class:`TaskRunner`, a progress bar with Cancel that runs one core function in a
  worker (the pattern for every long computation).
- :mod:`.live`: :class:`LatestWins` and :class:`LivePanel`, the base of every live view (spectrum
  under the cursor, live FFT of the ROI, orthogonal views): a new request supersedes the pending
  one, results of superseded jobs are dropped.
- :mod:`.shutdown`: at Python's exit both kinds of job are cancelled and waited for (a script that
  ends with a job running no longer leaves its thread touching deleted Qt objects).
- :mod:`.layers`: :func:`upsert_layer`, :class:`LayerCombo`, :class:`HelperLayer` (a layer that
  exists only while its tool is in front), :func:`pixel_size_of`, :func:`camera_of`, the label colormap.
- :mod:`.panels`: :class:`ScrollPanel` and :class:`Section` so that every dock fits a laptop
  screen, and :class:`DockVisibility` (is my tab in front?).
- :mod:`.plots`: :class:`EmptyPlotNote`, the sentence an empty plot shows instead of bare 0-1 axes, and
  :func:`legend_html`, a plot's legend as a line under it, :func:`room_for_axis_label`;
  :mod:`.views`: :class:`EmptyViewNote`, the same for an empty list or table;
  :mod:`.choices`: :func:`placeholder_while_empty`, the same for an empty combo box (greyed, disabled).

Models (``widgets/<tool>/_model.py``) import :mod:`.layers` only; views import the rest.
"""

from napari_cryomat.widgets._base.choices import placeholder_while_empty
from napari_cryomat.widgets._base.layers import (
    HelperLayer,
    LayerCombo,
    camera_of,
    class_colormap,
    compact_labels,
    frame_stack,
    is_frame_stack,
    is_grey_image,
    is_helper_layer,
    palette_colour,
    pixel_size_of,
    real_layer,
    upsert_layer,
    value_colormap,
)
from napari_cryomat.widgets._base.live import LatestWins, LivePanel
from napari_cryomat.widgets._base.notify import show_error, show_info, show_warning
from napari_cryomat.widgets._base.panels import DockVisibility, EventLinks, ScrollPanel, Section, hbox
from napari_cryomat.widgets._base.plots import AXIS_LABEL_ROOM, EmptyPlotNote, legend_html, room_for_axis_label
from napari_cryomat.widgets._base.tasks import TaskRunner
from napari_cryomat.widgets._base.views import EmptyViewNote

__all__ = [
    "AXIS_LABEL_ROOM",
    "DockVisibility",
    "EmptyPlotNote",
    "EmptyViewNote",
    "EventLinks",
    "HelperLayer",
    "LatestWins",
    "LayerCombo",
    "camera_of",
    "LivePanel",
    "ScrollPanel",
    "Section",
    "TaskRunner",
    "class_colormap",
    "compact_labels",
    "hbox",
    "frame_stack",
    "is_frame_stack",
    "is_grey_image",
    "is_helper_layer",
    "legend_html",
    "palette_colour",
    "pixel_size_of",
    "placeholder_while_empty",
    "real_layer",
    "room_for_axis_label",
    "show_error",
    "show_info",
    "show_warning",
    "upsert_layer",
    "value_colormap",
]
