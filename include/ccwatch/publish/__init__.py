"""Stage 4, results -> what people receive: the evidence folder and archive (``evidence/``), the
daily report (``report/``), OSCAL, POLICY.md, the Slack alert; ``results`` reads the date's
results for all of them."""
