"""ml-project: your machine learning code.

This package is yours: replace the example in model.py and train.py with your own. It is
installed into the project's conda env by `make reproduce` (torch comes from conda), and its
tests are in tests/ (`make test` runs them inside that env).
"""
