"""Get a Qwen2.5-VL checkpoint from the Hugging Face Hub by name: ``owner/name[@revision]``.

The Hub's own client (``huggingface_hub``) does the talking: repository info and the file
listing, its HTTP session (``HF_ENDPOINT``, ``HF_TOKEN``, proxies from the environment) and its
streaming GET. Files land in the shared Hugging Face cache, in the cache's own layout
(``models--OWNER--NAME/blobs`` + ``snapshots/REVISION``), so a checkpoint another tool already
downloaded is used as it is, and ``scan_cache_dir`` sees ours. What this module adds
(docs/conversion.md, "Download by name"):

- the revision is resolved to a commit first (the caller prints it), and nothing but
  ``config.json`` is fetched before the converter has accepted the repository: its architecture
  and the listing are checked with the converter's own messages;
- only the files the converter reads are fetched, with one byte count for all of them;
- free space is checked before the first weight byte, per filesystem (the cache's disk for the
  missing bytes, the output's disk for the result plus 5%);
- a partial file is kept as ``blobs/SHA256.incomplete`` (Ctrl-C, a network cut) and the same
  command resumes it with a ``Range`` request; 429/5xx and dropped connections are retried with
  back-off;
- each large file's sha256 is compared with the listing's LFS oid once it is complete (the client
  checks sizes only): a mismatch deletes the file and says to run again.

Downloads go through the resolve URL as plain HTTP, the path every client supports; the Hub
serves Xet-stored files there too (its LFS bridge).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

from convert.config import check_is_qwen25vl, load_json
from convert.errors import ConversionError, DownloadError, InsufficientDiskSpaceError
from convert.safetensors_source import no_weights_error, weight_file_names

logger = logging.getLogger(__name__)

# "owner/name" or "owner/name@revision" as the Hub spells repository ids.
_REPO_SPEC = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
DEFAULT_ENDPOINT = "https://huggingface.co"
# Besides the weights: the files convert/ reads (config, tokenizer, template, image settings).
SMALL_FILES = (
    "config.json",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
)
INDEX_FILE = "model.safetensors.index.json"
# Seconds to wait before each retry of a 429/5xx answer or a dropped connection.
RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0)
CACHE_MARGIN_BYTES = 16 << 20
OUTPUT_MARGIN = 1.05
_RETRY_STATUS = (429, 500, 502, 503, 504)

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes to fetch)


@dataclass(frozen=True)
class RepoSpec:
    """A Hub repository id and an optional revision (branch, tag or commit)."""

    repo: str
    revision: str | None

    def __str__(self) -> str:
        return f"{self.repo}@{self.revision}" if self.revision else self.repo


def parse_repo_spec(text: str) -> RepoSpec | None:
    """``owner/name[@revision]`` -> RepoSpec; None when ``text`` is not shaped like one, or when a
    local path of that name exists (a local path always wins)."""
    if Path(text).expanduser().exists():
        return None
    match = _REPO_SPEC.match(text)
    if match is None:
        return None
    return RepoSpec(match["repo"], match["revision"])


@dataclass(frozen=True)
class RemoteFile:
    """One file of the repository at the resolved commit, as the listing gives it."""

    name: str
    size: int
    blob_id: str  # git oid
    sha256: str | None  # the LFS oid of a large file; None for a small (plain git) file

    @property
    def blob_name(self) -> str:
        """Its name under ``blobs/`` in the Hugging Face cache (what the Hub's ETag says)."""
        return self.sha256 or self.blob_id


@dataclass(frozen=True)
class Fetched:
    """A checkpoint folder in the Hugging Face cache and how it got there."""

    repo: str
    revision: str  # the commit
    folder: Path  # .../models--OWNER--NAME/snapshots/COMMIT
    downloaded_bytes: int  # 0 when everything was already in the cache


def hub_endpoint() -> str:
    """``HF_ENDPOINT`` as set now (the client reads it once, at import)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_cache_dir() -> Path:
    """The shared Hugging Face cache as the environment sets it now (``HF_HUB_CACHE``, else
    ``HF_HOME/hub``, else ``~/.cache/huggingface/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface"
    )
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


def repo_folder(cache: Path, repo: str) -> Path:
    return cache / ("models--" + repo.replace("/", "--"))


# --- errors, said plainly ------------------------------------------------------------------------


def _status(err: BaseException) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _is_transient(err: BaseException) -> bool:
    import httpx2

    if isinstance(err, httpx2.TransportError):
        return not isinstance(err, httpx2.ProxyError)
    return _status(err) in _RETRY_STATUS


def _explain(err: BaseException, spec: RepoSpec) -> DownloadError:
    """One sentence for what went wrong talking to the Hub, and what to do."""
    import httpx2
    from huggingface_hub.errors import OfflineModeIsEnabled, RevisionNotFoundError

    endpoint = hub_endpoint()
    page = f"{endpoint}/{spec.repo}"
    status = _status(err)
    if isinstance(err, RevisionNotFoundError):
        return DownloadError(
            f"{spec.repo} has no revision {spec.revision!r}: check the branch, tag or commit "
            f"after '@' (see {page}/tree/main)"
        )
    if status == 401:
        return DownloadError(
            f"the Hub refused access to {spec.repo} (401: not logged in, or a bad token): if the "
            f"repository is gated, accept its licence at {page} while logged in, then set HF_TOKEN to "
            "an access token of that account; if it is private, HF_TOKEN must belong to an account "
            "that can read it"
        )
    if status == 403:
        return DownloadError(
            f"the Hub refused access to {spec.repo} (403: gated or not allowed for this token): "
            f"accept its licence at {page} while logged in, then set HF_TOKEN to an access token "
            "of that account with read access"
        )
    if status == 404:
        return DownloadError(
            f"{spec.repo} was not found on {endpoint} (404): check the name, owner/name as on its "
            "page; a private repository also needs HF_TOKEN"
        )
    if isinstance(err, OfflineModeIsEnabled):
        return DownloadError(
            f"HF_HUB_OFFLINE is set and {spec} is not in the Hugging Face cache "
            f"({hub_cache_dir()}): unset HF_HUB_OFFLINE to download it"
        )
    if isinstance(err, httpx2.ProxyError):
        return DownloadError(
            f"the proxy refused the connection to {endpoint} ({err}): check HTTPS_PROXY / HTTP_PROXY"
        )
    if isinstance(err, httpx2.TransportError):
        return DownloadError(
            f"cannot reach {endpoint} ({type(err).__name__}: {err or 'no answer'}): check the network "
            "connection (and HTTPS_PROXY if you use a proxy), or set HF_HUB_OFFLINE=1 to convert a "
            "copy already in the Hugging Face cache. Run the same command again to resume"
        )
    if status is not None:
        return DownloadError(
            f"the Hub answered {status} for {spec.repo}; try again later (the same command resumes)"
        )
    return DownloadError(f"downloading {spec} failed: {type(err).__name__}: {err}")


def _retrying(what: Callable[[], Any], spec: RepoSpec) -> Any:
    """``what()``, retried with back-off on 429/5xx and dropped connections."""
    for attempt, delay in enumerate((*RETRY_DELAYS, None)):
        try:
            return what()
        except ConversionError:
            raise
        except Exception as err:
            if delay is None or not _is_transient(err):
                raise _explain(err, spec) from None
            logger.warning(
                "%s (attempt %d); retrying in %.0f s", err, attempt + 1, delay, exc_info=False
            )
            time.sleep(delay)
    raise AssertionError("unreachable")


# --- the listing and what to fetch ----------------------------------------------------------------


def _listing(spec: RepoSpec) -> tuple[str, dict[str, RemoteFile]]:
    """(commit, files by name) of the repository at ``spec.revision`` (default branch if None)."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=hub_endpoint())
    info = _retrying(lambda: api.model_info(spec.repo, revision=spec.revision), spec)
    commit = info.sha
    if not commit:
        raise DownloadError(f"the Hub did not say which commit {spec} is; try again later")

    def tree() -> list[RepoFile]:
        entries = api.list_repo_tree(spec.repo, recursive=True, revision=commit)
        return [e for e in entries if isinstance(e, RepoFile)]

    files = {  # the converter reads the top folder only
        e.path: RemoteFile(e.path, int(e.size), e.blob_id, e.lfs.sha256 if e.lfs else None)
        for e in _retrying(tree, spec)
        if "/" not in e.path
    }
    return commit, files


def refuse_unconvertible(
    spec: RepoSpec, folder: Path, names: Iterable[str], fetch: Callable[[str], None]
) -> None:
    """The converter's own refusals, from config.json and the listing (plus the shard index):
    another model, a bare adapter, no safetensors weights, shards the index names but the
    repository lacks. ``fetch(name)`` brings a small file into ``folder``."""
    names = set(names)
    check_is_qwen25vl(folder)  # an adapter without config.json is refused here too
    where = f"{spec} on the Hub"
    if INDEX_FILE in names:
        fetch(INDEX_FILE)
        shards = sorted(set(load_json(folder / INDEX_FILE).get("weight_map", {}).values()))
        missing = [n for n in shards if n not in names]
        if missing:
            raise DownloadError(
                f"{where} lacks {len(missing)} of the {len(shards)} weight shards its index names "
                f"({', '.join(missing)}): the repository is incomplete; ask its owner, or choose "
                "another revision"
            )
    elif not weight_file_names(names):
        raise no_weights_error(where, names)


def weight_names(folder: Path, names: Iterable[str]) -> list[str]:
    """The weight files the converter will read: the index's shards, else every safetensors."""
    if (folder / INDEX_FILE).is_file():
        return sorted(set(load_json(folder / INDEX_FILE).get("weight_map", {}).values()))
    return weight_file_names(names)


# --- one file -------------------------------------------------------------------------------------


class _CountingFile:
    """The partial file as ``http_get`` sees it: counts and hashes what it writes."""

    def __init__(self, handle: BinaryIO, digest: Any, on_bytes: Callable[[int], None]) -> None:
        self.handle = handle
        self.digest = digest
        self.on_bytes = on_bytes
        self.rewound = False

    def write(self, data: bytes) -> int:
        written = self.handle.write(data)
        if self.digest is not None:
            self.digest.update(data)
        self.on_bytes(len(data))
        return written

    def tell(self) -> int:
        return self.handle.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        self.rewound = True  # the server ignored Range: the running hash no longer applies
        return self.handle.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        self.rewound = True
        return self.handle.truncate(size)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def _link(blob: Path, pointer: Path) -> None:
    """``snapshots/COMMIT/NAME`` -> ``blobs/ID``, relative, as the Hub's cache does (a copy
    where symlinks are not allowed)."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        pointer.unlink()
    try:
        pointer.symlink_to(os.path.relpath(blob, pointer.parent))
    except OSError:
        shutil.copyfile(blob, pointer)


class _Downloader:
    """Fetches files of one repository commit into the cache, resuming partial files."""

    def __init__(
        self, spec: RepoSpec, commit: str, cache: Path, progress: ProgressCallback | None
    ) -> None:
        self.spec = spec
        self.commit = commit
        self.storage = repo_folder(cache, spec.repo)
        self.snapshot = self.storage / "snapshots" / commit
        self.progress = progress
        self.done = 0
        self.total = 0

    def pointer(self, remote: RemoteFile) -> Path:
        return self.snapshot / remote.name

    def blob(self, remote: RemoteFile) -> Path:
        return self.storage / "blobs" / remote.blob_name

    def partial(self, remote: RemoteFile) -> Path:
        return self.storage / "blobs" / f"{remote.blob_name}.incomplete"

    def have(self, remote: RemoteFile) -> bool:
        return self.pointer(remote).exists() or self.blob(remote).is_file()

    def missing_bytes(self, remote: RemoteFile) -> int:
        if self.have(remote):
            return 0
        partial = self.partial(remote)
        done = partial.stat().st_size if partial.is_file() else 0
        return max(0, remote.size - done)

    def _advance(self, amount: int) -> None:
        self.done += amount
        if self.progress is not None and self.total:
            self.progress(self.done, self.total)

    def fetch(self, remote: RemoteFile) -> None:
        """Make sure ``snapshots/COMMIT/NAME`` holds the file, downloading what is missing."""
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers
        from tqdm import tqdm

        pointer, blob = self.pointer(remote), self.blob(remote)
        if pointer.exists():
            return
        if blob.is_file():
            _link(blob, pointer)
            return
        partial = self.partial(remote)
        partial.parent.mkdir(parents=True, exist_ok=True)
        # Built here, not with hf_hub_url: its template holds the HF_ENDPOINT of import time.
        url = f"{hub_endpoint()}/{self.spec.repo}/resolve/{self.commit}/{quote(remote.name)}"
        headers = build_hf_headers()
        headers["Accept-Encoding"] = "identity"  # byte ranges of the stored file, not of a gzip
        digest: Any = None
        if remote.sha256 is not None and partial.is_file() and partial.stat().st_size:
            digest = hashlib.sha256()
            with open(partial, "rb") as handle:  # what an earlier run fetched
                while block := handle.read(8 << 20):
                    digest.update(block)
        elif remote.sha256 is not None:
            digest = hashlib.sha256()

        class Silent(tqdm):  # one bar for the whole download is the caller's, not one per file
            monitor_interval = 0  # and no monitor thread (one per file, left running) for it

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)

        rewound = False

        def attempt() -> None:
            try:
                fetch_once()
            except OSError as err:
                if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                free = shutil.disk_usage(partial.parent).free
                needed = max(self.total - self.done, 0)
                raise InsufficientDiskSpaceError(
                    f"the disk of {partial.parent} is full (the download needs about "
                    f"{needed / 1e9:.2f} GB more, {free / 1e9:.2f} GB is free): free some space "
                    "there, or set HF_HOME to a cache on another disk, then run the same command "
                    "again: it resumes; nothing was lost: what was downloaded so far is kept"
                ) from err

        def fetch_once() -> None:
            nonlocal rewound
            with open(partial, "ab") as handle:
                resume = handle.tell()
                if resume >= remote.size:
                    return
                counting = _CountingFile(handle, digest, self._advance)
                try:
                    http_get(
                        url,
                        counting,  # type: ignore[arg-type]
                        resume_size=resume,
                        headers=headers,
                        expected_size=remote.size,
                        tqdm_class=Silent,
                    )
                finally:
                    rewound = rewound or counting.rewound

        _retrying(attempt, self.spec)
        size = partial.stat().st_size
        if size != remote.size:
            partial.unlink()
            raise DownloadError(
                f"{remote.name} from {self.spec.repo} came out {size} bytes long, not "
                f"{remote.size}: it was deleted; run the same command again to download it again"
            )
        if remote.sha256 is None:  # a small file: its git blob id is a sha1 of its content
            data = partial.read_bytes()
            if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() != remote.blob_id:
                partial.unlink()
                raise DownloadError(
                    f"{remote.name} from {self.spec.repo} does not match the Hub's listing: it "
                    "was deleted; run the same command again to download it again"
                )
        else:
            actual = _hash_file(partial) if rewound or digest is None else digest.hexdigest()
            if actual != remote.sha256:
                partial.unlink()
                raise DownloadError(
                    f"{remote.name} from {self.spec.repo} does not match its sha256 on the Hub "
                    f"(got {actual[:12]}…, the listing says {remote.sha256[:12]}…): the damaged file "
                    "was deleted; run the same command again to download it again"
                )
        os.replace(partial, blob)
        _link(blob, pointer)


def _write_ref(storage: Path, revision: str | None, commit: str) -> None:
    """``refs/BRANCH`` = commit, so an offline run of ``owner/name`` finds this snapshot."""
    name = revision or "main"
    if _COMMIT.match(name):
        return
    ref = storage / "refs" / name
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit)


def _cached_snapshot(spec: RepoSpec, cache: Path) -> Fetched | None:
    """The snapshot ``spec`` names in the cache, if it holds config.json (no network)."""
    storage = repo_folder(cache, spec.repo)
    revision = spec.revision or "main"
    commit = revision if _COMMIT.match(revision) else None
    ref = storage / "refs" / revision
    if commit is None and ref.is_file():
        commit = ref.read_text().strip()
    if commit is None:
        return None
    folder = storage / "snapshots" / commit
    if not (folder / "config.json").is_file():
        return None
    return Fetched(spec.repo, commit, folder, 0)


@dataclass(frozen=True)
class DiskNeed:
    """What one filesystem must hold: ``needed`` bytes free at ``where`` (``free`` now)."""

    where: Path
    needed: int
    free: int

    @property
    def enough(self) -> bool:
        return self.free >= self.needed


@dataclass(frozen=True)
class DownloadPlan:
    """A repository checked and ready to fetch: what is there, what is missing, and where.

    ``plan_download`` makes it after fetching only config.json and the small files the
    converter reads; a caller can show the sizes and the disks' room before any weight byte.
    """

    spec: RepoSpec
    commit: str
    snapshot: Path  # .../models--OWNER--NAME/snapshots/COMMIT
    weights: tuple[RemoteFile, ...]
    weight_bytes: int  # the whole checkpoint's weights
    missing_bytes: int  # what is left to fetch
    partial_bytes: int  # fetched by an earlier, interrupted run and kept

    def disk_needs(self, output_dir: Path, output_bytes: int) -> list[DiskNeed]:
        """Free space per filesystem: the cache's for the missing bytes, the output's for the
        result plus 5% (on one disk: their sum)."""
        needs: dict[int, tuple[Path, int]] = {}
        cache_need = self.missing_bytes + CACHE_MARGIN_BYTES if self.missing_bytes else 0
        for folder, amount in (
            (self.snapshot, cache_need),
            (output_dir, int(output_bytes * OUTPUT_MARGIN)),
        ):
            existing = folder
            while not existing.exists():
                existing = existing.parent
            device = existing.stat().st_dev
            where, before = needs.get(device, (existing, 0))
            needs[device] = (where, before + amount)
        return [
            DiskNeed(where, amount, shutil.disk_usage(where).free)
            for where, amount in needs.values()
        ]


def _check_space(needs: list[DiskNeed]) -> None:
    for need in needs:
        if not need.enough:
            raise InsufficientDiskSpaceError(
                f"downloading and converting need about {need.needed / 1e9:.2f} GB on the disk of "
                f"{need.where}, but only {need.free / 1e9:.2f} GB is free: free some space, or set "
                "HF_HOME to a cache on another disk / choose another --outdir"
            )


def plan_download(
    spec: RepoSpec, *, on_revision: Callable[[str], None] | None = None
) -> DownloadPlan:
    """Resolve ``spec`` to a commit, check it is a checkpoint the converter takes, fetch only
    config.json, the shard index and the small files the converter reads, and say what is left.

    Raises the converter's own refusals (another model, an adapter, no safetensors) and
    ``DownloadError`` for access and network problems. Needs the network (not ``HF_HUB_OFFLINE``).
    """
    commit, files = _listing(spec)
    if on_revision is not None:
        on_revision(commit)
    downloader = _Downloader(spec, commit, hub_cache_dir(), None)
    # config.json first (or, for a bare adapter, the adapter's config the converter names it by)
    first = "config.json" if "config.json" in files else "adapter_config.json"
    if first not in files:
        raise DownloadError(
            f"{spec} has no config.json: it is not a Hugging Face model checkpoint (the files are: "
            f"{', '.join(sorted(files)[:8])})"
        )
    downloader.fetch(files[first])
    _write_ref(downloader.storage, spec.revision, commit)
    refuse_unconvertible(spec, downloader.snapshot, files, lambda n: downloader.fetch(files[n]))
    for name in SMALL_FILES:
        if name in files:
            downloader.fetch(files[name])
    weights = tuple(files[n] for n in weight_names(downloader.snapshot, files))
    missing = sum(downloader.missing_bytes(f) for f in weights)
    partial = sum(
        downloader.partial(f).stat().st_size
        for f in weights
        if not downloader.have(f) and downloader.partial(f).is_file()
    )
    return DownloadPlan(
        spec, commit, downloader.snapshot, weights, sum(f.size for f in weights), missing, partial
    )


def fetch_checkpoint(
    spec: RepoSpec,
    *,
    output_dir: Path,
    output_bytes: Callable[[int], int],
    on_revision: Callable[[str], None] | None = None,
    progress: ProgressCallback | None = None,
) -> Fetched:
    """Put the checkpoint ``spec`` names into the Hugging Face cache and return its folder.

    ``on_revision(commit)`` is called once the commit is known, before any file is fetched;
    ``output_bytes(weight_bytes)`` estimates what converting needs in ``output_dir`` (checked
    before the first weight byte); ``progress(done, total)`` counts the bytes being fetched.
    With ``HF_HUB_OFFLINE=1`` only the cache is used.
    """
    cache = hub_cache_dir()
    if hub_offline():
        cached = _cached_snapshot(spec, cache)
        if cached is None:
            from huggingface_hub.errors import OfflineModeIsEnabled

            raise _explain(OfflineModeIsEnabled("offline"), spec)
        if on_revision is not None:
            on_revision(cached.revision)
        return cached
    plan = plan_download(spec, on_revision=on_revision)
    _check_space(plan.disk_needs(output_dir, output_bytes(plan.weight_bytes)))
    downloader = _Downloader(spec, plan.commit, cache, progress)
    downloader.total = plan.missing_bytes
    if plan.missing_bytes and progress is not None:
        progress(0, plan.missing_bytes)
    for remote in plan.weights:
        downloader.fetch(remote)
    return Fetched(spec.repo, plan.commit, plan.snapshot, downloader.done)
