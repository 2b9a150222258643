"""Images that are not 12-lead ECG printouts, to measure the out-of-distribution guard.

``render_non_ecg(kind, seed)`` draws one image of a kind; the same arguments give the same
pixels. Numpy and Pillow only. Kinds (``KINDS``), each varied in size and colour, and
mostly landscape near the printout's aspect (so the guard's shape check alone does not
decide):

- ``photo``: smooth colour fields, shapes, texture and sensor noise, dark to high-key.
- ``text_page``: a printed page of text, portrait or landscape.
- ``blank_page``: white, off-white or grey paper, perhaps with specks and a scan shadow.
- ``noise``: uniform, Gaussian or salt-and-pepper noise, colour or grey.
- ``screenshot``: an application window: bars, sidebar, buttons, text, light or dark theme.
- ``chart``: a line chart on white paper with grey gridlines (no pink grid).
- ``table``: a ruled table of text on white paper.
- ``letterhead``: a landscape document of text under a pink or red letterhead.
- ``solid_colour``: one colour, any size.

``HARD_KINDS`` are near-misses, closer to an ECG printout:

- ``grid_only``: the pink ECG grid with header and footer text, but no traces.
- ``text_on_grid``: lines of text printed on ECG grid paper.
- ``chart_on_grid``: one to three smooth curves on pink millimetre graph paper.
- ``other_layout_ecg``: ECG strips on the grid, but not in the 3x4 + rhythm layout
  (two, three, five or six rows). Out of the classifier's contract, so rejecting is right.
- ``photographed_ecg``: a printout photographed on a desk: turned 4-15 degrees, covering
  55-85 % of the frame, with uneven light.
- ``ecg_in_screenshot``: a printout shown at 50-80 % size inside an application window.

These two (``ECG_SCENES``) are ECGs: since photos are straightened (``ml.rectify``), accepting
them is right, and a rejection is an ECG the guard could not read.
- ``ecg_lookalike``: four rows of smooth random squiggles at the lead baselines on the
  pink grid. No cardiac content; a layout check cannot tell, so expect these to pass.

``degrade_page(image, rng)`` applies the mild changes a real upload may carry (a
black-and-white copy, rotation, rescaling, JPEG artefacts, brightness, contrast, colour
cast, white margin); the guard must still accept such ECG pages.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

from ml import layout
from ml.synthetic import _draw_grid, render_ecg

KINDS: tuple[str, ...] = (
    "photo",
    "text_page",
    "blank_page",
    "noise",
    "screenshot",
    "chart",
    "table",
    "letterhead",
    "solid_colour",
)
HARD_KINDS: tuple[str, ...] = (
    "grid_only",
    "text_on_grid",
    "chart_on_grid",
    "other_layout_ecg",
    "photographed_ecg",
    "ecg_in_screenshot",
    "ecg_lookalike",
)
# Kinds an honest layout check is not expected to reject (see the module docstring).
EXPECTED_TO_PASS: tuple[str, ...] = ("ecg_lookalike",)
# Printouts inside a larger picture: found and straightened, they may be read.
ECG_SCENES: tuple[str, ...] = ("photographed_ecg", "ecg_in_screenshot")

A4 = 2**0.5
# Most images are drawn landscape at about the printout's aspect, so that the guard's shape check
# alone does not decide and its content checks are measured.
LANDSCAPE = (4 / 3, A4, 3 / 2)
_WORD_TEXT = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no what "
    "report patient results method data analysis table figure section summary invoice total "
    "meeting agenda project budget review quarterly revenue growth customer service account"
)
WORDS = tuple(_WORD_TEXT.split())


def _font(size: float) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(6, round(size)))


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in rng.integers(low, high, 3))
    return r, g, b


def _sentence(rng: np.random.Generator, words: int) -> str:
    return " ".join(str(rng.choice(WORDS)) for _ in range(words))


def _page_size(
    rng: np.random.Generator, aspects: tuple[float, ...], long_side: tuple[int, int]
) -> tuple[int, int]:
    aspect = float(rng.choice(aspects))
    side = int(rng.integers(*long_side))
    if aspect >= 1:
        return side, max(64, round(side / aspect))
    return max(64, round(side * aspect)), side


def _paper(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    tone = int(rng.integers(238, 256))
    tint = rng.integers(-4, 5, 3)
    colour = tuple(int(np.clip(tone + t, 0, 255)) for t in tint)
    return Image.new("RGB", size, colour)  # type: ignore[arg-type]


def _text_block(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    box: tuple[float, float, float, float],
    size: float,
    fill: tuple[int, int, int] = (25, 25, 25),
) -> None:
    left, top, right, bottom = box
    font = _font(size)
    line_height = size * float(rng.uniform(1.3, 1.8))
    chars_per_line = max(4, int((right - left) / (0.5 * size)))
    y = top
    while y + line_height <= bottom:
        if rng.random() < 0.12:  # paragraph break
            y += line_height
            continue
        text = _sentence(rng, max(1, chars_per_line // 6))[:chars_per_line]
        if rng.random() < 0.15:
            text = text[: int(len(text) * rng.uniform(0.3, 0.9))]
        draw.text((left, y), text, fill=fill, font=font)
        y += line_height


def _photo(rng: np.random.Generator) -> Image.Image:
    width, height = _page_size(rng, (*LANDSCAPE, 16 / 9, 3 / 4, 1.0), (640, 1300))
    # Smooth colour field: a coarse random grid upsampled, brightness from dark to high-key.
    key = float(rng.uniform(0.3, 1.3))
    coarse = rng.integers(0, 256, (int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3)).astype(np.float64)
    coarse = np.clip(coarse * key, 0, 255).astype(np.uint8)
    image = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image, "RGBA")
    for _ in range(int(rng.integers(3, 15))):
        x0, x1 = sorted(rng.integers(-width // 4, width + width // 4, 2).tolist())
        y0, y1 = sorted(rng.integers(-height // 4, height + height // 4, 2).tolist())
        colour = (*_colour(rng), int(rng.integers(120, 256)))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.ellipse((x0, y0, x1 + 1, y1 + 1), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(5)]
            draw.polygon(points, fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 6))))
    pixels = np.asarray(image, dtype=np.float64)
    # Texture (fine structure such as foliage or fabric) and sensor noise.
    texture = rng.normal(0, float(rng.uniform(2, 25)), (height // 4 + 1, width // 4 + 1, 1))
    texture = np.kron(texture, np.ones((4, 4, 1)))[:height, :width]
    pixels = pixels + texture + rng.normal(0, float(rng.uniform(1, 8)), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _text_page(rng: np.random.Generator) -> Image.Image:
    size = _page_size(rng, (A4, A4, 1 / A4), (800, 1400))
    page = _paper(rng, size)
    draw = ImageDraw.Draw(page)
    width, height = size
    margin = float(rng.uniform(0.05, 0.12))
    font_size = width * float(rng.uniform(0.010, 0.018)) * (1.0 if width > height else 1.4)
    top = height * margin
    if rng.random() < 0.7:  # a heading
        draw.text(
            (width * margin, top), _sentence(rng, 4).title(), fill=(10, 10, 10), font=_font(font_size * 1.8)
        )
        top += font_size * 3.5
    columns = 2 if rng.random() < 0.3 else 1
    column_width = (width * (1 - 2 * margin)) / columns
    for column in range(columns):
        left = width * margin + column * column_width
        box = (left, top, left + column_width * 0.95, height * (1 - margin))
        _text_block(draw, rng, box, font_size)
    return page


def _blank_page(rng: np.random.Generator) -> Image.Image:
    size = _page_size(rng, (*LANDSCAPE, 1 / A4), (700, 1400))
    page = np.asarray(_paper(rng, size), dtype=np.float64)
    if rng.random() < 0.4:  # grey scanner paper
        page = page * float(rng.uniform(0.75, 0.95))
    height, width = page.shape[:2]
    if rng.random() < 0.5:  # a scan shadow along one edge
        shadow = np.linspace(float(rng.uniform(-60, -10)), 0, width // 8)
        page[:, : width // 8] += shadow[np.newaxis, :, np.newaxis]
    page = page + rng.normal(0, float(rng.uniform(0, 3)), page.shape)
    image = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 30))):  # specks of dust
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        radius = int(rng.integers(1, 3))
        draw.ellipse((x, y, x + radius, y + radius), fill=(60, 60, 60))
    if rng.random() < 0.3:  # a page number
        draw.text(
            (width / 2, height * 0.95), str(int(rng.integers(1, 300))), fill=(30, 30, 30), font=_font(14)
        )
    return image


def _noise(rng: np.random.Generator) -> Image.Image:
    width, height = _page_size(rng, (*LANDSCAPE, 1.0, 16 / 9), (300, 1300))
    channels = 3 if rng.random() < 0.7 else 1
    style = rng.integers(0, 3)
    if style == 0:
        pixels = rng.integers(0, 256, (height, width, channels)).astype(np.float64)
    elif style == 1:
        pixels = rng.normal(
            float(rng.uniform(60, 200)), float(rng.uniform(20, 80)), (height, width, channels)
        )
    else:  # salt and pepper on a grey
        pixels = np.full((height, width, channels), float(rng.uniform(80, 200)))
        mask = rng.random((height, width))
        pixels[mask < 0.1] = 0
        pixels[mask > 0.9] = 255
    pixels = np.repeat(pixels, 3 // channels, axis=2)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _window(rng: np.random.Generator, size: tuple[int, int]) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """An application window; returns it and the content box left free."""
    width, height = size
    dark = rng.random() < 0.35
    background = _colour(rng, 20, 50) if dark else _colour(rng, 225, 256)
    foreground = (220, 220, 220) if dark else (30, 30, 30)
    accent = _colour(rng, 40, 256)
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    bar = round(height * float(rng.uniform(0.05, 0.09)))
    draw.rectangle((0, 0, width, bar), fill=accent if rng.random() < 0.5 else _colour(rng, 60, 120))
    draw.text(
        (bar * 0.5, bar / 2),
        _sentence(rng, 3).title(),
        fill=(250, 250, 250),
        font=_font(bar * 0.45),
        anchor="lm",
    )
    sidebar = round(width * float(rng.uniform(0.12, 0.22))) if rng.random() < 0.7 else 0
    if sidebar:
        panel = tuple(max(0, c - 15) for c in background) if not dark else tuple(c + 15 for c in background)
        draw.rectangle((0, bar, sidebar, height), fill=panel)  # type: ignore[arg-type]
        for index in range(int(rng.integers(4, 12))):
            y = bar + 20 + index * bar * 0.8
            draw.text((12, y), _sentence(rng, 2), fill=foreground, font=_font(bar * 0.3))
    return image, (sidebar, bar, width, height)


def _screenshot(rng: np.random.Generator) -> Image.Image:
    size = _page_size(rng, (*LANDSCAPE, 16 / 10, 16 / 9, 9 / 19.5), (800, 1600))
    image, (left, top, right, bottom) = _window(rng, size)
    draw = ImageDraw.Draw(image)
    dark = sum(image.getpixel((right - 2, bottom - 2))) < 300  # type: ignore[arg-type]
    foreground = (220, 220, 220) if dark else (30, 30, 30)
    unit = (bottom - top) / 20
    y = top + unit
    while y < bottom - 2 * unit:
        element = rng.integers(0, 4)
        x = left + unit
        if element == 0:  # a row of buttons
            for _ in range(int(rng.integers(1, 5))):
                w = unit * float(rng.uniform(3, 6))
                draw.rounded_rectangle(
                    (x, y, x + w, y + unit * 1.3), radius=unit * 0.3, fill=_colour(rng, 30, 256)
                )
                draw.text(
                    (x + w / 2, y + unit * 0.65),
                    _sentence(rng, 1),
                    fill=(255, 255, 255),
                    font=_font(unit * 0.5),
                    anchor="mm",
                )
                x += w + unit * 0.5
            y += unit * 2
        elif element == 1:  # a text field
            draw.rectangle((x, y, right - unit, y + unit * 1.2), outline=foreground, width=1)
            y += unit * 2
        elif element == 2:  # an image placeholder
            h = unit * float(rng.uniform(3, 7))
            draw.rectangle((x, y, x + h * 1.5, y + h), fill=_colour(rng))
            y += h + unit
        else:  # text lines
            lines = int(rng.integers(1, 5))
            _text_block(draw, rng, (x, y, right - unit, y + lines * unit), unit * 0.55, foreground)
            y += lines * unit + unit * 0.5
    return image


def _chart(rng: np.random.Generator) -> Image.Image:
    size = _page_size(rng, (A4, 4 / 3, 16 / 9), (800, 1400))
    page = _paper(rng, size)
    draw = ImageDraw.Draw(page)
    width, height = size
    left, top, right, bottom = width * 0.1, height * 0.15, width * 0.93, height * 0.85
    draw.text(
        (width / 2, height * 0.07),
        _sentence(rng, 4).title(),
        fill=(20, 20, 20),
        font=_font(height * 0.03),
        anchor="mm",
    )
    grey = int(rng.integers(190, 235))
    pitch = float(rng.uniform(0.03, 0.12)) * (right - left)
    for x in np.arange(left, right, pitch):
        draw.line([(x, top), (x, bottom)], fill=(grey, grey, grey))
    for y in np.arange(bottom, top, -pitch * float(rng.uniform(0.6, 1.4))):
        draw.line([(left, y), (right, y)], fill=(grey, grey, grey))
        draw.text(
            (left - 8, y), f"{int(rng.integers(0, 1000))}", fill=(40, 40, 40), font=_font(11), anchor="rm"
        )
    draw.line([(left, top), (left, bottom), (right, bottom)], fill=(0, 0, 0), width=2)
    xs = np.linspace(left, right, 200)
    for _ in range(int(rng.integers(1, 5))):
        walk = np.cumsum(rng.normal(0, 1, 200))
        walk = (walk - walk.min()) / max(np.ptp(walk), 1e-6)
        ys = bottom - (0.1 + 0.8 * walk) * (bottom - top)
        draw.line(
            list(zip(xs.tolist(), ys.tolist(), strict=True)),
            fill=_colour(rng, 0, 200),
            width=int(rng.integers(1, 4)),
        )
    return page


def _table(rng: np.random.Generator) -> Image.Image:
    size = _page_size(rng, (A4, A4, 1 / A4), (800, 1400))
    page = _paper(rng, size)
    draw = ImageDraw.Draw(page)
    width, height = size
    columns = int(rng.integers(3, 8))
    row_height = height * float(rng.uniform(0.03, 0.06))
    left, right = width * 0.07, width * 0.93
    top = height * 0.1
    column_width = (right - left) / columns
    header = _colour(rng, 150, 240)
    draw.rectangle((left, top, right, top + row_height), fill=header)
    y = top
    vertical_rules = rng.random() < 0.5
    while y + row_height < height * 0.92:
        for column in range(columns):
            text = _sentence(rng, 1) if column == 0 else f"{rng.uniform(0, 10_000):,.2f}"
            draw.text(
                (left + column * column_width + 6, y + row_height / 2),
                text,
                fill=(20, 20, 20),
                font=_font(row_height * 0.45),
                anchor="lm",
            )
        y += row_height
        draw.line([(left, y), (right, y)], fill=(90, 90, 90), width=1)
    if vertical_rules:
        for column in range(columns + 1):
            x = left + column * column_width
            draw.line([(x, top), (x, y)], fill=(90, 90, 90), width=1)
    return page


def _letterhead(rng: np.random.Generator) -> Image.Image:
    long_side = int(rng.integers(900, 1400))
    size = (long_side, round(long_side / float(rng.uniform(1.35, 1.5))))  # landscape
    page = _paper(rng, size)
    draw = ImageDraw.Draw(page)
    width, height = size
    red = (int(rng.integers(200, 256)), int(rng.integers(40, 180)), int(rng.integers(40, 180)))
    band = height * float(rng.uniform(0.08, 0.18))
    if rng.random() < 0.5:
        draw.rectangle((0, 0, width, band), fill=red)
        ink = (255, 255, 255)
    else:
        draw.line([(width * 0.05, band), (width * 0.95, band)], fill=red, width=int(rng.integers(2, 8)))
        ink = red
    draw.ellipse((width * 0.05, band * 0.2, width * 0.05 + band * 0.6, band * 0.8), fill=ink)
    draw.text(
        (width * 0.05 + band * 0.8, band / 2),
        _sentence(rng, 3).upper(),
        fill=ink,
        font=_font(band * 0.35),
        anchor="lm",
    )
    _text_block(draw, rng, (width * 0.06, band + height * 0.06, width * 0.94, height * 0.88), height * 0.022)
    if rng.random() < 0.6:  # a footer band in the same colour
        draw.rectangle((0, height * 0.95, width, height), fill=red)
    return page


def _solid_colour(rng: np.random.Generator) -> Image.Image:
    width, height = _page_size(rng, (*LANDSCAPE, 1.0, 16 / 9), (100, 1600))
    pixels = np.empty((height, width, 3), np.float64)
    pixels[:] = _colour(rng)
    pixels += rng.normal(0, float(rng.uniform(0, 2)), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _grid_page(rng: np.random.Generator) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    width = int(rng.integers(900, 1500))
    height = round(width * layout.REFERENCE_HEIGHT / layout.REFERENCE_WIDTH)
    page = Image.fromarray(_draw_grid(width, height))
    return page, ImageDraw.Draw(page)


def _header(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, height: int) -> None:
    sy = height / layout.REFERENCE_HEIGHT
    draw.text((width / 2, 22 * sy), "ECG REPORT", fill=(20, 20, 20), font=_font(24 * sy), anchor="mm")
    draw.text((36 * sy, 50 * sy), _sentence(rng, 10), fill=(20, 20, 20), font=_font(13 * sy), anchor="lm")
    draw.text((36 * sy, 836 * sy), _sentence(rng, 8), fill=(20, 20, 20), font=_font(13 * sy), anchor="lm")


def _grid_only(rng: np.random.Generator) -> Image.Image:
    page, draw = _grid_page(rng)
    _header(draw, rng, *page.size)
    return page


def _text_on_grid(rng: np.random.Generator) -> Image.Image:
    page, draw = _grid_page(rng)
    width, height = page.size
    _text_block(
        draw,
        rng,
        (width * 0.05, height * 0.05, width * 0.95, height * 0.95),
        height * float(rng.uniform(0.015, 0.03)),
    )
    return page


def _chart_on_grid(rng: np.random.Generator) -> Image.Image:
    page, draw = _grid_page(rng)
    width, height = page.size
    xs = np.linspace(width * 0.05, width * 0.95, 400)
    for _ in range(int(rng.integers(1, 4))):
        phase = np.linspace(0, float(rng.uniform(1, 12)), 400)
        curve = np.sin(phase + float(rng.uniform(0, 6))) + 0.3 * np.cumsum(rng.normal(0, 0.1, 400))
        curve = (curve - curve.min()) / max(np.ptp(curve), 1e-6)
        ys = height * (0.2 + 0.65 * curve)
        draw.line(list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(20, 20, 20), width=2)
    return page


def _strip(seed: int, width: int, height: int) -> Image.Image:
    """The rhythm strip band (grid and lead II trace) of a synthetic page of this size."""
    page = render_ecg("normal", seed, width=width, height=height)
    sy = height / layout.REFERENCE_HEIGHT
    centre = layout.ROW_BASELINES[-1] * sy
    half = 60 * sy
    return page.crop((0, round(centre - half), width, round(centre + half)))


def _other_layout_ecg(rng: np.random.Generator) -> Image.Image:
    page, draw = _grid_page(rng)
    width, height = page.size
    _header(draw, rng, width, height)
    sy = height / layout.REFERENCE_HEIGHT
    rows = int(rng.choice([2, 3, 5, 6]))
    top, bottom = layout.GRID_TOP * sy + 50 * sy, layout.GRID_BOTTOM * sy - 50 * sy
    for index, centre in enumerate(np.linspace(top, bottom, rows)):
        strip = _strip(int(rng.integers(0, 1_000_000)) + index, width, height)
        page.paste(strip, (0, round(centre - strip.height / 2)))
    return page


def _photographed_ecg(rng: np.random.Generator) -> Image.Image:
    width, height = _page_size(rng, (*LANDSCAPE, 16 / 9, 3 / 4), (900, 1400))
    desk = _photo(rng).resize((width, height))
    printout = render_ecg(
        str(rng.choice(["normal", "abnormal"])), int(rng.integers(0, 10**6)), width=1200, height=852
    )
    cover = float(rng.uniform(0.55, 0.85))
    scale = cover * min(width / printout.width, height / printout.height)
    printout = printout.resize(
        (round(printout.width * scale), round(printout.height * scale)), Image.Resampling.BILINEAR
    )
    angle = float(rng.uniform(4, 15)) * float(rng.choice([-1, 1]))
    mask = Image.new("L", printout.size, 255).rotate(angle, expand=True)
    printout = printout.rotate(angle, expand=True, resample=Image.Resampling.BILINEAR)
    x = int(rng.integers(0, max(1, width - printout.width)))
    y = int(rng.integers(0, max(1, height - printout.height)))
    desk.paste(printout, (x, y), mask)
    # Uneven light: a brightness ramp across the frame.
    ramp = np.linspace(float(rng.uniform(0.6, 0.9)), float(rng.uniform(0.95, 1.1)), width)
    pixels = np.asarray(desk, dtype=np.float64) * ramp[np.newaxis, :, np.newaxis]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _ecg_in_screenshot(rng: np.random.Generator) -> Image.Image:
    size = _page_size(rng, (16 / 9, 16 / 10, 3 / 2, 4 / 3), (1000, 1600))
    image, (left, top, right, bottom) = _window(rng, size)
    fraction = float(rng.uniform(0.5, 0.8))
    page_width = round(image.width * fraction)
    page_height = round(page_width * layout.REFERENCE_HEIGHT / layout.REFERENCE_WIDTH)
    if page_height > bottom - top:
        page_height = bottom - top - 4
        page_width = round(page_height * layout.REFERENCE_WIDTH / layout.REFERENCE_HEIGHT)
    printout = render_ecg("normal", int(rng.integers(0, 10**6))).resize(
        (page_width, page_height), Image.Resampling.BOX
    )
    x = left + (right - left - page_width) // 2
    y = top + (bottom - top - page_height) // 2
    image.paste(printout, (max(0, x), max(0, y)))
    return image


def _ecg_lookalike(rng: np.random.Generator) -> Image.Image:
    page, draw = _grid_page(rng)
    width, height = page.size
    _header(draw, rng, width, height)
    sx, sy = width / layout.REFERENCE_WIDTH, height / layout.REFERENCE_HEIGHT
    xs = np.arange(layout.COLUMN_EDGES[0] * sx, layout.COLUMN_EDGES[-1] * sx)
    for baseline in layout.ROW_BASELINES:
        wave = np.zeros(len(xs))
        for _ in range(4):
            wave += float(rng.uniform(-15, 15)) * np.sin(
                xs / float(rng.uniform(8, 80)) + float(rng.uniform(0, 6))
            )
        ys = baseline * sy + wave * sy
        draw.line(
            list(zip(xs.tolist(), ys.tolist(), strict=True)), fill=(20, 20, 20), width=max(1, round(1.6 * sx))
        )
    return page


_RENDERERS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "photo": _photo,
    "text_page": _text_page,
    "blank_page": _blank_page,
    "noise": _noise,
    "screenshot": _screenshot,
    "chart": _chart,
    "table": _table,
    "letterhead": _letterhead,
    "solid_colour": _solid_colour,
    "grid_only": _grid_only,
    "text_on_grid": _text_on_grid,
    "chart_on_grid": _chart_on_grid,
    "other_layout_ecg": _other_layout_ecg,
    "photographed_ecg": _photographed_ecg,
    "ecg_in_screenshot": _ecg_in_screenshot,
    "ecg_lookalike": _ecg_lookalike,
}


def render_non_ecg(kind: str, seed: int) -> Image.Image:
    """Draw one RGB image of ``kind`` (``KINDS`` or ``HARD_KINDS``); same arguments, same pixels."""
    if kind not in _RENDERERS:
        raise ValueError(f"'kind' must be one of {sorted(_RENDERERS)}. Received: kind={kind!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"'seed' must be a non-negative integer. Received: seed={seed!r}")
    rng = np.random.default_rng([seed, list(_RENDERERS).index(kind)])
    return _RENDERERS[kind](rng).convert("RGB")


DEGRADATIONS: tuple[str, ...] = (
    "greyscale",
    "rotate",
    "scale",
    "jpeg",
    "brightness_contrast",
    "colour_cast",
    "margin",
)


def degrade_page(
    image: Image.Image, rng: np.random.Generator, which: tuple[str, ...] = DEGRADATIONS
) -> bytes:
    """JPEG bytes of ``image`` after the mild changes a real upload may carry.

    ``greyscale`` makes a black-and-white copy (the pink grid turns grey). Each other named
    change is applied with a random strength: ``rotate`` by up to 2 degrees
    either way (white fill); ``scale`` by 0.6-1.5; ``brightness_contrast`` by 0.8-1.2 and
    0.75-1.25; ``colour_cast`` (per-channel gains of 0.94-1.06); ``margin`` (0-3 % white on
    each side); ``jpeg`` saves at quality 40 instead of 90.
    """
    unknown = set(which) - set(DEGRADATIONS)
    if unknown:
        raise ValueError(f"'which' must name changes among {DEGRADATIONS}. Received: {sorted(unknown)}")
    image = image.convert("RGB")
    if "greyscale" in which:
        image = image.convert("L").convert("RGB")
    if "rotate" in which:
        angle = float(rng.uniform(-2, 2))
        image = image.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    if "margin" in which:
        pads = rng.uniform(0, 0.03, 4) * np.array([image.width, image.height, image.width, image.height])
        left, top, right, bottom = (round(v) for v in pads)
        framed = Image.new("RGB", (image.width + left + right, image.height + top + bottom), (255, 255, 255))
        framed.paste(image, (left, top))
        image = framed
    if "scale" in which:
        factor = float(rng.uniform(0.6, 1.5))
        size = (round(image.width * factor), round(image.height * factor))
        image = image.resize(size, Image.Resampling.LANCZOS)
    if "brightness_contrast" in which:
        image = ImageEnhance.Brightness(image).enhance(float(rng.uniform(0.8, 1.2)))
        image = ImageEnhance.Contrast(image).enhance(float(rng.uniform(0.75, 1.25)))
    if "colour_cast" in which:
        gains = rng.uniform(0.94, 1.06, 3)
        pixels = np.asarray(image, dtype=np.float64) * gains[np.newaxis, np.newaxis, :]
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=40 if "jpeg" in which else 90)
    return out.getvalue()
