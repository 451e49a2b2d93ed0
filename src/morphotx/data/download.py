"""Download the public input files and verify them byte for byte.

Two kinds of source, both described by one entry of ``download.sources`` in the config:

* **S3** (``bucket`` + ``key``; the Cell Painting Gallery is read with unsigned requests, no
  credentials): size and ETag are checked against the object's HEAD before any byte is fetched,
  the body is streamed to a partial file, a cut transfer is resumed with a ranged GET
  (``Range: bytes=N-`` and ``If-Match: <etag>``, so a changed object is never spliced onto an old
  prefix), and the finished file is verified against the recorded size, the multipart ETag
  and/or sha256 before it is renamed to the output path.
* **HTTP(S)** (``url``; Zenodo, figshare, GitHub raw): the same partial file, resume and rename
  logic; the file is verified with md5 and/or sha256 (and size when recorded).

A multipart ETag is ``md5(md5(part_1) + ... + md5(part_N))-N``; the part size is not stored by
S3.
:func:`multipart_etag` checks the 8 MiB part size first (the AWS CLI and boto3 default, and what
the Rosetta uploads used) and tries the other ``part_sizes_mib`` only when 8 MiB does not
match, with a warning naming the size that matched. Only part sizes that give exactly N parts
are tried.

Why not ``snakemake-storage-plugin-s3``: it downloads with boto3 but neither verifies multipart
ETags nor a recorded sha256, and it does not resume a partial object; both matter for the
2 GB CDRP files. It also needs credentials unless configured otherwise. The code here is one
boto3 client with ``signature_version=UNSIGNED`` plus verification.

Nothing half-written is left at an output path: bytes go to ``.<name>.part`` beside it and are
renamed only after verification. A partial file left by a *network* failure is kept so the next
run resumes it. It is deleted when verification fails, because those bytes are wrong.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..io import MorphotxInputError, file_digest
from ..settings import DownloadSettings as Settings

log = logging.getLogger(__name__)

MiB = 1 << 20
DEFAULT_PART_SIZES_MIB = tuple(Settings().part_sizes_mib)  # download.part_sizes_mib's default
READ_CHUNK = 1 * MiB


class DownloadError(MorphotxInputError):
    """A download that cannot be completed or verified; the message names the object and the fix."""


@dataclass
class Source:
    """One entry of ``download.sources``.

    Exactly one of ``bucket``+``key`` (S3) or ``url`` (HTTP). At least one checksum: S3
    sources need ``size`` and ``etag`` or ``sha256``; HTTP sources ``md5`` or ``sha256``.
    """

    name: str
    bucket: str | None = None
    key: str | None = None
    url: str | None = None
    size: int | None = None
    etag: str | None = None
    sha256: str | None = None
    md5: str | None = None
    filename: str | None = None
    local: str | None = None

    @classmethod
    def from_config(cls, name: str, entry: dict) -> Source:
        """The source ``name`` from its ``download.sources`` entry, validated (:meth:`validate`)."""
        known = {k: entry.get(k) for k in ("bucket", "key", "url", "size", "etag", "sha256", "md5", "filename", "local")}
        src = cls(name=name, **known)
        src.validate()
        return src

    @property
    def where(self) -> str:
        """The source's address: ``s3://bucket/key`` or the URL."""
        return f"s3://{self.bucket}/{self.key}" if self.is_s3 else str(self.url)

    @property
    def is_s3(self) -> bool:
        """Whether the source is an S3 object (it has a ``key``) rather than an HTTP URL."""
        return self.key is not None

    def validate(self) -> None:
        """Check the entry; strip the quotes S3 puts around an ETag.

        Raises
        ------
        MorphotxInputError
            Naming ``download.sources.<name>`` and the fix, if the entry gives both or neither of
            ``bucket``+``key`` and ``url``, an S3 key without a bucket or an unsafe key or file name, an
            S3 source without ``size`` and ``etag``/``sha256``, a URL that is not http(s), an HTTP source
            without ``sha256`` or ``md5`` + ``size``, or a size that is not positive.
        """
        at = f"download.sources.{self.name}"
        if self.is_s3 == (self.url is not None):
            raise MorphotxInputError(f"{at}: give either bucket + key (S3) or url (HTTP), not both and not neither.")
        if self.is_s3:
            if not self.bucket:
                raise MorphotxInputError(f"{at}: key {self.key!r} has no bucket; add `bucket:`.")
            check_key(self.key, at)
            if self.size is None or not (self.etag or self.sha256):
                raise MorphotxInputError(
                    f"{at} ({self.where}): an S3 source needs the expected `size` and an `etag` or `sha256` "
                    "(see the published listing in the dataset's config).")
        else:
            if not str(self.url).startswith(("http://", "https://")):
                raise MorphotxInputError(f"{at}: url {self.url!r} must start with http:// or https://.")
            if not (self.sha256 or (self.md5 and self.size is not None)):
                raise MorphotxInputError(
                    f"{at} ({self.url}): an HTTP source needs `sha256`, or `md5` together with `size` (md5 alone "
                    "can be forged; Zenodo and figshare list the md5 and size of every file); or point `local:` "
                    "at a copy you already have.")
        if self.size is not None and self.size <= 0:
            raise MorphotxInputError(f"{at}: expected size {self.size} is not positive; a zero-byte input is never valid.")
        if self.filename is not None:
            check_key(self.filename, f"{at}.filename")
        if self.etag is not None:
            self.etag = self.etag.strip('"')

    def output_name(self) -> str:
        """File name under the download folder: ``filename`` or the last part of the key/url path."""
        if self.filename:
            return self.filename
        path = self.key if self.is_s3 else urllib.parse.urlsplit(self.url).path
        name = PurePosixPath(urllib.parse.unquote(path)).name
        if not name or name in (".", ".."):
            raise MorphotxInputError(f"download.sources.{self.name}: cannot tell a file name from {self.where}; add `filename:`.")
        check_key(name, f"download.sources.{self.name} (file name from {self.where})")
        return name



