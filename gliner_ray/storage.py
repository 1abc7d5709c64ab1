"""Local paths and ``s3://`` URIs through one pyarrow filesystem: resolve them, find the files a user means, and
write a file so that it is either absent or complete.

Every job reads and writes through these, so a local folder and an S3 prefix behave the same. The S3 endpoint
comes from ``AWS_ENDPOINT_URL`` when it is set (MinIO, a local test server). S3's retries are set here, once
for every job: throttling (503 SlowDown), dropped connections and server errors are retried with exponential
backoff, up to ``S3_ATTEMPTS`` tries per request (``GLINER_RAY_S3_ATTEMPTS`` changes it).
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import io
import os
import time
import uuid
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

GLOB_CHARACTERS = "*?["
S3_ATTEMPTS = int(os.environ.get("GLINER_RAY_S3_ATTEMPTS", 10))  # pyarrow's default is 3: a busy bucket throttles longer
NO_SPACE = "no space left on the device"
S3_CONNECT_TIMEOUT = 10.0  # seconds; the AWS SDK's default of 1 s gives up on a loaded endpoint
READ_ATTEMPTS = 5  # tries of one read of an open file before it counts as failed (see ResumingReader)


def absolute(uri: str) -> str:
    """A local path made absolute against this process's working directory (Ray workers have their own); a URI
    (``s3://...``) unchanged."""
    return uri if "://" in uri else os.path.abspath(os.path.expanduser(uri))


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and the path in it, for a local path (relative, or starting with ``~``) or a URI."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(uri))
    if uri.startswith("s3://"):
        bucket_and_key = uri.removeprefix("s3://")
        return s3_filesystem(bucket_and_key.split("/", 1)[0], os.environ.get("AWS_ENDPOINT_URL")), bucket_and_key.rstrip("/")
    return pafs.FileSystem.from_uri(uri)


@functools.lru_cache(maxsize=64)
def s3_filesystem(bucket: str, endpoint: str | None) -> pafs.S3FileSystem:
    """The S3 filesystem for a bucket, with this project's retries: at ``endpoint`` (any S3-compatible store),
    else on AWS in the bucket's own region."""
    options = dict(
        retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=S3_ATTEMPTS), connect_timeout=S3_CONNECT_TIMEOUT,
    )
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        fs = RetryingS3FileSystem(region=region, endpoint_override=parts.netloc, scheme=parts.scheme, **options)
    else:
        try:
            region = pafs.resolve_s3_region(bucket)
        except OSError:
            region = None  # no such bucket, or no access: the first request says which
        fs = RetryingS3FileSystem(region=region, **options)
    fs.made_for = (bucket, endpoint)
    return fs


class RetryingS3FileSystem(pafs.S3FileSystem):
    """pyarrow's S3FileSystem, pickled as the ``s3_filesystem`` call that made it: pyarrow's own pickling drops
    ``retry_strategy``, and Ray ships a run's ``storage_filesystem`` to its workers, which would then write
    checkpoints with pyarrow's default 3 tries."""

    made_for: tuple[str, str | None]

    def __reduce__(self):
        return s3_filesystem, self.made_for


def worker_environment() -> dict[str, str]:
    """The driver's S3 settings (endpoint, region, tries) that Ray workers need too: a worker on another node, or
    started before the driver set them, does not inherit the driver's environment. Credentials are left out
    (Ray shows a run's worker environment on its dashboard): give workers theirs by instance role or secret."""
    names = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION", "GLINER_RAY_S3_ATTEMPTS")
    return {name: os.environ[name] for name in names if name in os.environ}


class ResumingReader(io.RawIOBase):
    """A file's bytes as a seekable binary file, read by position: a read that fails part-way (an S3 body cut
    off, a connection dropped after the SDK's own retries) is tried again from the same byte, on a reopened file,
    so a passing network fault never looks like a damaged file. A file that is really gone or shorter than
    ``size`` still fails (or ends early) as it should."""

    def __init__(self, fs: pafs.FileSystem, path: str, size: int):
        super().__init__()
        self.fs, self.path, self.size, self.position = fs, path, size, 0
        self.file = fs.open_input_file(path)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), self.size - self.position)
        if wanted <= 0:
            return 0
        for attempt in range(READ_ATTEMPTS):
            try:
                data = self.file.read_at(wanted, self.position)
                break
            except OSError:
                if attempt == READ_ATTEMPTS - 1:
                    raise
                time.sleep(0.2 * 2**attempt)
                try:
                    self.file = self.fs.open_input_file(self.path)
                except OSError:
                    pass  # the next read_at fails again, and the last one raises
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def close(self) -> None:
        self.file.close()
        super().close()


