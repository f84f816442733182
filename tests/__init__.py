"""The ccwatch test suite: unit/, integration/, system/ and helpers/ (see tests/conftest.py)."""
