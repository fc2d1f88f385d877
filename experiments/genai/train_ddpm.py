"""Train ``ddpm-digits``: a pixel-space diffusers ``UNet2DModel`` as a DDPM on the 8x8 digits.

    python -m experiments.genai.train_ddpm [--iters 1500] [--out experiments/genai/models/ddpm-digits]

Fixed seed, one torch thread, ~4-5 min on one core. UNet2DModel 8x8x1, block channels (32, 64), one
layer per block, attention in the 4x4 block (~0.70 M parameters); epsilon prediction, 1000-step cosine
("squaredcos_cap_v2") betas; AdamW, warm-up + cosine LR, batch 64; the EMA of the weights is saved. The
folder is a ``DDPMPipeline`` (``model_index.json``, ``unet/``, ``scheduler/``); generation uses DDIM.
Writes ``training.json`` (time, loss, classifier figures of 256 samples) and ``samples.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import digits
from .training import EMA, Timer, batches, cosine_lr, evaluate, save_grid, seed_everything, write_report

OUT = Path(__file__).resolve().parent / "models" / "ddpm-digits"
SEED = 0


def build():
    from diffusers import DDPMScheduler, UNet2DModel

    unet = UNet2DModel(sample_size=8, in_channels=1, out_channels=1, layers_per_block=1,
                       block_out_channels=(32, 64), down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                       up_block_types=("AttnUpBlock2D", "UpBlock2D"), norm_num_groups=8, attention_head_dim=8)
    sched = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                          clip_sample=True, clip_sample_range=1.0,
                          # SD's sampling convention; "trailing" would start DDIM at t = 999, where the
                          # cosine schedule's alpha_bar is ~2e-9 and x0 = (x - sqrt(1-a) eps) / sqrt(a) explodes
                          timestep_spacing="leading", steps_offset=1)
    return unet, sched


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    from diffusers import DDPMPipeline

    rng = seed_everything(SEED)
    x_all = torch.from_numpy(digits().train_x)[:, None]
    unet, sched = build()
    ema = EMA(unet, decay=0.995)
    opt = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=1e-4)
    losses = []
    with Timer() as timer:
        for step, idx in zip(range(args.iters), batches(rng, len(x_all), args.batch)):
            for g in opt.param_groups:
                g["lr"] = cosine_lr(step, args.iters, args.lr)
            x0 = x_all[idx]
            noise = torch.randn_like(x0)
            t = torch.randint(0, sched.config.num_train_timesteps, (len(x0),))
            xt = sched.add_noise(x0, noise, t)
            loss = F.mse_loss(unet(xt, t).sample, noise)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
            opt.step()
            ema.update(unet, step)
            losses.append(float(loss.detach()))
            if (step + 1) % 100 == 0:
                print(f"step {step + 1}/{args.iters} loss {np.mean(losses[-100:]):.4f} {timer_elapsed(timer):.0f}s",
                      flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    DDPMPipeline(unet=ema.shadow, scheduler=sched).save_pretrained(args.out)
    (args.out / "generation_config.json").write_text(json.dumps({"steps": 50}, indent=2) + "\n")

    from .models import load_model

    gen = load_model("ddpm-digits", args.out)
    with Timer() as gt:
        images = gen.generate(256, seed=0, steps=50)
    save_grid(images[:128], args.out / "samples.png", title="ddpm-digits, 50 DDIM steps, seeds 0-127")
    report = {
        "model": "ddpm-digits", "seed": SEED, "iters": args.iters, "batch": args.batch, "lr": args.lr,
        "training_seconds": round(timer.seconds, 1), "torch_threads": torch.get_num_threads(),
        "final_loss_last100": round(float(np.mean(losses[-100:])), 4),
        "parameters": gen.num_parameters, "sample_256_50steps_seconds": round(gt.seconds, 2),
        "evaluation_50_ddim_steps": evaluate(images),
    }
    write_report(args.out, report)
    return report


def timer_elapsed(timer) -> float:
    import time

    return time.time() - timer.t0


if __name__ == "__main__":
    main()
