"""Content-addressed uploads to a real SSH device: sent once, verified on the device, damaged
copies caught and never used."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.artifacts import TMP_PREFIX, sha256_file
from pipeline.devices.transport.ssh import SshConnection
from pipeline.devices.uploads import CACHE_DIR, UploadCorrupted, upload_files
from tests.sshd_fixtures import known_hosts, ssh_host, ssh_profile  # noqa: F401


class DamagingLink(SshConnection):
    """A real SSH connection whose transfers arrive with one extra byte (a faulty link or disk)."""

    def run(self, command: str, timeout: float | None = None, stdin: Path | None = None):
        if stdin is not None:
            damaged = stdin.with_name(f"{stdin.name}.damaged")
            damaged.write_bytes(stdin.read_bytes() + b"x")
            stdin = damaged
        return super().run(command, timeout, stdin)


@pytest.fixture
def payloads(tmp_path: Path) -> list[Path]:
    model, samples = tmp_path / "model.tflite", tmp_path / "samples.npz"
    model.write_bytes(b"TFL3" + bytes(range(256)) * 40)
    samples.write_bytes(b"PK" + b"\x01" * 5000)
    return [model, samples]


def test_first_upload_sends_then_cache_hits_send_nothing(ssh_host, known_hosts, tmp_path, payloads):
    workdir = tmp_path / "device"
    with SshConnection(ssh_profile(ssh_host, known_hosts, workdir)) as connection:
        first = upload_files(connection, payloads)
        second = upload_files(connection, payloads)
    assert [upload.bytes_sent for upload in first] == [path.stat().st_size for path in payloads]
    assert [upload.bytes_sent for upload in second] == [0, 0]
    for upload, path in zip(first, payloads, strict=True):
        assert upload.remote == f"{workdir}/{CACHE_DIR}/{sha256_file(path)}{path.suffix}"
        assert sha256_file(upload.remote) == sha256_file(path)
    assert sorted(p.name for p in (workdir / CACHE_DIR).iterdir()) == sorted(Path(u.remote).name for u in first)


def test_corrupted_upload_is_deleted_and_refused(ssh_host, known_hosts, tmp_path, payloads):
    workdir = tmp_path / "device"
    with DamagingLink(ssh_profile(ssh_host, known_hosts, workdir)) as connection:
        with pytest.raises(UploadCorrupted, match="arrived corrupted .* deleted and nothing was benchmarked"):
            upload_files(connection, payloads)
    assert list((workdir / CACHE_DIR).iterdir()) == []  # neither the temporary nor a cached copy remains


def test_damaged_cached_copy_is_sent_again(ssh_host, known_hosts, tmp_path, payloads):
    workdir = tmp_path / "device"
    with SshConnection(ssh_profile(ssh_host, known_hosts, workdir)) as connection:
        model_upload = upload_files(connection, payloads)[0]
        Path(model_upload.remote).write_bytes(Path(model_upload.remote).read_bytes()[:100])  # truncated on the device
        again = upload_files(connection, payloads)
    assert [upload.bytes_sent for upload in again] == [payloads[0].stat().st_size, 0]
    assert sha256_file(model_upload.remote) == model_upload.sha256


def test_workdir_with_spaces_and_quotes_is_quoted(ssh_host, known_hosts, tmp_path, payloads):
    workdir = tmp_path / "it's a dir; $(touch pwned)"
    with SshConnection(ssh_profile(ssh_host, known_hosts, workdir)) as connection:
        uploads = upload_files(connection, payloads)
    assert all(Path(upload.remote).is_file() for upload in uploads)
    assert not (Path.home() / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_awkward_workdir_names_hash_correctly(ssh_host, known_hosts, tmp_path, payloads):
    """sha256sum escapes a file name with a backslash or newline in its output: hashing through
    stdin keeps such a cache usable instead of reporting a false corrupted upload."""
    workdir = tmp_path / "back\\slash\nnew line"
    with SshConnection(ssh_profile(ssh_host, known_hosts, workdir)) as connection:
        first = upload_files(connection, payloads)
        again = upload_files(connection, payloads)
    assert [upload.bytes_sent for upload in again] == [0, 0]  # found intact in the cache
    assert all(sha256_file(upload.remote) == upload.sha256 for upload in first)


def test_an_interrupted_uploads_temporary_is_removed_by_the_next_upload_at_once(ssh_host, known_hosts, tmp_path,
                                                                                  payloads):
    """A temporary nobody holds locked is an upload that died, however recent (the fault suite kills a
    real upload, and shows that one in progress is left alone)."""
    workdir = tmp_path / "device"
    (workdir / CACHE_DIR).mkdir(parents=True)
    dead = workdir / CACHE_DIR / f"{TMP_PREFIX}dead-model.tflite"
    dead.write_bytes(b"half a model, written a moment ago")
    with SshConnection(ssh_profile(ssh_host, known_hosts, workdir)) as connection:
        upload_files(connection, payloads)
    assert not dead.exists()
    assert not [path for path in (workdir / CACHE_DIR).iterdir() if path.name.startswith(TMP_PREFIX)]
