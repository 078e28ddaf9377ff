"""``mmbridge train``: train the local model (needs mmbridge-torch) with a live progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..bounds import Count, Number, Seconds, Seed, Side
from .bounded import option

#: layers of a stack that may be empty, and of one that may not
Layers = Count(0, 48)
Depth = Count(1, 48)


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        data: Annotated[str, typer.Option(help="Training data: a .jsonl file or builtin:shapes?split=train&...")],
        out: Annotated[Path, typer.Option(help="Folder for the best/ and last/ checkpoints.")],
        val: Annotated[
            str | None, typer.Option(help="Validation data, checked every --validate-every seconds.")
        ] = None,
        epochs: Annotated[int, option(Count(1, 100_000))] = 30,
        max_minutes: Annotated[
            float | None, option(Number(0, 10_080, above=True), help="Stop after this long (the LR schedule fits it).")
        ] = None,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
        seed: Annotated[int, option(Seed)] = 0,
        resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/last after a kill.")] = False,
        batch_images: Annotated[
            int | None,
            option(Count(1, 4096), help="Images per step, with all their questions [default: 8 for objects, else 32]."),
        ] = None,
        lr: Annotated[float, option(Number(0, 10, above=True))] = 1e-3,
        validate_every: Annotated[float, option(Seconds, help="Seconds between validations.")] = 120.0,
        config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file (for the cache dir).")] = None,
        scene: Annotated[
            bool, typer.Option("--scene/--no-scene", help="Learn from meta.scene when every sample has one.")
        ] = True,
        max_answers: Annotated[int, option(Count(1, 100_000), help="Most frequent answers kept as classes.")] = 3129,
        image_size: Annotated[
            int | None, option(Side, help="Model input side [default: 64; flat-colour scenes keep their own].")
        ] = None,
        d_model: Annotated[int | None, option(Count(8, 4096), help="Token width [default: 128].")] = None,
        n_heads: Annotated[int | None, option(Count(1, 64), help="Attention heads [default: 4].")] = None,
        cnn_width: Annotated[int | None, option(Count(4, 1024), help="CNN channels [default: 64].")] = None,
        image_layers: Annotated[int | None, option(Layers, help="Image self-attention layers [2].")] = None,
        fusion_layers: Annotated[int | None, option(Depth, help="Text-image fusion layers [3].")] = None,
        caption_layers: Annotated[int | None, option(Depth, help="Caption decoder layers [2].")] = None,
        backbone: Annotated[
            str | None,
            typer.Option(
                help="cnn; resnet18, resnet50, mobilenet_v3_small or efficientnet_b0 for photos; or hf:ID-OR-FOLDER, "
                "a transformers vision tower (CLIP, SigLIP, DINOv2)."
            ),
        ] = None,
        backbone_weights: Annotated[
            str | None, typer.Option(help="DEFAULT (torchvision's, downloaded) or a state-dict file.")
        ] = None,
        finetune_backbone: Annotated[
            bool, typer.Option("--finetune-backbone", help="Train the backbone too (default: frozen).")
        ] = False,
        image_tokens: Annotated[
            str,
            typer.Option(
                help="auto, grid, or object tokens: flat (flat-colour objects; also 'objects'), shaded"
                " (renders: shading, shadows) or detector (photos; needs --detector-weights)."
                " auto picks by a measured rule and prints it."
            ),
        ] = "auto",
        max_objects: Annotated[
            int | None,
            option(Count(1, 256), help="Object tokens: the most objects a picture may hold [default: 16]."),
        ] = None,
        text_encoder: Annotated[
            str | None,
            typer.Option(help="Object tokens: the reader's question encoder, lstm or transformer [default: lstm]."),
        ] = None,
        detector: Annotated[
            str | None,
            typer.Option(
                help="The detector finder's torchvision model [default: fasterrcnn_mobilenet_v3_large_fpn;"
                " or fasterrcnn_resnet50_fpn, fasterrcnn_resnet50_fpn_v2, maskrcnn_resnet50_fpn]."
            ),
        ] = None,
        detector_weights: Annotated[
            str | None,
            typer.Option(
                help="DEFAULT (torchvision's, downloaded) or a state-dict file of the detector; with it,"
                " auto uses the detector for pictures that do not segment."
            ),
        ] = None,
    ) -> None:
        """Train the local fused model on any dataset in the project's format."""
        from ..config import load_config
        from ..errors import ProviderNotInstalledError
        from ..registry import install_command

        try:
            from mmbridge_torch.cli import run_training
        except ImportError:
            raise ProviderNotInstalledError(
                "mmbridge train needs mmbridge-torch", install=install_command("mmbridge-torch")
            ) from None
        sizes = {
            "image_size": image_size,
            "d_model": d_model,
            "n_heads": n_heads,
            "cnn_width": cnn_width,
            "image_layers": image_layers,
            "fusion_layers": fusion_layers,
            "caption_layers": caption_layers,
            "backbone": backbone,
            "finetune_backbone": finetune_backbone or None,
            # flat and shaded are object tokens seen by that finder; objects is the flat one
            "image_tokens": {"auto": None, "flat": "objects", "shaded": "objects", "detector": "objects"}.get(
                image_tokens, image_tokens
            ),
            "finder": image_tokens if image_tokens in ("flat", "shaded", "detector") else None,
            "detector": detector,
            "text_encoder": text_encoder,
            "max_objects": max_objects,
        }
        run_training(
            data=data,
            out=out,
            val=val,
            epochs=epochs,
            max_minutes=max_minutes,
            device=device,
            seed=seed,
            resume=resume,
            batch_images=batch_images,
            lr=lr,
            validate_every_s=validate_every,
            cache_dir=load_config(config).cache.dir,
            scene=scene,
            max_answers=max_answers,
            backbone_weights=backbone_weights,
            detector_weights=detector_weights,
            model={k: v for k, v in sizes.items() if v is not None},
        )