def join(base: str, *names: str) -> str:
    """``base/name/...`` for a local path or a URI alike."""
    return "/".join([base.rstrip("/"), *names])


def display(fs: pafs.FileSystem, path: str) -> str:
    """The URI a user would write for ``path`` in ``fs`` (a plain path on the local disk)."""
    return path if isinstance(fs, pafs.LocalFileSystem) else f"{fs.type_name}://{path}"


def is_hidden(relative_path: str) -> bool:
    """Names starting with ``.`` or ``_`` (``_SUCCESS``, ``.crc``, temporary files) are not data, as in Spark
    and Ray."""
    return any(part.startswith((".", "_")) for part in relative_path.split("/"))


def find_files(uri: str) -> tuple[pafs.FileSystem, str, list[pafs.FileInfo]]:
    """The files ``uri`` names, sorted by path: the file itself, every file below a directory, or those matching
    a glob (``*`` may cross directories). Hidden files below the base are skipped (``is_hidden``).

    Returns the filesystem, the base directory (or file) searched, and the files; none when nothing is there.
    """
    glob_at = next((i for i, c in enumerate(uri) if c in GLOB_CHARACTERS), None)
    cut = len(uri) if glob_at is None else uri.rfind("/", 0, glob_at) + 1  # a glob: list its fixed prefix
    fs, base = resolve(uri[:cut] or ".")
    base = base.rstrip("/") or "/"
    pattern = None if glob_at is None else base.rstrip("/") + "/" + uri[cut:]
    info = fs.get_file_info(base)
    if info.type == pafs.FileType.File and pattern is None:
        return fs, base, [info]
    if info.type != pafs.FileType.Directory:
        return fs, base, []
    listing = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    files = [
        f for f in listing
        if f.type == pafs.FileType.File and not is_hidden(f.path[len(base):])
        and (pattern is None or fnmatch.fnmatchcase(f.path, pattern))
    ]
    return fs, base, sorted(files, key=lambda f: f.path)


def write_bytes(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write a whole file so that readers see it absent or complete: on a local disk under a hidden temporary
    name, then renamed into place; on S3 an object only appears once its upload completes."""
    if not isinstance(fs, pafs.LocalFileSystem):
        with fs.open_output_stream(path) as f:
            f.write(data)
        return
    folder = path.rsplit("/", 1)[0]
    try:
        fs.create_dir(folder, recursive=True)
        temporary = f"{folder}/.{uuid.uuid4().hex}.tmp"
        try:
            with fs.open_output_stream(temporary) as f:
                f.write(data)
            fs.move(temporary, path)
        except BaseException:
            delete(fs, temporary)  # no partial file left behind, not even a hidden one
            raise
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, f"{NO_SPACE} of {path} ({len(data)} bytes to write)") from error
        raise


def disk_full(error: BaseException) -> str | None:
    """What ran out of space, when a no-space-left error is at the root of ``error`` (however many layers of Ray
    exceptions wrap it: their causes may only survive as text), else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return error.strerror or str(error)
        text = str(error)
        if NO_SPACE in text:
            line = next(line for line in text.splitlines() if NO_SPACE in line)
            return line[line.index(NO_SPACE):].strip()
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None


def delete(fs: pafs.FileSystem, path: str) -> None:
    """Delete a file or a directory; a missing one is fine."""
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.Directory:
        fs.delete_dir(path)
    elif info.type == pafs.FileType.File:
        fs.delete_file(path)


def parquet_bytes(table: pa.Table) -> bytes:
    """The table as one Parquet file's bytes, to write with ``write_bytes`` (one upload, so never half a file)."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()