def check_key(key: str, at: str) -> None:
    """Refuse absolute paths, ``..`` segments and empty segments in an object key or file name."""
    parts = PurePosixPath(key).parts
    if not key or key.startswith(("/", "\\")) or os.path.isabs(key) or ".." in parts or "\\" in key:
        raise MorphotxInputError(
            f"{at}: {key!r} is not a safe relative key (absolute path, '..' or backslash); "
            "write the object key relative to the bucket, e.g. cpg0003-rosetta/broad/....")


# ---------------------------------------------------------------------------------------------
# checksums
# ---------------------------------------------------------------------------------------------


def multipart_etag(path: str | Path, part_size: int) -> str:
    """S3's ETag of ``path`` uploaded in parts of ``part_size`` bytes (``<md5 of md5s>-N``)."""
    digests = []
    with open(path, "rb") as fh:
        while True:
            h = hashlib.md5()
            left = part_size
            while left:
                block = fh.read(min(left, 8 * MiB))
                if not block:
                    break
                h.update(block)
                left -= len(block)
            if left == part_size:
                break
            digests.append(h.digest())
            if left:
                break
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def check_etag(path: str | Path, etag: str, part_sizes_mib: Sequence[int] = DEFAULT_PART_SIZES_MIB,
               what: str = "") -> str | None:
    """Return None when ``path`` matches ``etag``, else a sentence saying what differed.

    A plain ETag (no ``-N``) is the MD5 of the whole file. A multipart ETag is tried with
    ``part_sizes_mib`` in order (the first is expected); a match at another size is logged
    as a warning.
    """
    etag = etag.strip('"')
    if "-" not in etag:
        got = file_digest(path, "md5")
        return None if got == etag else f"md5 {got} does not equal the ETag {etag}"
    n_parts = int(etag.rsplit("-", 1)[1])
    size = os.path.getsize(path)
    tried = []
    for i, mib in enumerate(part_sizes_mib):
        part = int(round(mib * MiB))
        if math.ceil(size / part) != n_parts:
            continue
        got = multipart_etag(path, part)
        tried.append(f"{mib:g} MiB → {got}")
        if got == etag:
            if i:
                log.warning("%s: ETag %s matched with %g MiB parts, not the expected %g MiB; the bytes are verified, "
                            "but the object was uploaded with an unusual part size", what, etag, mib, part_sizes_mib[0])
            return None
    if not tried:
        return (f"no part size in {list(part_sizes_mib)} MiB gives {n_parts} parts for {size} bytes, so the ETag "
                f"{etag} cannot match (the file has the wrong size or was uploaded with another part size)")
    return f"multipart ETag differs: expected {etag}, computed {'; '.join(tried)}"


