from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500


class CreatedCursorPagination(pagination.CursorPagination):
    """Stable paging over fast-growing tables (jobs): newest first, by creation then id."""

    ordering = ("-created_at", "-id")
    page_size_query_param = "page_size"
    max_page_size = 500
