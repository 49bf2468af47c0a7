"""Charts the console draws on the server, as inline SVG (pure): no chart library to ship,
readable without JavaScript, each with a title and a text table beside it for screen readers.
Also the per-turn latency waterfall's bar geometry."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT, PAD_L, PAD_B, PAD_T = 480, 240, 48, 30, 12
LABELS = 5
COLORS = ("#1d4ed8", "#b45309", "#047857")


@dataclass(frozen=True)
class Series:
    """One line (or bar set) of a chart; None is a gap."""

    name: str
    values: Sequence[float | None]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10.0 ** len(str(int(value))) / 10
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * factor:
            return float(step * factor)
    return value


def chart(title: str, labels: Sequence[str], series: Sequence[Series], *, bars: bool) -> str:
    """An SVG bar chart (`bars`) or line chart of `series` over `labels`."""
    top = _nice_max(max((v for s in series for v in s.values if v is not None), default=0.0))
    plot_w, plot_h = WIDTH - PAD_L - 8, HEIGHT - PAD_B - PAD_T
    n = max(len(labels), 1)
    step = plot_w / n

    def y(value: float) -> float:
        return PAD_T + plot_h - value / top * plot_h

    parts = [
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        'class="chart" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0, top / 2, top):
        parts.append(
            f'<line x1="{PAD_L}" x2="{WIDTH - 8}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'class="grid"/>'
            f'<text x="{PAD_L - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:g}</text>'
        )
    every = max(1, -(-n // LABELS))  # at most LABELS labels under the axis
    for i, label in enumerate(labels):
        if i % every == 0:
            x = PAD_L + step * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle">{escape(label)}</text>'
            )
    width = step * 0.8 / max(len(series), 1)
    for k, line in enumerate(series):
        color = COLORS[k % len(COLORS)]
        points = []
        for i, value in enumerate(line.values):
            if value is None:
                continue
            if bars:
                x = PAD_L + step * i + step * 0.1 + width * k
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(value):.1f}" width="{width:.1f}" '
                    f'height="{PAD_T + plot_h - y(value):.1f}" fill="{color}">'
                    f"<title>{escape(labels[i])}: {value:g} {escape(line.name)}</title></rect>"
                )
            else:
                points.append(f"{PAD_L + step * (i + 0.5):.1f},{y(value):.1f}")
        if points:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" '
                f'points="{" ".join(points)}"/>'
            )
            for point in points:
                cx, cy = point.split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{color}"/>')
    parts.append("</svg>")
    return "".join(parts)


SEGMENTS = (  # (css class, label, from stage, to stage); stages in ms after speech end
    ("stt", "speech to text", "speech_end", "stt_final"),
    ("wait", "to LLM", "stt_final", "llm_request"),
    ("llm", "LLM first token", "llm_request", "llm_first_token"),
    ("speak", "first phrase", "llm_first_token", "first_speakable"),
    ("tts", "TTS first byte", "first_speakable", "tts_first_byte"),
    ("send", "to the line", "tts_first_byte", "first_audio_sent"),
)


@dataclass(frozen=True)
class Bar:
    """One stage of a waterfall row: where it starts and how wide it is, in % of the scale."""

    css: str
    label: str
    ms: float
    left_pct: float
    width_pct: float


def waterfall(stages_ms: dict[str, float], scale_ms: float) -> list[Bar]:
    """A turn's stages as bars on a common scale (missing stages are skipped)."""
    known = {"speech_end": 0.0, **stages_ms}
    bars = []
    scale = max(scale_ms, 1.0)
    for css, label, start, end in SEGMENTS:
        if start in known and end in known and known[end] >= known[start]:
            begin, stop = known[start], known[end]
            bars.append(
                Bar(
                    css,
                    label,
                    round(stop - begin, 1),
                    round(begin / scale * 100, 2),
                    round(max((stop - begin) / scale * 100, 0.3), 2),
                )
            )
    return bars