def verify_file(path: str | Path, src: Source, part_sizes_mib: Sequence[int] = DEFAULT_PART_SIZES_MIB) -> list[str]:
    """Check ``path`` against every checksum recorded for ``src``; raise :class:`DownloadError` naming the
    object and what differed. Returns the list of checks that passed (for the log).
    """
    path = Path(path)
    size = path.stat().st_size
    where = src.where
    if size == 0:
        raise DownloadError(f"{where}: the file is empty (0 bytes); a zero-byte input is never valid. Check the source.")
    passed = []
    if src.size is not None:
        if size != src.size:
            raise DownloadError(f"{where}: size differs: got {size} bytes, expected {src.size} "
                                "(truncated transfer or a different object).")
        passed.append(f"size {size}")
    if src.etag:
        problem = check_etag(path, src.etag, part_sizes_mib, where)
        if problem:
            raise DownloadError(f"{where}: {problem}. The bytes are not the published object; nothing was kept.")
        passed.append(f"ETag {src.etag}")
    for algo in ("sha256", "md5"):
        want = getattr(src, algo)
        if want:
            got = file_digest(path, algo)
            if got != want.lower():
                raise DownloadError(f"{where}: {algo} differs: got {got}, expected {want}. Nothing was kept.")
            passed.append(f"{algo} {want}")
    return passed


