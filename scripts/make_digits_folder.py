"""Write a digits dataset rendered from the installed TrueType fonts as a PNG image folder.

Digits are a dataset with a handedness (a mirrored 2 is no 2), small enough to try the pipeline's
augmentation presets on in minutes (docs/augmentation.md). Each image is one digit, white on black,
28x28 grayscale, in a font, size, stroke width, position, slant, shear and blur drawn at random, with noise:
    .venv/bin/python scripts/make_digits_folder.py --out build/digits
writes build/digits/train/<0-9>/*.png and build/digits/test/<0-9>/*.png (data.format = "folder").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts")
SIZE = 28
SCALE = 4  # drawn at 4x and downsampled, for smooth edges


def installed_fonts() -> list[Path]:
    """Every TrueType font file that renders the ten digits, sorted (so a seed repeats the dataset)."""
    fonts = []
    for folder in FONT_DIRS:
        for path in sorted(Path(folder).rglob("*.ttf")):
            try:
                ImageFont.truetype(str(path), 20).getbbox("0123456789")
            except OSError:
                continue
            fonts.append(path)
    return fonts


def render_digit(digit: int, font_path: Path, rng: np.random.Generator) -> np.ndarray:
    """One digit as uint8 [SIZE, SIZE]: random size, stroke, offset, slant, shear, blur and noise, so that
    fonts vary about as much as handwriting does."""
    canvas = SIZE * SCALE
    font = ImageFont.truetype(str(font_path), int(rng.uniform(0.45, 0.85) * canvas))
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    stroke = int(rng.integers(0, 3)) * SCALE // 2
    left, top, right, bottom = draw.textbbox((0, 0), str(digit), font=font, stroke_width=stroke)
    shift = rng.uniform(-0.12, 0.12, 2) * canvas
    x = (canvas - (right - left)) / 2 - left + shift[0]
    y = (canvas - (bottom - top)) / 2 - top + shift[1]
    draw.text((x, y), str(digit), fill=int(rng.integers(120, 256)), font=font, stroke_width=stroke,
              stroke_fill=255)
    shear = rng.uniform(-0.3, 0.3)
    image = image.transform(image.size, Image.Transform.AFFINE, (1, shear, -shear * canvas / 2, 0, 1, 0),
                            resample=Image.Resampling.BILINEAR)
    image = image.rotate(rng.uniform(-20, 20), resample=Image.Resampling.BILINEAR)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0, 1.5) * SCALE))
    pixels = np.asarray(image.resize((SIZE, SIZE), Image.Resampling.LANCZOS), dtype=np.float32)
    pixels += rng.normal(0, rng.uniform(0, 20), pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_split(out: Path, split: str, per_class: int, fonts: list[Path], rng: np.random.Generator) -> None:
    for digit in range(10):
        folder = out / split / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            font = fonts[int(rng.integers(len(fonts)))]
            Image.fromarray(render_digit(digit, font, rng)).save(folder / f"{index:04d}.png")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write train/ and test/ into")
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    if (args.out / "train").exists() or (args.out / "test").exists():
        print(f"error: {args.out} already holds train/ or test/; choose an empty --out", file=sys.stderr)
        return 1
    fonts = installed_fonts()
    if not fonts:
        print(f"error: no TrueType fonts under {', '.join(FONT_DIRS)}; install fonts-dejavu-core", file=sys.stderr)
        return 1
    rng = np.random.default_rng(args.seed)
    write_split(args.out, "train", args.train_per_class, fonts, rng)
    write_split(args.out, "test", args.test_per_class, fonts, rng)
    print(f"{args.out}: {10 * args.train_per_class} training and {10 * args.test_per_class} test images "
          f"from {len(fonts)} fonts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
