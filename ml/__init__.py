"""ECG image classification library for ecgsite.

Image bytes go in, a typed prediction comes out (see ``ml/README.md`` for the contract).
This package never imports Django, and importing it is cheap: TensorFlow is imported only
by the modules that need it (``network``, ``train``, ``device``, ``inference``), and only
when they are imported, so web processes and forking workers stay light.
"""
