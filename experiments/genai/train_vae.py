"""Train ``vae-digits``: a one-shot generator of another family, the decoder of a VAE.

    python -m experiments.genai.train_vae [--iters 3000] [--out experiments/genai/models/vae-digits]

Fixed seed, one torch thread, ~2 min. A diffusers ``AutoencoderKL`` (8x8x1 <-> 2x2x4 latents, blocks
(16, 32, 32), one layer per block) trained as a proper variational autoencoder: the loss is the negative
ELBO with a Gaussian pixel likelihood of standard deviation ``--sigma`` (in [-1, 1] pixel units) and the
KL divergence to the N(0, I) prior, so decoding z ~ N(0, I) gives digits. Generation: one decoder pass
(``generation_config.json`` holds the sampling temperature). Writes ``training.json`` (time, ELBO terms,
classifier figures of 256 samples) and ``samples.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .data import digits, shift_augment
from .training import Timer, batches, cosine_lr, evaluate, save_grid, seed_everything, write_report

OUT = Path(__file__).resolve().parent / "models" / "vae-digits"
SEED = 0


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 3,
                         up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(16, 32, 32),
                         layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=8)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--sigma", type=float, default=0.3, help="pixel likelihood std in [-1, 1] units")
    ap.add_argument("--temperature", type=float, default=1.0, help="sampling temperature stored for generation")
    ap.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)

    rng = seed_everything(SEED)
    data = digits()
    x_all = torch.from_numpy(data.train_x)[:, None]
    vae = build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, weight_decay=1e-4)
    recs, kls = [], []
    with Timer() as timer:
        for step, idx in zip(range(args.iters), batches(rng, len(x_all), args.batch)):
            for g in opt.param_groups:
                g["lr"] = cosine_lr(step, args.iters, args.lr)
            x = shift_augment(x_all[idx], rng) if args.augment else x_all[idx]
            post = vae.encode(x).latent_dist
            rec = vae.decode(post.sample()).sample
            nll = ((rec - x) ** 2).sum(dim=(1, 2, 3)).mean() / (2 * args.sigma**2)
            kl = post.kl().mean()
            loss = nll + kl
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(vae.parameters(), 5.0)
            opt.step()
            recs.append(float(nll.detach()))
            kls.append(float(kl.detach()))
            if (step + 1) % 200 == 0:
                print(f"step {step + 1}/{args.iters} nll {np.mean(recs[-200:]):.2f} kl {np.mean(kls[-200:]):.2f}",
                      flush=True)
    vae.eval()
    with torch.no_grad():
        held = torch.from_numpy(data.test_x)[:, None]
        held_mse = float(((vae.decode(vae.encode(held).latent_dist.mode()).sample - held) ** 2).mean())
    args.out.mkdir(parents=True, exist_ok=True)
    vae.save_pretrained(args.out / "vae")
    (args.out / "generation_config.json").write_text(json.dumps({"temperature": args.temperature}, indent=2) + "\n")

    from .models import load_model

    gen = load_model("vae-digits", args.out)
    with Timer() as gt:
        images = gen.generate(256, seed=0)
    save_grid(images[:128], args.out / "samples.png", title="vae-digits, z ~ N(0, I), seeds 0-127")
    report = {
        "model": "vae-digits", "seed": SEED, "iters": args.iters, "batch": args.batch, "lr": args.lr,
        "sigma": args.sigma, "augment": args.augment, "temperature": args.temperature,
        "training_seconds": round(timer.seconds, 1), "torch_threads": torch.get_num_threads(),
        "final_nll_last200": round(float(np.mean(recs[-200:])), 3),
        "final_kl_last200": round(float(np.mean(kls[-200:])), 3),
        "held_out_reconstruction_mse": round(held_mse, 5),
        "parameters": gen.num_parameters, "sample_256_seconds": round(gt.seconds, 3),
        "evaluation": evaluate(images),
    }
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
