"""Fast tests of one module each, mirroring include/ccwatch (and plugins/, include/demo)."""
