"""``python -m ml.digitise IMAGE...``: the twelve leads of each printout in millivolts, as JSON.

Prints one JSON list, an object per image::

    {"image": PATH, "fs": HZ, "leads": {"I": [mV, ...], ..., "V6": [...]},
     "start_s": {"I": 0.0, "aVR": 2.5, "V1": 5.0, "V4": 7.5, ...}, "rhythm": {"II": [mV over 10 s]},
     "measurements": {"heart_rate_bpm": ..., "pr_ms": ..., "qrs_ms": ..., "qt_ms": ..., "qtc_ms": ...,
                      "st_mv": {"I": mV at J+60 ms, ...}, "q_waves": {"I": false, ...}, ...}}

Each lead covers the 2.5 s it was printed, from its ``start_s`` on the page's 10 s axis.
``measurements`` are read from these leads (``ml.measurements``): null where not measurable. The
object is built by ``ml.leads.page_signal``, as the service builds what it stores. The
upload guard (``ml.guard``) checks each page first, as the service does: a page it refuses, or a
file that is no readable image, gives ``{"image": PATH, "rejected": true, "reason": "..."}``;
``--no-guard`` skips the check. Exit code 1 when any image was rejected.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ml.guard import check_decoded
from ml.leads import MIN_TRACE_WIDTH, page_signal
from ml.preprocess import InvalidImageError, decode_page


def digitise_file(path: Path, *, guard: bool = True) -> dict[str, Any]:
    """The JSON object for one image file: its signal, or why it was rejected."""
    try:
        decoded = decode_page(path.read_bytes(), min_trace_width=MIN_TRACE_WIDTH)
    except (OSError, InvalidImageError) as error:
        return {"image": str(path), "rejected": True, "reason": str(error)}
    if guard:
        rejection = check_decoded(decoded)
        if rejection is not None:
            return {"image": str(path), "rejected": True, "reason": rejection.message}
    return {"image": str(path), **page_signal(decoded.image)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.digitise", description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", type=Path, help="images of printed 12-lead ECGs")
    parser.add_argument("--no-guard", action="store_true", help="digitise even what the guard refuses")
    args = parser.parse_args(argv)
    results = [digitise_file(path, guard=not args.no_guard) for path in args.images]
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")
    return 1 if any(result.get("rejected") for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
