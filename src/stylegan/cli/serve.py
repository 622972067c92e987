"""`stylegan serve`: the browser-based explorer (serve/app.py) for one network file."""
from __future__ import annotations

import socket

import click

from .common import CliError, network_option, path_options, say_path, user_errors

# An explorer session renders one image per request, hundreds of them: the inference path is chosen (and probed,
# runtime/choice.py, at most 1/50 of the session) as for a job of this many single-image renders.
SESSION_RENDERS = 1000


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0 picks a free one); a clear error when that is impossible."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CliError(f"cannot resolve --host {host!r} ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None
    return sock


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)  # "any address": this machine
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


@click.command("serve")
@network_option()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 makes the explorer reachable from other machines.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0 picks a free one).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--directions", "directions_path", default=None,
              help="Editing directions (.npz from stylegan directions) made for this network, offered beside the "
                   "ones the explorer computes (sefa, ganspace).")
@path_options
def command(network_path, host, port, device, directions_path, precision, channels_last):
    """Explore a network in the browser: seeds, truncation, interpolation, style mixing, noise, semantic edits
    (SeFa, GANSpace, --directions), and translate/rotate for StyleGAN3 networks."""
    if not 0 <= port <= 65535:
        raise CliError(f"--port must be in 0..65535, got {port}")
    try:
        import uvicorn

        from ..serve.app import create_app
    except ImportError as exc:
        raise CliError(f"stylegan serve needs starlette and uvicorn ({exc}); install them with "
                       f"pip install \"stylegan[serve]\" (\"stylegan[all]\": every optional feature)") from None
    from ..io.load import load_generator
    from ..runtime.choice import prepare_inference

    with user_errors():
        G = load_generator(network_path, device=device)
        said = []  # the path's line is printed once everything else has worked (an error stays one line)
        path = prepare_inference(G, 1, SESSION_RENDERS, precision, channels_last, say=said.append)
        app = create_app(G, name=click.format_filename(network_path, shorten=True), directions=directions_path,
                         path=path)
    sock = _bind(host, port)
    for line in said:
        say_path(line)
    click.echo(f"serving {network_path} at {_url(host, sock)} (Ctrl+C to stop)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"note: listening on {host}: anyone who can reach this machine can use the explorer", err=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
