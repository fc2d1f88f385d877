"""Train ``latent-digits``: class-conditional latent diffusion with Stable Diffusion's structure.

    python -m experiments.genai.train_latent [--vae-iters 800] [--iters 1500] [--out ...]

Fixed seed, one torch thread. Two stages, like Stable Diffusion:

1. ``AutoencoderKL`` 8x8x1 <-> 4x4x4 latents (blocks (16, 32)), trained as a VAE (negative ELBO with a
   Gaussian pixel likelihood of std 0.15 in [-1, 1] units: sharp reconstructions, and a latent space
   regular enough for the diffusion model); ``scaling_factor`` = 1 / std of the training latents (SD's
   convention), stored in its config.
2. ``UNet2DConditionModel`` on the 4x4x4 latents (blocks (32, 64), cross-attention in the 4x4 blocks and the mid block) conditioned on the hidden states of a tiny ``CLIPTextModel`` (2 layers, width 64, 16
   positions) reading prompts tokenized by a ``CLIPTokenizer`` built from :mod:`.prompts`' vocabulary; text
   encoder and UNet are trained together (nothing pretrained exists at this size). Each training image gets
   a random prompt template of its label ("a handwritten seven", "digit 7", ...); 15 % get the empty
   prompt instead (label dropout), which is what classifier-free guidance needs. Epsilon prediction,
   1000-step cosine betas; the EMA of the weights is saved.

The folder is a ``StableDiffusionPipeline`` (no safety checker): ``model_index.json``, ``vae/``,
``text_encoder/``, ``tokenizer/`` (vocab.json, merges.txt), ``unet/``, ``scheduler/``. Writes
``training.json`` (times, losses, conditional accuracy of 200 samples judged by the classifier) and
``samples.png``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .data import digits, shift_augment
from .prompts import MAX_LENGTH, build_tokenizer, training_prompts
from .training import EMA, Timer, batches, cosine_lr, evaluate, save_grid, seed_everything, write_report

OUT = Path(__file__).resolve().parent / "models" / "latent-digits"
SEED = 0
LABEL_DROPOUT = 0.15
GUIDANCE = 4.0
MIN_SNR_GAMMA = 5.0


def build_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=1, out_channels=1, down_block_types=("DownEncoderBlock2D",) * 2,
                         up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(16, 32),
                         layers_per_block=1, latent_channels=4, norm_num_groups=8, sample_size=8)


def build_text_encoder(vocab_size: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=MAX_LENGTH, projection_dim=64,
                         bos_token_id=0, eos_token_id=1, pad_token_id=1)
    return CLIPTextModel(cfg)


def build_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(sample_size=4, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                mid_block_type="UNetMidBlock2DCrossAttn", cross_attention_dim=64,
                                attention_head_dim=8, norm_num_groups=8)


def build_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="epsilon",
                         clip_sample=False,
                         # SD's sampling convention. Not "trailing": DDIM would start at t = 999, where the
                         # cosine alpha_bar is ~2e-9, and without x0 clipping (SD pipelines have none) the
                         # latents blow up to ~1e3
                         timestep_spacing="leading", steps_offset=1)


def train_vae(x_all, rng, iters: int, batch: int = 64, lr: float = 2e-3, sigma: float = 0.15):
    vae = build_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=1e-4)
    losses = []
    for step, idx in zip(range(iters), batches(rng, len(x_all), batch)):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, iters, lr, warmup=50)
        x = shift_augment(x_all[idx], rng)
        post = vae.encode(x).latent_dist
        rec = vae.decode(post.sample()).sample
        mse = F.mse_loss(rec, x)
        loss = mse * x[0].numel() / (2 * sigma**2) + post.kl().mean()  # negative ELBO, N(rec, sigma^2) pixels
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(mse.detach()))
        if (step + 1) % 100 == 0:
            print(f"vae step {step + 1}/{iters} mse {np.mean(losses[-100:]):.4f}", flush=True)
    return vae.eval(), losses


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vae-iters", type=int, default=800)
    ap.add_argument("--iters", type=int, default=1800)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    from diffusers import StableDiffusionPipeline

    rng = seed_everything(SEED)
    data = digits()
    x_all = torch.from_numpy(data.train_x)[:, None]
    y_all = torch.from_numpy(data.train_y)

    # ---- stage 1: the autoencoder
    with Timer() as vae_timer:
        vae, vae_losses = train_vae(x_all, rng, args.vae_iters)
        with torch.no_grad():
            post = vae.encode(x_all).latent_dist
            lat_mean = post.mean
            scaling = float(1.0 / lat_mean.std())
            held = torch.from_numpy(data.test_x)[:, None]
            held_mse = float(F.mse_loss(vae.decode(vae.encode(held).latent_dist.mode()).sample, held))
    vae.register_to_config(scaling_factor=scaling)
    print(f"vae: {vae_timer.seconds:.0f}s, held-out mse {held_mse:.4f}, scaling_factor {scaling:.4f}", flush=True)

    # ---- stage 2: prompt encoder + conditional UNet on the latents
    args.out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(args.out / "tokenizer")
    pairs = training_prompts()
    by_label = [[i for i, (_, lab) in enumerate(pairs) if lab == d] for d in range(10)]
    enc = lambda ps: tokenizer(ps, padding="max_length", max_length=tokenizer.model_max_length,  # noqa: E731
                               truncation=True, return_tensors="pt").input_ids
    prompt_ids = enc([p for p, _ in pairs])
    empty_ids = enc([""])[0]
    text_encoder = build_text_encoder(len(tokenizer))
    unet = build_unet()
    sched = build_scheduler()
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    ema_unet, ema_text = EMA(unet, 0.995), EMA(text_encoder, 0.995)
    alphas = sched.alphas_cumprod
    snr = alphas / (1 - alphas)
    losses = []
    with Timer() as timer:
        for step, idx in zip(range(args.iters), batches(rng, len(x_all), args.batch)):
            for g in opt.param_groups:
                g["lr"] = cosine_lr(step, args.iters, args.lr)
            z0 = lat_mean[idx] * scaling
            choice = [by_label[int(lab)][rng.integers(len(by_label[int(lab)]))] for lab in y_all[idx]]
            ids = prompt_ids[choice].clone()
            drop = torch.from_numpy(rng.random(len(idx)) < LABEL_DROPOUT)
            ids[drop] = empty_ids
            cond = text_encoder(ids)[0]
            noise = torch.randn_like(z0)
            t = torch.randint(0, sched.config.num_train_timesteps, (len(z0),))
            pred = unet(sched.add_noise(z0, noise, t), t, encoder_hidden_states=cond).sample
            # min-SNR-gamma weighting (Hang et al., ICCV 2023) for epsilon prediction: min(SNR, g) / SNR
            weight = (snr[t].clamp(max=MIN_SNR_GAMMA) / snr[t]).view(-1, 1, 1, 1)
            loss = (weight * (pred - noise) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            ema_unet.update(unet, step)
            ema_text.update(text_encoder, step)
            losses.append(float(loss.detach()))
            if (step + 1) % 100 == 0:
                print(f"unet step {step + 1}/{args.iters} loss {np.mean(losses[-100:]):.4f}", flush=True)

    pipe = StableDiffusionPipeline(vae=vae, text_encoder=ema_text.shadow, tokenizer=tokenizer, unet=ema_unet.shadow,
                                   scheduler=sched, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(args.out)
    (args.out / "generation_config.json").write_text(json.dumps({"steps": 50, "guidance": GUIDANCE}, indent=2) + "\n")

    from .models import load_model

    gen = load_model("latent-digits", args.out)
    requested = np.repeat(np.arange(10), 20)
    with Timer() as gt:
        images = gen.generate(len(requested), seed=0, steps=50, label=requested)
    order = np.concatenate([np.arange(d * 20, d * 20 + 12) for d in range(10)])
    save_grid(images[order], args.out / "samples.png", cols=12,
              title=f"latent-digits, guidance {GUIDANCE:g}: rows 0..9")
    unguided = gen.generate(len(requested), seed=0, steps=50, label=requested, guidance=1.0)
    report = {
        "model": "latent-digits", "seed": SEED, "torch_threads": torch.get_num_threads(),
        "vae": {"iters": args.vae_iters, "training_seconds": round(vae_timer.seconds, 1),
                "final_mse_last100": round(float(np.mean(vae_losses[-100:])), 5),
                "held_out_reconstruction_mse": round(held_mse, 5), "scaling_factor": round(scaling, 5),
                "parameters": sum(p.numel() for p in vae.parameters())},
        "unet_and_text_encoder": {"iters": args.iters, "batch": args.batch, "lr": args.lr,
                                  "label_dropout": LABEL_DROPOUT, "training_seconds": round(timer.seconds, 1),
                                  "final_loss_last100": round(float(np.mean(losses[-100:])), 4),
                                  "unet_parameters": sum(p.numel() for p in unet.parameters()),
                                  "text_encoder_parameters": sum(p.numel() for p in text_encoder.parameters())},
        "training_seconds": round(vae_timer.seconds + timer.seconds, 1),
        "parameters": gen.num_parameters,
        "sample_200_50steps_seconds": round(gt.seconds, 2),
        f"evaluation_50_steps_guidance_{GUIDANCE}": evaluate(images, requested),
        "evaluation_50_steps_no_guidance": evaluate(unguided, requested),
    }
    write_report(args.out, report)
    return report


if __name__ == "__main__":
    main()
