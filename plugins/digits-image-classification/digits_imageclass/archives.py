"""The archive checks moved to the platform (``apps.core.archives``), shared by every data
plugin that takes uploaded archives; this module keeps the old import path working."""

from apps.core.archives import (  # noqa: F401
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MEMBERS,
    ArchiveRefused,
    Limits,
    extract_archive,
    is_archive,
    member_parts,
)
