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
        '<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"></rect>',
        (
            (i * bar, HEIGHT - HEIGHT * c / top, max(bar - 1, 1), HEIGHT * c / top)
            for i, c in enumerate(counts)
        ),
    )
    return format_html(
        '<svg class="histogram" width="{}" height="{}" viewBox="0 0 {} {}" role="img">'
        "<title>{:.3g} … {:.3g}</title>{}</svg>",
        WIDTH, HEIGHT, WIDTH, HEIGHT, edges[0], edges[-1], rects,
    )  # fmt: skip
