"""Leaf helpers every stage shares: times, atomic files, paths under CCWATCH_HOME, change ids,
endpoints and the stage error.  Nothing here imports another ccwatch package."""
