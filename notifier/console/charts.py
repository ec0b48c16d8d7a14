"""Charts drawn on the server as SVG: no script, no style attribute (the page's CSP allows
neither inline), only presentation attributes and classes of the console's stylesheet."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, TOP, BOTTOM = 360, 72, 14, 14  # the plot is HEIGHT - TOP - BOTTOM high


def sends_chart(name: str, sent: list[int], failed: list[int]) -> Markup:
    """Bars of a lane's sends a minute (failures stacked on them in red), the last hour."""
    count = len(sent)
    peak = max([s + f for s, f in zip(sent, failed, strict=True)] + [1])
    plot = HEIGHT - TOP - BOTTOM
    step = WIDTH / count
    bars = []
    for index, (ok, bad) in enumerate(zip(sent, failed, strict=True)):
        x = index * step
        for value, below, cls in ((ok, 0, "sent"), (bad, ok, "failed")):
            if value:
                h = plot * value / peak
                y = TOP + plot - plot * (below + value) / peak
                minute = count - index - 1
                when = "this minute" if minute == 0 else f"{minute} min ago"
                bars.append(
                    f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{max(step - 1, 1):.1f}"'
                    f' height="{h:.1f}"><title>{value} {cls}, {when}</title></rect>'
                )
    label = escape(name)
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"'
        f' role="img" aria-label="{label}: sends a minute over the last hour">'
        f'<line class="axis" x1="0" y1="{HEIGHT - BOTTOM}" x2="{WIDTH}" y2="{HEIGHT - BOTTOM}"/>'
        f'<text class="tick" x="0" y="10">{peak}/min</text>'
        f'<text class="tick" x="0" y="{HEIGHT - 2}">60 min ago</text>'
        f'<text class="tick" x="{WIDTH}" y="{HEIGHT - 2}" text-anchor="end">now</text>'
        + "".join(bars)
        + "</svg>"
    )
