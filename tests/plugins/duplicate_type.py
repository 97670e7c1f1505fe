"""A plugin whose dataset type claims the id another plugin (``squares``) already has."""

from apps.core.plugins import hookimpl
from tests.plugins.squares import Squares


class MoreSquares(Squares):
    @classmethod
    def get_title(cls):
        return "More squares"


@hookimpl
def digits_data_ingestion():
    return [MoreSquares]
