"""`stylegan serve`: one-line errors with exit code 2, and a real server started from the command line."""
import json
import os
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from stylegan.cli.serve import command

from patience import patience
from serve_testing import OFFICIAL_SNAPSHOT, free_socket, http

pytest.importorskip("uvicorn", reason="stylegan serve needs uvicorn (pip install starlette uvicorn)")


def run(args):
    result = CliRunner().invoke(command, args)
    return result.exit_code, result.output


@pytest.mark.parametrize("args,message", [
    (["--network", "/nope/net.pkl"], "error: /nope/net.pkl: no such file"),
    (["--network", str(OFFICIAL_SNAPSHOT), "--port", "70000"], "error: --port must be in 0..65535, got 70000"),
    (["--network", str(OFFICIAL_SNAPSHOT), "--host", "no such host.invalid"], "error: cannot resolve --host"),
])
def test_bad_arguments_give_one_line_and_exit_2(args, message):
    code, output = run(args)
    assert code == 2 and output.startswith(message) and output.count("\n") == 1


def test_a_directions_file_of_another_network_is_refused_in_one_line(tmp_path):
    from stylegan.tools.directions import sefa

    from serve_testing import tiny_generator
    path = sefa(tiny_generator(resolution=16)).save(tmp_path / "other.npz")
    code, output = run(["--network", str(OFFICIAL_SNAPSHOT), "--directions", str(path), "--port", "0"])
    assert code == 2 and output.startswith("error: these sefa directions were computed for network ")
    assert output.count("\n") == 1
    code, output = run(["--network", str(OFFICIAL_SNAPSHOT), "--directions", str(tmp_path / "none.npz")])
    assert code == 2 and output.startswith(f"error: {tmp_path / 'none.npz'}: no such file")


def test_a_port_in_use_is_reported():
    sock = free_socket()
    try:
        port = sock.getsockname()[1]
        code, output = run(["--network", str(OFFICIAL_SNAPSHOT), "--port", str(port)])
    finally:
        sock.close()
    assert code == 2 and output.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "pick another --port" in output


def test_serve_prints_the_url_and_answers_there(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = "import sys; from stylegan.cli.serve import command; command(sys.argv[1:], prog_name='stylegan serve')"
    from stylegan.io.load import load_generator
    from stylegan.tools.directions import sefa
    directions = sefa(load_generator(OFFICIAL_SNAPSHOT), layers="coarse").save(tmp_path / "snapshot-sefa.npz")
    proc = subprocess.Popen([sys.executable, "-c", code, "--network", str(OFFICIAL_SNAPSHOT), "--port", "0",
                             "--directions", str(directions), "--precision", "fp32", "--channels-last", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith(f"serving {OFFICIAL_SNAPSHOT} at http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split(" at ")[1].split()[0].rstrip("/")
        deadline = time.monotonic() + patience(60)
        while True:  # the socket listens before uvicorn has started; requests queue until it has
            try:
                status, _, body = http(url + "/api/info")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert status == 200 and json.loads(body)["name"] == OFFICIAL_SNAPSHOT.name
        assert json.loads(body)["edit"]["file"] == {"name": "snapshot-sefa.npz", "method": "sefa"}
        # the flags decide the inference path; the page's info names it
        assert json.loads(body)["path"].startswith("path: fp32, channels-last, compile off (flags;")
        assert http(url + "/api/render", {"seed": 3})[0] == 200
    finally:
        proc.terminate()
        proc.wait(timeout=patience(30))


def test_the_printed_url_names_a_reachable_address():
    from stylegan.cli.serve import _url
    sock = free_socket()
    try:
        port = sock.getsockname()[1]
        assert _url("0.0.0.0", sock) == f"http://127.0.0.1:{port}/"
        assert _url("::", sock) == f"http://[::1]:{port}/"
        assert _url("example.local", sock) == f"http://example.local:{port}/"
    finally:
        sock.close()
