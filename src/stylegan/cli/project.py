"""`stylegan project`: find the latents of target images (StyleGAN2 appendix D projector)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..io.atomic import atomic_path
from ..io.load import load_generator
from ..io.images import save_image
from ..tools.projector import (
    PROJECTION_DISTANCES,
    ProjectionConfig,
    load_distance,
    load_target,
    project,
    projection_frames,
)
from ..tools.video import check_video_output, write_video
from ..tools.ws_io import save_ws
from ..runtime.choice import prepare_inference
from .common import CliError, channels_last_option, network_option, say_path, user_errors


def output_names(targets) -> list:
    """A distinct name per target from its file stem (foo, foo_2, ... for repeated stems)."""
    names, seen = [], {}
    for target in targets:
        stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(target).stem) or "target"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


@click.command("project")
@network_option()
@click.option("--target", "targets", required=True, multiple=True, help="Target image; repeat for several.")
@click.option("--w-plus", is_flag=True, help="Optimise one w per layer (W+) instead of one w for all (W).")
@click.option("--steps", "num_steps", type=int, default=1000, show_default=True, help="Optimisation steps.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial noise maps and w noise.")
@click.option("--distance", default="auto", show_default=True,
              help=f"auto, {', '.join(PROJECTION_DISTANCES)} (NAME:WEIGHTS for a weights file).")
@click.option("--lr", "learning_rate", type=float, default=0.1, show_default=True, help="Peak learning rate.")
@click.option("--noise-opt/--no-noise-opt", "optimize_noise", default=True, show_default=True,
              help="Optimise the per-pixel noise maps (else keep the network's constant noise).")
@click.option("--noise-reg", "noise_weight", type=float, default=1e5, show_default=True,
              help="Weight of the noise autocorrelation penalty.")
@click.option("--class", "class_idx", type=int, default=None, help="Class label (conditional networks).")
@click.option("--save-video", is_flag=True, help="Also write proj_NAME.mp4 of the optimisation (target | result).")
@click.option("--fps", type=float, default=60, show_default=True, help="Frames per second of --save-video.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@channels_last_option
@click.option("--outdir", required=True, help="Where to write proj_/target_/projected_w_ files.")
def command(network_path, targets, w_plus, num_steps, seed, distance, learning_rate, optimize_noise, noise_weight,
            class_idx, save_video, fps, device, channels_last, outdir):
    """Project target images into W (or W+): writes the result, the resized target, the ws (.npz for
    `generate --ws`) and a JSON report per target."""
    with user_errors():
        if num_steps < 1:
            raise CliError("--steps must be at least 1")
        config = ProjectionConfig(num_steps=num_steps, w_plus=w_plus, initial_learning_rate=learning_rate,
                                  optimize_noise=optimize_noise, regularize_noise_weight=noise_weight, seed=seed)
        outdir = Path(outdir)
        if outdir.exists() and not outdir.is_dir():
            raise CliError(f"{outdir} exists and is not a folder")
        names = output_names(targets)
        if save_video:
            check_video_output(outdir / f"proj_{names[0]}.mp4")
        G = load_generator(network_path, device=device)
        loaded = []
        for path in targets:  # read every target before the long optimisation starts
            image, notes = load_target(path, G.img_resolution, G.img_channels)
            for note in notes:
                click.echo(f"warning: {note}", err=True)
            loaded.append(image)
        dist = load_distance(distance)
        # float32 always (the optimisation runs through G); the layout is chosen: one G call per step, batch 1
        prepare_inference(G, 1, num_steps * len(targets), "fp32", channels_last, allow_bf16=False, say=say_path,
                          gradients=True)
        for name, path, target in zip(names, targets, loaded):
            ws_history, info = project(G, target, config=config, distance=dist, class_idx=class_idx,
                                       return_history=True, progress=True)
            final = ws_history[-1:]
            save_image(target.transpose(1, 2, 0), outdir / f"target_{name}.png")
            save_image(info.image, outdir / f"proj_{name}.png")
            save_ws(outdir / f"projected_w_{name}.npz", final,
                    **{f"noise.{k}": v.cpu().numpy() for k, v in info.noise.items()})
            with atomic_path(outdir / f"proj_{name}.json") as tmp:
                tmp.write_text(json.dumps({"target": str(path), **info.summary()}, indent=2)
                               + "\n")
            if save_video:
                write_video(projection_frames(G, ws_history, target, info.noise), outdir / f"proj_{name}.mp4",
                            fps=fps, total=len(ws_history), progress=True)
            click.echo(f"{name}: {info.distance} distance {info.final_distance:.4g}, PSNR {info.psnr:.2f} dB "
                       f"after {info.steps} steps -> {outdir}/proj_{name}.png")
