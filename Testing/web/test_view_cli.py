"""`renderfm view`'s refusals, each one line and exit status 2 before any server starts, and its
ready line; runs in-process (no browser, no server)."""

import socket
import subprocess
import sys

import pytest
from view_server import SAMPLE, free_port

from RenderFMLib.cli.commands import main

CT = str(SAMPLE / "ct.nii.gz")


def refused(capsys, *argv: str) -> str:
    """The one "renderfm: error:" line of a refusal with status 2."""
    assert main(["view", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("renderfm: error: "), lines
    return lines[0]


def test_without_the_web_extra_it_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "trame_slicer", None)  # import trame_slicer: ImportError
    assert "pip install 'renderfm[web]'" in refused(capsys, CT)


def test_a_port_in_use_is_named(capsys):
    pytest.importorskip("trame_slicer", reason="the web extra is not installed")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        message = refused(capsys, CT, "--port", str(port))
    assert f"port {port} on 127.0.0.1 is in use" in message and "--port" in message


def test_an_unreadable_ct_is_named(capsys, tmp_path):
    pytest.importorskip("trame_slicer", reason="the web extra is not installed")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a CT")
    assert str(notes) in refused(capsys, str(notes), "--port", str(free_port()))


@pytest.mark.parametrize("argv, expected", [
    (("model.safetensors",), "not a prepared model: give the model with --model"),
    ((CT, "--preset", "CT-Bonez"), "CT-Bone"),  # the suggestion for a misspelt preset
    ((CT, "--model", "ct.nii.gz"), "--model: a prepared model"),
])
def test_wrong_inputs_are_refused(capsys, argv, expected):
    pytest.importorskip("trame_slicer", reason="the web extra is not installed")
    assert expected in refused(capsys, *argv, "--port", str(free_port()))


def test_a_port_out_of_range_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["view", CT, "--port", "70000"])
    assert stop.value.code == 2 and "a port is 1..65535" in capsys.readouterr().err


def test_the_ready_line_says_who_can_connect():
    from RenderFMLib.web.server import READY, ready_line

    local = ready_line("127.0.0.1", 8080)
    assert local.startswith(f"{READY} http://127.0.0.1:8080/") and "this machine only" in local
    assert "anyone who can reach" in ready_line("0.0.0.0", 8080)
    assert ready_line("::1", 80).startswith(f"{READY} http://[::1]:80/")


def test_renderfm_does_not_import_the_web_app():
    """Without the web extra every other command still works: the parser imports no trame."""
    code = ("import sys; from RenderFMLib.cli.commands import build_parser; build_parser(); "
            "print(sorted(m for m in sys.modules if m.startswith(('trame', 'RenderFMLib.web'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
