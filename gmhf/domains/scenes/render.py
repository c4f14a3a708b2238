"""Procedural scenes, rendered in batches with torch ops: a shape over a background, lit and weathered.

Every image is one object whose shape is its class, drawn antialiased from a signed distance
function, over a coloured gradient with a low-frequency texture (the clutter), then weathered
(fog haze, rain streaks or snow flakes), scaled by the scene's lighting and given sensor noise.
Nothing is loaded from disk; a batch of 1,024 images is a few dozen tensor operations, grouped by
shape and by weather so that each image pays only for its own shape and its own weather.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["SHAPES", "SIZE", "WEATHERS", "render"]

#: The classes: one shape each, in label order of the full set.
SHAPES = ("circle", "square", "triangle", "cross", "ring", "crescent")
#: The weather levels, in the order of the `weather` factor.
WEATHERS = ("clear", "fog", "rain", "snow")
#: Images are SIZE × SIZE RGB.
SIZE = 32
_SQRT3_2 = math.sqrt(3.0) / 2
#: Rain streaks: drops per pixel, streak length (rows; one column across every two) and opacity.
RAIN = (0.015, 9, 0.6)
#: Snow: flakes per pixel and opacity (a flake is 2 × 2 pixels).
SNOW = (0.025, 0.8)
#: Fog: the share of haze, drawn per image from this range, and the haze's grey.
FOG = (0.3, 0.5, 0.78)


def _axis(dtype: torch.dtype) -> Tensor:
    """Pixel centres in [-1, 1]: x grows to the right, y downward."""
    return (torch.arange(SIZE, dtype=dtype) + 0.5) * (2.0 / SIZE) - 1.0


def _distance(shape: int, u: Tensor, v: Tensor) -> Tensor:
    """Signed distance (in object units, outline near 1) of local coordinates to shape `shape`."""
    if shape == 0:  # circle
        return torch.sqrt(u * u + v * v) - 0.9
    if shape == 1:  # square
        return torch.maximum(u.abs(), v.abs()) - 0.75
    if shape == 2:  # equilateral triangle, apex up (y grows downward)
        return torch.maximum(torch.maximum(v - 0.5, -_SQRT3_2 * u - 0.5 * v - 0.5), _SQRT3_2 * u - 0.5 * v - 0.5)
    if shape == 3:  # cross
        au, av = u.abs(), v.abs()
        return torch.minimum(torch.maximum(au - 0.95, av - 0.3), torch.maximum(au - 0.3, av - 0.95))
    if shape == 4:  # ring
        return (torch.sqrt(u * u + v * v) - 0.68).abs() - 0.24
    r = torch.sqrt(u * u + v * v)  # crescent: a disc with a bite taken out of its right side
    return torch.maximum(r - 0.95, 0.72 - torch.sqrt((u - 0.45) ** 2 + v * v))


def _coverage(shapes: Tensor, pose: Tensor) -> Tensor:
    """`[m, S, S]` antialiased coverage of each image's object; pose columns: cx, cy, radius, angle."""
    axis = _axis(pose.dtype)
    cx, cy, radius, angle = pose.unbind(1)
    cos, sin = torch.cos(angle) / radius, torch.sin(angle) / radius
    dx, dy = axis - cx[:, None], axis - cy[:, None]  # [m, S] each: x runs along columns, y down rows
    # rotation is separable in x and y, so each local coordinate is one broadcast add of [m, 1, S] and [m, S, 1]
    u = (cos[:, None] * dx)[:, None, :] + (sin[:, None] * dy)[:, :, None]
    v = (cos[:, None] * dy)[:, :, None] - (sin[:, None] * dx)[:, None, :]
    distance = torch.empty_like(u)
    for shape in range(len(SHAPES)):
        rows = (shapes == shape).nonzero().squeeze(1)
        if len(rows):
            distance[rows] = _distance(shape, u[rows], v[rows])
    pixels = distance.mul_((radius * (SIZE / 2.0))[:, None, None])  # object units -> pixels
    return pixels.neg_().add_(0.5).clamp_(0.0, 1.0)


def _smooth(m: int, knots: int, generator: torch.Generator | None, dtype: torch.dtype) -> Tensor:
    """`[m, S, S]` smooth random fields in [-0.5, 0.5]: `knots` × `knots` values, interpolated."""
    position = (torch.arange(SIZE, dtype=dtype) + 0.5) * (knots - 1) / SIZE
    weights = (1 - (position[:, None] - torch.arange(knots, dtype=dtype)).abs()).clamp(min=0.0)  # [S, knots]
    values = torch.rand(m, knots, knots, generator=generator, dtype=dtype) - 0.5
    return weights @ values @ weights.T


