"""Stage 3, facts -> results: the CC8.1 controls.

``catalogue`` names them; each family module (``ticket``, ``review``, ``testing``,
``deployment``, ``emergency``, ``path``, ``repository``) holds its controls' fact SQL, Great
Expectations rule, detail text (Python and SQL) and is listed in ``families``; ``facts`` composes
the fact tables, ``evaluate`` runs the suites into ``control_results``.
"""
