"""Lists filtered the same way on their page and in the API."""

from django.http import Http404


def filtered(filterset_class, data, queryset):
    """``queryset`` narrowed by a list's FilterSet (the one its API viewset uses) from a
    page's query string. A value the filter cannot take is a page not found (the API
    answers 400)."""
    filters = filterset_class(data, queryset=queryset)
    if not filters.is_valid():
        raise Http404("; ".join(f"{name}: {' '.join(e)}" for name, e in filters.errors.items()))
    return filters.qs
