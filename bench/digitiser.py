"""What the digitiser costs beside a plain decode of the same file (the target: at most twice).

Usage::

    python -m bench.digitiser [--data DIR] [--pages 60] [--repeats 3] [--json]

For each page (the dev images under ``--data``, default ECGSITE_DEV_DATA or
../shared/data/khan-ecg; pages ``ml.synthetic`` renders when there are none), in one run on
this machine (``ml.digitiser_report.measure_cost``):

- a plain full-size Pillow decode of the file (``Image.open(...).load()``);
- the digitiser (``ml.traces.digitise``) on the decoded page's red channel, the work it adds
  to the decode the worker does anyway;
- their ratio, with the machine named beside the figures.

Each figure is the best of ``--repeats`` passes over all pages, in milliseconds per page.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ml.cards import machine_text
from ml.digitiser_report import default_data_dir, measure_cost, page_files, synthetic_page


def synthetic_pages(count: int) -> list[bytes]:
    """Pages to time when there are no dev images."""
    return [synthetic_page(index)[0] for index in range(count)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.digitiser", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=None, help="folder of page images (default: the dev images)"
    )
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    data_dir = args.data or default_data_dir()
    pages = [path.read_bytes() for path in page_files(data_dir, args.pages)]
    source = f"{len(pages)} pages from {data_dir}"
    if not pages:
        pages = synthetic_pages(min(args.pages, 12))
        source = f"{len(pages)} synthetic pages (no images in {data_dir})"
    figures = measure_cost(pages, args.repeats) | {"source": source}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"digitiser on {figures['source']}, {machine_text(figures['machine'])}:")
        print(f"  plain Pillow decode of the file  {figures['pillow_decode_ms']:8.2f} ms/page")
        print(f"  ml.traces.digitise               {figures['digitise_ms']:8.2f} ms/page")
        print(f"  ratio                            {figures['ratio']:8.2f} x  (target: at most 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