def _drops(m: int, rate: float, generator: torch.Generator | None, dtype: torch.dtype) -> Tensor:
    # how hard it rains or snows varies from picture to picture: from a fifth to twice `rate`
    severity = 0.2 + 1.8 * torch.rand(m, 1, 1, 1, generator=generator, dtype=dtype)
    return (torch.rand(m, 1, SIZE, SIZE, generator=generator, dtype=dtype) < rate * severity).to(dtype)


def _rain(images: Tensor, generator: torch.Generator | None) -> Tensor:
    rate, length, opacity = RAIN
    seeds = _drops(images.shape[0], rate, generator, images.dtype)
    streaks = seeds.clone()
    for k in range(1, length):  # smear each drop down and a little right: one column every two rows
        c = k // 2
        streaks[..., k:, c:] = torch.maximum(streaks[..., k:, c:], seeds[..., :SIZE - k, :SIZE - c])
    colour = torch.tensor([0.72, 0.76, 0.86], dtype=images.dtype)[None, :, None, None]
    alpha = opacity * streaks
    return 0.85 * images * (1 - alpha) + colour * alpha


def _snow(images: Tensor, generator: torch.Generator | None) -> Tensor:
    rate, opacity = SNOW
    seeds = _drops(images.shape[0], rate, generator, images.dtype)
    flakes = seeds.clone()
    flakes[..., 1:, :] = torch.maximum(flakes[..., 1:, :], seeds[..., :-1, :])
    flakes[..., :, 1:] = torch.maximum(flakes[..., :, 1:], flakes[..., :, :-1].clone())
    alpha = opacity * flakes
    return (0.9 * images + 0.1) * (1 - alpha) + 0.97 * alpha


def _fog(images: Tensor, generator: torch.Generator | None) -> Tensor:
    low, high, grey = FOG
    share = low + (high - low) * torch.rand(images.shape[0], 1, 1, 1, generator=generator, dtype=images.dtype)
    y = _axis(images.dtype)[:, None]
    share = (share * (1.15 - 0.3 * (y + 1) / 2)).clamp(max=1.0)  # thicker at the top, toward the horizon
    return images * (1 - share) + grey * share


def render(shapes: Tensor, weather: Tensor, lighting: Tensor, scale: Tensor, clutter: Tensor, noise: Tensor, *,
           generator: torch.Generator | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Images `[m, 3, S, S]` in [0, 1] of `m` objects; every argument is `[m]`, one value per image.

    Args:
        shapes: class of each object (index into `SHAPES`).
        weather: index into `WEATHERS`.
        lighting: scene brightness, multiplies everything the camera sees.
        scale: the object's radius as a share of the half-width.
        clutter: strength of the background texture, in [0, 1].
        noise: standard deviation of the uniform sensor noise.
        generator: the only random stream used (positions, poses, colours, drops, noise).
    """
    # Long: one pipeline (pose, colours, background, object, weather, light, sensor) reads best in one place.
    m = shapes.shape[0]
    g = generator
    u = torch.rand(m, 12, generator=g, dtype=dtype)
    radius = scale.to(dtype) * (0.85 + 0.3 * u[:, 0])
    room = (0.92 - radius).clamp(min=0.0)  # keep most of the object inside the frame
    pose = torch.stack([(2 * u[:, 1] - 1) * room, (2 * u[:, 2] - 1) * room, radius, 2 * math.pi * u[:, 3]], 1)
    background = 0.1 + 0.4 * u[:, 4:7]  # a darker background, a lighter object of another hue
    foreground = (background + 0.3 + 0.2 * u[:, 7:8] + 0.3 * (u[:, 8:11] - 0.5)).clamp(0.0, 1.0)
    y = _axis(dtype)[:, None]
    texture = _smooth(m, 6, g, dtype)[:, None]
    shade = 0.12 * (1 - (y + 1)) + (0.9 * clutter.to(dtype))[:, None, None, None] * texture  # sky and clutter
    canvas = background[:, :, None, None] + shade
    images = torch.lerp(canvas, foreground[:, :, None, None], _coverage(shapes, pose)[:, None])
    for level, effect in ((1, _fog), (2, _rain), (3, _snow)):
        rows = (weather == level).nonzero().squeeze(1)
        if len(rows):
            images[rows] = effect(images[rows], g)
    jitter = torch.rand(m, 1, SIZE, SIZE, generator=g, dtype=dtype) - 0.5  # luminance noise
    images.mul_(lighting.to(dtype)[:, None, None, None])
    images.add_(jitter.mul_((noise.to(dtype) * math.sqrt(12.0))[:, None, None, None]))
    return images.clamp_(0.0, 1.0)
