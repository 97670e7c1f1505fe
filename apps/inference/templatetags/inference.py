"""``{% histogram_svg h %}``: a layer's histogram (counts, edges) as a small inline SVG."""

from django import template
from django.utils.html import format_html, format_html_join

register = template.Library()

WIDTH, HEIGHT = 160, 40


@register.simple_tag
def histogram_svg(histogram) -> str:
    counts = (histogram or {}).get("counts") or []
    edges = (histogram or {}).get("edges") or []
    if not counts:
        return ""
    top, bar = max(counts) or 1, WIDTH / len(counts)
    rects = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}"></rect>',
        (
            (
                f"{i * bar:.1f}",
                f"{HEIGHT - HEIGHT * c / top:.1f}",
                f"{max(bar - 1, 1):.1f}",
                f"{HEIGHT * c / top:.1f}",
            )
            for i, c in enumerate(counts)
        ),
    )
    return format_html(
        '<svg class="histogram" width="{}" height="{}" viewBox="0 0 {} {}" role="img">'
        "<title>{} … {}</title>{}</svg>",
        WIDTH, HEIGHT, WIDTH, HEIGHT, f"{edges[0]:.3g}", f"{edges[-1]:.3g}", rects,
    )  # fmt: skip
