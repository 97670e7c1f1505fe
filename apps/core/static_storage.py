"""The static files storage of production: whitenoise's hashed and compressed manifest."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class HashedStaticFiles(CompressedManifestStaticFilesStorage):
    """Hashed names, gzip and brotli copies; the vendored libraries' ``sourceMappingURL``
    comments are left alone (their maps are not vendored, and a rewrite would fail on the
    missing file)."""

    patterns = tuple(
        (glob, tuple(p for p in rules if "sourceMappingURL" not in str(p)))
        for glob, rules in CompressedManifestStaticFilesStorage.patterns
    )
