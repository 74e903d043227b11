"""Charts for reports and teaching: a map of a world, and a message's journey as a sequence chart.

Both draw on the Agg canvas, never show anything, and save SVG, PNG or PDF by the path's suffix.
"""

from netsim.charts.sequence import Row, draw_sequence, sequence_rows
from netsim.charts.world_map import draw_world, save_figure

__all__ = ["Row", "draw_sequence", "draw_world", "save_figure", "sequence_rows"]
