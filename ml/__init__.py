"""ECG image classification library for ecgsite.

Image bytes go in, a typed prediction comes out (see ``ml/README.md`` for the contract).
This package never imports Django, and importing it is cheap: only ``network`` imports Keras
when it is imported; the others that need TensorFlow (``device``, ``inference``, ``train``,
``crossval``, ``timing``, ``rebuild``) import it, or ``network``, inside the functions that run
it, so web processes and forking workers stay light.

Two layers; the second may import the first, never the reverse:

1. Serving, what the web process and the worker load: ``labels``, ``layout``, ``preprocess``,
   ``traces``, ``measurements``, ``leads``, ``representations``, ``calibration``, ``metrics``,
   ``decision``, ``guard``, ``rectify``, ``models``, ``cards``, ``device``, ``network``,
   ``synthetic`` (the model's self-test renders a page with it) and ``inference``.
2. Training, reporting and the command lines: ``train``, ``crossval``, ``crossval_card``,
   ``evaluate``, ``timing``, ``rebuild``, ``report``, ``guard_report``, ``nonecg``, ``photos``,
   ``photo_report``, ``predict``, ``digitise`` and ``digitiser_report``.

import-linter keeps these layers (``[tool.importlinter]`` in the project's ``pyproject.toml``).
"""