# ---------------------------------------------------------------------------------------------
# transfers
# ---------------------------------------------------------------------------------------------
def _part_paths(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(f".{dest.name}.part"), dest.with_name(f".{dest.name}.part.json")


def _progress(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                disable=not enabled, mininterval=2.0)


def _transient(err: BaseException) -> bool:
    """Errors worth a retry with resume: the connection, not the request, failed."""
    import botocore.exceptions as bce
    import urllib3.exceptions as u3

    if isinstance(err, bce.ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return status >= 500 or code in ("SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable")
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500 or err.code == 429
    if isinstance(err, (PermissionError, FileNotFoundError, IsADirectoryError)):  # local disk, not the network
        return False
    return isinstance(err, (bce.BotoCoreError, u3.HTTPError, http.client.HTTPException, ConnectionError,
                            TimeoutError, OSError))


def _with_retries(fetch: Callable[[], None], what: str, s: Settings, part: Path, state: Path) -> None:
    """Run ``fetch`` until it succeeds; retry network failures (resuming), give up on request errors.

    A request error (404, 403, 412 object changed, a checksum) removes the partial file; a network
    failure that outlasts the retries keeps it for the next run to resume.
    """
    for attempt in range(s.retries + 1):
        try:
            fetch()
            return
        except Exception as err:  # noqa: BLE001 (classified by _transient)
            if isinstance(err, MorphotxInputError) or not _transient(err):
                part.unlink(missing_ok=True)
                state.unlink(missing_ok=True)
                raise
            if attempt == s.retries:
                raise DownloadError(
                    f"{what}: transfer failed after {attempt + 1} attempt(s): {type(err).__name__}: {err}. "
                    "The partial file is kept and the next run resumes it; check the network or "
                    "download.endpoint_url.") from err
            wait = s.backoff_s * 2**attempt
            log.warning("%s: %s: %s; retry %d/%d in %.1f s (resuming)", what, type(err).__name__, err,
                        attempt + 1, s.retries, wait)
            time.sleep(wait)


def s3_client(s: Settings):
    """An unsigned (anonymous) boto3 S3 client with the settings' endpoint, region, retries and timeouts."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    cfg = Config(signature_version=UNSIGNED, retries={"max_attempts": s.retries + 1, "mode": "standard"},
                 connect_timeout=s.timeout_s, read_timeout=s.timeout_s)
    return boto3.session.Session().client("s3", region_name=s.region, endpoint_url=s.endpoint_url, config=cfg)


def _head(client, src: Source, s: Settings) -> dict:
    import botocore.exceptions as bce

    try:
        return client.head_object(Bucket=src.bucket, Key=src.key)
    except bce.ClientError as err:
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        where = f"{src.where} (endpoint {s.endpoint_url or 'AWS'})"
        if status == 404:
            raise DownloadError(f"{where}: no such key (HTTP 404). Check download.sources.{src.name}.key and "
                                "bucket against the dataset's listing, or the mirror in download.endpoint_url.") from err
        if status == 403:
            raise DownloadError(f"{where}: access denied (HTTP 403). The object is not public, or the key is "
                                "wrong (S3 answers 403 for missing keys in unlisted buckets).") from err
        raise


def s3_download(src: Source, dest: str | Path, s: Settings) -> Path:
    """Download one S3 object to ``dest``: HEAD check, streamed ranged GETs with resume, verify, rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, state = _part_paths(dest)
    client = s3_client(s)
    head = _head(client, src, s)
    size, etag = int(head["ContentLength"]), head["ETag"].strip('"')
    if size == 0:
        raise DownloadError(f"{src.where}: the object is empty (0 bytes); a zero-byte input is never valid.")
    if src.size is not None and size != src.size:
        raise DownloadError(f"{src.where}: size differs: the server has {size} bytes, the config expects {src.size} "
                            f"(download.sources.{src.name}.size). The object changed or the config is wrong.")
    if src.etag and etag != src.etag:
        raise DownloadError(f"{src.where}: ETag differs: the server has {etag}, the config expects {src.etag} "
                            f"(download.sources.{src.name}.etag). The object changed or the config is wrong.")
    _reset_stale_part(part, state, etag, size)
    state.write_text(json.dumps({"etag": etag, "size": size, "source": src.where}))

    def fetch() -> None:
        have = part.stat().st_size if part.exists() else 0
        if have >= size:
            return
        resp = client.get_object(Bucket=src.bucket, Key=src.key, Range=f"bytes={have}-", IfMatch=etag)
        _stream(resp["Body"].iter_chunks(READ_CHUNK), part, size, have, src, s)

    _with_retries(fetch, src.where, s, part, state)
    return _finish(part, state, dest, src, s)


def http_download(src: Source, dest: str | Path, s: Settings) -> Path:
    """Download one HTTP(S) file to ``dest`` with resume when the server honours ranges; verify; rename."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, state = _part_paths(dest)
    _reset_stale_part(part, state, src.md5 or src.sha256, src.size)
    state.write_text(json.dumps({"checksum": src.md5 or src.sha256, "source": src.where}))

    def fetch() -> None:
        have = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(src.url, headers={"Range": f"bytes={have}-"} if have else {})
        try:
            resp = urllib.request.urlopen(req, timeout=s.timeout_s)  # noqa: S310 (scheme checked in Source)
        except urllib.error.HTTPError as err:
            if err.code == 416 and have:  # range past the end: we already have everything
                return
            if err.code == 404:
                raise DownloadError(f"{src.url}: not found (HTTP 404). Check download.sources.{src.name}.url.") from err
            raise
        with resp:
            if have and resp.status != 206:  # the server ignored the range: start again
                log.info("%s: server does not resume (HTTP %d); downloading from the start", src.url, resp.status)
                part.unlink()
                have = 0
            length = resp.headers.get("Content-Length")
            total = have + int(length) if length is not None else src.size
            _stream(iter(lambda: resp.read(READ_CHUNK), b""), part, total, have, src, s)
            if length is not None and part.stat().st_size < total:
                raise ConnectionError(f"connection closed at byte {part.stat().st_size} of {total}")

    _with_retries(fetch, src.where, s, part, state)
    return _finish(part, state, dest, src, s)


def _reset_stale_part(part: Path, state: Path, ident: str | None, size: int | None) -> None:
    """Drop a partial file that belongs to another object version (or is longer than the object)."""
    if not part.exists():
        return
    try:
        old = json.loads(state.read_text())
    except (OSError, ValueError):
        old = {}
    if old.get("etag", old.get("checksum")) != ident or (size is not None and part.stat().st_size > size):
        log.info("%s: partial file belongs to another version of the object; starting again", part)
        part.unlink()
    else:
        log.info("%s: resuming from byte %d", part, part.stat().st_size)


def _stream(chunks: Iterable[bytes], part: Path, total: int | None, have: int, src: Source, s: Settings) -> None:
    """Append ``chunks`` to ``part``; stop at more bytes than the source's `size` (or `max_gib`)."""
    limit = src.size if src.size is not None else int(s.max_gib * (1 << 30))
    with open(part, "ab") as fh, _progress(total, have, src.name, s.progress) as bar:
        for block in chunks:
            have += len(block)
            if have > limit:
                fh.close()
                part.unlink()
                raise DownloadError(
                    f"{src.where}: the server sent more than {limit} bytes ("
                    + ("the `size` in the config" if src.size is not None else "download.max_gib, no `size` given")
                    + "); the partial file was removed. Check the URL and the expected size.")
            fh.write(block)
            bar.update(len(block))
        fh.flush()
        os.fsync(fh.fileno())
    got = part.stat().st_size
    if total is not None and got < total:
        raise ConnectionError(f"stream ended at byte {got} of {total}")


def _finish(part: Path, state: Path, dest: Path, src: Source, s: Settings) -> Path:
    try:
        passed = verify_file(part, src, s.part_sizes_mib)
    except DownloadError:
        part.unlink(missing_ok=True)
        state.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    state.unlink(missing_ok=True)
    log.info("%s -> %s: verified (%s)", src.where, dest, ", ".join(passed))
    return dest


def link_local(src: Source, dest: str | Path, s: Settings) -> Path:
    """Verify a copy the user already has (``local:``) against the recorded checksums and symlink it at
    ``dest``, so every later rule reads the same path whether the file was downloaded or not.
    """
    local = Path(src.local).expanduser().resolve()
    if not local.is_file():
        raise DownloadError(f"download.sources.{src.name}.local: {src.local} is not a file. Fix the path or remove "
                            "`local:` to download the object.")
    try:
        passed = verify_file(local, src, s.part_sizes_mib)
    except DownloadError as err:
        raise DownloadError(f"download.sources.{src.name}.local ({local}) is not the published file: {err}") from err
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(local)
    os.replace(tmp, dest)
    log.info("%s: verified local copy %s (%s), linked at %s", src.where, local, ", ".join(passed), dest)
    return dest


def download(item: str, entry: dict, dest: str | Path, settings: Settings = Settings()) -> Path:
    """Put ``download.sources.<item>`` at ``dest``, verified (the rule's entry point): download it from
    S3 or HTTP, or verify and link the ``local`` copy.

    Parameters
    ----------
    item : str
        The source's key in ``download.sources`` (the rule's wildcard), named in messages.
    entry : dict
        That source's config entry (``bucket`` and ``key``, or ``url``; ``size``, ``etag``,
        ``md5``, ``sha256``, ``local``; see :class:`Source`).
    dest : str or Path
        Where the verified file (or the link to the local copy) is put.
    settings : DownloadSettings, default DownloadSettings()
        The ``download`` config section (endpoint, region, retries, back-off, timeout, candidate
        multipart sizes, progress, size limit; its ``sources`` are not read here).

    Returns
    -------
    Path
        ``dest``.
    """
    src = Source.from_config(item, entry)
    if src.local:
        return link_local(src, dest, settings)
    return (s3_download if src.is_s3 else http_download)(src, dest, settings)
