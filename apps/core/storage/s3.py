"""Artifacts in an S3 bucket (MinIO, SeaweedFS, AWS...) through the ``minio`` client."""

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import IO
from urllib.parse import urlsplit

import certifi
import urllib3
from django.utils.http import content_disposition_header
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from . import retry
from .base import ArtifactNotFound, ArtifactStore, StoreUnavailable, require_folder, validate_key

MIB = 1024 * 1024


class S3Store(ArtifactStore):
    """One bucket of an S3 server. The client is built on first use, never at import.

    ``endpoint`` is ``host:port`` or a URL whose scheme then decides ``secure``.
    ``public_endpoint``, when set, is the address browsers use in presigned URLs (the server
    may reach the store under a cluster-internal name they cannot resolve).
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
        public_endpoint: str | None = None,
        part_size: int = 16 * MIB,
    ) -> None:
        self.endpoint, self.secure = _split_endpoint(endpoint, secure)
        self.public_endpoint = public_endpoint
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        # A known region spares minio a GetBucketLocation round trip before every first call,
        # and lets presigning work offline.
        self.region = region or "us-east-1"
        # Memory each upload of unknown length buffers; 10,000 parts of 16 MiB is 156 GiB.
        self.part_size = part_size

    def __repr__(self) -> str:
        return f"S3Store({self.endpoint!r}, bucket={self.bucket!r})"

    @cached_property
    def client(self) -> Minio:
        """The minio client for data calls. urllib3 does not retry: every call goes through
        ``retry.call``, whose backoff spans a server restart (DIGITS_STORAGE_RETRY_SECONDS)."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=300),
            maxsize=10,
            retries=urllib3.Retry(total=0),
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        return self._make_client(self.endpoint, self.secure, http)

    def _call(self, method: str, /, **kwargs):
        """``self.client.<method>(bucket_name=..., **kwargs)``, retried (see ``retry``)."""
        fn = getattr(self.client, method)
        what = f"{method} {kwargs.get('object_name') or kwargs.get('prefix') or ''}".strip()
        return retry.call(lambda: fn(bucket_name=self.bucket, **kwargs), what)

    @cached_property
    def _probe_client(self) -> Minio:
        # Readiness must answer in seconds: no retries, short timeouts.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2, read=5),
            retries=urllib3.Retry(total=0),
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        return self._make_client(self.endpoint, self.secure, http)

    @cached_property
    def _presign_client(self) -> Minio:
        if not self.public_endpoint:
            return self.client
        return self._make_client(*_split_endpoint(self.public_endpoint, self.secure))

    def _make_client(
        self, endpoint: str, secure: bool, http: urllib3.PoolManager | None = None
    ) -> Minio:
        return Minio(
            endpoint=endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=secure,
            region=self.region,
            http_client=http,
        )

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists. Deployment and tests call it, never import."""
        client = self._probe_client
        if client.bucket_exists(bucket_name=self.bucket):
            return
        try:
            client.make_bucket(bucket_name=self.bucket)
        except S3Error as exc:
            # Another replica won the race: fine.
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def check(self) -> None:
        """Reach the server and make sure the bucket exists; StoreUnavailable otherwise.

        The first check creates a missing bucket; later ones (the readiness probe's) only
        ask whether it exists (one HEAD request)."""
        try:
            if self.__dict__.get("_bucket_checked"):
                if not self._probe_client.bucket_exists(bucket_name=self.bucket):
                    raise StoreUnavailable(f"no bucket {self.bucket}")
                return
            self.ensure_bucket()
            self._bucket_checked = True
        except Exception as exc:  # urllib3, S3 and TLS errors alike mean "not ready"
            raise StoreUnavailable(f"S3 {self.endpoint}/{self.bucket}: {exc}") from exc

    def put_stream(
        self, key: str, fileobj: IO[bytes], length: int = -1, content_type: str | None = None
    ) -> None:
        # S3 shows an object only once its PUT or multipart upload completes: atomic as is.
        put = self.client.put_object
        kwargs = {
            "bucket_name": self.bucket,
            "object_name": validate_key(key),
            "data": fileobj,
            "length": length,
            "content_type": content_type or "application/octet-stream",
            # Unknown length needs a part size; known length lets minio pick one.
            "part_size": self.part_size if length < 0 else 0,
        }
        start = _tell(fileobj)
        if start is None:  # a stream that cannot be read twice: one try
            put(**kwargs)
            return
        retry.call(lambda: put(**kwargs), f"put {key}", rewind=lambda: fileobj.seek(start))

    @contextlib.contextmanager
    def staged(self, key: str, content_type: str | None = None) -> Iterator[IO[bytes]]:
        """See ArtifactStore.staged. Bytes are buffered locally (memory up to ``part_size``,
        then a temp file) and uploaded on clean exit; the upload itself is atomic."""
        validate_key(key)
        with tempfile.SpooledTemporaryFile(max_size=self.part_size) as buf:
            yield buf
            length = buf.seek(0, io.SEEK_END)
            buf.seek(0)
            self.put_stream(key, buf, length, content_type)

    def open(self, key: str) -> IO[bytes]:
        try:
            response = self._call("get_object", object_name=validate_key(key))
        except S3Error as exc:
            if _is_missing(exc):
                raise ArtifactNotFound(key) from exc
            raise
        # The wrapper must see EOF itself rather than find the response already closed.
        response.auto_close = False
        return _ObjectReader(response)

    def size(self, key: str) -> int:
        try:
            stat = self._call("stat_object", object_name=validate_key(key))
        except S3Error as exc:
            if _is_missing(exc):
                raise ArtifactNotFound(key) from exc
            raise
        return int(stat.size or 0)

    def modified(self, key: str) -> datetime:
        try:
            stat = self._call("stat_object", object_name=validate_key(key))
        except S3Error as exc:
            if _is_missing(exc):
                raise ArtifactNotFound(key) from exc
            raise
        return stat.last_modified or datetime.now(UTC)

    def url(
        self, key: str, expires: timedelta = timedelta(hours=1), filename: str | None = None
    ) -> str:
        """A presigned GET URL, valid for ``expires``; computed offline, no request made."""
        headers = (
            {"response-content-disposition": content_disposition_header(True, filename)}
            if filename
            else None
        )
        return self._presign_client.presigned_get_object(
            bucket_name=self.bucket,
            object_name=validate_key(key),
            expires=expires,
            response_headers=headers,
        )

    def delete(self, key: str) -> None:
        self._call("remove_object", object_name=validate_key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = list(self._iter_keys(require_folder(prefix)))
        # One request per 1,000 keys; the iterator only sends them while it is consumed.
        errors = retry.call(
            lambda: list(
                self.client.remove_objects(
                    bucket_name=self.bucket, delete_object_list=(DeleteObject(k) for k in keys)
                )
            ),
            f"delete {prefix}",
        )
        if errors:
            raise OSError(f"could not delete {len(errors)} objects, first: {errors[0]}")
        return len(keys)

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        objects = retry.call(
            lambda: list(
                self.client.list_objects(
                    bucket_name=self.bucket, prefix=prefix or None, recursive=True
                )
            ),
            f"list {prefix}",
        )
        # Folder markers ("x/") made by other tools are not artifacts.
        names = [n for o in objects if (n := o.object_name) and not n.endswith("/")]
        # Sorted here, at the cost of holding the names: servers disagree on the order.
        # AWS and MinIO list by whole string ("a/b-c" first); SeaweedFS walks folders
        # ("a/b/c" first).
        return iter(sorted(names))

    def _move(self, src: str, dst: str) -> None:
        # Server-side copy: the bytes never travel through this process.
        self._call("copy_object", object_name=dst, source=CopySource(self.bucket, src))
        self._call("remove_object", object_name=src)


class _ObjectReader(io.BufferedReader):
    """A GET response as a buffered binary file; closing hands the connection back."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            # minio's rule for get_object: close, then release_conn.
            self.raw.release_conn()


def _tell(fileobj: IO[bytes]) -> int | None:
    """Where a seekable stream is now (to read it again on a retry); None if it is not."""
    try:
        return fileobj.tell() if fileobj.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _is_missing(exc: S3Error) -> bool:
    return exc.code in ("NoSuchKey", "NoSuchObject")


def _split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    if "://" not in endpoint:
        return endpoint, secure
    url = urlsplit(endpoint)
    return url.netloc, url.scheme == "https"
