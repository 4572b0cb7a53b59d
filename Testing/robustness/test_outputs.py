"""Nothing lost, nothing half-written (issue 13, section 2).

Every output is written whole or not at all (files.write_atomic): a failed write leaves the file
that was there byte-identical and no temporary file behind. A full disk is made real with
RLIMIT_FSIZE in a child process (the kernel refuses writes past the limit with EFBIG; Python
ignores the SIGXFSZ signal), a failing write mid-file by a patched writer. An output that is a
symlink, one of the inputs or in a folder that cannot be written is refused before any work.
"""

from __future__ import annotations

import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import SINGLE_THREAD, assert_user_error

from RenderFMLib.files import write_atomic

OLD = b"the output of an earlier run\n"


def _full_disk_after(limit: int) -> None:
    """In the child: files cannot grow past `limit` bytes (ulimit -f)."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(
        resource.RLIMIT_FSIZE)[1]))


def _renderfm_on_a_full_disk(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m RenderFMLib.cli ARGS` where no file may grow past 256 bytes."""
    return subprocess.run([sys.executable, "-m", "RenderFMLib.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=SINGLE_THREAD,
                          preexec_fn=lambda: _full_disk_after(256))


def _assert_only(folder: Path, *names: str) -> None:
    """folder holds exactly these files: no temporary file left beside them."""
    assert sorted(path.name for path in folder.iterdir()) == sorted(names)


# --- files.write_atomic ---------------------------------------------------------------------

@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     KeyboardInterrupt(), ValueError("a bug in the writer")])
def test_a_failed_write_keeps_the_old_file(tmp_path: Path, failure: BaseException) -> None:
    out = tmp_path / "out.png"
    out.write_bytes(OLD)

    def write_half_then_fail(partial: Path) -> None:
        partial.write_bytes(b"half a new fi")
        raise failure

    with pytest.raises(type(failure)):
        write_atomic(out, write_half_then_fail)
    assert out.read_bytes() == OLD
    _assert_only(tmp_path, "out.png")


def test_a_write_error_names_the_output_not_the_temporary_file(tmp_path: Path) -> None:
    def full_disk(partial: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(partial))

    with pytest.raises(OSError) as raised:
        write_atomic(tmp_path / "model.safetensors", full_disk)
    assert raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(tmp_path / "model.safetensors")
    _assert_only(tmp_path)


def test_a_symlink_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "ct.nii.gz"
    victim.write_bytes(OLD)
    (tmp_path / "view.png").symlink_to(victim)
    write_atomic(tmp_path / "view.png", lambda partial: partial.write_bytes(b"new"))
    assert victim.read_bytes() == OLD
    assert not (tmp_path / "view.png").is_symlink()
    assert (tmp_path / "view.png").read_bytes() == b"new"


def test_the_new_file_keeps_the_old_permissions(tmp_path: Path) -> None:
    out = tmp_path / "model.safetensors"
    out.write_bytes(OLD)
    out.chmod(0o640)  # e.g. patient data kept from other users
    write_atomic(out, lambda partial: partial.write_bytes(b"new"))
    assert out.stat().st_mode & 0o777 == 0o640


# --- the commands on a full disk ------------------------------------------------------------

@pytest.mark.parametrize("command, output", [
    ("prepare", "out.safetensors"), ("render", "out.png"), ("export-ply", "out.ply")])
def test_full_disk_keeps_the_old_output(phantom, tmp_path: Path, command: str,
                                        output: str) -> None:
    """Was: a truncated PNG or PLY in place of the old one; a SafetensorError traceback."""
    (tmp_path / output).write_bytes(OLD)
    source = phantom.ct if command == "prepare" else phantom.model
    result = _renderfm_on_a_full_disk(command, source, "-o", output, cwd=tmp_path)
    message = assert_user_error(result)
    assert result.returncode == 2
    assert message.startswith(f"renderfm: error: {output}: ") and "too large" in message
    assert (tmp_path / output).read_bytes() == OLD
    _assert_only(tmp_path, output)


def test_compare_keeps_old_metrics_when_a_write_fails(phantom, cli, tmp_path: Path,
                                                      monkeypatch) -> None:
    """Was: metrics.md half written over the old one."""
    out = tmp_path / "cmp"
    out.mkdir()
    (out / "metrics.md").write_bytes(OLD)
    real_write_text = Path.write_text

    def half_then_full_disk(self: Path, data: str, *args, **kwargs) -> int:
        real_write_text(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", half_then_full_disk)
    result = cli("compare", phantom.ct, "--renderers", "renderfm-agp,dvr", "--target", "dvr",
                 "--views", 1, "--size", 16, "--preset", "CT-Bone", "-o", out)
    message = assert_user_error(result)
    assert result.returncode == 2
    assert message == f"renderfm: error: {out / 'metrics.md'}: No space left on device"
    assert (out / "metrics.md").read_bytes() == OLD
    _assert_only(out, "metrics.md", "montage.png")


# --- outputs refused before any work --------------------------------------------------------

@pytest.mark.parametrize("command, link", [
    ("render", "view.png"), ("export-ply", "splats.ply"), ("prepare", "model.safetensors")])
def test_an_output_symlink_onto_the_ct_is_refused(phantom, cli, tmp_path: Path, command: str,
                                                  link: str) -> None:
    """Was: `-o view.png` pointing at the CT overwrote the CT."""
    ct = tmp_path / "ct.nii.gz"
    ct.write_bytes(phantom.ct.read_bytes())
    (tmp_path / link).symlink_to(ct)
    result = cli(command, ct, "--preset", "CT-Bone", "-o", tmp_path / link)
    message = assert_user_error(result)
    assert result.returncode == 2 and "preparing" not in result.stderr
    assert str(tmp_path / link) in message and "symbolic link" in message
    assert ct.read_bytes() == phantom.ct.read_bytes() and (tmp_path / link).is_symlink()


def test_an_output_that_is_the_input_is_refused(phantom, cli, tmp_path: Path) -> None:
    """A hard link is the same file under another name: writing it would replace the input."""
    same = tmp_path / "same.safetensors"
    os.link(phantom.model, same)
    result = cli("prepare", phantom.model, "-o", same)
    message = assert_user_error(result)
    assert result.returncode == 2
    assert str(same) in message and str(phantom.model) in message


@pytest.fixture
def read_only(tmp_path: Path, monkeypatch) -> Path:
    """A folder nobody may write in; as root, where chmod does not stop writes, os.access says
    so for it, as it does for other users."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        real_access = os.access

        def access(path, mode: int, **kwargs) -> bool:
            if Path(path) == folder and mode & os.W_OK:
                return False
            return real_access(path, mode, **kwargs)

        monkeypatch.setattr(os, "access", access)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("command, output", [
    ("prepare", "model.safetensors"), ("render", "view.png"), ("export-ply", "splats.ply"),
    ("compare", "comparison")])
def test_an_unwritable_output_folder_is_refused_before_work(phantom, cli, read_only: Path,
                                                            command: str, output: str) -> None:
    """Was: found only when writing, after the preparation (and compare's rendering)."""
    result = cli(command, phantom.ct, "--preset", "CT-Bone", "-o", read_only / output)
    message = assert_user_error(result)
    assert result.returncode == 2
    assert message == f"renderfm: error: output folder {read_only} is not writable"
    assert "preparing" not in result.stderr and "comparing" not in result.stderr
    _assert_only(read_only)
