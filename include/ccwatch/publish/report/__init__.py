"""The daily self-contained HTML report (``html``) and its Great Expectations section (``gx``)."""
