"""Tests that drive the API double (include/ccwatch/sandbox) through the real clients."""
